package controller

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/cgroup"
	"github.com/virtd/virtd/virt"
)

// backlogSize is how much console output a new console client sees first.
const backlogSize = 8 << 10

// startFD is the controller's end of the connection Pair made: it reports
// there, once, a Response (the container's Status when it runs, or the
// error that stopped it), and then the container's Events.
const startFD = 3

// invalid gives err the kind invalid argument.
func invalid(err error) error { return virt.Errorf(virt.ErrInvalidArgument, "%w", err) }

// Exit is what the controller leaves in the run directory when it exits.
type Exit struct {
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// State is what the controller keeps in the run directory while it runs.
type State struct {
	ControllerPID int       `json:"controller_pid"`
	InitPID       int       `json:"init_pid"`
	Started       time.Time `json:"started"`
}

type controller struct {
	opMu      sync.Mutex // serializes do
	log       hclog.Logger
	spec      *Spec
	cg        *cgroup.Cgroup
	sockPath  string
	exitPath  string
	statePath string

	master, slave *os.File
	// veths are the host ends of the veth pairs the running container
	// has; only the main goroutine (start, loop, teardown) uses them.
	veths []string

	mu       sync.Mutex
	init     *exec.Cmd
	started  time.Time
	stopReq  string
	watchers map[chan Event]struct{}
	console  net.Conn
	// backlog is the console's latest output, replayed to a new client.
	backlog  []byte
	done     chan struct{}
	handlers sync.WaitGroup
}

// Main is the controller mode. It returns the exit code.
//
// A controller may be started ahead of need (the driver keeps one spare,
// so that a start does not wait for the Go runtime to come up): it first
// waits on its start connection for its Args. EOF there means the driver
// went away first, and the controller exits.
func Main() int {
	// Caught, not ignored: an ignored signal stays ignored across exec,
	// and the container's init must be able to trap SIGHUP (reboot).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGPIPE)
	startFile := os.NewFile(startFD, "start")
	start, err := net.FileConn(startFile)
	startFile.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "no start connection on fd %d (the LXC driver starts controllers): %v\n", startFD, err)
		return 2
	}
	line, err := bufio.NewReader(start).ReadBytes('\n')
	if err != nil {
		return 0
	}
	report := func(r Response) {
		_ = json.NewEncoder(start).Encode(r)
		start.Close()
	}
	var a Args
	if err := json.Unmarshal(line, &a); err != nil {
		report(Response{Error: fmt.Sprintf("controller: bad arguments %q: %v", line, err), Code: CodeInternal})
		return 2
	}
	// What ps shows: the arguments a controller would have been given.
	setCmdline(append([]string{os.Args[0], ControllerArg}, a.argv()...))
	logf, err := os.OpenFile(a.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		report(Response{Error: fmt.Sprintf("controller log: %v", err), Code: CodeInternal})
		return 1
	}
	if err := unix.Dup3(int(logf.Fd()), 2, 0); err != nil {
		report(Response{Error: fmt.Sprintf("controller log: %v", err), Code: CodeInternal})
		return 1
	}
	logf.Close()
	log := hclog.New(&hclog.LoggerOptions{Name: "lxc-controller", Output: os.Stderr, JSONFormat: true})
	spec, err := ReadSpec(a.Spec)
	if err != nil {
		report(Response{Error: err.Error(), Code: CodeInternal})
		return 1
	}
	log = log.With("domain", spec.Name)
	c := &controller{
		log: log, spec: spec, sockPath: a.Socket, exitPath: a.Exit, statePath: a.State,
		watchers: map[chan Event]struct{}{}, done: make(chan struct{}),
	}
	h, err := cgroup.Detect()
	if err != nil {
		report(Response{Error: err.Error(), Code: CodeInternal})
		return 1
	}
	c.cg = h.Open(spec.CgroupParent, spec.UUID)
	_ = os.Remove(a.Socket)
	ln, err := net.Listen("unix", a.Socket)
	if err != nil {
		report(Response{Error: fmt.Sprintf("controller socket: %v", err), Code: CodeInternal})
		return 1
	}
	if err := c.setup(); err != nil {
		c.teardown()
		ln.Close()
		report(errorResponse(err))
		return 1
	}
	exited := make(chan *os.ProcessState, 1)
	if err := c.startContainer(exited); err != nil {
		c.teardown()
		ln.Close()
		report(errorResponse(err))
		return 1
	}
	go c.serve(ln)
	// The start connection becomes the driver's first watch: registered
	// before the report, so that no event falls between the two.
	ch := c.addWatcher()
	if err := json.NewEncoder(start).Encode(Response{Status: c.status()}); err != nil {
		c.unwatch(ch)
		start.Close()
	} else {
		c.handlers.Add(1)
		go func() {
			defer c.handlers.Done()
			defer start.Close()
			c.follow(start, ch)
		}()
	}
	log.Info("container started", "init_pid", c.init.Process.Pid)

	reason := c.loop(exited)
	ln.Close()
	c.teardown()
	_ = atomicfile.Replace(c.exitPath, mustJSON(Exit{Reason: reason, Time: time.Now()}), 0o600)
	_ = os.Remove(c.statePath)
	c.mu.Lock()
	for w := range c.watchers {
		select {
		case w <- Event{Type: "stopped", Reason: reason}:
		default: // a watcher that stopped reading must not keep us here
		}
		close(w)
	}
	c.watchers = nil
	c.mu.Unlock()
	close(c.done)
	waitTimeout(&c.handlers, 2*time.Second)
	log.Info("container stopped", "reason", reason)
	return 0
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
	}
}

