package xen

import (
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/virt"
)

// TestDomainStats: the figures come from Xen's record of each domain, or,
// for a domain that does not run, from its definition; Xen does not split
// CPU time into user and system time.
func TestDomainStats(t *testing.T) {
	d := newDriver(hclog.NewNullLogger(), newFake(), "", t.TempDir(), t.TempDir())
	ctx := t.Context()
	off, err := d.DefineDomain(ctx, fmt.Sprintf(domainXML, "off"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := d.DomainStats(ctx, nil, 0, 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("DomainStats = %+v, %v", recs, err)
	}
	for _, tc := range []struct {
		rec  virt.DomainStats
		want string
	}{
		{recs[0], "Domain-0 [state.state=1 state.reason=0 cpu.time=N balloon.current=1048576 balloon.maximum=1048576 vcpu.current=2 vcpu.maximum=2]"},
		{recs[1], "off [state.state=5 state.reason=0 balloon.current=131072 balloon.maximum=131072 vcpu.current=1 vcpu.maximum=1]"},
	} {
		var ps []string
		for _, p := range tc.rec.Params {
			v := p.Format()
			if p.Name == "cpu.time" {
				v = "N"
			}
			ps = append(ps, p.Name+"="+v)
		}
		if got := fmt.Sprint(tc.rec.Domain.Name, " ", ps); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	if recs[1].Domain.UUID != off.UUID {
		t.Errorf("second record is %+v", recs[1].Domain)
	}
}
