package libvirtrpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/core/inproc"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/internal/xdr"
	"github.com/virtd/virtd/virt"
)

// Hand-made packets against the front end: what a broken or hostile
// client sends gets an error reply or a clean close, never a crash, a
// stuck connection, or memory it did not pay for.

var (
	testCoreOnce sync.Once
	testCore     *core.Core
)

// sharedCore is one core over the test driver for every test and fuzz
// input of this file.
func sharedCore(t testing.TB) *core.Core {
	testCoreOnce.Do(func() {
		views := core.NewViews()
		ds, err := inproc.New(context.Background(), views, testdriver.New(driver.Env{}))
		if err != nil {
			t.Fatal(err)
		}
		testCore = core.New(core.Config{Drivers: ds, Views: views})
	})
	return testCore
}

// rawConn is one connection to a Server, spoken to packet by packet.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, lim Limits) (*rawConn, *Server) {
	s := New(Config{Core: sharedCore(t), Limits: lim})
	cli, srv := net.Pipe()
	s.start(srv, false)
	t.Cleanup(func() {
		cli.Close()
		s.Close()
	})
	return &rawConn{t: t, nc: cli, r: bufio.NewReader(cli)}, s
}

func packet(h header, body []byte) []byte {
	e := newPacket(h, nil)
	e.B = append(e.B, body...)
	return finish(e)
}

func callHeader(proc int32, serial uint32) header {
	return header{prog: programRemote, vers: remoteVersion, proc: proc, typ: typeCall, serial: serial}
}

func (c *rawConn) send(p []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(p); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads the next packet.
func (c *rawConn) reply() (header, []byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var lb [lenSize]byte
	n, err := readLength(c.r, &lb)
	if err != nil {
		return header{}, nil, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.r, p); err != nil {
		return header{}, nil, err
	}
	return parseHeader(p), p[headerSize:], nil
}

// call sends a call and returns its reply's status and body.
func (c *rawConn) call(proc int32, serial uint32, body []byte) (header, []byte) {
	c.t.Helper()
	c.send(packet(callHeader(proc, serial), body))
	h, b, err := c.reply()
	if err != nil {
		c.t.Fatalf("reply to procedure %d: %v", proc, err)
	}
	return h, b
}

// errorOf decodes an error reply's code and message.
func errorOf(t testing.TB, body []byte) (int32, string) {
	t.Helper()
	d := xdr.NewDecoder(body)
	code := d.Int32()
	d.Int32()
	msg, _ := d.OptString(maxString)
	if d.Err() != nil {
		t.Fatalf("error body: %v", d.Err())
	}
	return code, msg
}

func openTest(t testing.TB, c *rawConn) {
	t.Helper()
	e := &xdr.Encoder{}
	e.OptString("test:///default", true)
	e.Uint32(0)
	if h, b := c.call(procConnectOpen, 1, e.B); h.status != statusOK {
		code, msg := errorOf(t, b)
		t.Fatalf("open: %d %s", code, msg)
	}
}

func str(s string) []byte {
	e := &xdr.Encoder{}
	e.String(s)
	return e.B
}

func TestBadCalls(t *testing.T) {
	c, _ := dialRaw(t, Limits{})
	// Before CONNECT_OPEN, a call that needs a connection says so.
	h, b := c.call(procConnectGetHostname, 1, nil)
	if code, msg := errorOf(t, b); h.status != statusError || code != errInvalidConn || !strings.Contains(msg, "CONNECT_OPEN") {
		t.Errorf("hostname before open: %d %q", code, msg)
	}
	openTest(t, c)
	for _, tt := range []struct {
		what string
		h    header
		body []byte
		code int32
		msg  string
	}{
		{"an unknown procedure", callHeader(9999, 2), nil, errNoSupport, "procedure 9999"},
		{"a wrong program", header{prog: 0x1234, vers: 1, proc: 1, typ: typeCall, serial: 3}, nil, errRPC, "unknown program 0x1234"},
		{"the QEMU program", header{prog: programQEMU, vers: 1, proc: 1, typ: typeCall, serial: 4}, nil, errNoSupport, "QEMU program"},
		{"a wrong version", header{prog: programRemote, vers: 2, proc: procConnectGetHostname, typ: typeCall, serial: 5}, nil, errRPC, "version 2"},
		{"file descriptors", header{prog: programRemote, vers: 1, proc: procConnectGetHostname, typ: typeCallWithFDs, serial: 6}, nil, errRPC, "file descriptors"},
		{"truncated arguments", callHeader(procDomainLookupByName, 7), []byte{0, 0, 0, 9, 'a'}, errRPC, "cannot decode"},
		{"arguments left over", callHeader(procConnectGetHostname, 8), []byte{0, 0, 0, 1}, errRPC, "left over"},
		{"a string over 4 MiB", callHeader(procDomainLookupByName, 9), []byte{0, 0x40, 0, 1}, errRPC, "over the limit"},
		{"a string that is not UTF-8", callHeader(procDomainLookupByName, 10), str("a\xffb"), errRPC, "not UTF-8"},
		{"a huge list asked for", callHeader(procConnectListDomains, 11), []byte{0x7f, 0xff, 0xff, 0xff}, errRPC, "over the limit"},
		{"a negative list asked for", callHeader(procConnectListDefinedDomains, 12), []byte{0xff, 0xff, 0xff, 0xff}, errRPC, "over the limit"},
		{"an unknown domain", callHeader(procDomainLookupByName, 13), str("nosuch"), errNoDomain, "nosuch"},
		{"a bad name", callHeader(procDomainLookupByName, 14), str("a/b"), errInvalidArg, "a/b"},
		{"malformed XML", callHeader(procDomainDefineXML, 15), str("<domain"), errXML, ""},
	} {
		c.send(packet(tt.h, tt.body))
		h, b, err := c.reply()
		if err != nil {
			t.Fatalf("%s: %v", tt.what, err)
		}
		code, msg := errorOf(t, b)
		if h.typ != typeReply || h.status != statusError || h.serial != tt.h.serial || h.proc != tt.h.proc ||
			code != tt.code || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: %s status %d: %d %q; want error %d naming %q", tt.what, h, h.status, code, msg, tt.code, tt.msg)
		}
	}
	// After all of it the connection serves.
	if h, _ := c.call(procConnectGetHostname, 20, nil); h.status != statusOK {
		t.Errorf("hostname after the bad calls: status %d", h.status)
	}
	// A keepalive ping gets its pong.
	c.send(packet(header{prog: programKeepalive, vers: keepaliveVersion, proc: procPing, typ: typeMessage}, nil))
	if h, _, err := c.reply(); err != nil || h.prog != programKeepalive || h.proc != procPong || h.typ != typeMessage {
		t.Errorf("ping: %s, %v", h, err)
	}
}

