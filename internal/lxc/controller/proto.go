package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/virtd/virtd/virt"
	"golang.org/x/sys/unix"
)

// Operations a Request may ask for.
const (
	OpStatus   = "status"
	OpShutdown = "shutdown"
	OpReboot   = "reboot"
	OpDestroy  = "destroy"
	OpSuspend  = "suspend"
	OpResume   = "resume"
	// OpWatch keeps the connection open: Events follow the Response.
	OpWatch = "watch"
	// OpConsole turns the connection into the console's byte stream.
	OpConsole = "console"
)

// Args are what a controller runs: the driver sends them, as the first
// line on the start connection. Every path is the driver's choice.
type Args struct {
	Name   string `json:"name"`   // the domain's (for ps and the log)
	Spec   string `json:"spec"`   // the container's Spec (JSON)
	Socket string `json:"socket"` // the unix socket to serve
	Exit   string `json:"exit"`   // the file to write the exit reason to
	State  string `json:"state"`  // the file to keep the pids in
	Log    string `json:"log"`    // the log, appended to
}

// argv is a as command-line flags, for ps.
func (a *Args) argv() []string {
	return []string{"-name", a.Name, "-spec", a.Spec, "-socket", a.Socket, "-exit", a.Exit, "-state", a.State, "-log", a.Log}
}

// Request is one line from the driver.
type Request struct {
	Op string `json:"op"`
}

// Response is the controller's answer: Error is empty on success.
type Response struct {
	// Error is the message, without its kind's name; Code is its kind.
	Error  string  `json:"error,omitempty"`
	Code   Code    `json:"code,omitempty"`
	Status *Status `json:"status,omitempty"`
}

// Code is an error's kind on the controller's channel: a number, which
// stays the same whatever words virt uses for its kinds.
type Code int

// The codes. Zero is no error; an unknown code is internal.
const (
	CodeInternal     Code = 1
	CodeInvalid      Code = 2
	CodePrecondition Code = 3
)

var codeKinds = map[Code]error{
	CodeInternal:     virt.ErrInternal,
	CodeInvalid:      virt.ErrInvalidArgument,
	CodePrecondition: virt.ErrFailedPrecondition,
}

// Kind returns the virt kind of c.
func (c Code) Kind() error {
	if k, ok := codeKinds[c]; ok {
		return k
	}
	return virt.ErrInternal
}

// codeOf returns the code of err's kind.
func codeOf(err error) Code {
	k := virt.KindOf(err)
	for c, ck := range codeKinds {
		if ck == k {
			return c
		}
	}
	return CodeInternal
}

// errorResponse is the Response that reports err.
func errorResponse(err error) Response {
	return Response{Error: virt.Message(err), Code: codeOf(err)}
}

// Status describes the running container.
type Status struct {
	ControllerPID int       `json:"controller_pid"`
	InitPID       int       `json:"init_pid"`
	Paused        bool      `json:"paused"`
	Started       time.Time `json:"started"`
	MemoryBytes   uint64    `json:"memory_bytes"`
	CPUTime       int64     `json:"cpu_time_ns"`
	ConsolePTY    string    `json:"console_pty,omitempty"`
	HostIfaces    []string  `json:"host_ifaces,omitempty"`
}

// Event is a change the controller reports on a watch connection.
type Event struct {
	// Type is "rebooted" (the container restarted, same controller) or
	// "stopped" (the controller is about to exit).
	Type string `json:"type"`
	// Reason, for "stopped": "shutdown", "destroyed", "crashed" or "failed".
	Reason  string `json:"reason,omitempty"`
	InitPID int    `json:"init_pid,omitempty"`
}

// Conn is a connection to one controller.
type Conn struct {
	c net.Conn
	r *bufio.Reader
}

// Dial connects to the controller socket at path.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, r: bufio.NewReader(c)}, nil
}

// Pair makes the connection a controller starts with: the driver keeps
// the Conn, and passes the file to the controller as its fd 3. On it the
// driver sends the controller its Args (Send), whenever it has them; the
// controller reports its start, a Response (ReadResponse), then the
// container's Events (NextEvent): the driver needs no second connection to
// follow the container it started.
func Pair() (*Conn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	f := os.NewFile(uintptr(fds[0]), "controller")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return &Conn{c: c, r: bufio.NewReader(c)}, os.NewFile(uintptr(fds[1]), "controller"), nil
}

// Send writes v as one line.
func (c *Conn) Send(v any) error { return json.NewEncoder(c.c).Encode(v) }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Call sends one request and reads its response. An error response is
// returned as an error whose text is the controller's.
func (c *Conn) Call(ctx context.Context, op string, timeout time.Duration) (*Response, error) {
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := json.NewEncoder(c.c).Encode(Request{Op: op}); err != nil {
		return nil, err
	}
	resp, err := c.ReadResponse()
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp, err
}

// ReadResponse reads one Response. An error response is returned as an
// error whose text is the controller's.
func (c *Conn) ReadResponse() (*Response, error) {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	_ = c.c.SetDeadline(time.Time{})
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("controller: bad response %q: %w", line, err)
	}
	if resp.Error != "" {
		return &resp, &RemoteError{Code: resp.Code, Msg: resp.Error}
	}
	return &resp, nil
}

// SetDeadline bounds the reads and writes on the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// NextEvent reads one event from a watch connection.
func (c *Conn) NextEvent() (*Event, error) {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return nil, fmt.Errorf("controller: bad event %q: %w", line, err)
	}
	return &ev, nil
}

// Stream returns the connection as a byte stream, after a console request.
func (c *Conn) Stream() io.ReadWriteCloser {
	return struct {
		io.Reader
		io.Writer
		io.Closer
	}{c.r, c.c, c.c}
}

// RemoteError is an error the controller reported.
type RemoteError struct {
	Code Code
	Msg  string
}

func (e *RemoteError) Error() string { return e.Msg }

// Err returns the error with its kind, as virt.WithKind makes it.
func (e *RemoteError) Err() error { return virt.WithKind(e.Code.Kind(), e.Msg) }
