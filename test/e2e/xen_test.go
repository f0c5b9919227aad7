package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
)

// On a host with no Xen hypervisor (ours), the Xen driver starts, says it
// is unavailable and why, and answers every domain call at once with that
// reason, while the other drivers serve as usual.
func TestXenUnavailableEndToEnd(t *testing.T) {
	d := newDaemon(t, []string{"test", "xen"})
	const reason = "no Xen hypervisor on this host: cannot open the privileged command interface"

	start := time.Now()
	_, errs, code := d.virtsh("-c", "xen:///system", "list")
	if code == 0 || !strings.Contains(errs, reason) {
		t.Fatalf("virtsh -c xen:///system list: exit %d, %q; want the reason %q", code, errs, reason)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("the Xen driver took %s to refuse", el)
	}
	c := d.open("xen:///system")
	if _, err := c.ListDomains(ctxT(t), 0); !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("list through the client: %v", err)
	}
	st := d.driverStatus("xen")
	if st.State != "running" || st.Health != "unavailable" || !strings.Contains(st.HealthReason, reason) {
		t.Fatalf("admin view of the Xen driver: %+v", st)
	}
	out := d.mustVirtsh("drivers")
	if !strings.Contains(out, "xen") || !strings.Contains(out, "unavailable") {
		t.Fatalf("virtsh drivers does not show the Xen driver's health:\n%s", out)
	}
	// Conversion needs no hypervisor.
	native := d.mustVirtsh("-c", "xen:///system", "domxml-to-native", "xen-xl", writeXenXML(t))
	if !strings.Contains(native, `name = "xenpv"`) {
		t.Fatalf("domxml-to-native xen-xl: %q", native)
	}
	// The other drivers are untouched.
	if _, err := d.open("test:///default").LookupByName(ctxT(t), "test"); err != nil {
		t.Fatal(err)
	}
}

func writeXenXML(t *testing.T) string {
	path := t.TempDir() + "/xenpv.xml"
	x := `<domain type='xen'>
  <name>xenpv</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os><type>linux</type><kernel>/boot/vmlinuz</kernel><cmdline>root=/dev/xvda1</cmdline></os>
</domain>`
	if err := writeFile(path, x); err != nil {
		t.Fatal(err)
	}
	return path
}
