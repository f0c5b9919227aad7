package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virtd/virtd/daemon"
	"github.com/virtd/virtd/internal/testenv"
)

// unitFile parses a systemd unit of packaging/systemd.
func unitFile(t *testing.T, name string) map[string]map[string][]string {
	t.Helper()
	return parseUnit(t, filepath.Join(repoRoot, "packaging/systemd", name))
}

// parseUnit parses a systemd unit file into section -> key -> values.
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(path)
	out := map[string]map[string][]string{}
	section := ""
	for _, l := range lines(string(b)) {
		switch {
		case strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", name, l)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// TestUnits checks the systemd units against what virtd expects: the
// socket names it matches passed sockets by, their paths and modes
// (libvirt's where libvirt's clients look for them), notify,
// KillMode=process, reload by SIGHUP and the idle timeout, and the
// virtd-libvirt-compat drop-in; then has systemd-analyze verify them.
func TestUnits(t *testing.T) {
	sockets := []struct{ unit, path, name, mode string }{
		{"virtd.socket", "/run/virtd/" + daemon.SocketRW, daemon.SocketRW, "0600"},
		{"virtd-ro.socket", "/run/virtd/" + daemon.SocketRO, daemon.SocketRO, "0666"},
		{"virtd-admin.socket", "/run/virtd/" + daemon.SocketAdmin, daemon.SocketAdmin, "0600"},
		{"virtd-libvirt.socket", daemon.LibvirtStandardSocket, daemon.SocketLibvirt, "0600"},
		{"virtd-libvirt-ro.socket", daemon.LibvirtStandardSocketRO, daemon.SocketLibvirtRO, "0666"},
	}
	for _, s := range sockets {
		u := unitFile(t, s.unit)
		want := map[string]string{
			"ListenStream": s.path, "FileDescriptorName": s.name,
			"SocketMode": s.mode, "Service": "virtd.service",
		}
		for k, v := range want {
			if got := u["Socket"][k]; !slices.Equal(got, []string{v}) {
				t.Errorf("%s: %s=%q, want %q", s.unit, k, got, v)
			}
		}
		if got := u["Install"]["WantedBy"]; !slices.Equal(got, []string{"sockets.target"}) {
			t.Errorf("%s: WantedBy=%q", s.unit, got)
		}
	}
	svc := unitFile(t, "virtd.service")
	want := map[string]string{
		"Type": "notify", "KillMode": "process", "ExecReload": "/bin/kill -HUP $MAINPID",
		"ExecStart": "/usr/sbin/virtd $VIRTD_ARGS", "Environment": `VIRTD_ARGS="--timeout 120"`,
	}
	for k, v := range want {
		if got := svc["Service"][k]; !slices.Equal(got, []string{v}) {
			t.Errorf("virtd.service: %s=%q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Requires", "After"} {
		if got := strings.Join(svc["Unit"][k], " "); !strings.Contains(got, "virtd.socket virtd-ro.socket virtd-admin.socket") {
			t.Errorf("virtd.service: %s=%q lacks the three sockets", k, got)
		}
	}
	if got := strings.Join(svc["Install"]["Also"], " "); got != "virtd.socket virtd-ro.socket virtd-admin.socket" {
		t.Errorf("virtd.service: Also=%q", got)
	}
	// The compat package's drop-in starts libvirt's sockets with virtd
	// and before it, so that they are passed; Wants=, so that stopping
	// them does not stop virtd.
	dropIn := unitFile(t, "virtd.service.d/libvirt-compat.conf")
	for _, k := range []string{"Wants", "After"} {
		if got := strings.Join(dropIn["Unit"][k], " "); got != "virtd-libvirt.socket virtd-libvirt-ro.socket" {
			t.Errorf("virtd.service.d/libvirt-compat.conf: %s=%q", k, got)
		}
	}
	if got := dropIn["Unit"]["Requires"]; len(got) > 0 || len(dropIn) != 1 {
		t.Errorf("virtd.service.d/libvirt-compat.conf sets more than [Unit] Wants= and After=: %q", dropIn)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.Missing(t, "systemd-analyze is not installed (apt-get install systemd)")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "virtd.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, name := range []string{"virtd.service", "virtd.socket", "virtd-ro.socket", "virtd-admin.socket",
		"virtd-libvirt.socket", "virtd-libvirt-ro.socket", "virtd.service.d/libvirt-compat.conf"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "packaging/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		// verify wants the executable: /usr/sbin/virtd is not installed here.
		b = bytes.ReplaceAll(b, []byte("ExecStart=/usr/sbin/virtd"), []byte("ExecStart=/bin/true"))
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(name) != ".conf" { // a drop-in is read with its unit
			units = append(units, "./"+name)
		}
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, units...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
