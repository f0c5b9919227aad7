package daemon

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// applyConfigFile sets, from a virtd.conf, every flag the command line did
// not set. The file holds `key = value` lines, keys being the flag names
// with _ for - (driver_idle_timeout = "2m"); # starts a comment. A missing
// file is fine unless required.
func applyConfigFile(fs *flag.FlagSet, path string, required bool) error {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) && !required {
			return nil
		}
		return err
	}
	defer f.Close()
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want key = value, got %q", path, n, line)
		}
		key = strings.ReplaceAll(strings.TrimSpace(key), "_", "-")
		value = strings.TrimSpace(value)
		if uq, err := strconv.Unquote(value); err == nil {
			value = uq
		}
		fl := fs.Lookup(key)
		if fl == nil || key == "config" || key == "version" || key == "root" {
			return fmt.Errorf("%s:%d: unknown setting %q", path, n, strings.ReplaceAll(key, "-", "_"))
		}
		if set[key] {
			continue // the command line wins
		}
		if err := fl.Value.Set(value); err != nil {
			return fmt.Errorf("%s:%d: %s: %v", path, n, strings.ReplaceAll(key, "-", "_"), err)
		}
	}
	return sc.Err()
}
