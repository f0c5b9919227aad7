package libxl

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/virt"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// TestConfigJSON builds libxl's domain configuration from each domain XML
// of the xl.cfg tests and compares libxl's own JSON rendering of it with
// testdata/libxl/NAME.json. No hypervisor is needed.
func TestConfigJSON(t *testing.T) {
	files, err := filepath.Glob("../testdata/xlconfig/roundtrip/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no domain XML inputs: %v", err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".xml")
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			m, _, err := domconfig.Parse(string(doc))
			if err != nil {
				t.Fatalf("domconfig.Parse: %v", err)
			}
			cfg, err := Build(m)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			defer cfg.Free()
			got, err := cfg.JSON()
			if err != nil {
				t.Fatal(err)
			}
			got += "\n"
			path := filepath.Join("../testdata/libxl", name+".json")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -update rewrites it)\n--- got:\n%s", path, got)
			}
		})
	}
}

// TestOpen opens a libxl context. Where no Xen hypervisor runs (no
// privcmd device), it must fail, promptly, with ErrNoHypervisor and
// libxl's own explanation; on a Xen host (dom0, as root) it must succeed.
func TestOpen(t *testing.T) {
	_, e1 := os.Stat("/dev/xen/privcmd")
	_, e2 := os.Stat("/proc/xen/privcmd")
	xen := e1 == nil || e2 == nil
	start := time.Now()
	ctx, err := Open()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v", d)
	}
	if xen {
		if err != nil {
			t.Fatalf("Open on a Xen host: %v", err)
		}
		defer ctx.Close()
		if _, err := ctx.ListDomains(); err != nil {
			t.Errorf("ListDomains: %v", err)
		}
		return
	}
	if err == nil {
		ctx.Close()
		t.Fatal("Open succeeded on a host without /dev/xen/privcmd or /proc/xen/privcmd")
	}
	if !errors.Is(err, ErrNoHypervisor) || !strings.Contains(err.Error(), "privileged command interface") {
		t.Fatalf("Open: %v; want ErrNoHypervisor naming the privileged command interface", err)
	}
	t.Logf("as expected here: %v", err)
}

func TestBuildRefuses(t *testing.T) {
	m := &domconfig.Config{Type: domconfig.PV, Name: "x", MaxVCPUs: 1, VCPUs: 1, MaxMemKiB: 1024, MemKiB: 1024,
		Disks: []domconfig.Disk{{Target: "/x", Vdev: "xvda", Format: "vmdk-nope"}}}
	if _, err := Build(m); err == nil || !strings.Contains(err.Error(), "vmdk-nope") {
		t.Fatalf("Build with an unknown disk format: %v", err)
	}
}

// Build checks the bridge and vif names again, whatever define checked.
func TestBuildRefusesBadInterfaceNames(t *testing.T) {
	for _, n := range []domconfig.NIC{
		{Bridge: "../../../etc"},
		{Bridge: "xenbr0", IfName: "vif0123456789abc"},
	} {
		m := &domconfig.Config{Type: domconfig.PV, Name: "x", MaxVCPUs: 1, VCPUs: 1, MaxMemKiB: 1024, MemKiB: 1024,
			NICs: []domconfig.NIC{n}}
		cfg, err := Build(m)
		if err == nil {
			cfg.Free()
		}
		if !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), "interface 0") || !strings.Contains(err.Error(), "interface name") {
			t.Errorf("Build with %+v: %v, want an invalid argument naming interface 0", n, err)
		}
	}
}