// setup makes what lives as long as the controller: the console pty and
// the cgroup.
func (c *controller) setup() error {
	for _, ifc := range c.spec.Interfaces {
		// The driver checked the names at define; checked again before
		// any reaches the kernel.
		if err := ifc.checkNames(); err != nil {
			return invalid(err)
		}
	}
	for _, ifc := range c.spec.Interfaces {
		if ifc.Bridge != "" {
			if err := checkBridge(ifc.Bridge); err != nil {
				return invalid(fmt.Errorf("interface %s: %w", ifc.HostName, err))
			}
		}
	}
	if st, err := os.Stat(c.spec.RootFS); err != nil || !st.IsDir() {
		return invalid(fmt.Errorf("root filesystem %s is not a directory", c.spec.RootFS))
	}
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	c.master, c.slave = master, slave
	go c.pumpConsole()
	if c.cg.Exists() {
		// Left over by a controller that was killed: empty and reuse it.
		_ = c.cg.Kill(5 * time.Second)
	}
	return c.cg.Create(cgroup.Limits{
		MemoryBytes: c.spec.MemoryBytes, PidsMax: c.spec.PidsMax,
		CPUShares: c.spec.CPUShares, CPUQuota: c.spec.CPUQuota, CPUPeriod: c.spec.CPUPeriod,
	})
}

// teardown kills what is left in the cgroup, removes it and the veths.
func (c *controller) teardown() {
	if err := c.cg.Kill(10 * time.Second); err != nil {
		c.log.Error("kill container processes", "error", err)
	}
	deleteVeths(c.veths)
	c.veths = nil
	if err := c.cg.Remove(); err != nil {
		c.log.Error("remove cgroup", "error", err)
	}
	if c.master != nil {
		c.master.Close()
		c.slave.Close()
	}
	_ = os.Remove(c.sockPath)
}

func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("console: unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("console: pty number: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("console: %w", err)
	}
	return m, s, nil
}

// pumpConsole reads the console all the time, so that the container never
// blocks on it, and passes the output to an attached client.
func (c *controller) pumpConsole() {
	buf := make([]byte, 4096)
	for {
		n, err := c.master.Read(buf)
		if n > 0 {
			c.mu.Lock()
			c.backlog = append(c.backlog, buf[:n]...)
			if over := len(c.backlog) - backlogSize; over > 0 {
				c.backlog = append(c.backlog[:0], c.backlog[over:]...)
			}
			if c.console != nil {
				_ = c.console.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.console.Write(buf[:n])
			}
			c.mu.Unlock()
		}
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// startContainer creates the container process and its veths, waits
// until its init runs, and reports the init's exit on exited.
func (c *controller) startContainer(exited chan<- *os.ProcessState) (err error) {
	s := c.spec
	prog, err := containerProgram(s, c.slave.Name())
	if err != nil {
		return err
	}
	progR, progW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer progW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		progR.Close()
		return err
	}
	defer errR.Close()
	// Through /proc/self/exe: a mapped root may not be allowed to walk
	// the directories that hold the executable, but may run it.
	cmd := exec.Command("/proc/self/exe", ContainerArg)
	cmd.Args[0] = "virtd-lxc-init"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.slave, c.slave, c.slave
	cmd.ExtraFiles = []*os.File{progR, errW}
	cmd.Env = []string{}
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET)
	attr := &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: 0}
	if len(s.UIDMap) > 0 {
		flags |= unix.CLONE_NEWUSER
		for _, m := range s.UIDMap {
			attr.UidMappings = append(attr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.Container), HostID: int(m.Host), Size: int(m.Count)})
		}
		for _, m := range s.GIDMap {
			attr.GidMappings = append(attr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.Container), HostID: int(m.Host), Size: int(m.Count)})
		}
		attr.GidMappingsEnableSetgroups = true
		// Root of the new namespace, so that its init keeps its
		// capabilities there across exec.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	attr.Cloneflags = flags
	cmd.SysProcAttr = attr
	startErr := cmd.Start()
	progR.Close()
	errW.Close()
	if startErr != nil {
		if len(s.UIDMap) > 0 {
			return invalid(fmt.Errorf("start container with idmap: %w (does the idmap fit the host?)", startErr))
		}
		return fmt.Errorf("start container: %w", startErr)
	}
	pid := cmd.Process.Pid
	kill := func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		_ = c.cg.Kill(5 * time.Second)
	}
	if err := c.cg.Add(pid); err != nil {
		kill()
		return err
	}
	c.veths, err = addNetwork(pid, s.Interfaces)
	if err != nil {
		kill()
		deleteVeths(c.veths)
		c.veths = nil
		return invalid(fmt.Errorf("container %s: %w", s.Name, err))
	}
	// The helper carries the program out once it has all of it.
	if _, err := progW.Write(prog); err != nil {
		kill()
		return fmt.Errorf("configure container: %w", err)
	}
	progW.Close()
	msg, _ := io.ReadAll(io.LimitReader(errR, 64<<10))
	if len(msg) > 0 {
		kill()
		return invalid(fmt.Errorf("container %s: %s", s.Name, msg))
	}
	c.mu.Lock()
	c.init, c.started = cmd, time.Now()
	c.mu.Unlock()
	_ = atomicfile.Replace(c.statePath, mustJSON(State{ControllerPID: os.Getpid(), InitPID: pid, Started: c.started}), 0o600)
	go func() {
		_ = cmd.Wait()
		exited <- cmd.ProcessState
	}()
	return nil
}

