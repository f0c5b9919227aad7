// Package domxml holds the rules every virtd driver applies to the domain
// XML of a definition, so that each is written once:
//
//   - one rule for domain names (CheckName), which the daemon also applies
//     before a call reaches a driver (PeekName and CheckDocName read the
//     name of a document without parsing all of it);
//   - one rule for XML that libvirtxml does not know (Parse): libvirtxml
//     drops unknown elements and attributes without a word, so a typo
//     (<disc> for <disk>) would define a guest without the disk. Parse
//     refuses them by their path, "domain/devices/disc: unknown element";
//   - one walker for what a driver does not honour (Fields): each driver
//     declares the libvirtxml fields it honours, and Check refuses any
//     other that is set, "domain/devices/sound: <devices/sound> is not
//     supported by the lxc driver".
//
// Errors carry the kinds of package virt: virt.ErrInvalidArgument for a
// bad name, malformed or unknown XML, virt.ErrNotSupported for XML the
// driver does not honour. The content of <metadata> is opaque: never
// refused, kept verbatim.
package domxml

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// Parse parses domain XML for a definition and refuses, with an error of
// kind virt.ErrInvalidArgument: a document that is not valid UTF-8 or not
// well-formed, a missing or invalid name (CheckName; the name is trimmed
// of surrounding white space in the result), and elements or attributes
// libvirtxml does not know, named by their path. What the driver honours
// is for it to check next, with its Fields.
func Parse(doc string) (*libvirtxml.Domain, error) {
	if err := checkUTF8(doc); err != nil {
		return nil, err
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return nil, virt.Errorf(virt.ErrInvalidArgument, "malformed domain XML: %w", err)
	}
	name := strings.TrimSpace(x.Name)
	if name == "" {
		return nil, fmt.Errorf("domain XML has no <name> (a name must not be empty): %w", virt.ErrInvalidArgument)
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := checkUnknown(doc, &x); err != nil {
		return nil, err
	}
	x.Name = name
	return &x, nil
}
