package domlist

import (
	"errors"
	"fmt"
	"testing"

	"github.com/virtd/virtd/virt"
)

func TestSelect(t *testing.T) {
	const uuidC, uuidD = "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
	l := build(t,
		domain{"off-b", uuidA, true, false},
		domain{"run", uuidB, true, true},
		domain{"off-a", uuidC, true, false},
	)
	names := func(uuids []string, flags virt.ListFlags) string {
		t.Helper()
		objs, err := l.Select(uuids, flags)
		if err != nil {
			t.Fatalf("Select(%v, %#x): %v", uuids, flags, err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, o.Name())
		}
		return fmt.Sprint(out)
	}
	for _, tc := range []struct {
		uuids []string
		flags virt.ListFlags
		want  string
	}{
		{nil, 0, "[run off-a off-b]"},
		{nil, virt.ListInactive, "[off-a off-b]"},
		{nil, virt.ListRunning, "[run]"},
		{[]string{uuidA, uuidB}, 0, "[off-b run]"},
		{[]string{uuidC, uuidD, "BBBBBBBBBBBB4BBB8BBBBBBBBBBBBBBB"}, 0, "[off-a run]"},
		{[]string{uuidA, uuidB}, virt.ListActive, "[run]"},
		{[]string{uuidD}, 0, "[]"},
	} {
		if got := names(tc.uuids, tc.flags); got != tc.want {
			t.Errorf("Select(%v, %#x) = %s, want %s", tc.uuids, tc.flags, got, tc.want)
		}
	}
	if _, err := l.Select([]string{"nope"}, 0); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("Select of a malformed UUID: %v", err)
	}
}