// TestBadFraming: lengths outside the protocol's limits and packets of an
// unknown type end the connection at once, before anything is allocated
// for them.
func TestBadFraming(t *testing.T) {
	for name, p := range map[string][]byte{
		"shorter than a header": {0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8},
		"over 32 MiB":           {0x02, 0, 0, 1},
		"4 GiB":                 {0xff, 0xff, 0xff, 0xff},
		"an unknown type":       packet(header{prog: programRemote, vers: 1, proc: 1, typ: 42, serial: 1}, nil),
		"a reply from a client": packet(header{prog: programRemote, vers: 1, proc: 1, typ: typeReply, serial: 1}, nil),
	} {
		c, s := dialRaw(t, Limits{})
		c.send(p)
		if _, _, err := c.reply(); err == nil {
			t.Errorf("%s: got a reply, want the connection closed", name)
		}
		waitConns(t, s, 0)
	}
	// A truncated packet then EOF: the connection ends.
	c, s := dialRaw(t, Limits{})
	c.send(packet(callHeader(procConnectGetHostname, 1), nil)[:20])
	c.nc.Close()
	waitConns(t, s, 0)
}

func waitConns(t testing.TB, s *Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Conns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", s.Conns(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestInflightLimit: a packet bigger than max_inflight_bytes allows is
// read past, not kept, and answered with the reason.
func TestInflightLimit(t *testing.T) {
	c, _ := dialRaw(t, Limits{Reserve: func(n int) (func(), error) {
		if n > 1024 {
			return nil, fmt.Errorf("a request of %d bytes is over max_inflight_bytes: %w", n, virt.ErrResourceExhausted)
		}
		return func() {}, nil
	}})
	openTest(t, c)
	big := str(strings.Repeat("x", 4096))
	h, b := c.call(procDomainDefineXML, 2, big)
	if code, msg := errorOf(t, b); h.status != statusError || code != errOperationFailed || !strings.Contains(msg, "max_inflight_bytes") {
		t.Errorf("big packet: %d %q", code, msg)
	}
	if h, _ := c.call(procConnectGetHostname, 3, nil); h.status != statusOK {
		t.Errorf("after the big packet: status %d", h.status)
	}
}

// TestMaxMessageSize: a packet over max_message_size, within the
// protocol's 32 MiB, is read past and refused with the limit's name.
func TestMaxMessageSize(t *testing.T) {
	c, _ := dialRaw(t, Limits{MaxMessageSize: 1024})
	openTest(t, c)
	h, b := c.call(procDomainDefineXML, 2, str(strings.Repeat("x", 2048)))
	if code, msg := errorOf(t, b); h.status != statusError || code != errOperationFailed || !strings.Contains(msg, "max_message_size (1024)") {
		t.Errorf("big packet: %d %q", code, msg)
	}
	if h, _ := c.call(procConnectGetHostname, 3, nil); h.status != statusOK {
		t.Errorf("after the big packet: status %d", h.status)
	}
}

// FuzzPackets feeds whatever bytes to a connection: the server must answer
// or close, never crash or hang.
func FuzzPackets(f *testing.F) {
	open := &xdr.Encoder{}
	open.OptString("test:///default", true)
	open.Uint32(0)
	f.Add(packet(callHeader(procConnectOpen, 1), open.B))
	f.Add(append(packet(callHeader(procConnectOpen, 1), open.B), packet(callHeader(procConnectListAllDomains, 2), []byte{0, 0, 0, 1, 0, 0, 0, 0})...))
	f.Add(packet(header{prog: programKeepalive, vers: 1, proc: procPing, typ: typeMessage}, nil))
	f.Add([]byte{0, 0, 0, 28})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := New(Config{Core: sharedCore(t)})
		cli, srv := socketPair(t)
		s.start(srv, false)
		done := make(chan struct{})
		go func() {
			// Read every reply until the server closes.
			_, _ = io.Copy(io.Discard, cli)
			close(done)
		}()
		_, _ = cli.Write(in)
		// The end of the input: the server answers what it read, then
		// ends the connection.
		_ = cli.CloseWrite()
		<-done
		cli.Close()
		s.Close()
		if s.Conns() != 0 {
			t.Fatalf("%d connections left", s.Conns())
		}
	})
}

