package daemon

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/virtd/virtd/virt"
)

func TestParseURI(t *testing.T) {
	for uri, scheme := range map[string]string{
		"test:///default":                 "test",
		"qemu:///system":                  "qemu",
		"qemu+unix:///system?socket=/x/y": "qemu",
		"xen://host/system":               "xen",
	} {
		got, err := parseURI(uri)
		if err != nil || got != scheme {
			t.Errorf("parseURI(%q) = %q, %v; want %q", uri, got, err, scheme)
		}
	}
	for _, bad := range []string{"", "test", "::x", "test:default", "%zz:///"} {
		if _, err := parseURI(bad); !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("parseURI(%q): %v, want invalid argument", bad, err)
		}
	}
}

func TestPathsFor(t *testing.T) {
	t.Setenv("VIRTD_DRIVER_DIR", "")
	p := PathsFor("/r", nil)
	want := Paths{
		RunDir: "/r/run/virtd", ConfigDir: "/r/etc/virtd", StateDir: "/r/var/lib/virtd", LogDir: "/r/var/log/virtd",
		DriverDirs: []string{filepath.Join("/r", DefaultDriverDir)},
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("PathsFor(/r) = %+v", p)
	}
	if sys := PathsFor("", nil); sys.RunDir != "/run/virtd" || sys.DriverDirs[0] != DefaultDriverDir {
		t.Fatalf("system paths: %+v", sys)
	}
	t.Setenv("VIRTD_DRIVER_DIR", "/a::/b")
	if d := PathsFor("/r", nil).DriverDirs; !reflect.DeepEqual(d, []string{"/a", "/b"}) {
		t.Fatalf("VIRTD_DRIVER_DIR: %v", d)
	}
	if d := PathsFor("/r", []string{"/c"}).DriverDirs; !reflect.DeepEqual(d, []string{"/c"}) {
		t.Fatalf("--driver-dir wins over the environment: %v", d)
	}
}
