package lxc

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/virt"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/lxcconf2xml")

// TestDomainXMLFromNative converts every testdata/lxcconf2xml/*.config and
// compares with <name>.xml, or with <name>.err for configurations that
// must be refused. The cases are modelled on libvirt's lxcconf2xml tests.
func TestDomainXMLFromNative(t *testing.T) {
	drv, err := NewWithOptions(hclog.NewNullLogger(), Options{
		ConfigDir: t.TempDir(), RunDir: t.TempDir(), LogDir: t.TempDir(), StateDir: t.TempDir(), NoAutostart: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	configs, _ := filepath.Glob("testdata/lxcconf2xml/*.config")
	if len(configs) < 10 {
		t.Fatalf("only %d golden cases found", len(configs))
	}
	for _, cfg := range configs {
		name := strings.TrimSuffix(filepath.Base(cfg), ".config")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, convErr := drv.DomainXMLFromNative(ctx, NativeFormat, string(in))
			golden := strings.TrimSuffix(cfg, ".config") + ".xml"
			if convErr != nil {
				if !errors.Is(convErr, virt.ErrInvalidArgument) {
					t.Errorf("error %q has kind %v, want invalid argument", convErr, virt.KindOf(convErr))
				}
				golden = strings.TrimSuffix(cfg, ".config") + ".err"
				got = convErr.Error()
			}
			got += "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s: got\n%s\nwant\n%s", golden, got, want)
			}
			if convErr != nil {
				return
			}
			// What the import produces, the driver accepts.
			d, err := drv.DefineDomain(ctx, got)
			if err != nil {
				t.Fatalf("DefineDomain of the imported XML: %v", err)
			}
			_ = drv.UndefineDomain(ctx, d.UUID)
		})
	}
	if _, err := drv.DomainXMLFromNative(ctx, "xen-xm", "x"); !errors.Is(err, virt.ErrNotSupported) {
		t.Errorf("format xen-xm: %v, want not supported", err)
	}
	if _, err := drv.DomainXMLToNative(ctx, NativeFormat, "<domain/>"); !errors.Is(err, virt.ErrNotSupported) {
		t.Errorf("DomainXMLToNative: %v, want not supported", err)
	}
}
