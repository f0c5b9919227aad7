package packaging

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRPMPackages checks every .rpm file's name, version, requirements,
// conflicts, what it provides, file list, configuration files and scripts
// with rpm itself.
func TestRPMPackages(t *testing.T) {
	needTools(t, "apt-get install rpm", "rpm")
	dist := buildPackages(t, version)
	want := expected(version)

	got, _ := filepath.Glob(filepath.Join(dist, "*.rpm"))
	var wantFiles []string
	for _, p := range want {
		wantFiles = append(wantFiles, rpmFile(dist, p.name, version))
	}
	if !sameSet(got, wantFiles) {
		t.Fatalf("rpm files:\n%s\nwant:\n%s", strings.Join(sorted(got), "\n"), strings.Join(sorted(wantFiles), "\n"))
	}
	for _, p := range want {
		t.Run(p.name, func(t *testing.T) {
			f := rpmFile(dist, p.name, version)
			if got, want := run(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH} %{LICENSE}", f),
				p.name+" "+version+" "+rpmArch()+" Apache-2.0"; got != want {
				t.Errorf("header: %q, want %q", got, want)
			}
			var reqs []string
			for _, r := range lines(run(t, "rpm", "-qpR", f)) {
				if !strings.HasPrefix(r, "rpmlib(") && r != "/bin/sh" {
					reqs = append(reqs, r)
				}
			}
			if !sameSet(reqs, p.rpmReqs) {
				t.Errorf("rpm -qpR: %q, want %q", sorted(reqs), sorted(p.rpmReqs))
			}
			if conflicts := lines(run(t, "rpm", "-qp", "--conflicts", f)); !sameSet(conflicts, p.rpmConflicts) {
				t.Errorf("rpm -qp --conflicts: %q, want %q", sorted(conflicts), sorted(p.rpmConflicts))
			}
			// A package provides itself and nothing else.
			for _, prov := range lines(run(t, "rpm", "-qp", "--provides", f)) {
				if name := strings.Fields(prov)[0]; name != p.name {
					t.Errorf("rpm -qp --provides: %q, not the package itself", prov)
				}
			}
			var files []string
			for _, l := range lines(run(t, "rpm", "-qpl", f)) {
				if l != "(contains no files)" {
					files = append(files, l)
				}
			}
			if !sameSet(files, p.files) {
				t.Errorf("rpm -qpl: %q, want %q", sorted(files), sorted(p.files))
			}
			var config []string
			for _, l := range lines(run(t, "rpm", "-qpc", f)) {
				if l != "(contains no files)" {
					config = append(config, l)
				}
			}
			if !sameSet(config, p.config) {
				t.Errorf("rpm -qpc: %q, want %q", config, p.config)
			}
			scripts := run(t, "rpm", "-qp", "--scripts", f)
			switch {
			case p.driver:
				for _, s := range []string{"postinstall scriptlet", "postuninstall scriptlet", "kill -HUP"} {
					if !strings.Contains(scripts, s) {
						t.Errorf("scripts lack %q:\n%s", s, scripts)
					}
				}
			case p.scripts != "":
				for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", p.scripts} {
					if !strings.Contains(scripts, s) {
						t.Errorf("scripts lack %q:\n%s", s, scripts)
					}
				}
			case strings.TrimSpace(scripts) != "":
				t.Errorf("unexpected scripts:\n%s", scripts)
			}
		})
	}
}

