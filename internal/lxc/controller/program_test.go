package controller

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
	"golang.org/x/sys/unix"
)

// decode splits a program into its ops, each the op name and its
// arguments.
func decode(t *testing.T, prog []byte) [][]string {
	t.Helper()
	fields := strings.Split(string(prog), "\x00")
	if fields[len(fields)-1] != "" {
		t.Fatalf("program does not end with a NUL: %q", prog)
	}
	fields = fields[:len(fields)-1]
	var ops [][]string
	for len(fields) > 0 {
		if len(fields) < 2 {
			t.Fatalf("op %q without an argument count", fields[0])
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil || n > len(fields)-2 {
			t.Fatalf("op %q: bad count %q", fields[0], fields[1])
		}
		ops = append(ops, append([]string{fields[0]}, fields[2:2+n]...))
		fields = fields[2+n:]
	}
	return ops
}

func findOp(ops [][]string, name string, arg int, value string) []string {
	for _, o := range ops {
		if o[0] == name && len(o) > arg && o[arg] == value {
			return o
		}
	}
	return nil
}

func testSpec(root string) *Spec {
	return &Spec{Name: "ct", UUID: "u-1", Hostname: "ct", RootFS: root, Init: []string{"/sbin/init", "-v"}, Env: []string{"A=b"}}
}

func TestContainerProgram(t *testing.T) {
	src := t.TempDir()
	s := testSpec("/srv/ct")
	s.Mounts = []Mount{{Source: src, Target: "/data", ReadOnly: true}, {Tmpfs: true, Target: "/run", SizeBytes: 1 << 20}}
	prog, err := containerProgram(s, "/dev/pts/7")
	if err != nil {
		t.Fatal(err)
	}
	ops := decode(t, prog)
	if first := ops[0]; first[0] != "mount" || first[3] != "/" {
		t.Errorf("first op %q, want the mounts made private", first)
	}
	if o := findOp(ops, "hostname", 2, "ct"); o == nil {
		t.Error("no hostname op")
	}
	if o := findOp(ops, "mount", 3, "/srv/ct/data"); o == nil || o[2] != src {
		t.Errorf("bind of %s on /srv/ct/data: %q", src, o)
	}
	// The read-only remount keeps the flags of the source's mount.
	var sfs unix.Statfs_t
	if err := unix.Statfs(src, &sfs); err != nil {
		t.Fatal(err)
	}
	var ro []string
	for _, o := range ops {
		if o[0] == "mount" && o[3] == "/srv/ct/data" && strings.Contains(o[1], "read-only") {
			ro = o
		}
	}
	if ro == nil {
		t.Fatal("no read-only remount of /data")
	}
	flags, _ := strconv.ParseUint(ro[5], 10, 64)
	if flags&unix.MS_RDONLY == 0 || flags&unix.MS_REMOUNT == 0 {
		t.Errorf("remount flags %#x lack MS_RDONLY|MS_REMOUNT", flags)
	}
	if sfs.Flags&unix.ST_NOSUID != 0 && flags&unix.MS_NOSUID == 0 {
		t.Errorf("remount flags %#x drop the source's nosuid", flags)
	}
	if o := findOp(ops, "mount", 3, "/srv/ct/run"); o == nil || o[4] != "tmpfs" || !strings.Contains(o[6], "size=1048576") {
		t.Errorf("tmpfs on /run: %q", o)
	}
	if o := findOp(ops, "mount", 2, "/dev/pts/7"); o == nil || o[3] != "/srv/ct/dev/console" {
		t.Errorf("console bind: %q", o)
	}
	last := ops[len(ops)-1]
	if last[0] != "exec" || last[4] != "2" || last[5] != "/sbin/init" || last[6] != "-v" {
		t.Fatalf("last op %q, want exec of /sbin/init -v", last)
	}
	if env := last[7:]; env[len(env)-1] != "A=b" || !strings.HasPrefix(env[0], "PATH=") {
		t.Errorf("init environment %q", env)
	}
	if pivot := ops[len(ops)-2]; pivot[0] != "pivot" {
		t.Errorf("op before exec %q, want pivot", pivot)
	}
}

func TestContainerProgramRefuses(t *testing.T) {
	for name, mod := range map[string]func(*Spec){
		"climbing target": func(s *Spec) { s.Mounts = []Mount{{Tmpfs: true, Target: "/a/../../etc"}} },
		"missing source":  func(s *Spec) { s.Mounts = []Mount{{Source: "/nonexistent/virtd-src", Target: "/x"}} },
		"NUL in env":      func(s *Spec) { s.Env = []string{"A=\x00"} },
		"no init":         func(s *Spec) { s.Init = nil },
	} {
		s := testSpec("/srv/ct")
		mod(s)
		_, err := containerProgram(s, "")
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if virt.KindOf(err) != virt.ErrInvalidArgument {
			t.Errorf("%s: %v has kind %v, want invalid argument", name, err, virt.KindOf(err))
		}
	}
}

// runHelper runs the container helper (nsinit.c, linked into this test
// binary) on prog, in the test's own namespaces, and returns what it
// reported on its error fd.
func runHelper(t *testing.T, prog []byte, stdout io.Writer) string {
	t.Helper()
	progR, progW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe", ContainerArg)
	cmd.ExtraFiles = []*os.File{progR, errW}
	cmd.Stdout = stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	progR.Close()
	errW.Close()
	_, _ = progW.Write(prog)
	progW.Close()
	msg, _ := io.ReadAll(errR)
	errR.Close()
	err = cmd.Wait()
	if len(msg) == 0 && err != nil {
		t.Fatalf("helper failed without a message: %v", err)
	}
	return string(msg)
}

func TestHelperRunsProgram(t *testing.T) {
	dir := t.TempDir()
	p := &program{}
	p.mkdir("make a/b", filepath.Join(dir, "a", "b"))
	p.op("touch", "touch f", filepath.Join(dir, "a", "b", "f"), "600")
	p.op("symlink", "link", "b/f", filepath.Join(dir, "a", "l"))
	p.op("chdir", "cd", filepath.Join(dir, "a"))
	p.op("exec", "not found", "not executable", "/usr/bin:/bin", "3", "sh", "-c", `test -f l && echo "$X"`, "X=from-env")
	var out bytes.Buffer
	if msg := runHelper(t, p.buf.Bytes(), &out); msg != "" {
		t.Fatalf("helper reported %q", msg)
	}
	if got := strings.TrimSpace(out.String()); got != "from-env" {
		t.Errorf("init printed %q, want from-env (the environment given, through the symlink made)", got)
	}
	if st, err := os.Stat(filepath.Join(dir, "a", "b", "f")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("touched file: %v, %v", st, err)
	}
}

func TestHelperErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "init")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exec := func(p *program, init string) {
		p.op("exec", "init "+init+" not found", "init "+init+" is not an executable file", "/nonexistent", "1", init)
	}
	for _, tc := range []struct {
		name string
		prog func(p *program)
		want string
	}{
		{"failing op names its context and errno", func(p *program) {
			p.op("chdir", "init directory /nowhere", filepath.Join(dir, "nowhere"))
		}, "init directory /nowhere: no such file or directory"},
		{"missing init", func(p *program) { exec(p, "/no/init") }, "init /no/init not found"},
		{"init not in PATH", func(p *program) { exec(p, "no-init") }, "init no-init not found"},
		{"init not executable", func(p *program) { exec(p, notExec) }, "is not an executable file"},
		{"unknown op", func(p *program) { p.op("frobnicate", "x") }, "unknown op frobnicate"},
		{"wrong argument count", func(p *program) { p.op("mkdir", "x") }, "op mkdir takes 2 arguments, got 0"},
		{"no exec", func(p *program) { p.mkdir("x", filepath.Join(dir, "x")) }, "the program ends without exec"},
		{"empty program", func(p *program) {}, "no program received"},
	} {
		p := &program{}
		tc.prog(p)
		if msg := runHelper(t, p.buf.Bytes(), nil); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: helper reported %q, want %q", tc.name, msg, tc.want)
		}
	}
	if msg := runHelper(t, []byte("mkdir\x003\x00x"), nil); !strings.Contains(msg, "truncated") {
		t.Errorf("a truncated program: helper reported %q", msg)
	}
}
