package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/internal/cgroup"
	"github.com/virtd/virtd/virt"
)

const tunedDomain = `<vcpu>2</vcpu>`
const tunedExtra = `<cputune><shares>1536</shares><period>50000</period><quota>20000</quota>
<vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='0'/></cputune>
<memtune><hard_limit unit='MiB'>768</hard_limit><soft_limit unit='MiB'>512</soft_limit></memtune>`

// runningCgroup returns the cgroup path in the runtime record of a
// running domain.
func runningCgroup(t *testing.T, drv *Driver, uuid string) string {
	t.Helper()
	rec := drv.loadRecords()
	i := slices.IndexFunc(rec, func(r *record) bool { return r.UUID == uuid })
	if i < 0 {
		t.Fatalf("no runtime record for %s", uuid)
	}
	if rec[i].Cgroup == "" {
		t.Fatalf("runtime record has no cgroup")
	}
	return rec[i].Cgroup
}

// cpusAllowed is a thread's Cpus_allowed_list.
func cpusAllowed(t *testing.T, pid, tid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Cpus_allowed_list for thread %d", tid)
	return ""
}

func cgroupGone(t *testing.T, h *cgroup.Hierarchy, rel string) {
	t.Helper()
	for _, ctrl := range qemuControllers {
		if _, err := os.Stat(filepath.Join(h.Mounts[ctrl], rel)); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still in %s after the guest stopped (%v)", rel, ctrl, err)
		}
	}
}

// TestTunedGuestCgroup starts a real QEMU (TCG, paused by -S until the
// driver has set it up) with <cputune> and <memtune>, and finds the
// values in its cgroup, QEMU in it, the pinned vCPU's affinity, and the
// cgroup gone after destroy.
func TestTunedGuestCgroup(t *testing.T) {
	needQEMU(t)
	h := hostCgroupsV1(t)
	online, _ := os.ReadFile("/sys/devices/system/cpu/online")
	if set, _ := parseCPUSet(strings.TrimSpace(string(online))); len(set) < 2 || set[1] != 1 {
		t.Skip("needs CPUs 0 and 1 online")
	}
	drv, _ := newTestDriver(t)
	d := define(t, drv, tuneXML("qemu", tunedDomain, tunedExtra))
	if _, err := drv.StartDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	rel := runningCgroup(t, drv, d.UUID)
	if !strings.HasPrefix(rel, "machine/virtd-qemu-t-"+d.UUID) {
		t.Errorf("cgroup %s", rel)
	}
	for _, f := range []struct{ ctrl, name, want string }{
		{"cpu", "cpu.shares", "1536"},
		{"cpu", "vcpu0/cpu.cfs_period_us", "50000"},
		{"cpu", "vcpu0/cpu.cfs_quota_us", "20000"},
		{"cpu", "vcpu1/cpu.cfs_quota_us", "20000"},
		// period and quota are per vCPU: the domain has none.
		{"cpu", "cpu.cfs_quota_us", "-1"},
		{"memory", "memory.limit_in_bytes", strconv.Itoa(768 << 20)},
		{"memory", "memory.soft_limit_in_bytes", strconv.Itoa(512 << 20)},
	} {
		if got := readCg(t, h, f.ctrl, rel, f.name); got != f.want {
			t.Errorf("%s/%s = %s, want %s", rel, f.name, got, f.want)
		}
	}
	pid := pidOf(t, drv, d.UUID)
	for _, ctrl := range []string{"memory", "cpuacct"} {
		procs := strings.Fields(readCg(t, h, ctrl, rel, "cgroup.procs"))
		if !slices.Contains(procs, strconv.Itoa(pid)) {
			t.Errorf("QEMU (pid %d) is not in %s's cgroup.procs: %v", pid, ctrl, procs)
		}
	}

	d2, _ := drv.doms.Find(virt.ByUUID(d.UUID))
	inst := d2.Priv.inst
	d2.Unlock()
	vcpus, err := vcpuThreads(ctxT(t), inst)
	if err != nil || len(vcpus) != 2 {
		t.Fatalf("vCPU threads %v: %v", vcpus, err)
	}
	if got := cpusAllowed(t, pid, vcpus[0]); got != "1" {
		t.Errorf("vCPU 0 (thread %d) may run on CPUs %s, want 1 (<vcpupin>)", vcpus[0], got)
	}
	if got := cpusAllowed(t, pid, pid); got != "0" {
		t.Errorf("QEMU's main thread may run on CPUs %s, want 0 (<emulatorpin>)", got)
	}
	for idx, tid := range vcpus {
		tasks := strings.Fields(readCg(t, h, "cpu", rel, fmt.Sprintf("vcpu%d/tasks", idx)))
		if !slices.Equal(tasks, []string{strconv.Itoa(tid)}) {
			t.Errorf("vcpu%d/tasks = %v, want its thread %d", idx, tasks, tid)
		}
	}

	if err := drv.DestroyDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	cgroupGone(t, h, rel)
}

// TestTunedGuestAfterDriverRestart: a driver started again finds the
// cgroup in the record, and removes it when the guest is destroyed, or at
// once for a guest that died while no driver ran.
func TestTunedGuestAfterDriverRestart(t *testing.T) {
	needQEMU(t)
	h := hostCgroupsV1(t)
	dir := t.TempDir()
	// No destroy-all cleanup on the first driver: it is closed, and
	// the second one destroys.
	drv, err := NewWithConfig(hclog.NewNullLogger(), testConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	doc := tuneXML("qemu", `<vcpu>1</vcpu>`, `<memtune><hard_limit unit='MiB'>640</hard_limit></memtune>`)
	a := define(t, drv, doc)
	b := define(t, drv, strings.Replace(doc, "<name>t</name>", "<name>dies</name>", 1))
	for _, d := range []string{a.UUID, b.UUID} {
		if _, err := drv.StartDomain(ctxT(t), d); err != nil {
			t.Fatal(err)
		}
	}
	relA, relB := runningCgroup(t, drv, a.UUID), runningCgroup(t, drv, b.UUID)
	pidA, pidB := pidOf(t, drv, a.UUID), pidOf(t, drv, b.UUID)
	drv.Close()
	if err := syscall.Kill(pidB, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !processGone(pidB) {
		time.Sleep(10 * time.Millisecond)
	}

	drv2 := newDriverOn(t, dir)
	cgroupGone(t, h, relB)
	if got := runningCgroup(t, drv2, a.UUID); got != relA {
		t.Errorf("record after restart names cgroup %s, want %s", got, relA)
	}
	if got := readCg(t, h, "memory", relA, "memory.limit_in_bytes"); got != strconv.Itoa(640<<20) {
		t.Errorf("memory.limit_in_bytes %s", got)
	}
	if err := drv2.DestroyDomain(ctxT(t), a.UUID); err != nil {
		t.Fatal(err)
	}
	if !processGone(pidA) {
		t.Errorf("QEMU %d still alive", pidA)
	}
	cgroupGone(t, h, relA)
}
