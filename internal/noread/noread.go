// Package noread holds the checks, for tests, that a conversion reads no
// file its input names: a read-only client of virtd may name any path, and
// what a conversion returns must not depend on the file there, nor quote
// it. It is imported by the tests of the drivers' conversion code.
package noread

import (
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// SameForEveryPath converts the input tmpl makes for each path (%[1]s is
// the path) and checks that each converts, that the result holds want
// (PATH standing for the path), never marker (what the files there hold),
// and does not depend on the path otherwise.
func SameForEveryPath(t *testing.T, paths []string, marker, tmpl, want string, convert func(string) (string, error)) {
	t.Helper()
	var first string
	for _, path := range paths {
		out, err := convert(fmt.Sprintf(tmpl, path))
		if err != nil {
			t.Fatalf("path %s: %v", path, err)
		}
		if strings.Contains(out, marker) {
			t.Errorf("path %s: the result holds the file's content:\n%s", path, out)
		}
		out = strings.ReplaceAll(out, path, "PATH")
		if !strings.Contains(out, want) {
			t.Errorf("path %s: the result lacks %q:\n%s", path, want, out)
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("path %s: the result depends on the path:\n%s\nfirst path:\n%s", path, out, first)
		}
	}
}

// fileSystem are the packages through which Go code reaches files.
var fileSystem = []string{"os", "io/fs", "io/ioutil", "path/filepath", "os/exec", "syscall", "golang.org/x/sys/unix"}

// NoFileImports checks that the non-test Go files of each directory import
// none of the packages that reach the file system, so that the code there
// cannot read a file by construction.
func NoFileImports(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range pf.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range fileSystem {
					if p == bad {
						t.Errorf("%s imports %q: a conversion must not reach the file system", f, p)
					}
				}
			}
		}
	}
}
