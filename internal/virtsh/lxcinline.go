package virtsh

import (
	"os"
	"path/filepath"
	"strings"
)

// lxcToolsFormat is the native format of LXC tools configurations.
const lxcToolsFormat = "lxc-tools"

// maxIncludeDepth bounds nested lxc.include lines (a file that includes
// itself would otherwise never end).
const maxIncludeDepth = 16

// inlineLXC returns an LXC tools configuration (read from the file name)
// with the files it names for their content put in their place, read with
// the rights of virtsh's user, who sent the configuration:
//
//   - an lxc.include line becomes the lines of the file it names, or of
//     every *.conf file of the directory it names in name order, their own
//     lxc.include and fstab lines inlined in turn;
//   - an lxc.mount.fstab (lxc.mount) line becomes one lxc.mount.entry line
//     for each entry of the fstab file.
//
// virtd reads no file on a client's behalf, so it refuses a configuration
// that still names one. A relative path is taken from the directory of the
// file whose line names it.
func inlineLXC(config, name string) (string, error) {
	var b strings.Builder
	if err := inlineLXCInto(&b, config, name, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func inlineLXCInto(b *strings.Builder, text, name string, depth int) error {
	for n, line := range strings.SplitAfter(text, "\n") {
		key, value, ok := lxcSetting(line)
		if !ok || (key != "lxc.include" && key != "lxc.mount.fstab" && key != "lxc.mount") {
			b.WriteString(line)
			continue
		}
		where := func(path string, err error) error {
			return usagef("Failed to read file '%s' (%s at %s:%d): %v", path, key, name, n+1, unwrapPath(err))
		}
		path := value
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(name), path)
		}
		if key != "lxc.include" {
			data, err := os.ReadFile(path)
			if err != nil {
				return where(path, err)
			}
			for _, entry := range strings.Split(string(data), "\n") {
				entry = strings.TrimSpace(entry)
				if entry != "" && !strings.HasPrefix(entry, "#") {
					b.WriteString("lxc.mount.entry = " + entry + "\n")
				}
			}
			continue
		}
		if depth >= maxIncludeDepth {
			return usagef("lxc.include at %s:%d: includes nested more than %d deep (does a file include itself?)", name, n+1, maxIncludeDepth)
		}
		files := []string{path}
		if st, err := os.Stat(path); err != nil {
			return where(path, err)
		} else if st.IsDir() {
			entries, err := os.ReadDir(path)
			if err != nil {
				return where(path, err)
			}
			files = files[:0]
			for _, e := range entries {
				if !e.IsDir() && strings.HasSuffix(e.Name(), ".conf") {
					files = append(files, filepath.Join(path, e.Name()))
				}
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return where(f, err)
			}
			if err := inlineLXCInto(b, string(data), f, depth+1); err != nil {
				return err
			}
			if len(data) > 0 && data[len(data)-1] != '\n' {
				b.WriteByte('\n')
			}
		}
	}
	return nil
}

// lxcSetting splits a "key = value" line as the LXC driver reads it (the
// value unquoted); ok is false for blank lines and comments.
func lxcSetting(line string) (key, value string, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", "", false
	}
	key, value, ok = strings.Cut(line, "=")
	value = strings.TrimSpace(value)
	if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
		value = value[1 : len(value)-1]
	}
	return strings.TrimSpace(key), value, ok
}
