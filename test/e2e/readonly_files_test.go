package e2e

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/virtd/virtd/internal/noread"
	"github.com/virtd/virtd/internal/testenv"
)

// nobody is the unprivileged user the clients of these tests run as.
const nobody = 65534

// conversionCase is one conversion call whose input names a path: tmpl
// holds %[1]s where the path goes.
type conversionCase struct {
	name, uri, direction, format, tmpl string
	// want is in every reply (the path written PATH): it shows that the
	// call reached what it tests. wantVirtsh replaces it for virtsh,
	// which reads the files an LXC configuration names itself, as the
	// calling user.
	want, wantVirtsh string
}

var conversionCases = []conversionCase{
	{name: "lxc.mount.fstab", uri: "lxc:///system", direction: "from-native", format: "lxc-tools",
		tmpl: "lxc.uts.name = ct\nlxc.rootfs.path = /var/lib/lxc/ct/rootfs\nlxc.mount.fstab = %[1]s\n",
		want: "line 3: lxc.mount.fstab names a file", wantVirtsh: "Failed to read file 'PATH' (lxc.mount.fstab at "},
	{name: "lxc.mount", uri: "lxc:///system", direction: "from-native", format: "lxc-tools",
		tmpl: "lxc.utsname = ct\nlxc.rootfs = /var/lib/lxc/ct/rootfs\nlxc.mount = %[1]s\n",
		want: "line 3: lxc.mount (lxc.mount.fstab) names a file", wantVirtsh: "Failed to read file 'PATH' (lxc.mount at "},
	{name: "lxc.include", uri: "lxc:///system", direction: "from-native", format: "lxc-tools",
		tmpl: "lxc.include = %[1]s\nlxc.uts.name = ct\nlxc.rootfs.path = /var/lib/lxc/ct/rootfs\n",
		want: "line 1: lxc.include names a file", wantVirtsh: "Failed to read file 'PATH' (lxc.include at "},
	{name: "lxc paths as text", uri: "lxc:///system", direction: "from-native", format: "lxc-tools",
		tmpl: "lxc.uts.name = ct\nlxc.rootfs.path = %[1]s\nlxc.mount.entry = %[1]s srv none bind,ro 0 0\n" +
			"lxc.hook.pre-start = %[1]s\nlxc.seccomp.profile = %[1]s\nlxc.console.logfile = %[1]s\n",
		want: `<source dir="PATH">`},
	{name: "xl.cfg pv", uri: "xen:///system", direction: "from-native", format: "xen-xl",
		tmpl: "name = \"pv\"\nuuid = \"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\"\nkernel = \"%[1]s\"\nramdisk = \"%[1]s\"\n" +
			"disk = [ \"format=raw,vdev=xvda,access=rw,target=%[1]s\" ]\nvif = [ \"mac=00:16:3e:00:00:01,bridge=xenbr0,script=%[1]s\" ]\n",
		want: "<kernel>PATH</kernel>"},
	{name: "xl.cfg hvm", uri: "xen:///system", direction: "from-native", format: "xen-xl",
		tmpl: "name = \"hvm\"\ntype = \"hvm\"\nbios = \"ovmf\"\nbios_path_override = \"%[1]s\"\nfirmware_override = \"%[1]s\"\n" +
			"device_model_override = \"%[1]s\"\ndisk = [ \"format=raw,vdev=hdc,access=ro,devtype=cdrom,target=%[1]s\" ]\n",
		want: "<emulator>PATH</emulator>"},
	{name: "xl.cfg bootloader", uri: "xen:///system", direction: "from-native", format: "xen-xl",
		tmpl: "name = \"grub\"\nbootloader = \"%[1]s\"\ndisk = [ \"phy:%[1]s,xvda,w\" ]\n",
		want: "<bootloader>PATH</bootloader>"},
	{name: "xl.cfg include", uri: "xen:///system", direction: "from-native", format: "xen-xl",
		tmpl: "name = \"x\"\ninclude = \"%[1]s\"\n",
		want: `xl.cfg setting "include" is not supported`},
	{name: "xen-xl from XML", uri: "xen:///system", direction: "to-native", format: "xen-xl",
		tmpl: `<domain type='xen'><name>pv</name><uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</uuid><memory unit='MiB'>256</memory>
  <os><type>linux</type><kernel>%[1]s</kernel><initrd>%[1]s</initrd></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%[1]s'/><target dev='xvda' bus='xen'/></disk></devices>
</domain>`,
		want: `kernel = "PATH"`},
	{name: "qemu-argv", uri: "qemu:///system", direction: "to-native", format: "qemu-argv",
		tmpl: `<domain type='kvm'><name>paths</name><uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</uuid><memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type><kernel>%[1]s</kernel><initrd>%[1]s</initrd></os>
  <devices>
    <emulator>%[1]s</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%[1]s'/><target dev='vda'/></disk>
    <disk type='block' device='disk'><source dev='%[1]s'/><target dev='sda'/></disk>
    <serial type='file'><source path='%[1]s'/><target port='0'/></serial>
  </devices>
</domain>`,
		want: "PATH -name guest=paths"},
}

