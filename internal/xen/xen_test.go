package xen

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
)

// TestConformanceOnXen runs the conformance suite against the real libxl
// and a real Xen hypervisor. Our machines have none: test/xen boots Xen
// under QEMU and runs this test in its dom0, with $VIRTD_TEST_XEN_KERNEL
// and $VIRTD_TEST_XEN_INITRD naming a PV guest that powers off when asked
// to shut down. Elsewhere it skips.
func TestConformanceOnXen(t *testing.T) {
	kernel, initrd := os.Getenv("VIRTD_TEST_XEN_KERNEL"), os.Getenv("VIRTD_TEST_XEN_INITRD")
	if kernel == "" || initrd == "" {
		t.Skip("no Xen guest given (test/xen runs this test in a Xen dom0)")
	}
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T) driver.Driver {
			d := New(driver.Env{
				ConfigDir: t.TempDir(), RunDir: t.TempDir(),
				Logger: hclog.New(&hclog.LoggerOptions{Name: "xen", Level: hclog.Info}),
			})
			if impl := d.(*Driver); impl.hv == nil {
				t.Fatalf("Xen is not usable: %s", impl.reason)
			}
			return d
		},
		DomainXML: func(name string) string {
			return fmt.Sprintf(`<domain type='xen'>
  <name>%s</name>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os><type>linux</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>console=hvc0 quiet</cmdline></os>
</domain>`, name, kernel, initrd)
		},
		URI:           "xen:///system",
		SettleTimeout: 2 * time.Minute,
		RebootNewID:   true,
		Unsupported:   unsupported,
	})
}
