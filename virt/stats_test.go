package virt

import (
	"testing"
)

func TestTypedParam(t *testing.T) {
	for _, tc := range []struct {
		v    any
		kind TypedParamType
		text string
	}{
		{int32(-3), TypedParamInt, "-3"},
		{uint32(7), TypedParamUInt, "7"},
		{int64(-1 << 40), TypedParamLLong, "-1099511627776"},
		{uint64(1 << 63), TypedParamULLong, "9223372036854775808"},
		{1.5, TypedParamDouble, "1.500000"},
		{true, TypedParamBoolean, "yes"},
		{false, TypedParamBoolean, "no"},
		{"vda", TypedParamString, "vda"},
		{7, 0, "7"}, // a Go int is no kind
	} {
		p := TypedParam{Name: "x", Value: tc.v}
		if p.Type() != tc.kind || p.Format() != tc.text {
			t.Errorf("%T %v: kind %d, %q; want %d, %q", tc.v, tc.v, p.Type(), p.Format(), tc.kind, tc.text)
		}
	}
	ps := TypedParams{{Name: "a", Value: uint32(1)}, {Name: "b", Value: "x"}}
	if v, ok := ps.Get("b"); !ok || v != "x" {
		t.Errorf("Get(b) = %v, %v", v, ok)
	}
	if _, ok := ps.Get("c"); ok {
		t.Error("Get(c) found one")
	}
}

func TestStatsFlags(t *testing.T) {
	f := StatsActive | StatsPersistent | StatsEnforce
	if f.List() != ListActive|ListPersistent || f.Unknown() != 0 {
		t.Errorf("List = %#x, Unknown = %#x", f.List(), f.Unknown())
	}
	// libvirt's NOWAIT and BACKING, and managed save (a list flag only),
	// are not among the flags virtd takes.
	for _, bad := range []StatsFlags{1 << 29, 1 << 30, StatsFlags(ListManagedSave)} {
		if (f | bad).Unknown() != bad {
			t.Errorf("flag %#x is not unknown", uint32(bad))
		}
	}
	if StatsRunning != 16 || StatsOther != 128 || StatsEnforce != 1<<31 || StatsBlock != 32 || StatsDirtyRate != 512 {
		t.Error("the bits are not libvirt's")
	}
}

func TestMemoryStatTag(t *testing.T) {
	for tag, want := range map[MemoryStatTag]string{
		MemorySwapIn: "swap_in", MemoryActualBalloon: "actual", MemoryRSS: "rss",
		MemoryLastUpdate: "last_update", MemoryHugetlbPgfail: "hugetlb_pgfail", 13: "tag 13",
	} {
		if got := tag.String(); got != want {
			t.Errorf("%d: %q, want %q", tag, got, want)
		}
	}
}