// TestReadOnlyConversionsReadNoFile: virtd runs as root and answers every
// local user on its read-only socket. A user (nobody here) who names a
// file only root may read, in a native configuration or a domain XML,
// gets from no conversion the file's content, nor an answer that tells
// whether it exists: the reply, path aside, is the same for the file, for
// a missing path beside it and for /proc files. This holds for a program
// sending the text as it is, and for virtsh, which reads the files an LXC
// configuration names itself, with the user's rights.
func TestReadOnlyConversionsReadNoFile(t *testing.T) {
	testenv.Need(t, os.Geteuid() == 0, "needs root, to own the secret file and to run the clients as nobody")
	d := newDaemon(t, []string{"lxc", "xen", "qemu"})
	// The read-only socket is 0666; nobody needs to pass through the
	// daemon's private root to reach it.
	if err := os.Chmod(d.root, 0o711); err != nil {
		t.Fatal(err)
	}
	// The clients and their input, where nobody may run and read them.
	pub := tempDir(t, "vdpub", 0o755)
	virtsh := filepath.Join(pub, "virtsh")
	raw := filepath.Join(pub, "fixture-roconvert")
	copyFile(t, filepath.Join(binDir, "virtsh"), virtsh, 0o755)
	copyFile(t, filepath.Join(binDir, "fixture-roconvert"), raw, 0o755)
	input := filepath.Join(pub, "input")

	// The secret: root's, 0600, in a directory only root may search. It
	// holds the marker in the forms a converter would quote or convert.
	secretDir := tempDir(t, "vdsecret", 0o700)
	marker := "virtd-secret-" + rand.Text()
	secret := filepath.Join(secretDir, "secret")
	content := fmt.Sprintf("%s\n/srv/%s srv none bind 0 0\nlxc.uts.name = %s\nname = %q\n", marker, marker, marker, marker)
	if err := os.WriteFile(secret, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(secretDir, "missing")

	nobodyRun := func(argv ...string) string {
		t.Helper()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = pub
		cmd.Env = []string{"VIRTD_RUN_DIR=" + d.runDir, "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%s: %v", strings.Join(argv, " "), err)
		}
		return fmt.Sprintf("%s[exit %d]", out, cmd.ProcessState.ExitCode())
	}
	if out := nobodyRun(virtsh, "-r", "-c", "lxc:///system", "hostname"); !strings.HasSuffix(out, "[exit 0]") {
		t.Fatalf("nobody cannot use the read-only socket: %s", out)
	}
	if out := nobodyRun(raw, "lxc:///system", "from-native", "lxc-tools", secret); !strings.Contains(out, "permission denied") {
		t.Fatalf("nobody reads the secret file: %s", out)
	}

	clients := []struct {
		name  string
		paths []string
		argv  func(c conversionCase) []string
	}{
		// /proc/self is the driver's process when virtd reads it; its
		// environment names virtd's directories.
		{"raw client", []string{secret, missing, "/proc/self/environ", "/proc/1/environ"}, func(c conversionCase) []string {
			return []string{raw, c.uri, c.direction, c.format, input}
		}},
		// virtsh reads an LXC configuration's files as nobody, who may
		// read /proc/self/environ (its own) but not root's files.
		{"virtsh", []string{secret, missing, "/proc/1/environ"}, func(c conversionCase) []string {
			return []string{virtsh, "-r", "-c", c.uri, "domxml-" + c.direction, c.format, input}
		}},
	}
	for _, cl := range clients {
		for _, c := range conversionCases {
			t.Run(cl.name+"/"+c.name, func(t *testing.T) {
				want := c.want
				if cl.name == "virtsh" && c.wantVirtsh != "" {
					want = c.wantVirtsh
				}
				noread.SameForEveryPath(t, cl.paths, marker, c.tmpl, want, func(doc string) (string, error) {
					if err := os.WriteFile(input, []byte(doc), 0o644); err != nil {
						t.Fatal(err)
					}
					reply := nobodyRun(cl.argv(c)...)
					// /proc/self/environ is the driver's when it reads it.
					if strings.Contains(reply, "VIRTD_DRIVER_") {
						t.Errorf("the reply holds the driver's environment:\n%s", reply)
					}
					return reply, nil
				})
			})
		}
	}
}

// tempDir makes a directory of the given mode under the system's temp
// directory, removed after the test.
func tempDir(t *testing.T, pattern string, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}
