package qemu

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/defdir"
	"github.com/virtd/virtd/virt"
)

// On disk, under the driver's directories:
//
//	ConfigDir/<uuid>.xml         persistent definitions
//	ConfigDir/autostart/<uuid>   autostart marks
//	ConfigDir/autostart.boot_id  the boot whose autostart has been done
//	RunDir/<uuid>.json          runtime record of a running guest
//	RunDir/<uuid>.qmp, .pid     its QMP socket and QEMU's pidfile
//	LogDir/<uuid>.log           QEMU's stdout and stderr
//
// Files are named by UUID, never by domain name: a name may be 255 bytes
// long, and a file name of 255 bytes has no room for a suffix (or for the
// temporary name of an atomic write). Definitions written by name by an
// earlier version (<name>.xml, autostart/<name>) are renamed when loaded.
//
// Every file is written atomically: a temporary file, fsync, rename, and
// an fsync of the directory.

// record is what the driver keeps under the run directory to find a
// running guest again after a restart.
type record struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
	ID   int32  `json:"id"`
	Pid  int    `json:"pid"`
	// StartTime is field 22 of /proc/<pid>/stat: with the pid, it names
	// the process even when pids are reused.
	StartTime  uint64     `json:"start_time"`
	QMP        string     `json:"qmp"`
	PidFile    string     `json:"pidfile"`
	Log        string     `json:"log"`
	State      virt.State `json:"state"`
	Reason     int32      `json:"reason"`
	Persistent bool       `json:"persistent"`
	Taps       []string   `json:"taps,omitempty"`
	// Cgroup is the guest's cgroup under each hierarchy's root.
	Cgroup string `json:"cgroup,omitempty"`
	// ChannelDir holds the sockets of channels defined without a path.
	ChannelDir string `json:"channel_dir,omitempty"`
	// Helpers are the processes started for the guest besides QEMU.
	Helpers []helperRecord `json:"helpers,omitempty"`
	// XML is the live definition (with pty paths, VNC port).
	XML string `json:"xml"`
}

func (drv *Driver) defPath(uuid string) string {
	return filepath.Join(drv.cfg.ConfigDir, uuid+".xml")
}

func (drv *Driver) autostartPath(uuid string) string {
	return filepath.Join(drv.cfg.ConfigDir, "autostart", uuid)
}

func (drv *Driver) recordPath(uuid string) string {
	return filepath.Join(drv.cfg.RunDir, uuid+".json")
}

// saveDefinition writes a persistent definition.
func (drv *Driver) saveDefinition(c *config) error {
	doc, err := c.marshal(0)
	if err != nil {
		return err
	}
	if err := atomicfile.Rewrite(drv.defPath(c.UUID()), []byte(doc+"\n"), 0o600); err != nil {
		return virt.Errorf(virt.ErrInternal, "domain '%s': saving the definition: %w", c.Name(), err)
	}
	return nil
}

func (drv *Driver) removeDefinition(c *config) error {
	if err := defdir.Remove(drv.defPath(c.UUID())); err != nil {
		return virt.Errorf(virt.ErrInternal, "domain '%s': removing the definition: %w", c.Name(), err)
	}
	_ = defdir.Remove(drv.autostartPath(c.UUID()))
	return nil
}

func (drv *Driver) setAutostartMark(c *config, on bool) error {
	p := drv.autostartPath(c.UUID())
	if !on {
		if err := defdir.Remove(p); err != nil {
			return virt.Errorf(virt.ErrInternal, "domain '%s': autostart: %w", c.Name(), err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return virt.Errorf(virt.ErrInternal, "domain '%s': autostart: %w", c.Name(), err)
	}
	if err := atomicfile.Rewrite(p, nil, 0o600); err != nil {
		return virt.Errorf(virt.ErrInternal, "domain '%s': autostart: %w", c.Name(), err)
	}
	return nil
}

func (drv *Driver) hasAutostartMark(c *config) bool {
	_, err := os.Stat(drv.autostartPath(c.UUID()))
	return err == nil
}

// renameLegacy moves a definition an earlier version wrote by name to the
// files named by c's UUID, and reports whether it should be used.
func (drv *Driver) renameLegacy(path string, b []byte, c *config) bool {
	use, err := defdir.RenameLegacy(drv.cfg.ConfigDir, path, b, c.UUID(), nil)
	if err != nil {
		drv.log.Error("cannot rename a definition to its UUID", "path", path, "error", err)
	} else if use {
		drv.log.Info("definition renamed to its UUID", "from", path, "to", drv.defPath(c.UUID()))
	}
	return use
}

// loadDefinitions reads every persistent definition. A file that no
// longer parses is logged and skipped, never deleted.
func (drv *Driver) loadDefinitions() []*config {
	paths, _ := filepath.Glob(filepath.Join(drv.cfg.ConfigDir, "*.xml"))
	var out []*config
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			drv.log.Error("cannot read a definition", "path", p, "error", err)
			continue
		}
		c, err := parseConfig(string(b))
		if err == nil {
			c, err = c.compact()
		}
		if err != nil {
			drv.log.Error("skipping a definition that does not parse", "path", p, "error", err)
			continue
		}
		if strings.TrimSuffix(filepath.Base(p), ".xml") != c.UUID() && !drv.renameLegacy(p, b, c) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// saveRecord writes a running domain's record to the run directory. A
// record written before is overwritten in place when it fits in a page
// (atomicfile.Overwrite, padded with spaces, which JSON skips): a suspend
// or resume rewrites it, and a rename over it would cost those calls
// 150-400 us on a run directory on ext4. Only the driver reads records, at
// its next start.
func (drv *Driver) saveRecord(r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	path := drv.recordPath(r.UUID)
	if done, err := atomicfile.Overwrite(path, b, ' '); done || err != nil {
		return err
	}
	return atomicfile.Replace(path, b, 0o600)
}

func (drv *Driver) loadRecords() []*record {
	paths, _ := filepath.Glob(filepath.Join(drv.cfg.RunDir, "*.json"))
	var out []*record
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.UUID == "" {
			drv.log.Warn("removing an unreadable runtime record", "path", p, "error", err)
			os.Remove(p)
			continue
		}
		out = append(out, &r)
	}
	return out
}

// removeRuntimeFiles removes what a guest left under the run directory.
func (drv *Driver) removeRuntimeFiles(r *record) {
	drv.removeCgroup(r)
	if r.ChannelDir != "" {
		if err := os.RemoveAll(r.ChannelDir); err != nil {
			drv.log.Warn("cannot remove a channel directory", "path", r.ChannelDir, "error", err)
		}
	}
	for _, p := range []string{r.QMP, r.PidFile, drv.recordPath(r.UUID)} {
		if p != "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				drv.log.Warn("cannot remove a runtime file", "path", p, "error", err)
			}
		}
	}
}
