package streamio

import (
	"bytes"
	"errors"
	"testing"
)

func TestWriterChunks(t *testing.T) {
	var msgs [][]byte
	w := NewWriter(func(b []byte) error { msgs = append(msgs, b); return nil })
	data := bytes.Repeat([]byte("0123456789"), (2*ChunkSize+100)/10)
	// One large write, then small ones.
	if n, err := w.Write(data[:ChunkSize+7]); n != ChunkSize+7 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	for i := ChunkSize + 7; i < len(data); i += 3 {
		if _, err := w.Write(data[i:min(i+3, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || len(msgs[0]) != ChunkSize || len(msgs[1]) != ChunkSize {
		t.Errorf("message sizes: %d messages, the first %d bytes", len(msgs), len(msgs[0]))
	}
	if got := bytes.Join(msgs, nil); !bytes.Equal(got, data) {
		t.Errorf("the messages joined differ from what was written (%d bytes, want %d)", len(got), len(data))
	}
	if err := w.Flush(); err != nil || len(msgs) != 3 {
		t.Errorf("a second Flush sent something: %d messages, %v", len(msgs), err)
	}
}

func TestWriterSendError(t *testing.T) {
	broken := errors.New("broken")
	w := NewWriter(func([]byte) error { return broken })
	if _, err := w.Write(make([]byte, ChunkSize)); !errors.Is(err, broken) {
		t.Errorf("Write = %v, want the send error", err)
	}
}
