package daemon

import (
	"path/filepath"
	"reflect"
	"testing"
)

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