// socketPair returns both ends of a connected unix socket.
func socketPair(t testing.TB) (*net.UnixConn, net.Conn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0].(*net.UnixConn), conns[1]
}

// FuzzCallArgs decodes arbitrary arguments for every procedure served, on
// an open connection: each call answers, with a reply or an error.
func FuzzCallArgs(f *testing.F) {
	for _, p := range Procedures() {
		f.Add(p, []byte{})
		f.Add(p, []byte{0, 0, 0, 1, 0, 0, 0, 0})
		f.Add(p, str("test"))
	}
	f.Fuzz(func(t *testing.T, proc int32, body []byte) {
		if proc == procConnectClose || proc == procConnectOpen {
			return // they change the connection the input runs on
		}
		c, _ := dialRaw(t, Limits{})
		openTest(t, c)
		c.send(packet(callHeader(proc, 2), body))
		h, b, err := c.reply()
		if err != nil {
			t.Fatalf("procedure %d: no reply: %v", proc, err)
		}
		if h.serial != 2 || h.typ != typeReply {
			// A console may send stream data after its reply; the
			// reply itself comes first.
			t.Fatalf("procedure %d: first packet %s", proc, h)
		}
		if h.status == statusError {
			errorOf(t, b)
		}
	})
}

// TestMaxClients: a connection over max_clients has its first call
// answered with the reason, and is closed.
func TestMaxClients(t *testing.T) {
	c, s := dialRaw(t, Limits{Admit: func() (func(), error) {
		return nil, fmt.Errorf("virtd already serves 1 client connections (max_clients = 1): %w", virt.ErrResourceExhausted)
	}})
	h, b := c.call(procConnectOpen, 1, nil)
	if code, msg := errorOf(t, b); h.status != statusError || code != errOperationFailed || !strings.Contains(msg, "max_clients = 1") {
		t.Errorf("over max_clients: %d %q", code, msg)
	}
	if _, _, err := c.reply(); err == nil {
		t.Error("the refused connection stays open")
	}
	if n := s.Conns(); n != 0 {
		t.Errorf("a refused connection is counted: %d", n)
	}
}
