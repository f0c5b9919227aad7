// Package qmp is a client for the QEMU Machine Protocol: it reads the
// greeting, negotiates capabilities, runs commands and delivers QEMU's
// asynchronous events, in order, to a handler.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Event is one asynchronous QMP event ("STOP", "SHUTDOWN", ...).
type Event struct {
	Name string
	Data json.RawMessage
	Time time.Time
}

// Error is an error QEMU returned for a command.
type Error struct {
	Command string
	Class   string
	Desc    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// ErrClosed is returned for commands on a monitor whose connection ended.
var ErrClosed = errors.New("qmp: monitor connection closed")

// Version is QEMU's version from the greeting.
type Version struct {
	Major, Minor, Micro int
	Package             string
}

// Monitor is one QMP connection. It is safe for concurrent use.
type Monitor struct {
	conn    net.Conn
	version Version

	writeMu sync.Mutex
	mu      sync.Mutex
	nextID  uint64
	pending map[string]chan response
	err     error // set once the reader stops

	events  chan struct{} // wakes the dispatcher
	queue   []Event       // guarded by mu
	done    chan struct{} // closed when the connection ends
	handled chan struct{} // closed when every event has been handled
}

type response struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

type message struct {
	QMP *struct {
		Version struct {
			QEMU struct {
				Major int `json:"major"`
				Minor int `json:"minor"`
				Micro int `json:"micro"`
			} `json:"qemu"`
			Package string `json:"package"`
		} `json:"version"`
	} `json:"QMP"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	ID json.RawMessage `json:"id"`
	response
}

// Dial connects to the QMP socket at path, waits for the greeting (until ctx
// ends) and enters command mode. Events are passed to onEvent, one at a
// time and in order, from a goroutine of the monitor; onEvent may run
// commands. onEvent may be nil.
func Dial(ctx context.Context, path string, onEvent func(Event)) (*Monitor, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	m, err := New(ctx, conn, onEvent)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return m, nil
}

// New runs QMP over an established connection: see Dial.
func New(ctx context.Context, conn net.Conn, onEvent func(Event)) (*Monitor, error) {
	m := &Monitor{
		conn:    conn,
		pending: make(map[string]chan response),
		events:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		handled: make(chan struct{}),
	}
	r := bufio.NewReaderSize(conn, 64*1024)

	// The greeting, bounded by ctx.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	line, err := r.ReadBytes('\n')
	if !stop() {
		return nil, fmt.Errorf("qmp: waiting for the greeting: %w", ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("qmp: reading the greeting: %w", err)
	}
	var g message
	if err := json.Unmarshal(line, &g); err != nil || g.QMP == nil {
		return nil, fmt.Errorf("qmp: not a QMP greeting: %.100q", line)
	}
	v := g.QMP.Version
	m.version = Version{v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro, v.Package}

	go m.read(r)
	go m.dispatch(onEvent)
	if err := m.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Version returns QEMU's version from the greeting.
func (m *Monitor) Version() Version { return m.version }

// Done is closed when the connection has ended (QEMU exited or Close).
func (m *Monitor) Done() <-chan struct{} { return m.done }

// EventsHandled is closed once the connection has ended and every event
// received before the end has been handled.
func (m *Monitor) EventsHandled() <-chan struct{} { return m.handled }

// Close ends the connection.
func (m *Monitor) Close() error { return m.conn.Close() }

// Execute runs a command with args (nil for none) and decodes its return
// value into out (nil to ignore it).
func (m *Monitor) Execute(ctx context.Context, command string, args any, out any) error {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", command, ErrClosed)
	}
	m.nextID++
	id := fmt.Sprintf("virtd-%d", m.nextID)
	ch := make(chan response, 1)
	m.pending[id] = ch
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.pending, id)
		m.mu.Unlock()
	}()

	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	m.writeMu.Lock()
	_, err = m.conn.Write(append(b, '\n'))
	m.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("qmp %s: %w", command, ErrClosed)
	}
	select {
	case resp := <-ch:
		if resp.Error != nil {
			return &Error{Command: command, Class: resp.Error.Class, Desc: resp.Error.Desc}
		}
		if out != nil && len(resp.Return) > 0 {
			if err := json.Unmarshal(resp.Return, out); err != nil {
				return fmt.Errorf("qmp %s: decoding the reply: %w", command, err)
			}
		}
		return nil
	case <-m.done:
		return fmt.Errorf("qmp %s: %w", command, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

// read parses messages until the connection ends.
func (m *Monitor) read(r *bufio.Reader) {
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if len(line) > 0 {
			m.handle(line)
		}
		if err != nil {
			break
		}
	}
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
	m.conn.Close()
	close(m.done)
	m.wake()
}

func (m *Monitor) handle(line []byte) {
	var msg message
	if err := json.Unmarshal(line, &msg); err != nil {
		return
	}
	if msg.Event != "" {
		ev := Event{Name: msg.Event, Data: msg.Data}
		if ts := msg.Timestamp; ts != nil {
			ev.Time = time.Unix(ts.Seconds, ts.Microseconds*1000)
		}
		m.mu.Lock()
		m.queue = append(m.queue, ev)
		m.mu.Unlock()
		m.wake()
		return
	}
	var id string
	if json.Unmarshal(msg.ID, &id) != nil {
		return
	}
	m.mu.Lock()
	ch := m.pending[id]
	m.mu.Unlock()
	if ch != nil {
		ch <- msg.response
	}
}

func (m *Monitor) wake() {
	select {
	case m.events <- struct{}{}:
	default:
	}
}

// dispatch hands queued events to onEvent in order, so a slow handler
// never stalls command replies.
func (m *Monitor) dispatch(onEvent func(Event)) {
	defer close(m.handled)
	for {
		m.mu.Lock()
		q := m.queue
		m.queue = nil
		ended := m.err != nil
		m.mu.Unlock()
		for _, ev := range q {
			if onEvent != nil {
				onEvent(ev)
			}
		}
		if len(q) > 0 {
			continue
		}
		if ended {
			return
		}
		<-m.events
	}
}
