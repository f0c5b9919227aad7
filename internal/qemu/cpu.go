package qemu

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"

	"libvirt.org/go/libvirtxml"
)

// cpuDef is a checked <cpu>: QEMU's -cpu value and the topology.
type cpuDef struct {
	// opt is -cpu's value ("" leaves QEMU's default model).
	opt string
	// model is the named model of mode='custom', checked against the
	// emulator's list at start.
	model string
	// sockets, dies, cores, threads are <topology> (0: not given).
	sockets, dies, cores, threads int
}

// cpuName is a CPU model or feature name: nothing that could end QEMU's
// option or start another (commas, '=').
var cpuName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// parseCPU checks <cpu> against the domain type and its maximum vCPUs.
//
// Under TCG (type='qemu') host-model becomes -cpu max: QEMU's "max" is
// every feature TCG can emulate, which is what libvirt's host-model
// expansion for TCG approximates with a named model; naming a model
// would tie the guest to a host CPU TCG does not use anyway. Under KVM
// host-model is -cpu host (with QEMU's migratable features only, its
// default). host-passthrough needs KVM: there is no host CPU to pass
// through under TCG.
func parseCPU(x *libvirtxml.Domain, maxVCPUs uint, bad badFunc) (*cpuDef, error) {
	if x.CPU == nil {
		// libvirt's default: QEMU's default model, shown in the definition.
		x.CPU = &libvirtxml.DomainCPU{Mode: "custom", Match: "exact", Check: "none",
			Model: &libvirtxml.DomainCPUModel{Fallback: "forbid", Value: "qemu64"}}
	}
	c := x.CPU
	d := &cpuDef{}
	switch c.Match {
	case "", "minimum", "exact", "strict":
	default:
		return nil, bad("<cpu match='%s'> is not valid (minimum, exact or strict)", c.Match)
	}
	switch c.Check {
	case "", "none", "partial", "full":
	default:
		return nil, bad("<cpu check='%s'> is not valid (none, partial or full)", c.Check)
	}
	mode := c.Mode
	if mode == "" {
		mode = "custom"
	}
	var opts []string
	switch mode {
	case "host-passthrough":
		if x.Type != "kvm" {
			return nil, bad("<cpu mode='host-passthrough'> needs KVM, and the domain type is '%s' (use type='kvm', or mode='maximum' for everything TCG emulates)", x.Type)
		}
		opts = append(opts, "host")
	case "host-model":
		if x.Type == "kvm" {
			opts = append(opts, "host", "migratable=on")
		} else {
			opts = append(opts, "max")
		}
	case "maximum":
		opts = append(opts, "max")
	case "custom":
		if c.Model == nil || strings.TrimSpace(c.Model.Value) == "" {
			if len(c.Features) > 0 || c.Vendor != "" {
				return nil, bad("<cpu mode='custom'> with features or a vendor needs a <model>")
			}
		} else {
			name := strings.TrimSpace(c.Model.Value)
			if !cpuName.MatchString(name) {
				return nil, bad("<cpu><model>%s</model> is not a valid CPU model name", name)
			}
			d.model = name
			opts = append(opts, name)
		}
	default:
		return nil, bad("<cpu mode='%s'> is not valid (custom, host-model, host-passthrough or maximum)", c.Mode)
	}
	if c.Model != nil {
		switch c.Model.Fallback {
		case "", "allow", "forbid":
		default:
			return nil, bad("<cpu><model fallback='%s'> is not valid (allow or forbid)", c.Model.Fallback)
		}
		if mode != "custom" && strings.TrimSpace(c.Model.Value) != "" {
			return nil, bad("<cpu mode='%s'> takes no <model> (%s): only mode='custom' names one", mode, c.Model.Value)
		}
	}
	switch c.Vendor {
	case "":
	case "Intel":
		opts = append(opts, "vendor=GenuineIntel")
	case "AMD":
		opts = append(opts, "vendor=AuthenticAMD")
	default:
		return nil, bad("<cpu><vendor>%s</vendor> is not supported (Intel or AMD)", c.Vendor)
	}
	if len(opts) == 0 && len(c.Features) > 0 {
		return nil, bad("<cpu><feature> needs a CPU model or mode")
	}
	seen := map[string]bool{}
	for _, f := range c.Features {
		if !cpuName.MatchString(f.Name) {
			return nil, bad("<cpu><feature name='%s'> is not a valid feature name", f.Name)
		}
		if seen[f.Name] {
			return nil, bad("<cpu><feature name='%s'> is given twice", f.Name)
		}
		seen[f.Name] = true
		switch f.Policy {
		case "", "require", "force", "optional":
			opts = append(opts, "+"+f.Name)
		case "disable", "forbid":
			opts = append(opts, "-"+f.Name)
		default:
			return nil, bad("<cpu><feature policy='%s' name='%s'> is not valid (require, force, optional, disable or forbid)", f.Policy, f.Name)
		}
	}
	d.opt = strings.Join(opts, ",")
	if t := c.Topology; t != nil {
		for _, v := range []struct {
			attr string
			n    int
		}{{"sockets", t.Sockets}, {"dies", t.Dies}, {"cores", t.Cores}, {"threads", t.Threads}} {
			if v.n < 0 || v.n > 255 {
				return nil, bad("<cpu><topology %s='%d'> is out of range (1 to 255)", v.attr, v.n)
			}
		}
		if t.Sockets == 0 || t.Cores == 0 || t.Threads == 0 {
			return nil, bad("<cpu><topology> needs sockets, cores and threads (got sockets='%d' cores='%d' threads='%d')", t.Sockets, t.Cores, t.Threads)
		}
		dies := max(t.Dies, 1)
		if n := t.Sockets * dies * t.Cores * t.Threads; n != int(maxVCPUs) {
			return nil, bad("<cpu><topology sockets='%d' dies='%d' cores='%d' threads='%d'> makes %d vCPUs, but <vcpu> is %d",
				t.Sockets, dies, t.Cores, t.Threads, n, maxVCPUs)
		}
		d.sockets, d.dies, d.cores, d.threads = t.Sockets, t.Dies, t.Cores, t.Threads
		t.Dies = dies // as libvirt shows it
	}
	// What libvirt fills in: host-model is checked partially and has no
	// match; a custom model matches exactly.
	switch mode {
	case "host-model":
		c.Match = ""
		if c.Check == "" {
			c.Check = "partial"
		}
	case "custom":
		if c.Model != nil && c.Match == "" {
			c.Match = "exact"
		}
	}
	return d, nil
}

