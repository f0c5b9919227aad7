package qemu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/virtd/virtd/virt"
)

// TestCallsOnADomainBeingUndefined: a call that found a domain just before
// it was undefined answers not found; none reads the definition that is
// gone (the driver used to crash on it, when the record of the undefined
// event read the domain's info).
func TestCallsOnADomainBeingUndefined(t *testing.T) {
	drv, _ := newTestDriver(t)
	ctx := context.Background()
	const n = 200
	uuids := make([]string, n)
	for i := range uuids {
		d, err := drv.DefineDomain(ctx, fmt.Sprintf(`<domain type='qemu'><name>u%d</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`, i))
		if err != nil {
			t.Fatal(err)
		}
		uuids[i] = d.UUID
	}
	calls := []func(string) error{
		func(u string) error { _, err := drv.DomainInfo(ctx, u); return err },
		func(u string) error { _, _, err := drv.DomainState(ctx, u); return err },
		func(u string) error { _, err := drv.DomainXML(ctx, u, false); return err },
		func(u string) error { _, err := drv.DomainXML(ctx, u, true); return err },
		func(u string) error { _, err := drv.DomainAutostart(ctx, u); return err },
		func(u string) error { return drv.SetDomainAutostart(ctx, u, false) },
		func(u string) error { return drv.UndefineDomain(ctx, u) },
		func(u string) error { return drv.SuspendDomain(ctx, u) },
		func(u string) error { return drv.DestroyDomain(ctx, u) },
	}
	var wg sync.WaitGroup
	for _, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, u := range uuids {
				for {
					err := call(u)
					if errors.Is(err, virt.ErrNotFound) {
						break // undefined: the next one
					}
					if err != nil && !errors.Is(err, virt.ErrFailedPrecondition) {
						t.Errorf("%s: %v", u, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
