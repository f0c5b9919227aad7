package domxml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// libvirtxml drops what it does not know without a word. checkUnknown
// finds it by comparing the document's tree of elements and attributes
// with the tree of x (the document as libvirtxml parsed it) written out
// again: whatever the document has and the rewrite lacks was dropped.
//
// The comparison matches names, never values (libvirtxml rewrites values:
// quotes, units, yes/no). The k-th child named N of an element matches the
// k-th child named N of its counterpart, whatever the order of children of
// different names (libvirtxml writes them in its own order). Namespace
// declarations are not attributes. The content of /domain/metadata is
// opaque and skipped.
//
// What libvirtxml omits when empty or zero (<title/>, <iothreads>0</...>,
// port='0') is missing from the rewrite although libvirtxml knows it: an
// element or attribute with no counterpart is accepted when it is empty
// and its name is one libvirtxml knows in that place (the vocabulary,
// below, read from libvirtxml's types). Anything else with no counterpart
// is refused: a name libvirtxml does not know at all ("unknown"), or a
// known one that it dropped here (a second <name>, an attribute of
// another type of <source>: "not valid here").
func checkUnknown(doc string, x *libvirtxml.Domain) error {
	in, err := readTree(doc, true)
	if err != nil {
		return virt.Errorf(virt.ErrInvalidArgument, "malformed domain XML: %w", err)
	}
	again, err := x.Marshal()
	if err != nil {
		return virt.Errorf(virt.ErrInternal, "domain XML: libvirtxml cannot write what it read: %w", err)
	}
	out, err := readTree(again, false)
	if err != nil {
		return virt.Errorf(virt.ErrInternal, "domain XML: libvirtxml wrote XML it cannot read: %w", err)
	}
	return compare(in, out, displayName(in.name))
}

// node is an element: its name, attributes (namespace declarations left
// out), children and the text directly inside it.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     strings.Builder
	line     int
}

// readTree reads doc into a tree of nodes. Anything but comments,
// processing instructions and white space after the root is refused, as
// a conforming XML parser would.
func readTree(doc string, lines bool) (*node, error) {
	dec := xml.NewDecoder(strings.NewReader(doc))
	var root *node
	var stack []*node
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if root == nil {
				return nil, errors.New("no root element")
			}
			return root, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, fmt.Errorf("element <%s> after the root element", t.Name.Local)
			}
			n := &node{name: t.Name}
			if lines {
				n.line, _ = dec.InputPos()
			}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				n.attrs = append(n.attrs, a)
			}
			if len(stack) == 0 {
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, errors.New("text outside the root element")
			}
		}
	}
}

// sameName reports whether a name read from the document matches one in
// libvirtxml's rewrite. libvirtxml's own names carry a namespace only for
// its namespaced extensions (qemu:commandline, ...); elsewhere it reads an
// element of any namespace by its local name, and so does this.
func sameName(in, out xml.Name) bool {
	return in.Local == out.Local && (out.Space == "" || out.Space == in.Space)
}

func compare(in, out *node, path string) error {
	elem := in.name.Local
	for _, a := range in.attrs {
		found := false
		for _, b := range out.attrs {
			if sameName(a.Name, b.Name) {
				found = true
				break
			}
		}
		if found {
			continue
		}
		p := fmt.Sprintf("%s/@%s", path, displayName(a.Name))
		known := vocabulary().attrs[elem][a.Name.Local] && a.Name.Space == ""
		switch {
		case known && isZero(a.Value):
			// libvirtxml omits it when empty or zero.
		case known:
			return fmt.Errorf("%s: attribute not valid here (value %q; line %d): %w", p, shorten(a.Value), in.line, virt.ErrInvalidArgument)
		default:
			return fmt.Errorf("%s: unknown attribute (line %d): %w", p, in.line, virt.ErrInvalidArgument)
		}
	}
	used := make([]bool, len(out.children))
	for _, c := range in.children {
		p := path + "/" + displayName(c.name)
		match := -1
		for i, o := range out.children {
			if !used[i] && sameName(c.name, o.name) {
				match = i
				break
			}
		}
		if match >= 0 {
			used[match] = true
			if path == "domain" && c.name.Local == "metadata" {
				continue // opaque: kept verbatim by libvirtxml
			}
			if err := compare(c, out.children[match], p); err != nil {
				return err
			}
			continue
		}
		known := vocabulary().children[elem][c.name.Local] && c.name.Space == ""
		switch {
		case known && len(c.attrs) == 0 && len(c.children) == 0 && isZero(c.text.String()):
			// libvirtxml omits it when empty or zero.
		case known:
			return fmt.Errorf("%s: element not valid here (repeated, or not valid with its siblings and attributes; line %d): %w", p, c.line, virt.ErrInvalidArgument)
		default:
			return fmt.Errorf("%s: unknown element (line %d): %w", p, c.line, virt.ErrInvalidArgument)
		}
	}
	return nil
}

