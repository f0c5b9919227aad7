package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
)

// TestConformance runs the driver conformance suite on real QEMU guests:
// diskless, booting the test kernel and initramfs, so that an ACPI
// shutdown powers them off.
func TestConformance(t *testing.T) {
	kernel, initrd := bootAssets(t)
	consoles := t.TempDir()
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T) driver.Driver {
			dir := t.TempDir()
			logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})
			drv, err := NewWithConfig(logger, testConfig(dir))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { destroyAll(drv); drv.Close() })
			return &bootedBeforeShutdown{Driver: drv, consoles: consoles}
		},
		DomainXML: func(name string) string {
			return bootXML(name, kernel, initrd, filepath.Join(consoles, name+".console"), "")
		},
		URI:           "qemu:///system",
		SettleTimeout: 60 * time.Second,
	})
}

// bootedBeforeShutdown waits, before a shutdown, until the guest's init
// listens for the power button. A real guest ignores an ACPI power button
// pressed while it boots (so does libvirt's); the suite shuts guests down
// right after they start.
type bootedBeforeShutdown struct {
	*Driver
	consoles string
}

func (b *bootedBeforeShutdown) ShutdownDomain(ctx context.Context, uuid string) error {
	if d, err := b.Driver.lookup(ctx, uuid); err == nil {
		d.Lock()
		name, active := d.Name(), d.Priv.inst != nil
		d.Unlock()
		if active {
			path := filepath.Join(b.consoles, name+".console")
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				if c, _ := os.ReadFile(path); strings.Contains(string(c), "VIRTD-GUEST-UP") {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	if err := b.Driver.ShutdownDomain(ctx, uuid); err != nil {
		return fmt.Errorf("%w", err)
	}
	return nil
}
