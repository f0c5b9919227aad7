package domutil

import (
	"errors"
	"regexp"
	"testing"

	"github.com/virtd/virtd/virt"
)

func TestParseUUID(t *testing.T) {
	for in, want := range map[string]string{
		"6695eb01-f6a4-8304-79aa-97f2502e193f":    "6695eb01-f6a4-8304-79aa-97f2502e193f",
		" 6695EB01F6A4830479AA97F2502E193F ":      "6695eb01-f6a4-8304-79aa-97f2502e193f",
		"6695-eb01-f6a4-8304-79aa-97f2-502e-193f": "6695eb01-f6a4-8304-79aa-97f2502e193f",
	} {
		if got, err := ParseUUID(in); err != nil || got != want {
			t.Errorf("ParseUUID(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "xyz", "6695eb01-f6a4-8304-79aa-97f2502e193"} {
		if _, err := ParseUUID(bad); !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("ParseUUID(%q): %v", bad, err)
		}
	}
	u := NewUUID()
	if got, err := ParseUUID(u); err != nil || got != u || u[14] != '4' {
		t.Errorf("NewUUID %q is not a canonical v4 UUID", u)
	}
	if u == NewUUID() {
		t.Error("two NewUUID calls gave the same UUID")
	}
	if m := NewMAC(); !regexp.MustCompile(`^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`).MatchString(m) {
		t.Errorf("NewMAC %q", m)
	}
}

func TestScaleToKiB(t *testing.T) {
	for _, tc := range []struct {
		v    uint64
		unit string
		want uint64
	}{
		{1, "", 1}, {1, "KiB", 1}, {1, "k", 1}, {1, "MiB", 1024}, {2, "G", 2 << 20},
		{1000, "b", 1}, {1025, "bytes", 2}, {1, "KB", 1}, {1, "MB", 977}, {1, "TiB", 1 << 30},
	} {
		if got, err := ScaleToKiB(tc.v, tc.unit); err != nil || got != tc.want {
			t.Errorf("ScaleToKiB(%d, %q) = %d, %v; want %d", tc.v, tc.unit, got, err, tc.want)
		}
	}
	for _, bad := range []struct {
		v    uint64
		unit string
	}{{1, "furlong"}, {1, "Kx"}, {1 << 62, "EiB"}} {
		if _, err := ScaleToKiB(bad.v, bad.unit); !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("ScaleToKiB(%d, %q): %v", bad.v, bad.unit, err)
		}
	}
}

func TestSortDomains(t *testing.T) {
	doms := []virt.Domain{{Name: "zeta", ID: -1}, {Name: "b", ID: 7}, {Name: "alpha", ID: -1}, {Name: "a", ID: 3}, {Name: "Domain-0", ID: 0}}
	SortDomains(doms)
	var got []string
	for _, d := range doms {
		got = append(got, d.Name)
	}
	if want := "Domain-0 a b alpha zeta"; fmtJoin(got) != want {
		t.Fatalf("order %q, want %q", fmtJoin(got), want)
	}
}

func fmtJoin(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func TestFilterAndNotFound(t *testing.T) {
	doms := []virt.Domain{
		{Name: "off", ID: -1, State: virt.StateShutoff, Persistent: true},
		{Name: "on", ID: 2, State: virt.StateRunning, Persistent: true},
		{Name: "paused", ID: 1, State: virt.StatePaused},
	}
	var names []string
	for _, d := range Filter(doms, virt.ListActive) {
		names = append(names, d.Name)
	}
	if fmtJoin(names) != "paused on" {
		t.Fatalf("active: %v", names)
	}
	if got := Filter(doms, virt.ListInactive|virt.ListPersistent); len(got) != 1 || got[0].Name != "off" {
		t.Fatalf("inactive persistent: %+v", got)
	}
	for key, want := range map[virt.Lookup]string{
		virt.ByName("x"): "no domain with matching name 'x'",
		virt.ByUUID("u"): "no domain with matching uuid 'u'",
		virt.ByID(7):     "no domain with matching id 7",
	} {
		err := NotFound(key)
		if !errors.Is(err, virt.ErrNotFound) || !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(err.Error()) {
			t.Errorf("NotFound(%+v) = %v", key, err)
		}
	}
}
