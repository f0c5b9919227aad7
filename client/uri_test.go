package client

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		in        string
		want      URI
		daemonURI string
	}{
		{"test:///default", URI{Scheme: "test", Path: "/default"}, "test:///default"},
		{"qemu:///system", URI{Scheme: "qemu", Path: "/system"}, "qemu:///system"},
		{"qemu:///session", URI{Scheme: "qemu", Path: "/session"}, "qemu:///session"},
		{"lxc:///system", URI{Scheme: "lxc", Path: "/system"}, "lxc:///system"},
		{"xen:///system", URI{Scheme: "xen", Path: "/system"}, "xen:///system"},
		{"qemu+unix:///system", URI{Scheme: "qemu", Transport: "unix", Path: "/system"}, "qemu:///system"},
		{"qemu+unix:///system?socket=/path/sock", URI{Scheme: "qemu", Transport: "unix", Path: "/system", Socket: "/path/sock"}, "qemu:///system"},
		{"test+unix:///default?socket=/x", URI{Scheme: "test", Transport: "unix", Path: "/default", Socket: "/x"}, "test:///default"},
		{"test:///default?socket=%2Ftmp%2Fa%20b", URI{Scheme: "test", Path: "/default", Socket: "/tmp/a b"}, "test:///default"},
		{"qemu+tls://host/system", URI{Scheme: "qemu", Transport: "tls", Host: "host", Path: "/system"}, "qemu:///system"},
		{"qemu+tls://host:16514/system", URI{Scheme: "qemu", Transport: "tls", Host: "host:16514", Path: "/system"}, "qemu:///system"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParseURI(tt.in)
			if err != nil {
				t.Fatalf("ParseURI: %v", err)
			}
			if *u != tt.want {
				t.Errorf("got %+v, want %+v", *u, tt.want)
			}
			if got := u.DaemonURI(); got != tt.daemonURI {
				t.Errorf("DaemonURI() = %q, want %q", got, tt.daemonURI)
			}
			// String round-trips.
			u2, err := ParseURI(u.String())
			if err != nil || *u2 != *u {
				t.Errorf("String() = %q does not round-trip: %+v, %v", u.String(), u2, err)
			}
		})
	}
}

func TestParseURIErrors(t *testing.T) {
	tests := []struct {
		in      string
		problem string
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"/system", "no scheme"},
		{"://system", "no scheme"},
		{"qemu:system", "expected qemu://[host]/path"},
		{"qemu:///system?socket=%zz", "invalid URL escape"},
		{"qemu:///sys%zztem", "invalid URL escape"},
		{"qemu+ssh://host/system", `unknown transport "ssh"`},
		{"qemu+:///system", "empty transport"},
		{"+unix:///system", "no scheme before"},
		{"qemu://host/system", `host "host" not allowed with the local unix transport`},
		{"qemu+unix://host/system", `host "host" not allowed`},
		{"qemu+tls:///system", "needs a host"},
		{"qemu+tls://host/system?socket=/x", "only allowed with a unix socket"},
		{"qemu:///system?mode=direct", `unsupported parameter "mode"`},
		{"qemu:///system?socket=", "exactly one path"},
		{"qemu:///system?socket=/a&socket=/b", "exactly one path"},
		{"qemu://", "no path"},
		{"qemu:///", "no path"},
		{"qemu:///system#frag", "fragments"},
		{"qemu://user@/system", "user"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseURI(tt.in)
			if err == nil {
				t.Fatalf("ParseURI(%q) succeeded", tt.in)
			}
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("error %q does not say %q", err, tt.problem)
			}
			if strings.TrimSpace(tt.in) != "" && !strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q does not name the URI", err)
			}
		})
	}
}

func TestDefaultSockets(t *testing.T) {
	t.Setenv(RunDirEnv, "")
	if got := DefaultSocket(); got != "/run/virtd/virtd-sock" {
		t.Errorf("DefaultSocket() = %q", got)
	}
	if got := DefaultReadOnlySocket(); got != "/run/virtd/virtd-sock-ro" {
		t.Errorf("DefaultReadOnlySocket() = %q", got)
	}
	if got := DefaultAdminSocket(); got != "/run/virtd/virtd-admin-sock" {
		t.Errorf("DefaultAdminSocket() = %q", got)
	}
	t.Setenv(RunDirEnv, "/tmp/root/run/virtd")
	if got := DefaultSocket(); got != "/tmp/root/run/virtd/virtd-sock" {
		t.Errorf("DefaultSocket() with %s = %q", RunDirEnv, got)
	}
}

func TestFormatVersion(t *testing.T) {
	for v, want := range map[uint64]string{8002002: "8.2.2", 2000003: "2.0.3", 0: "0.0.0", 10001000: "10.1.0"} {
		if got := FormatVersion(v); got != want {
			t.Errorf("FormatVersion(%d) = %q, want %q", v, got, want)
		}
	}
}
