package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/virt"
)

// qmpOf starts the emulator on its own (not through the driver's probe)
// and returns a QMP session to it: what the probe found is compared with
// what QEMU says to this one.
func qmpOf(t *testing.T, emulator string) *qmp.Monitor {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "qmp")
	cmd := exec.Command(emulator, "-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx := ctxT(t)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("QEMU made no QMP socket")
		case <-time.After(10 * time.Millisecond):
		}
	}
	mon, err := qmp.Dial(ctx, sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Close() })
	return mon
}

// emulatorView is what the emulator offers (before the driver's filter).
func emulatorView(t *testing.T, drv *Driver, machineName, virtType string) (*libvirtxml.DomainCaps, domainCapsInput) {
	t.Helper()
	emus := drv.caps.emulators()
	i := slices.IndexFunc(emus, func(e emulator) bool { return e.arch == "x86_64" })
	if i < 0 {
		t.Fatal("no qemu-system-x86_64 found")
	}
	p, err := drv.caps.probe(ctxT(t), emus[i])
	if err != nil {
		t.Fatal(err)
	}
	in := domainCapsInput{probe: p, arch: "x86_64", qemuArch: "x86_64", machine: p.findMachine(machineName), virtType: virtType, swtpm: true}
	return emulatorDomainCaps(in), in
}

func enumOf(enums []libvirtxml.DomainCapsEnum, name string) []string {
	for _, e := range enums {
		if e.Name == name {
			return e.Values
		}
	}
	return nil
}

func cpuMode(c *libvirtxml.DomainCaps, name string) *libvirtxml.DomainCapsCPUMode {
	for i := range c.CPU.Modes {
		if c.CPU.Modes[i].Name == name {
			return &c.CPU.Modes[i]
		}
	}
	return nil
}

