package xlconfig

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

const testdata = "../testdata/xlconfig"

// golden compares got with the file at path, or writes it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// canonical rewrites domain XML through libvirtxml, so that quoting and
// empty elements do not count.
func canonical(t *testing.T, doc string) string {
	t.Helper()
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	out, err := x.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func inputs(t *testing.T, dir, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testdata, dir, "*"+ext))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s files in %s: %v", ext, dir, err)
	}
	return files
}

// TestRoundTrip converts each roundtrip/NAME.xml to xl.cfg, compares with
// NAME.cfg, converts that back and expects NAME.xml again: the XML files
// are written in the form the converter produces, so nothing may be lost
// either way.
func TestRoundTrip(t *testing.T) {
	for _, xmlPath := range inputs(t, "roundtrip", ".xml") {
		name := strings.TrimSuffix(filepath.Base(xmlPath), ".xml")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(xmlPath)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := ToNative(string(in))
			if err != nil {
				t.Fatalf("ToNative: %v", err)
			}
			cfgPath := strings.TrimSuffix(xmlPath, ".xml") + ".cfg"
			golden(t, cfgPath, cfg)
			back, err := FromNative(cfg)
			if err != nil {
				t.Fatalf("FromNative: %v", err)
			}
			if want := canonical(t, string(in)); canonical(t, back) != want {
				t.Errorf("xl.cfg back to XML differs from %s\n--- got:\n%s\n--- want:\n%s", xmlPath, back, want)
			}
		})
	}
}

// TestFromNative converts xl.cfg files written the way people write them
// (old keys, positional disks, builder=, vfb) to XML.
func TestFromNative(t *testing.T) {
	for _, cfgPath := range inputs(t, "fromnative", ".cfg") {
		name := strings.TrimSuffix(filepath.Base(cfgPath), ".cfg")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromNative(string(in))
			if err != nil {
				t.Fatalf("FromNative: %v", err)
			}
			golden(t, strings.TrimSuffix(cfgPath, ".cfg")+".xml", got)
		})
	}
}

func TestRefused(t *testing.T) {
	const head = `<domain type='xen'><name>r</name><memory>1024</memory><os><type>%s</type></os>`
	for _, tc := range []struct {
		name, xml, cfg string
		kind           error
		mention        string
	}{
		{name: "sound", xml: strings.Replace(head, "%s", "hvm", 1) + `<devices><sound model='ich6'/></devices></domain>`, kind: virt.ErrNotSupported, mention: "<devices/sound>"},
		{name: "cputune", xml: strings.Replace(head, "%s", "linux", 1) + `<cputune><shares>10</shares></cputune></domain>`, kind: virt.ErrNotSupported, mention: "<cputune>"},
		{name: "spice", xml: strings.Replace(head, "%s", "hvm", 1) + `<devices><graphics type='spice'/></devices></domain>`, kind: virt.ErrNotSupported, mention: "graphics other than VNC"},
		{name: "pv-features", xml: strings.Replace(head, "%s", "linux", 1) + `<features><acpi/></features></domain>`, kind: virt.ErrNotSupported, mention: "<features> in a pv guest"},
		{name: "kvm", xml: `<domain type='kvm'><name>k</name><memory>1</memory><os><type>hvm</type></os></domain>`, kind: virt.ErrInvalidArgument, mention: "type='xen'"},
		{name: "inbound", xml: strings.Replace(head, "%s", "linux", 1) + `<devices><interface type='bridge'><source bridge='b'/><bandwidth><inbound average='1'/></bandwidth></interface></devices></domain>`, kind: virt.ErrNotSupported, mention: "inbound"},
		{name: "unknown-key", cfg: "name = \"x\"\nspice = 1\n", kind: virt.ErrNotSupported, mention: `"spice"`},
		{name: "bad-rate", cfg: "name = \"x\"\nvif = [ \"rate=fast\" ]\n", kind: virt.ErrInvalidArgument, mention: "rate"},
		{name: "syntax", cfg: "name = \"x\nmemory = 3\n", kind: virt.ErrInvalidArgument, mention: "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.xml != "" {
				_, err = ToNative(tc.xml)
			} else {
				_, err = FromNative(tc.cfg)
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v, want an error of kind %q mentioning %q", err, tc.kind, tc.mention)
			}
		})
	}
}

func TestParseSyntax(t *testing.T) {
	f, err := Parse("# comment\nname='a' ; memory = 0x100\nvif = [\n  \"mac=1\", # first\n  'bridge=b',\n]\n")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("name"); v.Str != "a" {
		t.Errorf("name = %q", v.Str)
	}
	if v, _ := f.Get("memory"); v.Kind != Number || v.Str != "0x100" {
		t.Errorf("memory = %+v", v)
	}
	if v, _ := f.Get("vif"); len(v.List) != 2 || v.List[1] != "bridge=b" {
		t.Errorf("vif = %+v", v)
	}
}
