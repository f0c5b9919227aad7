package virtsh

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func parsesAsProfile(t *testing.T, path string) *profile.Profile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("%s does not parse as a pprof profile: %v", path, err)
	}
	return p
}

// onlyFiles fails unless dir holds exactly the named files: no temporary
// file is left behind.
func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func TestProfile(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	heap := filepath.Join(dir, "heap.pprof")
	if out := h.ok("profile", "--heap", heap); out != "heap profile of virtd written to "+heap+"\n\n" {
		t.Errorf("profile --heap printed %q", out)
	}
	parsesAsProfile(t, heap)
	cpu := filepath.Join(dir, "cpu.pprof")
	if out := h.ok("profile", "--seconds", "1", cpu); out != "CPU profile of virtd over 1 second written to "+cpu+"\n\n" {
		t.Errorf("profile --seconds 1 printed %q", out)
	}
	if p := parsesAsProfile(t, cpu); len(p.SampleType) != 2 || p.SampleType[1].Type != "cpu" {
		t.Errorf("CPU profile's sample types: %v", p.SampleType)
	}
	// A second profile replaces the file.
	if out := h.ok("profile", "--kind", "goroutine", cpu); !strings.HasPrefix(out, "goroutine profile of virtd") {
		t.Errorf("profile --kind goroutine printed %q", out)
	}
	if p := parsesAsProfile(t, cpu); p.SampleType[0].Type != "goroutine" {
		t.Errorf("the goroutine profile's sample types: %v", p.SampleType)
	}
	onlyFiles(t, dir, "cpu.pprof", "heap.pprof")
}

func TestProfileErrors(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "out.pprof")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"profile", "--heap", "--seconds", "5", f},
			"error: option --seconds applies to CPU profiles only: a heap profile is a snapshot\n"},
		{[]string{"profile", "--heap", "--kind", "goroutine", f},
			"error: options --heap and --kind goroutine are mutually exclusive\n"},
		{[]string{"profile", "--seconds", "-1", f},
			"error: numeric value '-1' for <seconds> option is malformed or out of range\n"},
		{[]string{"profile", "--seconds", "0", f},
			"error: Failed to profile virtd\nerror: a CPU profile samples for 1 to 300 seconds, not 0 seconds: invalid argument\n"},
		{[]string{"profile", "--seconds", "301", f},
			"error: Failed to profile virtd\nerror: a CPU profile samples for 1 to 300 seconds, not 301 seconds: invalid argument\n"},
		{[]string{"profile", "--kind", "block", f},
			"error: Failed to profile virtd\nerror: unknown profile kind \"block\" (want cpu, heap, allocs, goroutine): invalid argument\n"},
		{[]string{"profile", "--driver", "nosuch", "--heap", f},
			"error: Failed to profile driver 'nosuch'\nerror: no driver named \"nosuch\" (installed: test): not found\n"},
		{[]string{"profile", "--heap", filepath.Join(dir, "nodir", "out.pprof")},
			"error: Failed to create file '" + filepath.Join(dir, "nodir", "out.pprof") + "'\nerror: no such file or directory\n"},
		{[]string{"profile"}, "error: command 'profile' requires <file> option\n"},
	} {
		if got := h.fails(c.args...); got != c.want {
			t.Errorf("virtsh %s:\n%s\nwant:\n%s", strings.Join(c.args, " "), got, c.want)
		}
	}
	onlyFiles(t, dir)
}
