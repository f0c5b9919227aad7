package qemu

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"

	"github.com/virtd/virtd/internal/qemu/qmp"
)

// domainProbe is what an emulator says, in the probe's QMP session, about
// the domains it can run: what domain capabilities are made of (see
// domaincaps.go). It is asked under TCG: a CPU model's usability is
// TCG's.
type domainProbe struct {
	CPUModels []cpuModel `json:"cpu_models"`
	// HostModel is what the 'max' CPU model is under TCG, as the
	// machine's default model and the features that differ from it.
	HostModel hostModel `json:"host_model"`
	// Types are the QOM types of probedTypes the emulator has.
	Types      []string `json:"types"`
	TPMModels  []string `json:"tpm_models"`
	TPMTypes   []string `json:"tpm_types"`
	Spice, VNC bool     `json:",omitempty"`
}

type cpuModel struct {
	Name       string `json:"name"`
	AliasOf    string `json:"alias_of,omitempty"`
	Usable     bool   `json:"usable,omitempty"`
	Deprecated bool   `json:"deprecated,omitempty"`
}

type hostModel struct {
	Base    string   `json:"base,omitempty"`
	Require []string `json:"require,omitempty"`
	Disable []string `json:"disable,omitempty"`
}

// probedTypes are the QOM types domain capabilities depend on (or that
// tell a device model exists), among the many an emulator lists.
var probedTypes = strings.Fields(`
virtio-blk-pci virtio-scsi-pci lsi53c895a ahci ich9-ahci ide-hd ide-cd isa-fdc floppy
usb-storage scsi-hd scsi-cd scsi-block
piix3-usb-uhci ich9-usb-ehci1 ich9-usb-uhci1 qemu-xhci nec-usb-xhci
VGA cirrus-vga qxl-vga virtio-vga virtio-gpu-pci bochs-display ramfb
intel-hda ich9-intel-hda AC97 ES1370 usb-audio
virtio-rng-pci rng-random rng-egd rng-builtin
tpm-tis tpm-crb
vhost-user-fs-pci virtio-9p-pci vhost-vsock-pci usb-redir
i6300esb ib700 pvpanic pvpanic-pci virtio-balloon-pci virtio-serial-pci virtserialport
iothread vmcoreinfo vmgenid
`)

// probeDomainCaps asks a probing QEMU (TCG, no machine) what domain
// capabilities are made of. A command the emulator does not have leaves
// its part empty (spice, TPM); a failure of the others fails the probe,
// which is not cached.
func probeDomainCaps(ctx context.Context, mon *qmp.Monitor, machines []machine, p *domainProbe) error {
	var defs []struct {
		Name        string   `json:"name"`
		AliasOf     string   `json:"alias-of"`
		Unavailable []string `json:"unavailable-features"`
		Deprecated  bool     `json:"deprecated"`
	}
	if err := mon.Execute(ctx, "query-cpu-definitions", nil, &defs); err != nil {
		return err
	}
	for _, d := range defs {
		switch d.Name {
		case "max", "host", "base": // CPU modes, not models
			continue
		}
		p.CPUModels = append(p.CPUModels, cpuModel{Name: d.Name, AliasOf: d.AliasOf, Usable: len(d.Unavailable) == 0, Deprecated: d.Deprecated})
	}
	sort.Slice(p.CPUModels, func(i, j int) bool { return p.CPUModels[i].Name < p.CPUModels[j].Name })

	base := "qemu64"
	for _, m := range machines {
		if m.Default && m.DefaultCPU != "" {
			base = m.DefaultCPU
		}
	}
	if hm, err := expandHostModel(ctx, mon, base); err == nil {
		p.HostModel = hm
	} else if !isCommandNotFound(err) {
		return err
	}

	var types []struct {
		Name string `json:"name"`
	}
	if err := mon.Execute(ctx, "qom-list-types", map[string]any{"abstract": false}, &types); err != nil {
		return err
	}
	have := make(map[string]bool, len(types))
	for _, t := range types {
		have[t.Name] = true
	}
	for _, t := range probedTypes {
		if have[t] {
			p.Types = append(p.Types, t)
		}
	}

	if err := mon.Execute(ctx, "query-tpm-models", nil, &p.TPMModels); err != nil && !isCommandNotFound(err) {
		return err
	}
	if err := mon.Execute(ctx, "query-tpm-types", nil, &p.TPMTypes); err != nil && !isCommandNotFound(err) {
		return err
	}
	sort.Strings(p.TPMModels)
	sort.Strings(p.TPMTypes)
	p.Spice = mon.Execute(ctx, "query-spice", nil, nil) == nil
	p.VNC = mon.Execute(ctx, "query-vnc", nil, nil) == nil
	return nil
}

// expandHostModel expands 'max' and base statically (as the base model
// and the value of every feature) and returns 'max' as base with the
// features that differ.
func expandHostModel(ctx context.Context, mon *qmp.Monitor, base string) (hostModel, error) {
	expand := func(name string) (map[string]any, error) {
		var r struct {
			Model struct {
				Props map[string]any `json:"props"`
			} `json:"model"`
		}
		err := mon.Execute(ctx, "query-cpu-model-expansion", map[string]any{"type": "static", "model": map[string]string{"name": name}}, &r)
		return r.Model.Props, err
	}
	maxProps, err := expand("max")
	if err != nil {
		return hostModel{}, err
	}
	baseProps, err := expand(base)
	if err != nil {
		return hostModel{}, err
	}
	hm := hostModel{Base: base}
	for name, v := range maxProps {
		on, ok := v.(bool)
		if !ok {
			continue // family, model, vendor...: not features
		}
		if was, _ := baseProps[name].(bool); on != was {
			if on {
				hm.Require = append(hm.Require, name)
			} else {
				hm.Disable = append(hm.Disable, name)
			}
		}
	}
	sort.Strings(hm.Require)
	sort.Strings(hm.Disable)
	return hm, nil
}

func isCommandNotFound(err error) bool {
	var qe *qmp.Error
	return errors.As(err, &qe) && qe.Class == "CommandNotFound"
}

// hasType reports whether the emulator has the QOM type t (one of
// probedTypes).
func (p *domainProbe) hasType(t string) bool {
	return slices.Contains(p.Types, t)
}
