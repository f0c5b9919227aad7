package driver

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/virt"
)

func TestParseEnv(t *testing.T) {
	dirs := map[string]string{
		EnvConfigDir: "/etc/virtd/qemu", EnvStateDir: "/var/lib/virtd/qemu",
		EnvRunDir: "/run/virtd/qemu", EnvLogDir: "/var/log/virtd/qemu",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range dirs {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	base := Env{
		ConfigDir: "/etc/virtd/qemu", StateDir: "/var/lib/virtd/qemu", RunDir: "/run/virtd/qemu", LogDir: "/var/log/virtd/qemu",
		LogLevel: hclog.Info, MaxMessageSize: DefaultMaxMessageSize, GCPercent: DefaultGCPercent,
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		want func(e *Env)
		// wantErr are what the error must name; none for a success.
		wantErr []string
	}{
		{name: "directories only: defaults", vars: with(), want: func(*Env) {}},
		{name: "everything", vars: with(EnvLogFile, "/var/log/virtd/qemu.log", EnvLogLevel, "DEBUG",
			EnvMaxMessageSize, "1048576", EnvOrphanTimeout, "2m30s", EnvGCPercent, "100", EnvMaxProcs, "4"),
			want: func(e *Env) {
				e.LogFile, e.LogLevel, e.MaxMessageSize, e.OrphanTimeout = "/var/log/virtd/qemu.log", hclog.Debug, 1<<20, 150*time.Second
				e.GCPercent, e.MaxProcs = 100, 4
			}},
		{name: "no orphan timeout", vars: with(EnvOrphanTimeout, "0s"), want: func(*Env) {}},
		{name: "log level off", vars: with(EnvLogLevel, "off"), want: func(e *Env) { e.LogLevel = hclog.Off }},
		{name: "missing directory", vars: with(EnvRunDir, ""),
			wantErr: []string{"VIRTD_DRIVER_RUN_DIR is not set"}},
		{name: "no environment at all", vars: map[string]string{},
			wantErr: []string{EnvConfigDir, EnvStateDir, EnvRunDir, EnvLogDir}},
		{name: "bad orphan timeout", vars: with(EnvOrphanTimeout, "soon"),
			wantErr: []string{`VIRTD_DRIVER_ORPHAN_TIMEOUT "soon" is not a duration`}},
		{name: "negative orphan timeout", vars: with(EnvOrphanTimeout, "-1s"),
			wantErr: []string{`VIRTD_DRIVER_ORPHAN_TIMEOUT "-1s"`}},
		{name: "bad message size", vars: with(EnvMaxMessageSize, "4M"),
			wantErr: []string{`VIRTD_DRIVER_MAX_MESSAGE_SIZE "4M" is not a positive number of bytes`}},
		{name: "zero message size", vars: with(EnvMaxMessageSize, "0"),
			wantErr: []string{`VIRTD_DRIVER_MAX_MESSAGE_SIZE "0"`}},
		{name: "bad GC percent", vars: with(EnvGCPercent, "off"),
			wantErr: []string{`VIRTD_DRIVER_GC_PERCENT "off" is not a positive percentage`}},
		{name: "zero GC percent", vars: with(EnvGCPercent, "0"),
			wantErr: []string{`VIRTD_DRIVER_GC_PERCENT "0"`}},
		{name: "bad max procs", vars: with(EnvMaxProcs, "all"),
			wantErr: []string{`VIRTD_DRIVER_MAX_PROCS "all" is not a positive number of threads`}},
		{name: "zero max procs", vars: with(EnvMaxProcs, "0"),
			wantErr: []string{`VIRTD_DRIVER_MAX_PROCS "0"`}},
		{name: "bad log level", vars: with(EnvLogLevel, "loud"),
			wantErr: []string{`VIRTD_DRIVER_LOG_LEVEL "loud" is not a log level`}},
		{name: "every bad variable named", vars: with(EnvLogLevel, "loud", EnvMaxMessageSize, "x", EnvLogDir, ""),
			wantErr: []string{EnvLogLevel, EnvMaxMessageSize, EnvLogDir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := ParseEnv(func(k string) string { return tc.vars[k] })
			if len(tc.wantErr) > 0 {
				if !errors.Is(err, virt.ErrInvalidArgument) {
					t.Fatalf("ParseEnv = %+v, %v; want an invalid argument", env, err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEnv: %v", err)
			}
			want := base
			tc.want(&want)
			if env != want {
				t.Errorf("ParseEnv = %+v\nwant       %+v", env, want)
			}
		})
	}
}

// TestGovernorBound: the driver's GOMAXPROCS governor goes up to every
// CPU, or to the Env's bound.
func TestGovernorBound(t *testing.T) {
	all := runtime.GOMAXPROCS(0)
	if g := governor(Env{}); g.Max != all {
		t.Errorf("governor with no bound: at most %d, want %d", g.Max, all)
	}
	if g := governor(Env{MaxProcs: 1}); g.Max != 1 {
		t.Errorf("governor bound to 1: at most %d", g.Max)
	}
	if g := governor(Env{MaxProcs: all + 5}); g.Max != all {
		t.Errorf("governor bound above the CPUs: at most %d, want %d", g.Max, all)
	}
}
