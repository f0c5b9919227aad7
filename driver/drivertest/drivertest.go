// Package drivertest is the conformance suite every virtd driver passes. Run
// drives a table of behaviours (define, lookup, list, lifecycle with
// libvirt's states and reasons, transient domains made by create, XML,
// autostart, events, error kinds, cancellation, concurrency, the rules of
// package domxml for names and unknown XML, statistics and domain
// capabilities) against a driver through the real gRPC shims of package
// driver, as the daemon would reach it, so that what the daemon relies on
// is checked once for all drivers.
//
// A driver's test calls it:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, drivertest.Config{
//			New:       func(t *testing.T) driver.Driver { return mydriver.New(driver.Env{ConfigDir: t.TempDir(), ...}) },
//			DomainXML: func(name string) string { return "<domain type='kvm'>...</domain>" },
//			URI:       "qemu:///system",
//		})
//	}
package drivertest

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/virtd/virtd/driver"
)

// Op names an operation a driver may declare it cannot do.
type Op string

// Operations that may be declared unsupported. Defining, looking up,
// listing and the driver's Info are never optional.
const (
	OpStart        Op = "start"
	OpCreate       Op = "create" // CreateDomain
	OpShutdown     Op = "shutdown"
	OpReboot       Op = "reboot"
	OpDestroy      Op = "destroy"
	OpSuspend      Op = "suspend"
	OpResume       Op = "resume"
	OpUndefine     Op = "undefine"
	OpAutostart    Op = "autostart" // DomainAutostart and SetDomainAutostart
	OpEvents       Op = "events"    // WatchEvents
	OpNodeInfo     Op = "nodeinfo"
	OpCapabilities Op = "capabilities"
	// The optional calls of driver.Stats and driver.DomainCapabilities.
	OpDomainStats        Op = "domstats"
	OpBlockStats         Op = "domblkstat"
	OpInterfaceStats     Op = "domifstat"
	OpMemoryStats        Op = "dommemstat"
	OpNodeStats          Op = "nodestats" // NodeCPUStats and NodeMemoryStats
	OpDomainCapabilities Op = "domcapabilities"
)

// AllOps lists every Op, in the order the suite checks declared refusals.
var AllOps = []Op{
	OpStart, OpCreate, OpShutdown, OpReboot, OpDestroy, OpSuspend, OpResume,
	OpUndefine, OpAutostart, OpEvents, OpNodeInfo, OpCapabilities,
	OpDomainStats, OpBlockStats, OpInterfaceStats, OpMemoryStats, OpNodeStats, OpDomainCapabilities,
}

// Config describes the driver under test.
type Config struct {
	// New returns a fresh driver; it is called once per case. Clean-up the
	// driver needs belongs in t.Cleanup. Domains the suite defines are
	// destroyed and undefined by the suite when each case ends.
	New func(t *testing.T) driver.Driver
	// DomainXML returns a minimal valid domain definition named name,
	// without a <uuid> (the suite adds one when it needs to). A domain
	// started from it must reach the running state, and power off on
	// shutdown (ACPI) within SettleTimeout.
	DomainXML func(name string) string
	// URI is a URI the driver accepts ("test:///default").
	URI string
	// Unsupported are the operations the driver declares it cannot do. The
	// suite checks that each returns an error of kind virt.ErrNotSupported
	// (not a crash, not another kind), and skips the cases that need it.
	Unsupported map[Op]bool
	// SettleTimeout bounds how long an asynchronous change (a shutdown
	// completing) may take. Zero means 30 seconds.
	SettleTimeout time.Duration
	// RebootNewID says that a rebooted domain comes back with a new ID:
	// on Xen the guest's reboot ends the domain and the toolstack makes
	// it again (libvirt's libxl driver shows the same). Otherwise a
	// reboot must keep the ID, as a QEMU process that resets does.
	RebootNewID bool
}

func (c *Config) supports(op Op) bool { return !c.Unsupported[op] }

func (c *Config) settle() time.Duration {
	if c.SettleTimeout > 0 {
		return c.SettleTimeout
	}
	return 30 * time.Second
}

// Pair serves impl through the real gRPC shims of package driver on an
// in-memory go-plugin connection and returns the host side, the way the
// daemon sees a driver process. Both ends are closed when t ends.
func Pair(t testing.TB, impl driver.Driver) driver.Driver {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		driver.PluginName: &driver.Plugin{Impl: impl},
	})
	// Closing the client asks the server to stop (go-plugin's controller);
	// stopping it here as well would race with that.
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(driver.PluginName)
	if err != nil {
		t.Fatalf("dispense %q: %v", driver.PluginName, err)
	}
	d, ok := raw.(driver.Driver)
	if !ok {
		t.Fatalf("dispense %q: got %T, which is not a driver.Driver", driver.PluginName, raw)
	}
	return d
}

// Run runs the conformance suite against cfg's driver, one subtest per
// behaviour, each on a fresh driver reached through Pair.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil || cfg.DomainXML == nil || cfg.URI == "" {
		t.Fatal("drivertest.Config needs New, DomainXML and URI")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, op := range c.needs {
				if !cfg.supports(op) {
					t.Skipf("driver declares %s unsupported (checked in Unsupported/%s)", op, op)
				}
			}
			c.run(t, newHarness(t, &cfg))
		})
	}
	for _, op := range AllOps {
		if cfg.supports(op) {
			continue
		}
		t.Run("Unsupported/"+string(op), func(t *testing.T) {
			checkUnsupported(t, newHarness(t, &cfg), op)
		})
	}
}

// harness is one case's driver and helpers.
type harness struct {
	t   *testing.T
	cfg *Config
	ctx context.Context
	drv driver.Driver
	// impl is the driver itself, for what the gRPC shims cannot carry
	// (a string that is not valid UTF-8).
	impl driver.Driver
}

func newHarness(t *testing.T, cfg *Config) *harness {
	impl := cfg.New(t)
	if impl == nil {
		t.Fatal("Config.New returned nil")
	}
	return &harness{t: t, cfg: cfg, ctx: t.Context(), drv: Pair(t, impl), impl: impl}
}
