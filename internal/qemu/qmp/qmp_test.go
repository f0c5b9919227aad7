package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQEMU serves QMP on a unix socket the way QEMU does: a greeting,
// qmp_capabilities, then scripted replies and events.
type fakeQEMU struct {
	t     *testing.T
	path  string
	ln    net.Listener
	conns chan net.Conn
}

func newFake(t *testing.T) *fakeQEMU {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &fakeQEMU{t: t, path: path, ln: ln, conns: make(chan net.Conn, 1)}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			f.conns <- c
		}
	}()
	return f
}

type fakeConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (f *fakeQEMU) accept(greet bool) *fakeConn {
	f.t.Helper()
	fc := f.tryAccept(greet)
	if fc == nil {
		f.t.FailNow()
	}
	return fc
}

// tryAccept is accept for a goroutine other than the test's: it reports a
// missing connection with Errorf and returns nil.
func (f *fakeQEMU) tryAccept(greet bool) *fakeConn {
	f.t.Helper()
	select {
	case c := <-f.conns:
		f.t.Cleanup(func() { c.Close() })
		fc := &fakeConn{t: f.t, c: c, r: bufio.NewReader(c)}
		if greet {
			fc.send(`{"QMP": {"version": {"qemu": {"micro": 2, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}`)
		}
		return fc
	case <-time.After(5 * time.Second):
		f.t.Error("no connection to the fake QMP server")
	}
	return nil
}

func (fc *fakeConn) send(line string) {
	if _, err := fc.c.Write([]byte(line + "\n")); err != nil {
		fc.t.Errorf("fake qemu: write: %v", err)
	}
}