// isZero reports an empty value or a zero number, which libvirtxml's
// omitempty fields leave out.
func isZero(v string) bool {
	v = strings.TrimSpace(v)
	return v == "" || strings.Trim(v, "0") == "" || v == "0x0"
}

func shorten(v string) string {
	if len(v) > 64 {
		return v[:64] + "..."
	}
	return v
}

// prefixes are the usual prefixes of the namespaces libvirt's domain XML
// uses, for messages.
var prefixes = map[string]string{
	"http://libvirt.org/schemas/domain/qemu/1.0":        "qemu",
	"http://libvirt.org/schemas/domain/lxc/1.0":         "lxc",
	"http://libvirt.org/schemas/domain/bhyve/1.0":       "bhyve",
	"http://libvirt.org/schemas/domain/vmware/1.0":      "vmware",
	"http://libvirt.org/schemas/domain/xen/1.0":         "xen",
	"http://libosinfo.org/xmlns/libvirt/domain/1.0":     "libosinfo",
	"http://www.w3.org/XML/1998/namespace":              "xml",
	"https://github.com/virtd/virtd/xmlns/lxc/1":        "lxc",
	"http://libvirt.org/schemas/domain/hyperv/1.0":      "hyperv",
	"http://libvirt.org/schemas/domain/ch/1.0":          "ch",
	"http://libvirt.org/schemas/domain/qemu/1.0/extras": "qemu",
}

// displayName writes a name the way a user wrote it, as far as can be
// told: prefix:local for the usual namespaces, {namespace}local otherwise.
func displayName(n xml.Name) string {
	switch {
	case n.Space == "":
		return n.Local
	case prefixes[n.Space] != "":
		return prefixes[n.Space] + ":" + n.Local
	case !strings.Contains(n.Space, ":") && !strings.Contains(n.Space, "/"):
		return n.Space + ":" + n.Local // an undeclared prefix, left as it was
	}
	return "{" + n.Space + "}" + n.Local
}

// names is libvirtxml's vocabulary: by element name (wherever the element
// appears), the attributes and child elements its types can read.
type names struct {
	attrs    map[string]map[string]bool
	children map[string]map[string]bool
}

var vocabulary = sync.OnceValue(func() *names {
	v := &names{attrs: map[string]map[string]bool{}, children: map[string]map[string]bool{}}
	v.walk(reflect.TypeOf(libvirtxml.Domain{}), "domain", "", map[vocabKey]bool{})
	return v
})

type vocabKey struct {
	t    reflect.Type
	elem string
}

func add(m map[string]map[string]bool, elem, name string) {
	if m[elem] == nil {
		m[elem] = map[string]bool{}
	}
	m[elem][name] = true
}

// walk records the attributes and children of element elem (whose parent
// is parent) that struct type t reads.
func (v *names) walk(t reflect.Type, elem, parent string, seen map[vocabKey]bool) {
	t = deref(t)
	if t.Kind() != reflect.Struct || seen[vocabKey{t, elem}] {
		return
	}
	seen[vocabKey{t, elem}] = true
	// union records a member of a union libvirtxml reads and writes by
	// hand, chosen by an attribute of the element or of its parent.
	union := func(ft reflect.Type) {
		for _, a := range []string{"type", "mode", "model"} {
			add(v.attrs, elem, a)
			add(v.attrs, parent, a)
		}
		v.walk(ft, elem, parent, seen)
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "XMLName" || !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("xml")
		name, opts, _ := strings.Cut(tag, ",")
		ft := deref(f.Type)
		switch {
		case tag == "-":
			union(ft)
		case tag == "" && f.Anonymous:
			v.walk(ft, elem, parent, seen)
		case tag == "" && ft.Kind() == reflect.Struct:
			if x, ok := ft.FieldByName("XMLName"); ok && x.Tag.Get("xml") != "" {
				local := lastField(x.Tag.Get("xml"))
				add(v.children, elem, local)
				v.walk(ft, local, elem, seen)
			} else {
				union(ft)
			}
		case tag == "":
			// An attribute libvirtxml writes by hand (chassisNr, ...).
			add(v.attrs, elem, strings.ToLower(f.Name[:1])+f.Name[1:])
			add(v.attrs, elem, strings.ToLower(f.Name))
		case hasOpt(opts, "attr"):
			add(v.attrs, elem, lastField(name))
		case hasOpt(opts, "chardata") || hasOpt(opts, "innerxml") || hasOpt(opts, "comment") || hasOpt(opts, "any"):
		default:
			local := lastField(name)
			if local == "" {
				local = f.Name
			}
			add(v.children, elem, local)
			v.walk(ft, local, elem, seen)
		}
	}
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

func hasOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

func xmlName(space, local string) xml.Name { return xml.Name{Space: space, Local: local} }
