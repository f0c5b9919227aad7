package qemu

import (
	"os"
	"strings"
	"testing"
)

// TestDumpXMLMatchesLibvirt defines each testdata/dumpxml/NAME.xml and
// compares the stored definition, what dumpxml --inactive shows, with what
// libvirt 9.0 showed for the same input (NAME.libvirt.xml, written by
// testdata/dumpxml/regen.sh). Every difference must be listed, with its
// reason, in NAME.diff. An input libvirt refused (NAME.libvirt.err) must
// be refused here too. Defining the output again gives the same document.
func TestDumpXMLMatchesLibvirt(t *testing.T) {
	needQEMU(t) // the machine types come from the emulator, as at define
	drv, _ := newTestDriver(t)
	for _, name := range goldenDumpXMLNames(t) {
		t.Run(name, func(t *testing.T) {
			doc := readGolden(t, "testdata/dumpxml/"+name+".xml")
			c, err := parseConfig(doc)
			if msg, refused := libvirtRefusal(name); refused {
				if err == nil {
					t.Fatalf("accepted what libvirt refuses (%s)", strings.TrimSpace(msg))
				}
				return
			}
			if err == nil {
				err = drv.checkHost(c, false)
			}
			if err == nil {
				err = drv.resolveMachine(ctxT(t), c)
			}
			if err != nil {
				t.Fatalf("define: %v", err)
			}
			ours, err := c.marshal(0)
			if err != nil {
				t.Fatal(err)
			}
			compareWithLibvirt(t, name, ours)
			c2, err := parseConfig(ours)
			if err != nil {
				t.Fatalf("defining the dumpxml output again: %v", err)
			}
			again, _ := c2.marshal(0)
			if again != ours {
				t.Errorf("defining the dumpxml output again gives another document:\n%s\n--- first\n%s", again, ours)
			}
		})
	}
}

func readGolden(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
