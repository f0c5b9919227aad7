package qemu

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/virtd/virtd/driver"
)

// firmwareDirs are where QEMU's firmware descriptors are (QEMU's
// docs/interop/firmware.json): a file in an earlier directory hides the
// file of the same name in a later one, and an empty file hides it
// without replacing it. Descriptors are read in the order of their names.
var firmwareDirs = []string{"/etc/qemu/firmware", "/usr/share/qemu/firmware"}

// firmware is one descriptor: a firmware image and what it runs.
type firmware struct {
	File       string   // the descriptor
	Interfaces []string // "uefi", "bios", ...
	// Device is how the image is mapped: "flash" (a pflash loader) or
	// "memory" (a rom loader).
	Device     string
	Executable string
	// Format is the executable's format ("raw" when the descriptor says
	// none); NVRAMTemplate the variable store a pflash firmware starts
	// from.
	Format        string
	NVRAMTemplate string
	Targets       []firmwareTarget
	Features      []string // "secure-boot", "enrolled-keys", "requires-smm", ...
}

type firmwareTarget struct {
	Arch     string   `json:"architecture"`
	Machines []string `json:"machines"` // globs: "pc-q35-*"
}

// runs reports whether the firmware runs machine (a canonical name) of
// QEMU architecture arch.
func (f *firmware) runs(arch, machine string) bool {
	for _, t := range f.Targets {
		if t.Arch != arch {
			continue
		}
		for _, glob := range t.Machines {
			if ok, _ := path.Match(glob, machine); ok {
				return true
			}
		}
	}
	return false
}

func (f *firmware) has(feature string) bool { return slices.Contains(f.Features, feature) }

// firmwareList is the descriptors read, with the stamps of the
// directories and files read: the list is read again when one changed.
type firmwareList struct {
	dirs   []string
	stamps []driver.Stamp
	fws    []firmware
	racy   bool
}

func (l *firmwareList) current() bool {
	if l == nil || l.racy {
		return false
	}
	for _, s := range l.stamps {
		if !s.Current() {
			return false
		}
	}
	return true
}

// firmwareCache keeps the descriptors of dirs (firmwareDirs, or a test's).
type firmwareCache struct {
	dirs []string
	mu   sync.Mutex
	list *firmwareList
}

// get returns the descriptors, read again when a directory or a file
// changed. They are the firmware package's, not the emulator's: they are
// not part of a probe, and an upgrade of OVMF shows without one.
func (fc *firmwareCache) get() *firmwareList {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if !fc.list.current() {
		fc.list = readFirmware(fc.dirs)
	}
	return fc.list
}

// readFirmware reads the descriptors of dirs. A descriptor that cannot be
// read or parsed is left out, as QEMU's users do.
func readFirmware(dirs []string) *firmwareList {
	l := &firmwareList{dirs: dirs}
	start := time.Now()
	byName := make(map[string]string)
	for i := len(dirs) - 1; i >= 0; i-- { // earlier directories win
		l.stamps = append(l.stamps, driver.StampOf(dirs[i]))
		matches, _ := filepath.Glob(filepath.Join(dirs[i], "*.json"))
		for _, m := range matches {
			byName[filepath.Base(m)] = m
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		file := byName[n]
		l.stamps = append(l.stamps, driver.StampOf(file))
		b, err := os.ReadFile(file)
		if err != nil || len(b) == 0 {
			continue
		}
		var d struct {
			Interfaces []string `json:"interface-types"`
			Mapping    struct {
				Device     string `json:"device"`
				Filename   string `json:"filename"` // memory
				Executable struct {
					Filename string `json:"filename"`
					Format   string `json:"format"`
				} `json:"executable"` // flash
				NVRAMTemplate struct {
					Filename string `json:"filename"`
				} `json:"nvram-template"`
			} `json:"mapping"`
			Targets  []firmwareTarget `json:"targets"`
			Features []string         `json:"features"`
		}
		if json.Unmarshal(b, &d) != nil {
			continue
		}
		f := firmware{File: file, Interfaces: d.Interfaces, Device: d.Mapping.Device, Targets: d.Targets, Features: d.Features}
		switch d.Mapping.Device {
		case "flash":
			f.Executable = d.Mapping.Executable.Filename
			f.Format = d.Mapping.Executable.Format
			f.NVRAMTemplate = d.Mapping.NVRAMTemplate.Filename
		case "memory":
			f.Executable = d.Mapping.Filename
		default:
			continue // "kernel": not a loader
		}
		if f.Executable == "" {
			continue
		}
		l.fws = append(l.fws, f)
	}
	for _, s := range l.stamps {
		if s.Exists && start.Sub(time.Unix(0, s.Ctime)) < racyWindow {
			l.racy = true
		}
	}
	return l
}
