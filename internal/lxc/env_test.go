package lxc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/driver"
)

// TestNewFromEnv builds the driver from a driver.Env, as driver.Serve
// does: its files go to the Env's directories. An Env without them gives
// a driver that says so in its health, and touches no file.
func TestNewFromEnv(t *testing.T) {
	o := testDirs{root: shortTempDir(t)}.opts()
	env := driver.Env{ConfigDir: o.ConfigDir, StateDir: o.StateDir, RunDir: o.RunDir, LogDir: o.LogDir}
	drv := New(env).(*Driver)
	t.Cleanup(func() { drv.Close() })
	if got := drv.opts; got.ConfigDir != env.ConfigDir || got.StateDir != env.StateDir || got.RunDir != env.RunDir || got.LogDir != env.LogDir {
		t.Errorf("directories %+v, want those of %+v", got, env)
	}
	for _, p := range []string{filepath.Join(env.ConfigDir, "autostart"), filepath.Join(env.RunDir, "autostarted"), env.LogDir} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s not made: %v", p, err)
		}
	}

	cwd := t.TempDir()
	t.Chdir(cwd)
	empty := New(driver.Env{}).(*Driver)
	info, err := empty.Info(t.Context())
	if err != nil || info.Health != driver.HealthUnavailable || !strings.Contains(info.HealthReason, "directories must be set") {
		t.Errorf("Info of a driver without directories = %+v, %v; want unavailable, naming the directories", info, err)
	}
	if left, _ := os.ReadDir(cwd); len(left) != 0 {
		t.Errorf("a driver without directories made %v in its working directory", left)
	}
}