// loop waits on init, restarting the container as on_* say, and returns
// the reason it stopped for good.
func (c *controller) loop(exited chan *os.ProcessState) string {
	for {
		ps := <-exited
		c.mu.Lock()
		req := c.stopReq
		c.stopReq = ""
		c.mu.Unlock()
		if err := c.cg.Kill(10 * time.Second); err != nil {
			c.log.Error("kill container processes", "error", err)
		}
		deleteVeths(c.veths)
		c.veths = nil
		ws, _ := ps.Sys().(syscall.WaitStatus)
		action, reason := c.decide(req, ws)
		c.log.Info("init exited", "status", ps.String(), "request", req, "action", action)
		if action != "restart" {
			return reason
		}
		_ = c.cg.Thaw()
		if err := c.startContainer(exited); err != nil {
			c.log.Error("restart container", "error", err)
			return "failed"
		}
		// A destroy that came while the container restarted signalled the
		// old init: the new one must go too.
		c.mu.Lock()
		destroy, init := c.stopReq == "destroy", c.init
		c.mu.Unlock()
		if destroy {
			_ = init.Process.Signal(syscall.SIGKILL)
			continue
		}
		c.notify(Event{Type: "rebooted", InitPID: init.Process.Pid})
	}
}

// decide maps how init ended to an action ("destroy" or "restart") and a
// stop reason, following on_poweroff, on_reboot and on_crash.
func (c *controller) decide(req string, ws syscall.WaitStatus) (action, reason string) {
	switch {
	case req == "destroy":
		return "destroy", "destroyed"
	case req == "reboot" || (ws.Signaled() && ws.Signal() == syscall.SIGHUP):
		return c.spec.OnReboot, "shutdown"
	case req == "shutdown" || ws.Exited() ||
		(ws.Signaled() && (ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGINT)):
		return c.spec.OnPoweroff, "shutdown"
	default:
		return c.spec.OnCrash, "crashed"
	}
}

func (c *controller) notify(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.watchers {
		select {
		case w <- ev:
		default:
		}
	}
}

func (c *controller) status() *Status {
	c.mu.Lock()
	st := &Status{ControllerPID: os.Getpid(), Started: c.started, ConsolePTY: c.slave.Name()}
	if c.init != nil {
		st.InitPID = c.init.Process.Pid
	}
	c.mu.Unlock()
	st.Paused, _ = c.cg.Frozen()
	st.MemoryBytes, _ = c.cg.MemoryUsage()
	cpu, _ := c.cg.CPUUsage()
	st.CPUTime = int64(cpu)
	for _, ifc := range c.spec.Interfaces {
		st.HostIfaces = append(st.HostIfaces, ifc.HostName)
	}
	return st
}

func (c *controller) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c.handlers.Add(1)
		go func() {
			defer c.handlers.Done()
			defer conn.Close()
			c.handle(conn)
		}()
	}
}

