package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
)

// corpusGoal is the share of the corpus that must define, start and
// round-trip.
const corpusGoal = 0.90

// netnsEnv is set in the environment of a test re-run in a network
// namespace of its own.
const netnsEnv = "VIRTD_QEMU_TEST_NETNS"

// inNetNS runs the calling test again in a network namespace it makes,
// with lo up and one more interface with a documentation address (SPICE
// resolves its listen address with AI_ADDRCONFIG, which wants an IPv4
// address on an interface other than lo, as any host has). It reports
// whether the caller is that run: the first run reports the second's
// result and returns false. Nothing the test does reaches the host's
// network.
func inNetNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) != "" {
		run(t, "ip", "link", "set", "lo", "up")
		run(t, "ip", "link", "add", "test0", "type", "veth", "peer", "name", "test1")
		run(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "test0")
		run(t, "ip", "link", "set", "test0", "up")
		return true
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		missing(t, "unshare (util-linux) is not installed")
	}
	cmd := exec.Command(unshare, "--net", "--", os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the run in a network namespace failed: %v", err)
	}
	return false
}

// TestCorpusAcceptance defines every document of testdata/corpus (the
// shapes virt-install, virt-manager, OpenStack and libvirt's documentation
// write), starts it as a real QEMU (paused at its first instruction is
// not enough: the driver lets it run), takes dumpxml, defines that again
// and checks that the definition does not change, then destroys and
// undefines it. It reports the share that passes every step and fails
// below corpusGoal; each failure is logged with its reason.
//
// Guests with bridge and tap interfaces need those devices: the test
// runs itself again in a network namespace it makes, and makes them
// there; the host's network is not touched.
func TestCorpusAcceptance(t *testing.T) {
	needQEMU(t)
	if !inNetNS(t) {
		return
	}
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.xml"))
	if err != nil || len(files) < 200 {
		t.Fatalf("the corpus has %d documents, want at least 200 (%v)", len(files), err)
	}
	drv, _ := newTestDriver(t)
	ctx := ctxT(t)
	made := map[string]bool{}
	failures := map[string][]string{}
	passed := 0
	for _, f := range files {
		name := filepath.Base(f)
		doc := corpusDocument(t, name)
		for _, dev := range hostDevices(doc) {
			if !made[dev.name] {
				made[dev.name] = true
				makeHostDevice(t, dev)
			}
		}
		if err := corpusRoundTrip(ctx, drv, doc); err != nil {
			reason := firstReason(err)
			failures[reason] = append(failures[reason], name)
			continue
		}
		passed++
	}
	share := float64(passed) / float64(len(files))
	t.Logf("corpus: %d of %d documents define, start and round-trip: %.1f%% (goal %.0f%%)", passed, len(files), 100*share, 100*corpusGoal)
	reasons := make([]string, 0, len(failures))
	for r := range failures {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool { return len(failures[reasons[i]]) > len(failures[reasons[j]]) })
	for _, r := range reasons {
		t.Logf("  %3d  %s  (%s)", len(failures[r]), r, strings.Join(failures[r], " "))
	}
	if share < corpusGoal {
		t.Errorf("only %.1f%% of the corpus passes, want at least %.0f%%", 100*share, 100*corpusGoal)
	}
}

// corpusRoundTrip defines, starts, checks and removes one document.
func corpusRoundTrip(ctx context.Context, drv *Driver, doc string) (err error) {
	d, err := drv.DefineDomain(ctx, doc)
	if err != nil {
		return fmt.Errorf("define: %w", err)
	}
	defer func() {
		if uerr := drv.UndefineDomain(ctx, d.UUID); uerr != nil && err == nil {
			err = fmt.Errorf("undefine: %w", uerr)
		}
	}()
	first, err := drv.DomainXML(ctx, d.UUID, true)
	if err != nil {
		return fmt.Errorf("dumpxml: %w", err)
	}
	if _, err := drv.DefineDomain(ctx, first); err != nil {
		return fmt.Errorf("defining dumpxml's output: %w", err)
	}
	again, err := drv.DomainXML(ctx, d.UUID, true)
	if err != nil {
		return fmt.Errorf("dumpxml: %w", err)
	}
	if again != first {
		return fmt.Errorf("round trip: defining dumpxml's output changes the definition")
	}
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer func() {
		if derr := drv.DestroyDomain(ctx, d.UUID); derr != nil && err == nil {
			err = fmt.Errorf("destroy: %w", derr)
		}
	}()
	st, _, err := drv.DomainState(ctx, d.UUID)
	if err != nil || st != virt.StateRunning {
		return fmt.Errorf("start: state %s (%v)", st, err)
	}
	return nil
}

// firstReason is an error's reason without the names and paths of one
// document, so that failures group.
func firstReason(err error) string {
	s := err.Error()
	if i := strings.Index(s, "\n"); i >= 0 {
		s = s[:i]
	}
	s = regexp.MustCompile(`domain '[^']*'`).ReplaceAllString(s, "domain 'X'")
	s = regexp.MustCompile(`/tmp/[^ ,'"]*`).ReplaceAllString(s, "/tmp/…")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

type hostDevice struct{ name, kind string }

var (
	bridgeSource = regexp.MustCompile(`<source bridge=['"]([^'"]+)['"]`)
	unmanagedTap = regexp.MustCompile(`<target dev=['"]([^'"]+)['"] managed=['"]no['"]`)
)

// hostDevices are the bridges and taps a document expects the host to
// have made.
func hostDevices(doc string) []hostDevice {
	var list []hostDevice
	for _, m := range bridgeSource.FindAllStringSubmatch(doc, -1) {
		list = append(list, hostDevice{m[1], "bridge"})
	}
	for _, m := range unmanagedTap.FindAllStringSubmatch(doc, -1) {
		list = append(list, hostDevice{m[1], "tap"})
	}
	return list
}

func makeHostDevice(t *testing.T, dev hostDevice) {
	t.Helper()
	if dev.kind == "bridge" {
		run(t, "ip", "link", "add", dev.name, "type", "bridge")
	} else {
		run(t, "ip", "tuntap", "add", "dev", dev.name, "mode", "tap")
	}
	run(t, "ip", "link", "set", dev.name, "up")
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
