package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/driver"
)

// TestNewFromEnv builds the driver from a driver.Env, as driver.Serve
// does: its files go to the Env's directories. An Env without them gives
// a driver that says so in its health.
func TestNewFromEnv(t *testing.T) {
	root, err := os.MkdirTemp("", "vq")
	if err != nil {
		t.Fatal(err)
	}
	// The autostart pass runs on in the background: remove what it left
	// whenever it is done.
	t.Cleanup(func() { os.RemoveAll(root) })
	env := driver.Env{
		ConfigDir: filepath.Join(root, "etc"), StateDir: filepath.Join(root, "lib"),
		RunDir: filepath.Join(root, "run"), LogDir: filepath.Join(root, "log"),
	}
	drv := New(env).(*Driver)
	t.Cleanup(func() { drv.Close() })
	if c := drv.cfg; c.ConfigDir != env.ConfigDir || c.RunDir != env.RunDir || c.LogDir != env.LogDir {
		t.Errorf("directories %+v, want those of %+v", c, env)
	}
	for _, dir := range []string{env.ConfigDir, env.RunDir, env.LogDir} {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Errorf("directory %s not made: %v", dir, err)
		}
	}
	// The autostart pass marks the boot in the config directory.
	mark := filepath.Join(env.ConfigDir, "autostart.boot_id")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s 10s after New", mark)
		}
	}

	info, err := New(driver.Env{}).Info(t.Context())
	if err != nil || info.Health != driver.HealthUnavailable || !strings.Contains(info.HealthReason, "directories must be set") {
		t.Errorf("Info of a driver without directories = %+v, %v; want unavailable, naming the directories", info, err)
	}
}
