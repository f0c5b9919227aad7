// Package host finds virtd's driver executables, launches each on demand
// as a go-plugin gRPC subprocess, supervises it (crash restarts with
// backoff, crash-loop and handshake failures marked broken, idle stop) and
// reattaches to drivers a previous daemon left running. It holds no
// hypervisor code.
package host

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/virt"
)

// Config says where drivers are and how they are supervised.
type Config struct {
	// Dirs are the driver directories, searched in order.
	Dirs []string
	// RunDir holds the host's records of running drivers and their
	// sockets (RunDir/drivers) and each driver's runtime directory.
	RunDir string
	// ConfigDir, StateDir and LogDir hold one directory per driver.
	ConfigDir, StateDir, LogDir string
	// IdleTimeout: a driver with no connection and no running guest for
	// this long is stopped; an orphaned driver exits after it too.
	IdleTimeout time.Duration
	// StartTimeout bounds the handshake and the first call.
	StartTimeout time.Duration
	// HangTimeout: a running driver that leaves a keep-alive unanswered
	// this long is killed as hung, and the calls waiting on it fail.
	HangTimeout time.Duration
	// RestartWait bounds how long a call waits for a driver that is
	// starting, restarting after a crash, or being replaced.
	RestartWait time.Duration
	// A driver that exits within StableAfter of its start counts as
	// crashing again; MaxCrashes such exits in a row mark it broken.
	StableAfter time.Duration
	MaxCrashes  int
	// Restarts after a crash wait BackoffBase, doubling up to BackoffCap;
	// the first restart is immediate.
	BackoffBase, BackoffCap time.Duration
	// UID is the daemon's own user, which may own driver files.
	UID int
	// SHA256 pins drivers by name to the SHA-256 of their executable.
	SHA256 map[string]string
	// MaxMessageSize bounds every message between the host and a driver,
	// both ways.
	MaxMessageSize int
	// GCPercent is Go's garbage collection percent in the driver
	// processes (driver.EnvGCPercent); zero means driver.DefaultGCPercent.
	GCPercent int
	// MaxProcs bounds GOMAXPROCS in the driver processes
	// (driver.EnvMaxProcs); zero for every CPU.
	MaxProcs int
	// Events bound the events queued for subscribers.
	Events EventLimits
	// Sinks, when set, gives each driver (by name) the sink its records
	// go to: the core's view of its domains (see driver.Record).
	Sinks    func(driver string) driver.RecordSink
	LogLevel string
	Logger   hclog.Logger
}

