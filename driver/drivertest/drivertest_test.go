package drivertest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

// limited is the test driver with some operations refused, to exercise the
// suite's handling of declared unsupported operations. Embedding the
// driver as a driver.Driver hides its optional calls: the shims refuse
// them.
type limited struct{ driver.Driver }

func refuse(op string) error { return fmt.Errorf("%s: %w", op, virt.ErrNotSupported) }

func (limited) SuspendDomain(context.Context, string) error { return refuse("suspend") }
func (limited) ResumeDomain(context.Context, string) error  { return refuse("resume") }
func (limited) RebootDomain(context.Context, string) error  { return refuse("reboot") }
func (limited) DomainAutostart(context.Context, string) (bool, error) {
	return false, refuse("autostart")
}
func (limited) SetDomainAutostart(context.Context, string, bool) error { return refuse("autostart") }
func (limited) WatchEvents(context.Context) (<-chan virt.Event, error) {
	return nil, refuse("events")
}
func (limited) NodeInfo(context.Context) (*virt.NodeInfo, error) { return nil, refuse("nodeinfo") }
func (limited) Capabilities(context.Context) (string, error)     { return "", refuse("capabilities") }

func TestUnsupportedOps(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T) driver.Driver { return limited{testdriver.New(driver.Env{})} },
		DomainXML: func(name string) string {
			return "<domain type='test'><name>" + name + "</name><memory>65536</memory></domain>"
		},
		URI: "test:///default",
		Unsupported: map[drivertest.Op]bool{
			drivertest.OpSuspend: true, drivertest.OpResume: true, drivertest.OpReboot: true,
			drivertest.OpAutostart: true, drivertest.OpEvents: true,
			drivertest.OpNodeInfo: true, drivertest.OpCapabilities: true,
			drivertest.OpDomainStats: true, drivertest.OpBlockStats: true, drivertest.OpInterfaceStats: true,
			drivertest.OpMemoryStats: true, drivertest.OpNodeStats: true, drivertest.OpDomainCapabilities: true,
		},
	})
}

func TestPair(t *testing.T) {
	drv := drivertest.Pair(t, testdriver.New(driver.Env{}))
	d, err := drv.LookupDomain(t.Context(), virt.ByName("test"))
	if err != nil || d.ID != 1 {
		t.Fatalf("LookupDomain(test) through the shims = %+v, %v", d, err)
	}
	_, err = drv.LookupDomain(t.Context(), virt.ByName("nope"))
	if !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("unknown domain through the shims: %v, want not found", err)
	}
}
