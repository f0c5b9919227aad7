package driver_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

// kinds answers one record with a parameter of every kind, and one with a
// value of no kind when asked for the domain "bad".
type kinds struct{ *testdriver.Driver }

func (kinds) DomainStats(_ context.Context, uuids []string, _ virt.StatsGroups, _ virt.StatsFlags) ([]virt.DomainStats, error) {
	ps := virt.TypedParams{
		{Name: "i", Value: int32(-1)}, {Name: "u", Value: uint32(2)}, {Name: "ll", Value: int64(-3)},
		{Name: "ull", Value: uint64(1 << 63)}, {Name: "d", Value: 0.25}, {Name: "b", Value: true}, {Name: "s", Value: "x"},
	}
	if slices.Contains(uuids, "bad") {
		ps = append(ps, virt.TypedParam{Name: "n", Value: 5})
	}
	return []virt.DomainStats{{Domain: virt.Domain{Name: "k", UUID: "u", ID: 3, State: virt.StateRunning}, Params: ps}}, nil
}

func TestStatsThroughShims(t *testing.T) {
	d := drivertest.Pair(t, kinds{testdriver.New(driver.Env{}).(*testdriver.Driver)})
	ctx := t.Context()
	st := d.(driver.Stats)
	recs, err := st.DomainStats(ctx, nil, 0, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("DomainStats = %v, %v", recs, err)
	}
	if r := recs[0]; r.Domain != (virt.Domain{Name: "k", UUID: "u", ID: 3, State: virt.StateRunning}) || len(r.Params) != 7 {
		t.Fatalf("record %+v", r)
	}
	for i, want := range []any{int32(-1), uint32(2), int64(-3), uint64(1 << 63), 0.25, true, "x"} {
		if got := recs[0].Params[i].Value; got != want {
			t.Errorf("param %d = %#v, want %#v", i, got, want)
		}
	}
	_, err = st.DomainStats(ctx, []string{"bad"}, 0, 0)
	if !errors.Is(err, virt.ErrInternal) || !strings.Contains(err.Error(), `statistic "n" has a value of type int`) {
		t.Errorf("a value of no kind: %v", err)
	}
	info, err := d.Info(ctx)
	if err != nil || !slices.Contains(info.Features, driver.FeatureStats) || !slices.Contains(info.Features, driver.FeatureDomainCapabilities) {
		t.Errorf("features %v, %v: want stats and domain-capabilities", info.Features, err)
	}
	// The other calls and their errors cross as they are.
	if _, err := st.BlockStats(ctx, "6695eb01-f6a4-8304-79aa-97f2502e193f", "vdz"); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("BlockStats: %v", err)
	}
	if n, err := st.NodeMemoryStats(ctx, -1); err != nil || n.TotalKiB != 3*1024*1024 {
		t.Errorf("NodeMemoryStats = %+v, %v", n, err)
	}
}
