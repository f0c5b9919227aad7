package elfdeps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Without Xen's development files, the build stops with the package to
// install, not with a cgo error.
func TestBuildWithoutLibxenNamesThePackage(t *testing.T) {
	script, err := filepath.Abs("../xen/check-build-deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) (string, error) {
		cmd := exec.Command("sh", script)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err != nil {
		t.Fatalf("with libxen-dev installed the check fails: %v\n%s", err, out)
	}
	// An empty pkg-config search path stands for a host without libxen-dev.
	out, err := run("PKG_CONFIG_LIBDIR="+t.TempDir(), "PKG_CONFIG_PATH=")
	if err == nil || !strings.Contains(out, "needs libxen-dev (apt-get install libxen-dev)") {
		t.Fatalf("without xenlight.pc: err %v, output %q; want the missing package named", err, out)
	}
}
