package domxml

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
)

func TestCheckName(t *testing.T) {
	for _, name := range []string{
		"a", "vm ü 1", "debian-12.4_x86", strings.Repeat("n", MaxNameLen), strings.Repeat("ü", MaxNameLen/2),
		"...", ".hidden", "a..b", "日本語のゲスト",
	} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, tc := range []struct{ name, rule string }{
		{"", "empty"},
		{strings.Repeat("n", MaxNameLen+1), "at most 255 bytes"},
		{strings.Repeat("x", 1<<20), "at most 255 bytes"},
		{strings.Repeat("ü", MaxNameLen/2+1), "at most 255 bytes"},
		{"a\xffb", "UTF-8"},
		{"a/b", "'/'"},
		{"/", "'/'"},
		{".", `"." or ".."`},
		{"..", `"." or ".."`},
		{"a\nb", "control characters (it has U+000A)"},
		{"a\tb", "control characters (it has U+0009)"},
		{"a\rb", "control characters"},
		{"a\x00b", "control characters"},
		{"a\x7fb", "control characters (it has U+007F)"},
		{"a\u0085b", "control characters (it has U+0085)"},
		{"a\u009fb", "control characters (it has U+009F)"},
	} {
		err := CheckName(tc.name)
		if !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("CheckName(%.20q) = %v, want an invalid argument", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.rule) {
			t.Errorf("CheckName(%.20q) = %q, want it to state the rule %q", tc.name, err, tc.rule)
		}
		if len(err.Error()) > 300 {
			t.Errorf("CheckName(%.20q): the error quotes the whole name (%d bytes)", tc.name, len(err.Error()))
		}
	}
}

func TestPeekName(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`<domain type='kvm'><name>vm1</name><memory>1</memory></domain>`, "vm1"},
		{"<?xml version='1.0'?>\n<!-- c -->\n<domain>\n  <uuid>x</uuid>\n  <name>\n    spaced name \n  </name>", "spaced name"},
		{`<domain><devices><disk><name>not this</name></disk></devices><name>vm ü</name>`, "vm ü"},
		{`<domain><name>a&#10;b</name></domain>`, "a\nb"},
		{`<domain><name>a<b>x</b>c</name></domain>`, "ac"},
		// It stops at the name: what comes after is not read.
		{`<domain><name>early</name><broken`, "early"},
	} {
		got, err := PeekName(tc.doc)
		if err != nil || got != tc.want {
			t.Errorf("PeekName(%q) = %q, %v; want %q", tc.doc, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ doc, why string }{
		{`<domain><memory>1</memory></domain>`, "no <name>"},
		{``, "no <domain>"},
		{`<network><name>n</name></network>`, "root element is <network>"},
		{`<domain><memory>1</memory><broken`, "malformed"},
		{`<domain><name>unclosed</domain>`, "malformed"},
		{"<domain><title>\xff</title><name>a</name></domain>", "not valid UTF-8 (line 1, byte 15)"},
	} {
		_, err := PeekName(tc.doc)
		if !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("PeekName(%q) = %v, want an invalid argument saying %q", tc.doc, err, tc.why)
		}
	}
}

func TestCheckDocName(t *testing.T) {
	if name, err := CheckDocName(`<domain><name> ok </name></domain>`); name != "ok" || err != nil {
		t.Errorf("CheckDocName = %q, %v", name, err)
	}
	for _, doc := range []string{
		`<domain><name>..</name></domain>`,
		`<domain><name>a&#9;b</name></domain>`,
		`<domain><name>  </name></domain>`,
		`<domain/>`,
	} {
		if name, err := CheckDocName(doc); !errors.Is(err, virt.ErrInvalidArgument) || name != "" {
			t.Errorf("CheckDocName(%q) = %q, %v; want an invalid argument", doc, name, err)
		}
	}
}

// TestParseRealisticDocuments parses documents written the way libvirt,
// virt-install, virt-manager and people write them (testdata/valid): no
// element or attribute of them may be taken for unknown.
func TestParseRealisticDocuments(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.xml")
	if len(files) < 5 {
		t.Fatalf("only %d documents in testdata/valid", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			x, err := Parse(string(b))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if x.Name == "" || strings.TrimSpace(x.Name) != x.Name {
				t.Errorf("Parse: name %q", x.Name)
			}
		})
	}
}