func (c *Config) setDefaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.HangTimeout <= 0 {
		c.HangTimeout = 15 * time.Second
	}
	if c.RestartWait <= 0 {
		c.RestartWait = 5 * time.Second
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 4 << 20
	}
	if c.GCPercent <= 0 {
		c.GCPercent = driver.DefaultGCPercent
	}
	c.Events.setDefaults()
	if c.StableAfter <= 0 {
		c.StableAfter = 10 * time.Second
	}
	if c.MaxCrashes <= 0 {
		c.MaxCrashes = 5
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 200 * time.Millisecond
	}
	if c.BackoffCap <= 0 {
		c.BackoffCap = 30 * time.Second
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Host is the set of drivers the daemon knows.
type Host struct {
	cfg   Config
	trust Trust
	log   hclog.Logger
	clock Clock
	stop  chan struct{}

	mu       sync.Mutex
	procs    map[string]*Proc
	rejected []Rejected
	// closing is set by Close, under mu: no restart begins after it.
	// restarting counts the restarts after a crash under way, which
	// Close waits for.
	closing    bool
	restarting sync.WaitGroup

	// The subscriptions to each driver's events, and the bytes their
	// backlogs hold together.
	subMu  sync.Mutex
	subs   map[*Proc]map[*Subscription]struct{}
	queued atomic.Int64
}

// New scans the driver directories, reattaches to the drivers a previous
// daemon left running, and starts supervising.
func New(cfg Config) (*Host, error) {
	cfg.setDefaults()
	if err := os.MkdirAll(filepath.Join(cfg.RunDir, "drivers"), 0o700); err != nil {
		return nil, err
	}
	h := &Host{
		cfg: cfg, trust: Trust{UID: cfg.UID, SHA256: cfg.SHA256},
		log: cfg.Logger, clock: systemClock{}, stop: make(chan struct{}), procs: map[string]*Proc{},
		subs: map[*Proc]map[*Subscription]struct{}{},
	}
	if removed, err := atomicfile.Clean(filepath.Join(cfg.RunDir, "drivers")); err != nil {
		h.log.Warn("cleaning temporary files", "error", err)
	} else if len(removed) > 0 {
		h.log.Info("removed temporary files left by a killed writer", "files", removed)
	}
	h.Rescan()
	h.reattachAll()
	return h, nil
}

// Close stops supervising. Driver processes are left running, as a daemon
// restart must leave them; a new Host reattaches to them.
func (h *Host) Close() {
	h.quiesce()
	close(h.stop)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.procs {
		if in := p.current(); in != nil {
			in.pumpStop()
			in.exit.Close() // ends its watcher
		}
	}
}

// quiesce stops the restarts after a crash: those not begun are dropped,
// and one launching now is waited for, so that no driver process starts
// once it returns.
func (h *Host) quiesce() {
	h.mu.Lock()
	h.closing = true
	procs := make([]*Proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	for _, p := range procs {
		p.mu.Lock()
		if p.restartTimer != nil {
			p.restartTimer.Stop()
		}
		p.mu.Unlock()
	}
	h.restarting.Wait()
}

// beginRestart reports whether a restart after a crash may begin, and
// counts it for quiesce; endRestart ends it.
func (h *Host) beginRestart() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.restarting.Add(1)
	return true
}

func (h *Host) endRestart() { h.restarting.Done() }

// keepAliveInterval is how often a running driver gets a keep-alive: often
// enough to notice a hang and idleness in time, at most every 5 s.
func (h *Host) keepAliveInterval() time.Duration {
	return max(min(h.cfg.IdleTimeout/4, h.cfg.HangTimeout/3, 5*time.Second), 50*time.Millisecond)
}

// Dirs returns the driver directories, in search order.
func (h *Host) Dirs() []string { return append([]string(nil), h.cfg.Dirs...) }

// Lookup returns the driver that serves a URI scheme: the driver of the
// same name, or one that said it serves the scheme.
func (h *Host) Lookup(scheme string) (*Proc, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.procs[scheme]; ok {
		return p, nil
	}
	for _, p := range h.procs {
		p.mu.Lock()
		ident := p.ident
		p.mu.Unlock()
		if ident != nil {
			for _, s := range ident.Schemes {
				if s == scheme {
					return p, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no driver installed for URI scheme %q (searched %s): %w",
		scheme, strings.Join(h.cfg.Dirs, ":"), virt.ErrNotFound)
}

// Rescan reads the driver directories again. New drivers are added,
// drivers whose file is gone are stopped and dropped, a running driver
// whose file was replaced is stopped (the next call starts the new one),
// and a broken driver gets another chance.
func (h *Host) Rescan() (added, removed []string, rejected []Rejected) {
	found, rejected := Scan(h.cfg.Dirs, h.trust)
	var gone, replaced []*Proc
	h.mu.Lock()
	for name, c := range found {
		p, ok := h.procs[name]
		if !ok {
			h.procs[name] = newProc(h, c)
			added = append(added, name)
			continue
		}
		if p.rescanned(c.Path) {
			replaced = append(replaced, p)
		}
	}
	for name, p := range h.procs {
		if _, ok := found[name]; !ok {
			delete(h.procs, name)
			gone = append(gone, p)
			removed = append(removed, name)
		}
	}
	h.rejected = rejected
	h.mu.Unlock()

	for _, p := range gone {
		p.remove()
	}
	// A package upgrade renames a new executable over the old one: the
	// driver stops now and the next call starts the new one (guests of
	// the QEMU and LXC drivers outlive it, as they outlive a crash).
	for _, p := range replaced {
		p.stop("its executable was replaced")
	}
	for _, r := range rejected {
		h.log.Warn("driver file rejected", "path", r.Path, "reason", r.Reason)
	}
	sort.Strings(added)
	sort.Strings(removed)
	if len(added)+len(removed) > 0 {
		h.log.Info("driver directories scanned", "added", added, "removed", removed)
	}
	return added, removed, rejected
}

// runs reports whether process pid runs the file at path, as far as it
// can tell: a process it cannot look at is taken to.
func runs(pid int, path string) bool {
	running, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return true
	}
	onDisk, err := os.Stat(path)
	return err != nil || os.SameFile(running, onDisk)
}

// Rejected returns the files the last scan rejected.
func (h *Host) Rejected() []Rejected {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Rejected(nil), h.rejected...)
}

func (h *Host) reattachAll() {
	files, _ := filepath.Glob(filepath.Join(h.cfg.RunDir, "drivers", "*.json"))
	for _, f := range files {
		rec, err := readRecord(f)
		if err != nil {
			h.log.Warn("unreadable driver record; removing", "file", f, "error", err)
			_ = os.Remove(f)
			continue
		}
		h.mu.Lock()
		p := h.procs[rec.Name]
		h.mu.Unlock()
		if p == nil {
			// Its executable is gone: leave the process alone; with no
			// host in contact it exits by itself when idle.
			h.log.Warn("running driver no longer installed; not reattaching", "name", rec.Name, "pid", rec.PID)
			_ = os.Remove(f)
			continue
		}
		if err := p.reattach(rec); err != nil {
			h.log.Warn("cannot reattach to driver; it will be started afresh when needed", "name", rec.Name, "pid", rec.PID, "error", err)
			_ = os.Remove(f)
			continue
		}
		// Upgraded while no daemon (or an older one) looked: as Rescan.
		p.mu.Lock()
		path := p.path
		p.mu.Unlock()
		if !runs(rec.PID, path) {
			p.stop("its executable was replaced")
		}
	}
}

// Busy reports whether any driver has a connection or runs a guest; it
// asks running drivers afresh.
func (h *Host) Busy() bool {
	h.mu.Lock()
	procs := make([]*Proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	for _, p := range procs {
		if p.Status().Connections > 0 {
			return true
		}
		if in := p.current(); in != nil {
			_ = p.refresh(in, time.Second) // briefly: the caller is the daemon's main loop
		}
		if st := p.Status(); st.State == StateRunning && st.Guests > 0 {
			return true
		}
	}
	return false
}

// Status is what the admin API shows about one driver.
type Status struct {
	Name         string
	Path         string
	Version      string
	APIVersion   int
	Schemes      []string
	State        State
	Health       string
	HealthReason string
	PID          int
	Restarts     int
	LastError    string
	Connections  int
	Guests       int
}

// Status returns every driver's status, by name.
func (h *Host) Status() []Status {
	h.mu.Lock()
	procs := make([]*Proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	out := make([]Status, 0, len(procs))
	for _, p := range procs {
		out = append(out, p.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
