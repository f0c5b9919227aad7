package domxml

import (
	"fmt"
	"reflect"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// Fields is what a driver honours of libvirt's domain XML, as paths of
// libvirtxml.Domain's Go fields: "Devices.Disks.Target.Bus" is the bus
// attribute of <target> in a <disk>. Slices and pointers are walked
// through, so a path names a field of every element of a list. A path
// implies its ancestors ("Devices.Disks.Target.Bus" honours <devices>,
// <disk> and <target> too, but not their other children); "P.*" honours P
// and everything below it; "*" honours everything.
//
// <metadata> is never checked: its content is opaque, kept verbatim by
// every driver.
type Fields struct {
	driver string
	set    map[string]bool
	all    map[string]bool // prefixes honoured with everything below
}

// NewFields declares that driver (named in errors: "qemu") honours paths.
// Each argument may hold several paths separated by white space. A path
// that names no field of libvirtxml.Domain is a programming error, and
// NewFields panics, so that a typo in a declaration fails every test.
func NewFields(driver string, paths ...string) *Fields {
	f := &Fields{driver: driver, set: map[string]bool{}, all: map[string]bool{}}
	for _, s := range paths {
		for _, p := range strings.Fields(s) {
			if p == "*" {
				f.all[""] = true
				continue
			}
			base, star := strings.CutSuffix(p, ".*")
			if err := checkPath(base); err != nil {
				panic(fmt.Sprintf("domxml.NewFields(%q): %v", driver, err))
			}
			if star {
				f.all[base] = true
			}
			for q := base; q != ""; q = parentPath(q) {
				f.set[q] = true
			}
		}
	}
	return f
}

func parentPath(p string) string {
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return ""
	}
	return p[:i]
}

// checkPath reports whether p names a field of libvirtxml.Domain.
func checkPath(p string) error {
	t := reflect.TypeOf(libvirtxml.Domain{})
	for _, name := range strings.Split(p, ".") {
		t = deref(t)
		if t.Kind() != reflect.Struct {
			return fmt.Errorf("path %q: %s has no fields", p, t)
		}
		f, ok := t.FieldByName(name)
		if !ok || !f.IsExported() {
			return fmt.Errorf("path %q: %s has no field %s", p, t, name)
		}
		t = f.Type
	}
	return nil
}

// Honours reports whether the field at path p is honoured.
func (f *Fields) Honours(p string) bool {
	if f.set[p] || f.all[""] {
		return true
	}
	for q := parentPath(p); q != ""; q = parentPath(q) {
		if f.all[q] {
			return true
		}
	}
	return false
}

// Check refuses the first set field of x that f does not honour, with an
// error of kind virt.ErrNotSupported naming its XML path and the driver.
// It checks presence only: the values of honoured fields are the driver's
// to check.
func (f *Fields) Check(x *libvirtxml.Domain) error {
	return f.walk(reflect.ValueOf(x).Elem(), "", xmlPath{path: "domain"})
}

// xmlPath is where a field is in the XML: the path of its element
// ("domain/devices/disk"), and the element's parent path, where a
// type='...' that chooses a <source> is written.
type xmlPath struct {
	path, parent string
}

func (f *Fields) walk(v reflect.Value, path string, where xmlPath) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		fv := v.Field(i)
		if sf.Name == "XMLName" || !sf.IsExported() || fv.IsZero() || emptyUnion(fv) {
			continue
		}
		p := sf.Name
		if path != "" {
			p = path + "." + sf.Name
		}
		if p == "Metadata" {
			continue // opaque
		}
		w, desc, name := describe(sf, where)
		if !f.Honours(p) {
			return fmt.Errorf("%s: %s is not supported by the %s driver: %w", name, desc, f.driver, virt.ErrNotSupported)
		}
		if err := f.walkValue(fv, p, w); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fields) walkValue(v reflect.Value, path string, where xmlPath) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return f.walkValue(v.Elem(), path, where)
	case reflect.Slice:
		for i := range v.Len() {
			if err := f.walkValue(v.Index(i), path, where); err != nil {
				return err
			}
		}
	case reflect.Struct:
		return f.walk(v, path, where)
	}
	return nil
}