// TestDebPackages checks every .deb file's control fields (Depends,
// Conflicts, and no Provides), that each
// binary is where its package says and static unless it is the Xen driver,
// and that the Xen driver's Depends name exactly the Debian packages of the
// libraries its ELF header needs (what dpkg-shlibdeps would find).
func TestDebPackages(t *testing.T) {
	needTools(t, "apt-get install dpkg-dev", "dpkg-deb", "dpkg")
	dist := buildPackages(t, version)
	for _, p := range expected(version) {
		t.Run(p.name, func(t *testing.T) {
			f := debFile(dist, p.name, version)
			fields := run(t, "dpkg-deb", "--showformat", "${Package}|${Version}|${Architecture}|${Depends}", "--show", f)
			want := p.name + "|" + version + "|" + debArch() + "|" + strings.Join(p.debDeps, ", ")
			if got := strings.TrimSpace(fields); !sameSet(strings.Split(got, ", "), strings.Split(want, ", ")) {
				t.Errorf("control: %q\nwant     %q", got, want)
			}
			conflicts := strings.TrimSpace(run(t, "dpkg-deb", "--showformat", "${Conflicts}", "--show", f))
			if got := strings.Split(conflicts, ", "); conflicts == "" && len(p.debConflicts) > 0 || conflicts != "" && !sameSet(got, p.debConflicts) {
				t.Errorf("Conflicts: %q, want %q", conflicts, strings.Join(p.debConflicts, ", "))
			}
			if provides := strings.TrimSpace(run(t, "dpkg-deb", "--showformat", "${Provides}", "--show", f)); provides != "" {
				t.Errorf("Provides: %q, want none", provides)
			}
			dir := t.TempDir()
			run(t, "dpkg-deb", "-x", f, dir)
			var files []string
			for _, l := range lines(run(t, "dpkg-deb", "--contents", f)) {
				fs := strings.Fields(l)
				path := strings.TrimSuffix(strings.TrimPrefix(fs[len(fs)-1], "."), "/")
				files = append(files, path)
			}
			for _, want := range p.files {
				if !strings.Contains("\n"+strings.Join(files, "\n")+"\n", "\n"+want+"\n") {
					t.Errorf("%s is not in the package: %q", want, files)
				}
			}
			if p.name == "virtd-daemon" {
				if conffiles := run(t, "dpkg-deb", "--info", f, "conffiles"); strings.TrimSpace(conffiles) != "/etc/virtd/virtd.conf" {
					t.Errorf("/etc/virtd/virtd.conf is not a conffile")
				}
			}
			for _, path := range p.files {
				st, err := os.Stat(filepath.Join(dir, path))
				if err != nil {
					t.Fatal(err)
				}
				if st.IsDir() || !strings.Contains(path, "bin/") && !strings.Contains(path, "/drivers/") {
					continue
				}
				if st.Mode().Perm() != 0o755 {
					t.Errorf("%s: mode %v, want 0755", path, st.Mode().Perm())
				}
				libs := neededLibs(t, filepath.Join(dir, path))
				if p.name != "virtd-driver-xen" {
					if len(libs) > 0 {
						t.Errorf("%s needs %q; only the Xen driver may link a library", path, libs)
					}
					continue
				}
				// The Debian packages holding each library, as dpkg knows them.
				var pkgs []string
				for _, lib := range libs {
					owner := ownerOf(t, lib)
					if !slices.Contains(pkgs, owner) {
						pkgs = append(pkgs, owner)
					}
				}
				var deps []string
				for _, d := range p.debDeps {
					if name := strings.Fields(d)[0]; !strings.HasPrefix(name, "virtd-") {
						deps = append(deps, name)
					}
				}
				if !sameSet(pkgs, deps) {
					t.Errorf("the Xen driver needs libraries from %q, but depends on %q", sorted(pkgs), sorted(deps))
				}
			}
		})
	}
}

func neededLibs(t *testing.T, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	return libs
}

// ownerOf returns the Debian package that holds a shared library.
func ownerOf(t *testing.T, lib string) string {
	t.Helper()
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu"} {
		out, err := exec.Command("dpkg", "-S", filepath.Join(dir, lib)).Output()
		if err != nil {
			continue // not there, or known to dpkg under the other path
		}
		name, _, _ := strings.Cut(string(out), ":")
		return name
	}
	t.Fatalf("no Debian package holds %s", lib)
	return ""
}
