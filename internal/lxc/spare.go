package lxc

import (
	"os"
	"os/exec"
	"syscall"

	"github.com/virtd/virtd/internal/lxc/controller"
	"github.com/virtd/virtd/virt"
)

// A controller process is the driver executable, and a Go program of its
// size spends about 20 ms in its runtime and package initialisation before
// main: half of a container's start. So the driver keeps one controller
// started ahead of need, waiting for its arguments on its start
// connection (controller.Main); a start takes it and starts the next one.
// The first start of a driver, or two starts at once, start their own, and
// the next spare only once theirs is up: two Go programs coming up at once
// would share the CPU the start waits for.
// A spare exits by itself when the driver goes away (EOF on that
// connection).

// ctlProc is a started controller, not yet told what to run.
type ctlProc struct {
	cmd  *exec.Cmd
	conn *controller.Conn
	// exited is closed once the process has exited and been reaped.
	exited chan struct{}
}

// startController starts a controller process.
func (drv *Driver) startController() (*ctlProc, error) {
	conn, ctlEnd, err := controller.Pair()
	if err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "%w", err)
	}
	defer ctlEnd.Close()
	argv := controller.Command(drv.opts.Executable)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{ctlEnd}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	// Its own session: the controller outlives the driver and its host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, virt.Errorf(virt.ErrInternal, "start controller %s: %w", drv.opts.Executable, err)
	}
	p := &ctlProc{cmd: cmd, conn: conn, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }() // reap it whenever it exits
	return p, nil
}

// takeController returns the spare controller (warm), or a new one when
// there is none or it died.
func (drv *Driver) takeController() (p *ctlProc, warm bool, err error) {
	drv.mu.Lock()
	p = drv.spare
	drv.spare = nil
	drv.mu.Unlock()
	if p != nil {
		select {
		case <-p.exited:
			p.conn.Close()
		default:
			return p, true, nil
		}
	}
	p, err = drv.startController()
	return p, false, err
}

// startSpare starts a spare controller unless there is one.
func (drv *Driver) startSpare() {
	p, err := drv.startController()
	if err != nil {
		drv.log.Warn("starting a spare controller", "error", err)
		return
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if drv.closed || drv.spare != nil {
		p.conn.Close() // it exits
		return
	}
	drv.spare = p
}