func (c *controller) handle(conn net.Conn) {
	r := bufio.NewReader(conn)
	enc := json.NewEncoder(conn)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var req Request
		if err := json.Unmarshal(line, &req); err != nil {
			_ = enc.Encode(Response{Error: "bad request", Code: CodeInvalid})
			return
		}
		switch req.Op {
		case OpWatch:
			c.watch(conn, enc)
			return
		case OpConsole:
			c.attachConsole(conn, r, enc)
			return
		}
		err = c.do(req.Op)
		resp := Response{}
		if err != nil {
			resp = errorResponse(err)
		} else if req.Op == OpStatus {
			resp.Status = c.status()
		}
		if enc.Encode(resp) != nil {
			return
		}
	}
}

func (c *controller) do(op string) error {
	// One operation at a time: two suspends must not both see the
	// container running and both report it suspended.
	c.opMu.Lock()
	defer c.opMu.Unlock()
	paused, _ := c.cg.Frozen()
	signalInit := func(req string, sig syscall.Signal) error {
		if paused {
			return fmt.Errorf("the container is paused: %w", virt.ErrFailedPrecondition)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.stopReq == "" {
			c.stopReq = req
		}
		init := c.init
		// An init that has not yet set up its handlers ignores the
		// signal (PID 1 of a namespace): repeat it until init exits.
		go func() {
			for i := 0; i < 60; i++ {
				time.Sleep(500 * time.Millisecond)
				c.mu.Lock()
				same := c.init == init && c.stopReq == req
				c.mu.Unlock()
				if !same || init.Process.Signal(sig) != nil {
					return
				}
			}
		}()
		return init.Process.Signal(sig)
	}
	switch op {
	case OpStatus:
		return nil
	case OpShutdown:
		return signalInit("shutdown", syscall.SIGTERM)
	case OpReboot:
		return signalInit("reboot", syscall.SIGHUP)
	case OpSuspend:
		if paused {
			return fmt.Errorf("the container is already paused: %w", virt.ErrFailedPrecondition)
		}
		return c.cg.Freeze()
	case OpResume:
		if !paused {
			return fmt.Errorf("the container is not paused: %w", virt.ErrFailedPrecondition)
		}
		return c.cg.Thaw()
	case OpDestroy:
		c.mu.Lock()
		c.stopReq = "destroy"
		_ = c.init.Process.Signal(syscall.SIGKILL)
		c.mu.Unlock()
		_ = c.cg.Kill(10 * time.Second)
		select {
		case <-c.done:
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("the container did not stop within 30s")
		}
	}
	return invalid(fmt.Errorf("unknown operation %q", op))
}

func (c *controller) watch(conn net.Conn, enc *json.Encoder) {
	ch := c.addWatcher()
	if ch == nil {
		_ = enc.Encode(Event{Type: "stopped", Reason: "shutdown"})
		return
	}
	if enc.Encode(Response{Status: c.status()}) != nil {
		c.unwatch(ch)
		return
	}
	c.follow(conn, ch)
}

// addWatcher registers a channel for events; nil once the controller has
// stopped.
func (c *controller) addWatcher() chan Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watchers == nil {
		return nil
	}
	ch := make(chan Event, 16)
	c.watchers[ch] = struct{}{}
	return ch
}

// follow writes the events of ch to conn until the controller stops or
// the driver closes the connection.
func (c *controller) follow(conn net.Conn, ch chan Event) {
	enc := json.NewEncoder(conn)
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(gone)
	}()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if enc.Encode(ev) != nil {
				c.unwatch(ch)
				return
			}
		case <-gone:
			c.unwatch(ch)
			return
		}
	}
}

func (c *controller) unwatch(ch chan Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.watchers[ch]; ok {
		delete(c.watchers, ch)
		close(ch)
	}
}

func (c *controller) attachConsole(conn net.Conn, r *bufio.Reader, enc *json.Encoder) {
	c.mu.Lock()
	if c.console != nil {
		c.mu.Unlock()
		_ = enc.Encode(Response{Error: "the console is in use by another client", Code: CodePrecondition})
		return
	}
	defer func() {
		c.mu.Lock()
		if c.console == conn {
			c.console = nil
		}
		c.mu.Unlock()
	}()
	if enc.Encode(Response{}) != nil {
		c.mu.Unlock()
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write(c.backlog)
	c.console = conn
	c.mu.Unlock()
	_, _ = io.Copy(c.master, r)
}

// Cleanup removes what a dead controller left of its container: the
// processes in its cgroup, the cgroup and the host ends of its veths.
func Cleanup(spec *Spec) error {
	h, err := cgroup.Detect()
	if err != nil {
		return err
	}
	cg := h.Open(spec.CgroupParent, spec.UUID)
	err = cg.Kill(10 * time.Second)
	deleteVeths(hostNames(spec.Interfaces))
	return errors.Join(err, cg.Remove())
}
