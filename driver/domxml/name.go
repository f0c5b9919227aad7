package domxml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/virtd/virtd/virt"
)

// MaxNameLen is the longest domain name accepted, in bytes: a name becomes
// a file name (autostart links, logs, sockets), and 255 is what a Linux
// file system takes.
const MaxNameLen = 255

// CheckName returns nil when name is a valid domain name, or an error of
// kind virt.ErrInvalidArgument stating the rule it breaks. A valid name is
// non-empty, at most MaxNameLen bytes, valid UTF-8, without '/', without
// control characters (C0, DEL and C1: a newline or a tab included), and
// neither "." nor "..". It is one rule for every driver: a name is used as
// a file name and printed in rows by `virtsh list`.
//
// Surrounding white space is not part of a name: PeekName and Parse trim
// it before the check, as libvirt users expect of a pretty-printed
// <name>.
func CheckName(name string) error {
	bad := func(rule string) error {
		return fmt.Errorf("invalid domain name %s: %s: %w", quoteName(name), rule, virt.ErrInvalidArgument)
	}
	switch {
	case name == "":
		return fmt.Errorf("invalid domain name: a name must not be empty: %w", virt.ErrInvalidArgument)
	case len(name) > MaxNameLen:
		return bad(fmt.Sprintf("a name must be at most %d bytes long, this one has %d", MaxNameLen, len(name)))
	case !utf8.ValidString(name):
		return bad("a name must be valid UTF-8")
	case strings.Contains(name, "/"):
		return bad("a name must not contain '/'")
	case name == "." || name == "..":
		return bad(`a name must not be "." or ".."`)
	}
	for _, r := range name {
		if isControl(r) {
			return bad(fmt.Sprintf("a name must not contain control characters (it has %U)", r))
		}
	}
	return nil
}

// isControl reports the C0 controls, DEL and the C1 controls.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }

// quoteName quotes a name for an error message, shortened when long.
func quoteName(name string) string {
	const max = 64
	if len(name) <= max {
		return fmt.Sprintf("%q", name)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", name[:cut])
}

// PeekName returns the domain name of a domain XML document, with
// surrounding white space trimmed, without parsing the whole document: it
// reads the document only as far as the end of /domain/name. The error,
// of kind virt.ErrInvalidArgument, says why no name could be found: the
// document is not valid UTF-8, is not well-formed as far as it was read,
// its root is not <domain>, or it has no <name>. The name is not checked:
// that is CheckName's job (CheckDocName does both).
//
// It is meant for a caller that must judge a definition before handing it
// on (the daemon, before a call reaches a driver). A driver parses the
// whole document with Parse, which applies the same rule to the same name.
func PeekName(doc string) (string, error) {
	if err := checkUTF8(doc); err != nil {
		return "", err
	}
	dec := xml.NewDecoder(strings.NewReader(doc))
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("domain XML has no <domain> element: %w", virt.ErrInvalidArgument)
		}
		if err != nil {
			return "", virt.Errorf(virt.ErrInvalidArgument, "malformed domain XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Local != "domain":
				return "", fmt.Errorf("malformed domain XML: the root element is <%s>, not <domain>: %w", t.Name.Local, virt.ErrInvalidArgument)
			case depth == 2 && t.Name.Local == "name":
				return readName(dec)
			}
		case xml.EndElement:
			depth--
			if depth == 0 {
				return "", fmt.Errorf("domain XML has no <name>: %w", virt.ErrInvalidArgument)
			}
		}
	}
}

// readName reads the character data of the <name> element just opened,
// as encoding/xml (and so libvirtxml) reads a string field: the text
// directly inside it, nested elements skipped.
func readName(dec *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", virt.Errorf(virt.ErrInvalidArgument, "malformed domain XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.StartElement:
			if err := dec.Skip(); err != nil {
				return "", virt.Errorf(virt.ErrInvalidArgument, "malformed domain XML: %w", err)
			}
		case xml.EndElement:
			return strings.TrimSpace(b.String()), nil
		}
	}
}

// CheckDocName is PeekName then CheckName: the one call a caller makes to
// refuse a definition whose name is missing or invalid before handing it
// on. It returns the (trimmed) name when it is valid.
func CheckDocName(doc string) (string, error) {
	name, err := PeekName(doc)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", fmt.Errorf("domain XML has no <name> (a name must not be empty): %w", virt.ErrInvalidArgument)
	}
	if err := CheckName(name); err != nil {
		return "", err
	}
	return name, nil
}

// checkUTF8 refuses a document that is not valid UTF-8, naming where.
func checkUTF8(doc string) error {
	if utf8.ValidString(doc) {
		return nil
	}
	off := 0
	for off < len(doc) {
		r, n := utf8.DecodeRuneInString(doc[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	line := 1 + strings.Count(doc[:off], "\n")
	return fmt.Errorf("domain XML is not valid UTF-8 (line %d, byte %d): %w", line, off, virt.ErrInvalidArgument)
}
