package libvirtrpc

import (
	"context"
	"io"
	"sync"
)

func serveConsole() {
	serve(procDomainOpenConsole, "DOMAIN_OPEN_CONSOLE", proc{needConn: true, fn: openConsole})
}

// Console flags: FORCE (1) takes the console from another client, SAFE
// (2) asks for a driver that can tell when it is taken; a virtd console
// is one stream per open, so both are honoured by what it does anyway.
const consoleFlags = 1 | 2

// stream is a console: STREAM packets with the serial of the call that
// opened it carry its bytes both ways.
type stream struct {
	c    *client
	h    header
	rw   io.ReadWriteCloser
	once sync.Once
}

func openConsole(ctx context.Context, c *call) error {
	uuid := c.domain()
	dev, _ := c.d.OptString(maxString)
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if err := c.checkFlags(flags, consoleFlags); err != nil {
		return err
	}
	cl := c.c
	cl.mu.Lock()
	open := len(cl.streams)
	cl.mu.Unlock()
	if open >= cl.s.lim.MaxClientStreams {
		return rpcErr(errOperationFailed, "this connection already has %d consoles open (max_client_streams = %d)", open, cl.s.lim.MaxClientStreams)
	}
	rw, err := c.conn.OpenConsole(ctx, uuid, dev)
	if err != nil {
		return err
	}
	h := c.h
	h.typ, h.status = typeStream, statusContinue
	s := &stream{c: cl, h: h, rw: rw}
	cl.mu.Lock()
	if cl.streams == nil { // the connection has ended
		cl.mu.Unlock()
		rw.Close()
		return rpcErr(errRPC, "the connection ended")
	}
	cl.streams[h.serial] = s
	cl.mu.Unlock()
	// Bytes from the console follow the reply.
	c.after = func() { go s.output() }
	return nil
}

// output sends what the console gives until it ends, then the end of the
// stream.
func (s *stream) output() {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.rw.Read(buf)
		if n > 0 {
			e := newPacket(s.h, nil)
			e.B = append(e.B, buf[:n]...)
			s.c.write(e)
		}
		if err != nil {
			break
		}
	}
	if s.remove() {
		h := s.h
		h.status = statusOK
		s.c.write(newPacket(h, nil))
	}
}

// remove takes the stream off its connection and closes the console;
// false when that was done already.
func (s *stream) remove() bool {
	s.c.mu.Lock()
	cur, ok := s.c.streams[s.h.serial]
	if ok && cur == s {
		delete(s.c.streams, s.h.serial)
	}
	s.c.mu.Unlock()
	s.close()
	return ok && cur == s
}

func (s *stream) close() { s.once.Do(func() { s.rw.Close() }) }

// streamPacket handles a STREAM packet from the client: data for the
// console, its end (OK) or an abort (ERROR).
func (c *client) streamPacket(h header, body []byte) bool {
	c.mu.Lock()
	s := c.streams[h.serial]
	c.mu.Unlock()
	if s == nil || h.prog != s.h.prog || h.proc != s.h.proc {
		// A stream that has ended may still get the client's last
		// packets; they are dropped, as libvirtd drops them.
		return true
	}
	if h.typ == typeStreamHole {
		return true // consoles have no holes
	}
	switch h.status {
	case statusContinue:
		if _, err := s.rw.Write(body); err != nil {
			s.remove()
			r := s.h
			r.status = statusError
			e := newPacket(r, nil)
			encodeError(e, toRemote(err, errDomainProc))
			c.write(e)
		}
	case statusOK:
		if s.remove() {
			r := s.h
			r.status = statusOK
			c.write(newPacket(r, nil))
		}
	default:
		if s.remove() {
			r := s.h
			r.status = statusError
			e := newPacket(r, nil)
			encodeError(e, &remoteError{code: errInternal, domain: fromRemote, msg: "stream aborted at client request"})
			c.write(e)
		}
	}
	return true
}
