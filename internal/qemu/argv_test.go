package qemu

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestArgvGolden turns each testdata/argv/NAME.xml, and each input of the
// dumpxml goldens that libvirt accepts, into a QEMU command line and
// compares it with testdata/argv/NAME.args, one argument per line in the
// shape of libvirt's qemuxml2argv files. Run with -update to rewrite them.
func TestArgvGolden(t *testing.T) {
	defer func(f func() time.Time) { clockNow = f }(clockNow)
	clockNow = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	files, err := filepath.Glob("testdata/argv/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, name := range goldenDumpXMLNames(t) {
		if _, refused := libvirtRefusal(name); !refused {
			files = append(files, "testdata/dumpxml/"+name+".xml")
		}
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".xml")
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseConfig(string(doc))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			rt := runtimePaths{Monitor: "path=/run/virtd/qemu/" + c.UUID() + ".qmp", PidFile: "/run/virtd/qemu/" + c.UUID() + ".pid",
				ChannelDir: "/run/virtd/qemu/channel/" + c.UUID(), SpicePort: 5900, VSockCID: 3}
			argv, err := buildArgv(c, rt)
			if err != nil {
				t.Fatalf("argv: %v", err)
			}
			got := formatArgs(argv)
			golden := filepath.Join("testdata/argv", name+".args")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/qemu -run TestArgvGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("argv differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}

			// The normalised definition (what define stores) gives the
			// same command line again.
			out, err := c.marshal(0)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := parseConfig(out)
			if err != nil {
				t.Fatalf("re-parsing the stored definition: %v\n%s", err, out)
			}
			argv2, _ := buildArgv(c2, rt)
			if !reflect.DeepEqual(argv, argv2) {
				t.Errorf("stored definition gives another command line:\n%s", formatArgs(argv2))
			}
		})
	}
}

// formatArgs writes one option per line, its value beside it, as
// libvirt's .args files do.
func formatArgs(argv []string) string {
	var lines []string
	for i := 0; i < len(argv); i++ {
		line := shellQuote(argv[i : i+1])
		if strings.HasPrefix(argv[i], "-") && i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") {
			line += " " + shellQuote(argv[i+1:i+2])
			i++
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, " \\\n") + "\n"
}

// TestArgvFromXMLEmulator: without <emulator>, the command line starts
// with what the lookup gives for the domain's architecture, or with the
// bare qemu-system-<arch> when it gives nothing.
func TestArgvFromXMLEmulator(t *testing.T) {
	const doc = `<domain type='qemu'><name>a</name><memory unit='MiB'>64</memory></domain>`
	for _, tt := range []struct{ found, want string }{
		{"/opt/qemu/bin/qemu-system-x86_64", "/opt/qemu/bin/qemu-system-x86_64"},
		{"", "qemu-system-x86_64"},
	} {
		var asked []string
		argv, err := ArgvFromXML(doc, func(arch string) string {
			asked = append(asked, arch)
			return tt.found
		})
		if err != nil {
			t.Fatal(err)
		}
		if argv[0] != tt.want || !reflect.DeepEqual(asked, []string{"x86_64"}) {
			t.Errorf("lookup giving %q: emulator %q after asking for %q, want %q after asking for x86_64", tt.found, argv[0], asked, tt.want)
		}
		joined := strings.Join(argv, " ")
		for _, want := range []string{"-accel tcg", "-m size=65536k", "-S", "-display none", "mode=control", "acpi=off"} {
			if !strings.Contains(joined, want) {
				t.Errorf("argv lacks %q: %s", want, joined)
			}
		}
	}
}