// recv reads one command and returns its name and id.
func (fc *fakeConn) recv() (name string, id json.RawMessage, args json.RawMessage) {
	line, err := fc.r.ReadBytes('\n')
	if err != nil {
		fc.t.Errorf("fake qemu: read: %v", err)
		return "", nil, nil
	}
	var req struct {
		Execute   string          `json:"execute"`
		ID        json.RawMessage `json:"id"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(line, &req); err != nil {
		fc.t.Errorf("fake qemu: bad request %q: %v", line, err)
	}
	return req.Execute, req.ID, req.Arguments
}

func (fc *fakeConn) reply(id json.RawMessage, ret string) {
	fc.send(`{"return": ` + ret + `, "id": ` + string(id) + `}`)
}

// handshake answers qmp_capabilities.
func (fc *fakeConn) handshake() {
	name, id, _ := fc.recv()
	if name != "qmp_capabilities" {
		fc.t.Errorf("first command = %q, want qmp_capabilities", name)
	}
	fc.reply(id, "{}")
}

func dialFake(t *testing.T, f *fakeQEMU, onEvent func(Event)) (*Monitor, *fakeConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type result struct {
		m   *Monitor
		err error
	}
	res := make(chan result, 1)
	go func() {
		m, err := Dial(ctx, f.path, onEvent)
		res <- result{m, err}
	}()
	fc := f.accept(true)
	fc.handshake()
	r := <-res
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	t.Cleanup(func() { r.m.Close() })
	return r.m, fc
}

func TestGreetingAndCommand(t *testing.T) {
	f := newFake(t)
	m, fc := dialFake(t, f, nil)
	if v := m.Version(); v.Major != 7 || v.Minor != 2 || v.Micro != 2 || v.Package != "Debian" {
		t.Errorf("Version = %+v", v)
	}
	go func() {
		name, id, _ := fc.recv()
		if name != "query-status" {
			t.Errorf("command = %q", name)
		}
		fc.reply(id, `{"status": "paused", "running": false}`)
	}()
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := m.Execute(context.Background(), "query-status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "paused" || st.Running {
		t.Errorf("status = %+v", st)
	}
}

func TestArgumentsAndError(t *testing.T) {
	f := newFake(t)
	m, fc := dialFake(t, f, nil)
	go func() {
		name, id, args := fc.recv()
		if name != "human-monitor-command" || !strings.Contains(string(args), `"command-line":"info status"`) {
			t.Errorf("got %q %s", name, args)
		}
		fc.send(`{"error": {"class": "GenericError", "desc": "no such thing"}, "id": ` + string(id) + `}`)
	}()
	err := m.Execute(context.Background(), "human-monitor-command", map[string]string{"command-line": "info status"}, nil)
	var qe *Error
	if !errors.As(err, &qe) || qe.Class != "GenericError" || qe.Desc != "no such thing" {
		t.Fatalf("err = %v, want a GenericError", err)
	}
}

// Replies are matched by id, so concurrent commands answered out of order
// each get their own reply.
func TestRepliesOutOfOrder(t *testing.T) {
	f := newFake(t)
	m, fc := dialFake(t, f, nil)
	go func() {
		_, id1, a1 := fc.recv()
		_, id2, a2 := fc.recv()
		fc.reply(id2, string(a2))
		fc.reply(id1, string(a1))
	}()
	errs := make(chan error, 2)
	for _, v := range []string{"one", "two"} {
		go func() {
			var out map[string]string
			err := m.Execute(context.Background(), "echo", map[string]string{"v": v}, &out)
			if err == nil && out["v"] != v {
				err = errors.New("got " + out["v"] + " for " + v)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestEventsInOrderWhileCommandsRun(t *testing.T) {
	f := newFake(t)
	got := make(chan Event, 10)
	m, fc := dialFake(t, f, func(ev Event) { got <- ev })
	go func() {
		_, id, _ := fc.recv()
		// QEMU sends the event of a command before its reply.
		fc.send(`{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "STOP"}`)
		fc.reply(id, "{}")
		fc.send(`{"timestamp": {"seconds": 1700000001, "microseconds": 0}, "event": "RESUME"}`)
		fc.send(`{"timestamp": {"seconds": 1700000002, "microseconds": 0}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}`)
		fc.c.Close()
	}()
	if err := m.Execute(context.Background(), "stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"STOP", "RESUME", "SHUTDOWN"}
	for i, w := range want {
		select {
		case ev := <-got:
			if ev.Name != w {
				t.Fatalf("event %d = %s, want %s", i, ev.Name, w)
			}
			if w == "STOP" && ev.Time.Unix() != 1700000000 {
				t.Errorf("STOP time = %v", ev.Time)
			}
			if w == "SHUTDOWN" {
				var d struct {
					Guest  bool   `json:"guest"`
					Reason string `json:"reason"`
				}
				if err := json.Unmarshal(ev.Data, &d); err != nil || !d.Guest || d.Reason != "guest-shutdown" {
					t.Errorf("SHUTDOWN data = %s", ev.Data)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %s not delivered", w)
		}
	}
	select {
	case <-m.EventsHandled():
	case <-time.After(5 * time.Second):
		t.Fatal("EventsHandled not closed after the connection ended")
	}
}

func TestCommandFailsWhenQEMUGoesAway(t *testing.T) {
	f := newFake(t)
	m, fc := dialFake(t, f, nil)
	go func() {
		fc.recv()
		fc.c.Close()
	}()
	err := m.Execute(context.Background(), "quit", nil, nil)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	<-m.Done()
	if err := m.Execute(context.Background(), "query-status", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: err = %v, want ErrClosed", err)
	}
}

func TestGreetingTimeout(t *testing.T) {
	f := newFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	go f.tryAccept(false) // accepts, never greets
	_, err := Dial(ctx, f.path, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
}

func TestNotQMP(t *testing.T) {
	f := newFake(t)
	go func() {
		if fc := f.tryAccept(false); fc != nil {
			fc.send(`SSH-2.0-OpenSSH`)
		}
	}()
	_, err := Dial(context.Background(), f.path, nil)
	if err == nil || !strings.Contains(err.Error(), "not a QMP greeting") {
		t.Fatalf("err = %v", err)
	}
}