// TestEmulatorDomainCapsMatchQEMU: what domain capabilities say the
// emulator offers is what the emulator itself answers over QMP.
func TestEmulatorDomainCapsMatchQEMU(t *testing.T) {
	needQEMU(t)
	drv, _ := newTestDriver(t)
	caps, in := emulatorView(t, drv, "pc", "qemu")
	if _, err := caps.Marshal(); err != nil {
		t.Fatal(err)
	}
	mon := qmpOf(t, in.probe.Path)
	ctx := ctxT(t)

	var machines []struct {
		Name   string `json:"name"`
		Alias  string `json:"alias"`
		CPUMax int    `json:"cpu-max"`
	}
	if err := mon.Execute(ctx, "query-machines", nil, &machines); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(machines, func(m struct {
		Name   string `json:"name"`
		Alias  string `json:"alias"`
		CPUMax int    `json:"cpu-max"`
	}) bool {
		return m.Alias == "pc"
	})
	if i < 0 || caps.Machine != machines[i].Name || caps.VCPU.Max != uint(machines[i].CPUMax) {
		t.Errorf("machine %s, vcpu max %d; QEMU says pc is %+v", caps.Machine, caps.VCPU.Max, machines)
	}

	// CPU models, and their usability under TCG.
	var defs []struct {
		Name        string   `json:"name"`
		Unavailable []string `json:"unavailable-features"`
	}
	if err := mon.Execute(ctx, "query-cpu-definitions", nil, &defs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, d := range defs {
		if d.Name != "max" && d.Name != "host" && d.Name != "base" {
			want[d.Name] = yesNo(len(d.Unavailable) == 0)
		}
	}
	got := map[string]string{}
	for _, m := range cpuMode(caps, "custom").Models {
		got[m.Name] = m.Usable
	}
	if len(got) != len(want) || len(got) < 10 {
		t.Errorf("%d custom models, QEMU has %d", len(got), len(want))
	}
	for name, u := range want {
		if got[name] != u {
			t.Errorf("model %s usable %q, QEMU says %q", name, got[name], u)
		}
	}
	if got["qemu64"] != "yes" || want["host"] != "" {
		t.Errorf("qemu64 usable %q; the host model is listed: %q", got["qemu64"], got["host"])
	}
	if m := cpuMode(caps, "host-passthrough"); m.Supported != "no" {
		t.Errorf("host-passthrough under TCG: %+v", m)
	}
	if m := cpuMode(caps, "maximum"); m.Supported != "yes" {
		t.Errorf("maximum under TCG: %+v", m)
	}
	// host-model is max: qemu64 with the features max adds, such as
	// one qemu64 lacks and TCG emulates.
	var maxExp struct {
		Model struct {
			Props map[string]any `json:"props"`
		} `json:"model"`
	}
	if err := mon.Execute(ctx, "query-cpu-model-expansion", map[string]any{"type": "full", "model": map[string]string{"name": "max"}}, &maxExp); err != nil {
		t.Fatal(err)
	}
	hm := cpuMode(caps, "host-model")
	if hm.Supported != "yes" || len(hm.Models) != 1 || hm.Models[0].Name != "qemu64" || len(hm.Features) == 0 {
		t.Fatalf("host-model: %+v", hm)
	}
	for _, f := range hm.Features {
		if on, _ := maxExp.Model.Props[f.Name].(bool); on != (f.Policy == "require") {
			t.Errorf("host-model feature %+v; max has %s=%v", f, f.Name, maxExp.Model.Props[f.Name])
		}
	}

	// Device models, by the QOM types QEMU lists.
	var types []struct {
		Name string `json:"name"`
	}
	if err := mon.Execute(ctx, "qom-list-types", map[string]any{"abstract": false}, &types); err != nil {
		t.Fatal(err)
	}
	have := func(n string) bool {
		return slices.ContainsFunc(types, func(x struct {
			Name string `json:"name"`
		}) bool {
			return x.Name == n
		})
	}
	d := caps.Devices
	for _, c := range []struct {
		what   string
		values []string
		value  string
		qom    string
	}{
		{"video", enumOf(d.Video.Enums, "modelType"), "qxl", "qxl-vga"},
		{"video", enumOf(d.Video.Enums, "modelType"), "cirrus", "cirrus-vga"},
		{"video", enumOf(d.Video.Enums, "modelType"), "bochs", "bochs-display"},
		{"video", enumOf(d.Video.Enums, "modelType"), "ramfb", "ramfb"},
		{"disk bus", enumOf(d.Disk.Enums, "bus"), "virtio", "virtio-blk-pci"},
		{"disk bus", enumOf(d.Disk.Enums, "bus"), "usb", "usb-storage"},
		{"rng", enumOf(d.RNG.Enums, "model"), "virtio", "virtio-rng-pci"},
		{"filesystem", enumOf(d.FileSystem.Enums, "driverType"), "virtiofs", "vhost-user-fs-pci"},
		{"redirdev", enumOf(d.Redirdev.Enums, "bus"), "usb", "usb-redir"},
		{"panic", enumOf(d.Panic.Enums, "model"), "isa", "pvpanic"},
	} {
		if slices.Contains(c.values, c.value) != have(c.qom) {
			t.Errorf("%s %s listed: %v; QEMU has %s: %v", c.what, c.value, c.values, c.qom, have(c.qom))
		}
	}
	if !have("vmcoreinfo") || caps.Features.VMCoreInfo.Supported != "yes" || caps.Features.GenID.Supported != yesNo(have("vmgenid")) {
		t.Errorf("features: %+v", caps.Features)
	}
	var tpmModels []string
	if err := mon.Execute(ctx, "query-tpm-models", nil, &tpmModels); err != nil {
		t.Fatal(err)
	}
	slices.Sort(tpmModels)
	if m := enumOf(d.TPM.Enums, "model"); !slices.Equal(m, tpmModels) {
		t.Errorf("tpm models %v, QEMU has %v", m, tpmModels)
	}
	spice := mon.Execute(ctx, "query-spice", nil, nil) == nil
	if g := enumOf(d.Graphics.Enums, "type"); slices.Contains(g, "spice") != spice || !slices.Contains(g, "vnc") {
		t.Errorf("graphics %v, QEMU has spice: %v", g, spice)
	}
	// No IDE on q35; the emulator's ide-hd is behind i440fx's controller.
	if q35, _ := emulatorView(t, drv, "q35", "qemu"); slices.Contains(enumOf(q35.Devices.Disk.Enums, "bus"), "ide") || !strings.HasPrefix(q35.Machine, "pc-q35-") {
		t.Errorf("q35 (%s) has ide: %v", q35.Machine, q35.Devices.Disk.Enums)
	}
	// Under KVM the probe (TCG's) cannot tell a model's usability.
	kvm, _ := emulatorView(t, drv, "pc", "kvm")
	if cpuMode(kvm, "host-passthrough").Supported != "yes" || cpuMode(kvm, "custom").Models[0].Usable != "unknown" {
		t.Errorf("kvm cpu: %+v", kvm.CPU)
	}
}

// TestDomainCapsFirmware: the loaders and firmware offered are those of
// the descriptors that run the machine.
func TestDomainCapsFirmware(t *testing.T) {
	etc, share := t.TempDir(), t.TempDir()
	desc := func(dir, name, code, machines string, features ...string) {
		t.Helper()
		d := map[string]any{
			"interface-types": []string{"uefi"},
			"mapping":         map[string]any{"device": "flash", "executable": map[string]string{"filename": code}},
			"targets":         []map[string]any{{"architecture": "x86_64", "machines": strings.Fields(machines)}},
			"features":        features,
		}
		b, _ := json.Marshal(d)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	desc(share, "50-secure.json", "/fw/SECURE.fd", "pc-q35-*", "secure-boot", "requires-smm")
	desc(share, "60-plain.json", "/fw/PLAIN.fd", "pc-i440fx-* pc-q35-*")
	desc(share, "70-masked.json", "/fw/MASKED.fd", "pc-i440fx-*")
	desc(share, "80-replaced.json", "/fw/OLD.fd", "pc-i440fx-*")
	desc(etc, "80-replaced.json", "/fw/NEW.fd", "pc-i440fx-*")
	if err := os.WriteFile(filepath.Join(etc, "70-masked.json"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "90-broken.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	fws := readFirmware([]string{etc, share}).fws
	p := &probeResult{Machines: []machine{{Name: "pc-i440fx-7.2"}, {Name: "pc-q35-7.2"}, {Name: "microvm"}}}
	for _, c := range []struct {
		machine, loaders, secure, firmware string
	}{
		{"pc-i440fx-7.2", "[/fw/PLAIN.fd /fw/NEW.fd]", "[no]", "[bios efi]"},
		{"pc-q35-7.2", "[/fw/SECURE.fd /fw/PLAIN.fd]", "[yes no]", "[bios efi]"},
		{"microvm", "[]", "[]", "[bios]"},
	} {
		caps := emulatorDomainCaps(domainCapsInput{probe: p, arch: "x86_64", qemuArch: "x86_64", machine: p.findMachine(c.machine), virtType: "qemu", firmware: fws})
		l := caps.OS.Loader
		if got := strings.Join(strings.Fields("["+strings.Join(l.Values, " ")+"]"), " "); got != c.loaders ||
			"["+strings.Join(enumOf(l.Enums, "secure"), " ")+"]" != c.secure ||
			"["+strings.Join(enumOf(caps.OS.Enums, "firmware"), " ")+"]" != c.firmware ||
			l.Supported != yesNo(c.loaders != "[]") {
			t.Errorf("%s: loader %+v, firmware %v; want loaders %s, secure %s, firmware %s", c.machine, l, caps.OS.Enums, c.loaders, c.secure, c.firmware)
		}
	}
}

// TestHonourDomainCaps: a value stays when the driver accepts a
// definition that uses it, and only then.
func TestHonourDomainCaps(t *testing.T) {
	p := &probeResult{
		Path:     "/bin/qemu",
		Machines: []machine{{Name: "pc-i440fx-7.2", CPUMax: 255}},
		domainProbe: domainProbe{
			CPUModels: []cpuModel{{Name: "qemu64", Usable: true}},
			HostModel: hostModel{Base: "qemu64", Require: []string{"avx"}},
			Types:     []string{"virtio-blk-pci", "ide-hd", "ide-cd", "qxl-vga", "VGA", "virtio-rng-pci", "rng-random", "vmcoreinfo"},
			VNC:       true,
		},
	}
	in := domainCapsInput{probe: p, arch: "x86_64", qemuArch: "x86_64", machine: &p.Machines[0], virtType: "qemu"}
	full := emulatorDomainCaps(in)
	want, _ := full.Marshal()

	all := emulatorDomainCaps(in)
	honourDomainCaps(all, in, func(string) bool { return true })
	if got, _ := all.Marshal(); got != want {
		t.Errorf("a driver that accepts everything loses values:\n%s\nwant\n%s", got, want)
	}

	none := emulatorDomainCaps(in)
	honourDomainCaps(none, in, func(string) bool { return false })
	doc, _ := none.Marshal()
	if strings.Count(doc, `supported="yes"`) != 1 || strings.Contains(doc, "<value>") || none.VCPU.Max != 0 {
		t.Errorf("a driver that accepts nothing is offered something:\n%s", doc)
	}
	if none.OS.Supported != "yes" { // a domain has an <os>
		t.Errorf("os: %+v", none.OS)
	}

	// Only what the driver takes: vga video, virtio disks that are not
	// cdroms, at most 8 vCPUs.
	some := emulatorDomainCaps(in)
	var docs int
	honourDomainCaps(some, in, func(d string) bool {
		docs++
		x := &libvirtxml.Domain{}
		if err := x.Unmarshal(d); err != nil {
			t.Fatalf("%v\n%s", err, d)
		}
		if x.VCPU != nil {
			return x.VCPU.Value <= 8
		}
		for _, v := range x.Devices.Videos {
			return v.Model.Type == "vga"
		}
		for _, dk := range x.Devices.Disks {
			return dk.Target.Bus == "virtio" && dk.Device == "disk"
		}
		return false
	})
	if some.VCPU.Max != 8 || !slices.Equal(enumOf(some.Devices.Video.Enums, "modelType"), []string{"vga"}) ||
		!slices.Equal(enumOf(some.Devices.Disk.Enums, "diskDevice"), []string{"disk"}) ||
		!slices.Equal(enumOf(some.Devices.Disk.Enums, "bus"), []string{"virtio"}) ||
		some.Devices.RNG.Supported != "no" || some.Features.VMCoreInfo.Supported != "no" || cpuMode(some, "custom").Supported != "no" {
		doc, _ := some.Marshal()
		t.Errorf("after the filter (%d documents tried):\n%s", docs, doc)
	}
}

// TestDomainCapsProbedOnce: domain capabilities cost one QEMU start per
// binary: a second call, and a driver restarted on the same run
// directory, start none; a binary touched, replaced by another one, or a
// cache file of an older format makes the next call probe again.
func TestDomainCapsProbedOnce(t *testing.T) {
	needQEMU(t)
	real, _ := exec.LookPath("qemu-system-x86_64")
	dir, bin := t.TempDir(), t.TempDir()
	emu := filepath.Join(bin, "qemu-system-x86_64")
	install := func(extra string) {
		t.Helper()
		src, err := os.Open(real)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		tmp := filepath.Join(bin, ".new")
		dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		// Bytes after the ELF's end change the file, not the program.
		if _, err := dst.WriteString(extra); err != nil {
			t.Fatal(err)
		}
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, emu); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of QEMU looks for its modules beside itself: point it to
	// the installed ones.
	if mods := "/usr/lib/x86_64-linux-gnu/qemu"; filepath.Dir(real) == "/usr/bin" {
		t.Setenv("QEMU_MODULE_DIR", mods)
	}
	install("")
	ctx := ctxT(t)
	call := func(drv *Driver, wantLaunches int64, when string) string {
		t.Helper()
		doc, err := drv.DomainCapabilities(ctx, emu, "", "pc", "qemu")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if n := drv.caps.launches.Load(); n != wantLaunches {
			t.Errorf("%s: %d QEMU launches in all, want %d", when, n, wantLaunches)
		}
		return doc
	}
	drv := newDriverWithPath(t, dir, bin)
	first := call(drv, 1, "first call")
	if !strings.Contains(first, "<path>"+emu+"</path>") {
		t.Fatalf("first call:\n%s", first)
	}
	call(drv, 1, "second call")
	if _, err := drv.DomainCapabilities(ctx, emu, "", "q35", "qemu"); err != nil || drv.caps.launches.Load() != 1 {
		t.Errorf("another machine: %v, %d launches", err, drv.caps.launches.Load())
	}

	restarted := newDriverWithPath(t, dir, bin)
	if again := call(restarted, 0, "after a restart"); again != first {
		t.Errorf("after a restart:\n%s\nwant\n%s", again, first)
	}

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(emu, later, later); err != nil {
		t.Fatal(err)
	}
	call(restarted, 1, "binary touched")
	call(restarted, 1, "binary touched, second call")

	install("another build")
	call(restarted, 2, "binary replaced")
	call(newDriverWithPath(t, dir, bin), 0, "binary replaced, after a restart")

	// A cache file of the format before: probed again, as the fields it
	// lacks would answer empty.
	file := restarted.caps.cacheFile(emu)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var old map[string]any
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	old["format"] = probeFormat - 1
	b, _ = json.Marshal(old)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	call(newDriverWithPath(t, dir, bin), 1, "a cache file of an older format")
}

// TestDomainCapabilitiesRefusals: errors name the value refused.
func TestDomainCapabilitiesRefusals(t *testing.T) {
	needQEMU(t)
	drv, _ := newTestDriver(t)
	ctx := ctxT(t)
	for _, c := range []struct{ emulator, arch, machine, virtType, named string }{
		{"/usr/bin/true", "", "", "", `"/usr/bin/true"`},
		{"", "sparc99", "", "", `"sparc99"`},
		{"", "", "pc-nonesuch-1.0", "qemu", `"pc-nonesuch-1.0"`},
		{"", "", "none", "qemu", `"none"`},
		{"", "", "", "xen", `"xen"`},
	} {
		_, err := drv.DomainCapabilities(ctx, c.emulator, c.arch, c.machine, c.virtType)
		if !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), c.named) {
			t.Errorf("DomainCapabilities(%+v) = %v, want an invalid argument naming %s", c, err, c.named)
		}
	}
}

func benchDomainCaps(b *testing.B, cold bool) {
	needQEMU(b)
	drv, _ := newTestDriver(b)
	ctx := context.Background()
	for b.Loop() {
		if cold {
			b.StopTimer()
			cc := drv.caps
			cc.mu.Lock()
			clear(cc.probes)
			clear(cc.domcaps)
			cc.mu.Unlock()
			if err := os.RemoveAll(filepath.Dir(cc.cacheFile("x"))); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if _, err := drv.DomainCapabilities(ctx, "", "x86_64", "pc", "qemu"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDomainCapabilitiesColdCache: a first call, with nothing cached
// in memory or on disk: one QEMU probe.
func BenchmarkDomainCapabilitiesColdCache(b *testing.B) { benchDomainCaps(b, true) }

// BenchmarkDomainCapabilitiesWarm: every later call.
func BenchmarkDomainCapabilitiesWarm(b *testing.B) { benchDomainCaps(b, false) }
