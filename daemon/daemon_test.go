package daemon

import (
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"
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

// TestGovernProcs: while virtd runs, its governor holds one P, and gives
// every P back when it stops; GOMAXPROCS in the environment is left as
// set.
func TestGovernProcs(t *testing.T) {
	all := runtime.GOMAXPROCS(0)
	if all < 2 {
		t.Skip("one CPU: nothing to govern")
	}
	stop := governProcs(hclog.NewNullLogger())
	if n := runtime.GOMAXPROCS(0); n != 1 {
		stop()
		t.Fatalf("GOMAXPROCS with the governor started = %d, want 1", n)
	}
	stop()
	if n := runtime.GOMAXPROCS(0); n != all {
		t.Fatalf("GOMAXPROCS after the governor stopped = %d, want %d", n, all)
	}

	t.Setenv("GOMAXPROCS", strconv.Itoa(all))
	stop = governProcs(hclog.NewNullLogger())
	defer stop()
	if n := runtime.GOMAXPROCS(0); n != all {
		t.Fatalf("GOMAXPROCS with GOMAXPROCS set = %d, want it left at %d", n, all)
	}
}
