package streamio

// ChunkSize is the most data a Writer puts in one message: far below any
// message size limit, and large enough that a file of a few megabytes
// takes few messages.
const ChunkSize = 32 << 10

// Writer is an io.Writer over a stream's send: it gathers what it is
// written into messages of ChunkSize bytes; Flush sends the rest. Each
// message is a slice of its own, which send may keep.
type Writer struct {
	send func([]byte) error
	buf  []byte
}

// NewWriter returns a Writer sending through send.
func NewWriter(send func([]byte) error) *Writer { return &Writer{send: send} }

func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, ChunkSize)
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf, p = w.buf[:len(w.buf)+k], p[k:]
		if len(w.buf) == cap(w.buf) {
			if err := w.Flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// Flush sends what is gathered, if anything.
func (w *Writer) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	b := w.buf
	w.buf = nil
	return w.send(b)
}
