package qemu

import (
	"bufio"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// TestGraphicsConsolesAnswer starts, in a network namespace of its own, a guest with a VNC and a SPICE console,
// each with autoport, and talks to both on the ports the live XML shows:
// VNC sends its RFB greeting, SPICE answers a link message for the main
// channel with no error. The balloon polls the guest's statistics at the
// period the definition gives.
func TestGraphicsConsolesAnswer(t *testing.T) {
	needQEMU(t)
	if !inNetNS(t) {
		return
	}
	drv, _ := newTestDriver(t)
	ctx := ctxT(t)
	d := define(t, drv, `<domain type='qemu'><name>consoles</name><memory unit='MiB'>128</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices>
  <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
  <graphics type='spice' autoport='yes' listen='127.0.0.1'/>
  <video><model type='qxl'/></video>
  <sound model='ich6'/>
  <memballoon model='virtio'><stats period='7'/></memballoon>
</devices></domain>`)
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	doc, err := drv.DomainXML(ctx, d.UUID, false)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	var vncPort, spicePort int
	for _, g := range x.Devices.Graphics {
		if g.VNC != nil {
			vncPort = g.VNC.Port
		}
		if g.Spice != nil {
			spicePort = g.Spice.Port
		}
	}
	// The balloon's statistics period is set once QEMU runs.
	var period int
	inst := guestInstance(t, drv, d.UUID)
	if err := inst.mon.Execute(ctx, "qom-get", map[string]any{"path": balloonPath, "property": "guest-stats-polling-interval"}, &period); err != nil || period != 7 {
		t.Errorf("balloon statistics period %d (%v), want 7", period, err)
	}
	if vncPort < graphicsPortMin || spicePort < graphicsPortMin || vncPort == spicePort {
		t.Fatalf("live XML has VNC port %d and SPICE port %d, want two ports from %d on:\n%s", vncPort, spicePort, graphicsPortMin, doc)
	}

	c := dial(t, vncPort)
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "RFB 003.") {
		t.Errorf("VNC on port %d greets %q (%v), want RFB 003.x", vncPort, greeting, err)
	}

	c = dial(t, spicePort)
	if _, err := c.Write(spiceLinkMessage()); err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Magic        [4]byte
		Major, Minor uint32
		Size         uint32
		Error        uint32
	}
	if err := binary.Read(c, binary.LittleEndian, &hdr); err != nil {
		t.Fatalf("SPICE on port %d: reading the link reply: %v", spicePort, err)
	}
	if string(hdr.Magic[:]) != "REDQ" || hdr.Major != 2 || hdr.Error != 0 {
		t.Errorf("SPICE link reply: magic %q, version %d.%d, error %d; want REDQ, 2.x, 0", hdr.Magic, hdr.Major, hdr.Minor, hdr.Error)
	}
}

// spiceLinkMessage is a SPICE link header and SpiceLinkMess asking for the
// main channel with no capabilities, little-endian as the protocol has it.
func spiceLinkMessage() []byte {
	const messSize = 18 // connection id, type, id, two counts, caps offset
	b := make([]byte, 0, 16+messSize)
	b = append(b, "REDQ"...)
	b = binary.LittleEndian.AppendUint32(b, 2) // major
	b = binary.LittleEndian.AppendUint32(b, 2) // minor
	b = binary.LittleEndian.AppendUint32(b, messSize)
	b = binary.LittleEndian.AppendUint32(b, 0) // connection id: a new session
	b = append(b, 1, 0)                        // channel type main, id 0
	b = binary.LittleEndian.AppendUint32(b, 0) // common caps
	b = binary.LittleEndian.AppendUint32(b, 0) // channel caps
	b = binary.LittleEndian.AppendUint32(b, messSize)
	return b
}

func dial(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// guestInstance is the running QEMU of a domain.
func guestInstance(t *testing.T, drv *Driver, uuid string) *instance {
	t.Helper()
	d, err := drv.doms.Find(virt.Lookup{UUID: uuid}) // locked
	if err != nil {
		t.Fatal(err)
	}
	defer d.Unlock()
	if d.Priv.inst == nil {
		t.Fatal("the domain is not running")
	}
	return d.Priv.inst
}
