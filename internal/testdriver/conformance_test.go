package testdriver

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T) driver.Driver {
			return New(driver.Env{Logger: hclog.New(&hclog.LoggerOptions{Name: "testdriver", Output: hclog.DefaultOutput, Level: hclog.Warn})})
		},
		DomainXML: func(name string) string {
			return fmt.Sprintf(`<domain type='test'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>`, name)
		},
		URI:           "test:///default",
		SettleTimeout: 5 * time.Second,
	})
}

// BenchmarkListDomains10kGRPC lists 10,000 domains through the gRPC shims,
// as the daemon does.
func BenchmarkListDomains10kGRPC(b *testing.B) {
	impl := New(driver.Env{}).(*Driver)
	defineMany(b, impl, 10000)
	drv := drivertest.Pair(b, impl)
	for b.Loop() {
		ds, err := drv.ListDomains(b.Context(), 0)
		if err != nil || len(ds) != 10001 {
			b.Fatalf("ListDomains = %d, %v", len(ds), err)
		}
	}
}
