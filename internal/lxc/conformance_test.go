package lxc

import (
	"testing"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
)

func TestConformance(t *testing.T) {
	rootfs := testRootFS(t)
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T) driver.Driver {
			drv, _ := newTestDriver(t)
			return drv
		},
		DomainXML:     func(name string) string { return domainXML(rootfs, name, domOpts{}) },
		URI:           "lxc:///system",
		SettleTimeout: 20 * time.Second,
	})
}
