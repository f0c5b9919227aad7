package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/host"
)

// Main is the virtd program: it parses args, builds the daemon and runs it
// in the foreground. It returns the exit status.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	return parseFlags(args, stderr, func(cfg Config) int {
		d, err := New(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "virtd: %v\n", err)
			return 1
		}
		if err := d.Run(ctx); err != nil {
			fmt.Fprintf(stderr, "virtd: %v\n", err)
			return 1
		}
		return 0
	})
}

// parseFlags reads the command line and the configuration file, then
// calls run with the configuration; it returns run's exit status, or its
// own for a bad argument or -version.
func parseFlags(args []string, stderr io.Writer, run func(Config) int) int {
	fs := flag.NewFlagSet("virtd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "derive every path (run, config, state, log, driver directory) from `DIR` instead of /")
	driverDirs := fs.String("driver-dir", "", "colon-separated driver `directories` (default: $VIRTD_DRIVER_DIR, else <root>"+DefaultDriverDir+")")
	group := fs.String("unix-group", "", "`group` allowed on the read-write socket (mode 0660)")
	lvSock := fs.String("libvirt-sock", "", "`path` of the read-write socket that speaks libvirt's RPC protocol (default <run dir>/"+SocketLibvirt+"; \""+NoSocket+"\": off)")
	lvSockRO := fs.String("libvirt-sock-ro", "", "`path` of the read-only socket that speaks libvirt's RPC protocol (default <run dir>/"+SocketLibvirtRO+"; \""+NoSocket+"\": off)")
	uriDefault := fs.String("uri-default", "", "`URI` of a libvirt connection opened with none (default: the first of "+strings.Join(core.DefaultURIs, ", ")+" whose driver can run guests here)")
	timeout := fs.Int("timeout", 0, "exit after `N` seconds with no client and nothing running (0: never)")
	idle := fs.Duration("driver-idle-timeout", 120*time.Second, "stop a driver after this long with no connection and no running guest")
	start := fs.Duration("driver-start-timeout", 10*time.Second, "how long a driver may take to complete its handshake")
	hang := fs.Duration("driver-hang-timeout", 15*time.Second, "kill a running driver that leaves a keep-alive unanswered this long (calls waiting on it fail)")
	restartWait := fs.Duration("driver-restart-wait", 5*time.Second, "how long a call waits for a driver that is starting, restarting or being replaced")
	driverGC := driver.DefaultGCPercent
	fs.Var((*percentFlag)(&driverGC), "driver-gc-percent", "Go's garbage collection percent (what GOGC sets) in the drivers, which see none of virtd's environment: a driver's heap grows by this much of its live size between collections")
	driverProcs := 0
	fs.Var((*procsFlag)(&driverProcs), "driver-max-procs", "the most OS threads a driver's Go code may run on at once (GOMAXPROCS, which a driver keeps at one until it is busy; drivers see none of virtd's environment); 0: every CPU")
	pins := pinFlag{}
	fs.Var(pins, "driver-sha256", "pin a driver to the SHA-256 of its executable, `NAME=HEX` (repeat for several; in virtd.conf, one driver_sha256 line each)")
	lim := DefaultLimits
	fs.IntVar(&lim.MaxClients, "max-clients", lim.MaxClients, "client connections served at once, all sockets together")
	fs.IntVar(&lim.MaxClientRequests, "max-client-requests", lim.MaxClientRequests, "calls one client connection may have in flight (more wait their turn)")
	fs.IntVar(&lim.MaxClientStreams, "max-client-streams", lim.MaxClientStreams, "event streams and consoles one client connection may have open")
	fs.Var((*sizeFlag)(&lim.MaxMessageSize), "max-message-size", "bytes of one message, on every hop (a number, or with KiB, MiB)")
	fs.Var((*sizeFlag)(&lim.MaxInflightBytes), "max-inflight-bytes", "bytes of the requests being handled, all clients together")
	fs.IntVar(&lim.Events.Backlog, "max-event-backlog", lim.Events.Backlog, "events a client may fall behind on an event stream before it is dropped")
	fs.Var((*sizeFlag)(&lim.Events.BacklogBytes), "max-event-backlog-bytes", "bytes of events a client may fall behind before it is dropped")
	fs.Var((*sizeFlag)(&lim.Events.QueueBytes), "max-event-queue-bytes", "bytes of events queued for all clients together")
	memLimit := DefaultMemoryLimit
	fs.Var((*sizeFlag)(&memLimit), "memory-limit", "soft limit on virtd's memory for Go's garbage collector, which works harder near it")
	level := fs.String("log-level", "info", "log `level`: trace, debug, info, warn, error")
	version := fs.Bool("version", false, "print the version and exit")
	config := fs.String("config", "", "configuration `file` (default <root>/etc/virtd/virtd.conf); command-line flags win")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: virtd [options]\n\nThe virtd daemon serves virtualization clients on unix sockets and runs\none executable per hypervisor driver.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "virtd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *version {
		fmt.Fprintf(stderr, "virtd %s\n", Version)
		return 0
	}
	confPath, required := *config, *config != ""
	if !required {
		confPath = filepath.Join(PathsFor(*root, nil).ConfigDir, "virtd.conf")
	}
	if err := applyConfigFile(fs, confPath, required); err != nil {
		fmt.Fprintf(stderr, "virtd: %v\n", err)
		return 2
	}
	var dirs []string
	if *driverDirs != "" {
		for _, d := range strings.Split(*driverDirs, ":") {
			if d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	cfg := Config{
		Paths:              PathsFor(*root, dirs),
		UnixGroup:          *group,
		LibvirtSocket:      *lvSock,
		LibvirtSocketRO:    *lvSockRO,
		DefaultURI:         *uriDefault,
		Timeout:            time.Duration(*timeout) * time.Second,
		DriverIdleTimeout:  *idle,
		DriverStartTimeout: *start,
		DriverHangTimeout:  *hang,
		DriverRestartWait:  *restartWait,
		DriverGCPercent:    driverGC,
		DriverMaxProcs:     driverProcs,
		DriverSHA256:       pins,
		Limits:             lim,
		MemoryLimit:        memLimit,
		LogLevel:           *level,
	}
	return run(cfg)
}

// pinFlag collects driver pins, NAME=HEX, by name.
type pinFlag map[string]string

func (f pinFlag) String() string {
	var out []string
	for name, sum := range f {
		out = append(out, name+"="+sum)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (f pinFlag) Set(s string) error {
	name, sum, err := host.ParsePin(s)
	if err != nil {
		return err
	}
	f[name] = sum
	return nil
}

// percentFlag is a positive percentage.
type percentFlag int

func (f *percentFlag) String() string { return strconv.Itoa(int(*f)) }

func (f *percentFlag) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a positive percentage", s)
	}
	*f = percentFlag(n)
	return nil
}

// procsFlag is a number of CPUs, 0 for all.
type procsFlag int

func (f *procsFlag) String() string { return strconv.Itoa(int(*f)) }

func (f *procsFlag) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a number of CPUs (0: every CPU)", s)
	}
	*f = procsFlag(n)
	return nil
}

// sizeFlag is a byte count: a number, or one with a unit (KiB, MiB, GiB).
type sizeFlag int

func (f *sizeFlag) String() string { return strconv.Itoa(int(*f)) }

func (f *sizeFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	num, scale := s, 1
	for _, u := range []struct {
		suffix string
		scale  int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, scale = strings.TrimSpace(n), u.scale
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > math.MaxInt32/scale {
		return fmt.Errorf("%q is not a size (a positive number of bytes, or with KiB, MiB or GiB, under 2 GiB)", s)
	}
	*f = sizeFlag(n * scale)
	return nil
}