// cpuArgs returns the values of QEMU's -cpu ("" for none: QEMU's default
// model) and -smp options for a checked definition. argv.go adds them.
func cpuArgs(c *config) (cpuOpt string, smpOpt string, err error) {
	var d *cpuDef
	if c.tune != nil {
		d = c.tune.cpu
	}
	smp := fmt.Sprintf("%d", c.vcpus)
	if c.vcpus != c.maxVCPUs {
		smp += fmt.Sprintf(",maxcpus=%d", c.maxVCPUs)
	}
	if d == nil || d.sockets == 0 {
		smp += fmt.Sprintf(",sockets=%d,cores=1,threads=1", c.maxVCPUs)
	} else {
		if int(c.maxVCPUs) != d.sockets*max(d.dies, 1)*d.cores*d.threads {
			return "", "", fmt.Errorf("domain '%s': <cpu><topology> does not make %d vCPUs", c.Name(), c.maxVCPUs)
		}
		smp += fmt.Sprintf(",sockets=%d", d.sockets)
		if d.dies > 1 {
			smp += fmt.Sprintf(",dies=%d", d.dies)
		}
		smp += fmt.Sprintf(",cores=%d,threads=%d", d.cores, d.threads)
	}
	if d != nil {
		cpuOpt = d.opt
	}
	return cpuOpt, smp, nil
}

// cpuModels caches each emulator's CPU model list (-cpu help): one run
// of QEMU per binary, the first time a custom model is started.
var cpuModels = struct {
	sync.Mutex
	m map[string][]string
}{m: map[string][]string{}}

// emulatorCPUModels returns the CPU models emulator knows.
func emulatorCPUModels(emulator string) ([]string, error) {
	cpuModels.Lock()
	defer cpuModels.Unlock()
	if l, ok := cpuModels.m[emulator]; ok {
		return l, nil
	}
	out, err := exec.Command(emulator, "-cpu", "help").Output()
	if err != nil {
		return nil, fmt.Errorf("listing the CPU models of %s: %w", emulator, err)
	}
	l := parseCPUHelp(string(out))
	cpuModels.m[emulator] = l
	return l, nil
}

// parseCPUHelp reads the model names of `qemu-system-x86_64 -cpu help`:
// lines "x86 NAME  (alias of ...)" up to the feature list.
func parseCPUHelp(out string) []string {
	var l []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if strings.HasPrefix(line, "Recognized CPUID flags") {
			break
		}
		if len(f) >= 2 && f[0] == "x86" {
			l = append(l, f[1])
		}
	}
	return l
}

// checkCPUModel refuses, at start, a custom model the emulator does not
// know. fallback='allow' does not let the driver choose another model:
// it has no table of what is close to what.
func checkCPUModel(c *config) error {
	if c.tune == nil || c.tune.cpu == nil || c.tune.cpu.model == "" {
		return nil
	}
	models, err := emulatorCPUModels(c.x.Devices.Emulator)
	if err != nil {
		return fmt.Errorf("domain '%s': %w", c.Name(), err)
	}
	if !slices.Contains(models, c.tune.cpu.model) {
		return fmt.Errorf("domain '%s': <cpu><model>%s</model> is not a CPU model of %s", c.Name(), c.tune.cpu.model, c.x.Devices.Emulator)
	}
	return nil
}