// unionTypes are the type='...' values of union members whose Go name,
// lowered, is not the value.
var unionTypes = map[string]string{
	"SubsysUSB": "usb", "SubsysSCSI": "scsi", "SubsysSCSIHost": "scsi_host", "SubsysPCI": "pci",
	"SubsysMDev": "mdev", "CapsStorage": "storage", "CapsMisc": "misc", "CapsNet": "net",
	"QEMUVDAgent": "qemu-vdagent", "EGLHeadless": "egl-headless", "VirtioSerial": "virtio-serial",
	"VirtIOSerial": "virtio-serial", "SpaprVIO": "spapr-vio", "VirtioS390": "virtio-s390",
	"VirtioMMIO": "virtio-mmio",
}

// describe returns where field f of the element at where is, how to name
// it for a reader of libvirt's documentation (relative to <domain>), and
// its XML path: an element, an attribute, the text of an element, a
// member of one of the type='...' unions libvirtxml reads by hand, or a
// namespaced extension (qemu:commandline).
func describe(f reflect.StructField, where xmlPath) (inner xmlPath, desc, path string) {
	rel := func(p string) string {
		if r, ok := strings.CutPrefix(p, "domain/"); ok {
			return r
		}
		return p
	}
	tag := f.Tag.Get("xml")
	name, opts, _ := strings.Cut(tag, ",")
	ft := deref(f.Type)
	switch {
	case tag == "-" || tag == "" && ft.Kind() == reflect.Struct && !hasXMLName(ft):
		typ := unionTypes[f.Name]
		if typ == "" {
			typ = strings.ToLower(f.Name)
		}
		// A <source>'s type is written on its parent (<disk type='file'>).
		owner := where.path
		if strings.HasSuffix(owner, "/source") {
			owner = where.parent
		}
		return where, fmt.Sprintf("<%s type='%s'>", rel(owner), typ), fmt.Sprintf("%s[@type='%s']", owner, typ)
	case tag == "" && ft.Kind() == reflect.Struct:
		x, _ := ft.FieldByName("XMLName")
		space, local, _ := strings.Cut(x.Tag.Get("xml"), " ")
		if local == "" {
			space, local = "", space
		}
		n := displayName(xmlName(space, local))
		p := where.path + "/" + n
		return xmlPath{p, where.path}, "<" + rel(p) + ">", p
	case tag == "":
		a := strings.ToLower(f.Name[:1]) + f.Name[1:]
		return where, fmt.Sprintf("attribute '%s' of <%s>", a, rel(where.path)), where.path + "/@" + a
	case hasOpt(opts, "chardata") || hasOpt(opts, "innerxml"):
		return where, "the content of <" + rel(where.path) + ">", where.path
	case hasOpt(opts, "attr"):
		a := lastField(name)
		return where, fmt.Sprintf("attribute '%s' of <%s>", a, rel(where.path)), where.path + "/@" + a
	}
	local := lastField(name)
	if local == "" {
		local = f.Name
	}
	p := where.path + "/" + local
	return xmlPath{p, where.path}, "<" + rel(p) + ">", p
}

// emptyUnion reports a pointer to a union none of whose members is set:
// libvirtxml makes one for an element that may have a typed child
// (<input type='tablet'> gets an empty <source> union), and it stands for
// nothing the document says.
func emptyUnion(v reflect.Value) bool {
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return false
	}
	s := v.Elem()
	if s.NumField() == 0 {
		return false
	}
	for i := range s.NumField() {
		if s.Type().Field(i).Tag.Get("xml") != "-" || !s.Field(i).IsZero() {
			return false
		}
	}
	return true
}

func hasXMLName(t reflect.Type) bool {
	x, ok := t.FieldByName("XMLName")
	return ok && x.Tag.Get("xml") != ""
}