func TestParseRefusesUnknown(t *testing.T) {
	const head = `<domain type='kvm'><name>g</name><memory>1024</memory>`
	for _, tc := range []struct{ name, doc, want string }{
		{"element in devices", head + "<devices><disc/></devices></domain>", "domain/devices/disc: unknown element (line 1)"},
		{"element at the top", head + "<cpus>2</cpus></domain>", "domain/cpus: unknown element"},
		{"element with content", head + "<devices><disk type='file'><source file='/x'/><target dev='vda'/><cachemode>none</cachemode></disk></devices></domain>",
			"domain/devices/disk/cachemode: unknown element"},
		{"attribute", head + "<devices><disk type='file' bogus='1'><source file='/x'/><target dev='vda'/></disk></devices></domain>",
			"domain/devices/disk/@bogus: unknown attribute"},
		{"attribute deep", head + "<devices><interface type='user'><model type='virtio' speed='10'/></interface></devices></domain>",
			"domain/devices/interface/model/@speed: unknown attribute"},
		{"attribute of the root", "<domain type='kvm' kind='x'><name>g</name></domain>", "domain/@kind: unknown attribute"},
		{"second disk of two", head + "<devices><disk type='file'><source file='/a'/><target dev='vda'/></disk>\n<disk type='file'><source file='/b'/><target dev='vdb' buss='virtio'/></disk></devices></domain>",
			"domain/devices/disk/target/@buss: unknown attribute (line 2)"},
		{"namespaced element libvirtxml lacks", head + "<foo:bar xmlns:foo='urn:foo'/></domain>", "domain/{urn:foo}bar: unknown element"},
		{"unknown qemu element", "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>g</name><qemu:commandline><qemu:argh value='x'/></qemu:commandline></domain>",
			"domain/qemu:commandline/qemu:argh: unknown element"},
		{"repeated name", head + "<name>other</name></domain>", "domain/name: element not valid here"},
		{"attribute of another source type", head + "<devices><disk type='file'><source dev='/dev/sda'/><target dev='vda'/></disk></devices></domain>",
			"domain/devices/disk/source: element not valid here"},
		{"unknown disk type", head + "<devices><disk type='tape'><target dev='vda'/></disk></devices></domain>",
			"domain/devices/disk/@type: attribute not valid here (value \"tape\""},
		{"empty unknown element", head + "<features><acpi/><apci/></features></domain>", "domain/features/apci: unknown element"},
		{"text after the root", head + "</domain>trailing", "text outside the root element"},
		{"element after the root", head + "</domain><domain/>", "after the root element"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.doc)
			if !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an invalid argument containing %q", err, tc.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"empty elements libvirtxml omits", `<domain type='kvm'><name>g</name><title/><description></description><iothreads>0</iothreads><bootloader/></domain>`},
		{"empty attributes libvirtxml omits", `<domain type='kvm'><name>g</name><memory unit='' dumpCore=''>1024</memory><devices><graphics type='vnc' port='0' autoport='yes'/></devices></domain>`},
		{"any metadata", `<domain type='kvm'><name>g</name><metadata><app:x xmlns:app="urn:x" weird="1"><app:y>v</app:y></app:x><other/></metadata></domain>`},
		{"xmlns declarations", `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0' xmlns:unused='urn:u'><name>g</name></domain>`},
		{"children in libvirt's order or not", `<domain type='kvm'><devices><interface type='user'/><disk type='file'><target dev='vda'/><source file='/a'/></disk><interface type='user'/></devices><memory>1</memory><name>g</name></domain>`},
		{"live XML", `<domain type='kvm' id='4'><name>g</name><devices><console type='pty' tty='/dev/pts/2'><source path='/dev/pts/2'/><target type='serial' port='0'/><alias name='serial0'/></console></devices></domain>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.doc); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func TestParseRefusesBadNamesAndDocuments(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`<domain type='kvm'><memory>1</memory></domain>`, "no <name>"},
		{`<domain type='kvm'><name> </name></domain>`, "no <name>"},
		{`<domain type='kvm'><name>a/b</name></domain>`, "'/'"},
		{`<domain type='kvm'><name>..</name></domain>`, `".."`},
		{`<domain type='kvm'><name>a&#10;b</name></domain>`, "control characters"},
		{"<domain type='kvm'><name>g</name><description>\xc3</description></domain>", "not valid UTF-8"},
		{`<domain type='kvm'><name>g</name>`, "malformed"},
		{`<network><name>g</name></network>`, "malformed"},
	} {
		_, err := Parse(tc.doc)
		if !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an invalid argument containing %q", tc.doc, err, tc.want)
		}
	}
}
