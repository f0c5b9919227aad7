package daemon

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigFileSetsUnsetFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "virtd.conf")
	os.WriteFile(path, []byte("# comment\nunix_group = \"kvm\"\ndriver_idle_timeout = 5m\ntimeout = 30\n"), 0o644)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	group := fs.String("unix-group", "", "")
	idle := fs.Duration("driver-idle-timeout", time.Minute, "")
	timeout := fs.Int("timeout", 0, "")
	if err := fs.Parse([]string{"--timeout", "7"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, path, true); err != nil {
		t.Fatal(err)
	}
	if *group != "kvm" || *idle != 5*time.Minute || *timeout != 7 {
		t.Fatalf("group %q idle %s timeout %d: want kvm, 5m, and the command line's 7", *group, *idle, *timeout)
	}
}

// TestDriverRuntimeFlags: the drivers' GC percent and GOMAXPROCS reach the
// host's configuration, and a value that is not positive is refused.
func TestDriverRuntimeFlags(t *testing.T) {
	root := t.TempDir()
	var got Config
	run := func(args ...string) (int, string) {
		var stderr strings.Builder
		code := parseFlags(append([]string{"--root", root}, args...), &stderr, func(c Config) int { got = c; return 0 })
		return code, stderr.String()
	}
	if code, msg := run(); code != 0 || got.DriverMaxProcs != 0 || got.DriverGCPercent != 50 {
		t.Fatalf("defaults: exit %d (%s), max procs %d, GC percent %d; want 0 (every CPU) and 50", code, msg, got.DriverMaxProcs, got.DriverGCPercent)
	}
	if code, msg := run("--driver-max-procs", "2", "--driver-gc-percent", "80"); code != 0 || got.DriverMaxProcs != 2 || got.DriverGCPercent != 80 {
		t.Fatalf("set: exit %d (%s), max procs %d, GC percent %d; want 2 and 80", code, msg, got.DriverMaxProcs, got.DriverGCPercent)
	}
	for _, bad := range []string{"-1", "many"} {
		if code, msg := run("--driver-max-procs", bad); code == 0 || !strings.Contains(msg, "driver-max-procs") {
			t.Errorf("--driver-max-procs %s: exit %d, %q; want a refusal naming the flag", bad, code, msg)
		}
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("timeout", 0, "")
	if err := applyConfigFile(fs, filepath.Join(dir, "none"), false); err != nil {
		t.Fatalf("a missing default file is fine: %v", err)
	}
	if err := applyConfigFile(fs, filepath.Join(dir, "none"), true); err == nil {
		t.Fatal("a missing --config file must fail")
	}
	for content, want := range map[string]string{
		"colour = blue\n":   `:1: unknown setting "colour"`,
		"\ntimeout = ten\n": `:2: timeout`,
		"timeout\n":         `:1: want key = value`,
	} {
		path := filepath.Join(dir, "bad.conf")
		os.WriteFile(path, []byte(content), 0o644)
		if err := applyConfigFile(fs, path, true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
}

// TestShippedConfigIsValid: every setting the packaged virtd.conf shows,
// once uncommented, is one virtd takes.
func TestShippedConfigIsValid(t *testing.T) {
	b, err := os.ReadFile("../packaging/virtd.conf")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(strings.TrimPrefix(l, "#"), " = "); ok && strings.HasPrefix(l, "#") && !strings.Contains(k, " ") {
			lines = append(lines, strings.TrimPrefix(l, "#"))
		}
	}
	if len(lines) < 10 {
		t.Fatalf("found only %d settings in the shipped virtd.conf: %q", len(lines), lines)
	}
	root := t.TempDir()
	conf := filepath.Join(root, "virtd.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, then stop at once
	var stderr strings.Builder
	if code := Main(ctx, []string{"--root", root, "--config", conf}, &stderr); code != 0 {
		t.Fatalf("virtd with every shipped setting: exit %d: %s", code, stderr.String())
	}
}
