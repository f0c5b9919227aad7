// Package testenv decides what a test does when the machine it runs on
// lacks something the test needs (root, QEMU, a guest kernel, a tool):
// on a developer's machine it skips, saying what is missing; in CI, which
// installs everything make test needs, it fails with the same reason, so a
// broken CI set-up never passes as a row of skipped tests.
package testenv

import (
	"os"
	"testing"
)

// CIVariable is the environment variable that marks a CI run: any
// non-empty value (CI systems set CI=true).
const CIVariable = "CI"

// Missing stops t because this machine lacks what reason describes. The
// reason should name the thing and how to get it ("qemu-system-x86_64 is
// not installed: apt-get install qemu-system-x86"). Outside CI, t is
// skipped with the reason; in CI it fails with the reason and "CI must
// have it". Like t.Skip and t.Fatal, it must be called from the test's
// goroutine and does not return.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(CIVariable) != "" {
		t.Fatal(reason + " (CI must have it)")
	}
	t.Skip(reason)
}

// Need calls Missing(t, reason) unless ok: a test starts with
// testenv.Need(t, os.Geteuid() == 0, "needs root, to ...").
func Need(t testing.TB, ok bool, reason string) {
	t.Helper()
	if !ok {
		Missing(t, reason)
	}
}
