package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testenv"
)

// TestPathChangesReachInfo: the driver keeps the QEMU binaries it found
// (see capsCache), and a binary added to the search path, replaced in it,
// or made executable shows in the next answer.
func TestPathChangesReachInfo(t *testing.T) {
	needQEMU(t)
	real, _ := exec.LookPath("qemu-system-x86_64")
	dir, bin := t.TempDir(), t.TempDir()
	drv := newDriverWithPath(t, dir, bin)
	ctx := context.Background()
	info := func() *driver.Info {
		t.Helper()
		i, err := drv.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	if i := info(); i.Health != driver.HealthUnavailable || !strings.Contains(i.HealthReason, "no QEMU found") {
		t.Fatalf("no QEMU on the path: %+v", i)
	}

	emu := filepath.Join(bin, "qemu-system-x86_64")
	if err := os.Symlink(real, emu); err != nil {
		t.Fatal(err)
	}
	i := info()
	if i.Health != driver.HealthAvailable || i.HypervisorVersion == 0 {
		t.Fatalf("QEMU added to the path: %+v", i)
	}

	// Replaced (renamed into place, as a package upgrade does) by a
	// binary that is not QEMU: the probe of the old one is not reused.
	fake := filepath.Join(bin, ".new")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fake, emu); err != nil {
		t.Fatal(err)
	}
	if i := info(); i.Health != driver.HealthAvailable || i.HypervisorVersion != 0 {
		t.Fatalf("QEMU replaced by another binary: %+v, want no version", i)
	}

	// Not executable: not an emulator; executable again: one.
	if err := os.Chmod(emu, 0o644); err != nil {
		t.Fatal(err)
	}
	if i := info(); i.Health != driver.HealthUnavailable {
		t.Fatalf("a qemu-system-* that is not executable: %+v", i)
	}
	if err := os.Chmod(emu, 0o755); err != nil {
		t.Fatal(err)
	}
	if i := info(); i.Health != driver.HealthAvailable {
		t.Fatalf("made executable again: %+v", i)
	}
	caps, err := drv.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(caps, emu) {
		t.Errorf("capabilities list an emulator that cannot be probed:\n%s", caps)
	}
}

// TestEmulatorListKept: a search that is not racy is kept while nothing it
// read changes, and made again when a directory or a binary changes.
func TestEmulatorListKept(t *testing.T) {
	bin := t.TempDir()
	emu := filepath.Join(bin, "qemu-system-x86_64")
	if err := os.WriteFile(emu, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := searchEmulators(bin)
	if len(l.emus) != 1 || l.emus[0].path != emu || l.emus[0].arch != "x86_64" {
		t.Fatalf("found %+v", l.emus)
	}
	// Everything it read changed just now: a change in the same tick of
	// the kernel's clock would leave the stamps as they are.
	if !l.racy || l.current(bin) {
		t.Fatalf("a search right after a change is kept (racy %v)", l.racy)
	}
	l.racy = false // as if it had been made a while later
	if !l.current(bin) {
		t.Error("a list is not kept though nothing changed")
	}
	if l.current(bin + ":/nonexistent") {
		t.Error("a list is kept for another search path")
	}
	for i, s := range l.stamps {
		changed := *l
		changed.stamps = append([]driver.Stamp(nil), l.stamps...)
		changed.stamps[i].Ctime++
		if changed.current(bin) {
			t.Errorf("a change of %s is not seen", s.Path)
		}
		gone := changed
		gone.stamps[i] = driver.Stamp{Path: s.Path}
		if gone.current(bin) {
			t.Errorf("%s appearing is not seen", s.Path)
		}
	}
	if len(l.stamps) != 2 {
		t.Errorf("stamps %+v, want the directory and the binary", l.stamps)
	}
}

// BenchmarkEmulators: what Info and Capabilities pay to know the QEMU
// binaries, searching the process's PATH each time ("search", as every
// call did before the list was kept) and with the list kept ("kept").
func BenchmarkEmulators(b *testing.B) {
	path := os.Getenv("PATH")
	b.Run("search", func(b *testing.B) {
		for b.Loop() {
			searchEmulators(path)
		}
	})
	b.Run("kept", func(b *testing.B) {
		cc := newCapsCache(Config{})
		cc.list = searchEmulators(path)
		cc.list.racy = false
		for b.Loop() {
			cc.emulators()
		}
	})
}

// fakeStuckQEMU is an emulator that greets on its QMP socket (the
// listening socket the probe passes as fd 3), writes a line to stderr and
// then answers nothing.
const fakeStuckQEMU = `#!/usr/bin/env python3
import socket, sys, time
conn, _ = socket.socket(fileno=3).accept()
conn.sendall(b'{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}\n')
sys.stderr.write("fake qemu: greeted, answering nothing\n")
sys.stderr.flush()
time.sleep(600)
`

// TestStuckProbeSaysWhere: a QEMU that greets and then answers nothing
// fails the probe once its bound passes, with an error that says where
// its threads waited and what it wrote.
func TestStuckProbeSaysWhere(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.Missing(t, "python3 is not installed (the fake emulator is a Python script)")
	}
	bin := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(bin, []byte(fakeStuckQEMU), 0o755); err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { probeTimeout = d }(probeTimeout)
	probeTimeout = time.Second
	_, err := probeQEMU(context.Background(), emulator{path: bin, arch: "x86_64"})
	if err == nil {
		t.Fatal("a probe of a QEMU that answers nothing succeeded")
	}
	for _, want := range []string{"qmp_capabilities", "deadline exceeded", "threads: python3 S in ", "fake qemu: greeted, answering nothing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("probe error %q does not say %q", err, want)
		}
	}
}

// TestListenerGoesNonBlocking: the listening socket a child takes as fd 3
// is non-blocking once startListening returns, so that a QEMU main loop
// that accepts when there is nothing to accept is not stuck in accept(2)
// for good. The child waits up to ten seconds to see the flag.
func TestListenerGoesNonBlocking(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.Missing(t, "python3 is not installed (the child is a Python script)")
	}
	ln, err := listenFile(filepath.Join(t.TempDir(), "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command("python3", "-c", `import fcntl, os, sys, time
end = time.time() + 10
while not fcntl.fcntl(3, fcntl.F_GETFL) & os.O_NONBLOCK:
    if time.time() > end:
        sys.exit("fd 3 stayed blocking")
    time.sleep(0.01)
`)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := startListening(cmd, ln); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the child: %v: %s", err, stderr.String())
	}
}
