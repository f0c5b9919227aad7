// Package streamio turns a gRPC byte stream (a console) into an
// io.ReadWriteCloser, keeping error kinds.
package streamio

import (
	"context"
	"io"
	"sync"

	"github.com/virtd/virtd/internal/rpcerr"
)

// Conn is a byte stream carried by gRPC messages.
type Conn struct {
	send  func([]byte) error
	recv  func() ([]byte, error)
	close func()

	mu   sync.Mutex
	rest []byte
}

// New wraps a stream's send, receive and cancel functions.
func New(send func([]byte) error, recv func() ([]byte, error), close func()) *Conn {
	return &Conn{send: send, recv: recv, close: close}
}

func (s *Conn) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.rest) == 0 {
		b, err := s.recv()
		if err != nil {
			if err == io.EOF {
				return 0, io.EOF
			}
			return 0, rpcerr.FromStatus(err)
		}
		s.rest = b
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

func (s *Conn) Write(p []byte) (int, error) {
	if err := s.send(append([]byte(nil), p...)); err != nil {
		return 0, rpcerr.FromStatus(err)
	}
	return len(p), nil
}

// Close detaches from the console.
func (s *Conn) Close() error {
	s.close()
	return nil
}

// Serve joins rwc to a stream until either side ends: what recv returns is
// written to rwc, what rwc yields is given to send. It returns nil when rwc
// reaches EOF or ctx ends, else the error that stopped it.
func Serve(ctx context.Context, rwc io.ReadWriteCloser, recv func() ([]byte, error), send func([]byte) error) error {
	go func() {
		for {
			b, err := recv()
			if err != nil {
				rwc.Close()
				return
			}
			if _, err := rwc.Write(b); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := rwc.Read(buf)
		if n > 0 {
			if serr := send(append([]byte(nil), buf[:n]...)); serr != nil {
				return serr
			}
		}
		if err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
