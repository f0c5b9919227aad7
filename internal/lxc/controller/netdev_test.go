package controller

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/virtd/virtd/internal/testenv"
	"github.com/virtd/virtd/virt"
)

func TestCheckName(t *testing.T) {
	for _, good := range []string{"br0", "vxab12cd340", "eth0", "a'b", `a"b`} {
		if err := CheckName(good); err != nil {
			t.Errorf("CheckName(%q): %v", good, err)
		}
	}
	for _, tc := range []struct {
		name, want string
		kind       error
	}{
		{"../../../etc", "contains '/'", virt.ErrInvalidArgument},
		{"0123456789abcdef", "is 16 bytes long", virt.ErrInvalidArgument},
		{"a b", "whitespace", virt.ErrInvalidArgument},
		{"", "is empty", virt.ErrInvalidArgument},
		{"br#0", "contains '#'", virt.ErrNotSupported},
		{"'br0", "starts with a quote", virt.ErrNotSupported},
		{`"br0`, "starts with a quote", virt.ErrNotSupported},
	} {
		err := CheckName(tc.name)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.name)) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckName(%q) = %v, want a %v naming it and saying %q", tc.name, err, tc.kind, tc.want)
		}
	}
}

// The controller checks the names of its spec before any reaches ip, even
// though the driver checked them at define.
func TestSetupChecksNamesFirst(t *testing.T) {
	for _, ifc := range []Interface{
		{HostName: "vx0", GuestName: "eth0", Bridge: "../../../etc"},
		{HostName: "tap0123456789abc", GuestName: "eth0"},
		{HostName: "vx0", GuestName: "eth0 up"},
		{HostName: "vx0", GuestName: "eth0", Bridge: "br0#"},
	} {
		c := &controller{spec: &Spec{RootFS: "/nonexistent", Interfaces: []Interface{ifc}}}
		err := c.setup()
		if err == nil || virt.KindOf(err) != virt.ErrInvalidArgument {
			t.Fatalf("setup with %+v: %v, want an invalid argument", ifc, err)
		}
		if !strings.Contains(err.Error(), "interface name") {
			t.Errorf("setup with %+v: %q does not come from the name check", ifc, err)
		}
	}
}

// ip -batch splits a line at white space and drops what follows '#': a
// word it would read otherwise is refused, and ip is not run.
func TestIPBatchRefusesWordsItWouldSplit(t *testing.T) {
	if _, err := ipPath(); err != nil {
		testenv.Missing(t, err.Error())
	}
	// ip would read the first two as lo, and succeed.
	for _, w := range []string{"lo#x", "'lo'", "lo x", ""} {
		if err := ipBatch([][]string{{"link", "show", "dev", w}}); err == nil || !strings.Contains(err.Error(), "one word") {
			t.Errorf("ipBatch with the word %q: %v, want it refused", w, err)
		}
	}
	if err := ipBatch([][]string{{"link", "show", "dev", "lo"}}); err != nil {
		t.Errorf("ipBatch link show dev lo: %v", err)
	}
}
