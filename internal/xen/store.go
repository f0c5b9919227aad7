package xen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/virt"
)

// definition is one domain definition, persistent or the one a running
// instance was started with: its model and the XML as stored.
type definition struct {
	cfg *domconfig.Config
	xml *libvirtxml.Domain
}

// Name and UUID of the definition (domlist.Def).
func (def *definition) Name() string { return def.cfg.Name }
func (def *definition) UUID() string { return def.cfg.UUID }

// parseDefinition reads domain XML, giving it a UUID when it has none.
func parseDefinition(doc string) (*definition, error) {
	cfg, x, err := domconfig.Parse(doc)
	if err != nil {
		return nil, err
	}
	if cfg.UUID == "" {
		cfg.UUID = domutil.NewUUID()
	}
	x.UUID, x.Name, x.ID = cfg.UUID, cfg.Name, nil
	return &definition{cfg: cfg, xml: x}, nil
}

func marshal(x *libvirtxml.Domain, id int32) (string, error) {
	c := *x
	c.ID = nil
	if id >= 0 {
		n := int(id)
		c.ID = &n
	}
	s, err := c.Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "domain '%s': writing XML: %w", x.Name, err)
	}
	return s, nil
}

func (d *Driver) defPath(uuid string) string  { return filepath.Join(d.configDir, uuid+".xml") }
func (d *Driver) autoPath(uuid string) string { return filepath.Join(d.configDir, uuid+".autostart") }
func (d *Driver) livePath(uuid string) string { return filepath.Join(d.runDir, uuid+".xml") }

// saveDefinition writes a definition atomically.
func (d *Driver) saveDefinition(def *definition) error {
	doc, err := marshal(def.xml, -1)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.configDir, 0o755); err != nil {
		return virt.Errorf(virt.ErrInternal, "save definition: %w", err)
	}
	if err := atomicfile.Rewrite(d.defPath(def.cfg.UUID), []byte(doc+"\n"), 0o600); err != nil {
		return virt.Errorf(virt.ErrInternal, "save definition of %q: %w", def.cfg.Name, err)
	}
	return nil
}

// saveLive records the definition a running instance (domid) was started
// with, so that a restarted driver finds it again.
func (d *Driver) saveLive(def *definition, domid uint32) error {
	doc, err := marshal(def.xml, int32(domid))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.runDir, 0o755); err != nil {
		return err
	}
	return atomicfile.Replace(d.livePath(def.cfg.UUID), []byte(doc+"\n"), 0o600)
}

// load reads the definitions, then the live records of the domains Xen
// still runs; records of domains that are gone are removed.
func (d *Driver) load() error {
	for _, dir := range []string{d.configDir, d.runDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %v", dir, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(d.configDir, "*.xml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		def, err := parseDefinition(string(b))
		if err != nil {
			d.log.Error("ignoring a definition that no longer parses", "file", f, "error", err)
			continue
		}
		o, err := d.doms.Load(def)
		if err != nil {
			d.log.Error("ignoring a definition", "file", f, "error", err)
			continue
		}
		_, err = os.Stat(d.autoPath(def.cfg.UUID))
		o.Autostart = err == nil
		o.Unlock()
	}
	running, err := d.hv.List()
	if err != nil {
		return fmt.Errorf("cannot list Xen domains: %v", err)
	}
	byUUID := map[string]uint32{}
	for _, r := range running {
		byUUID[r.UUID] = r.DomID
	}
	files, _ = filepath.Glob(filepath.Join(d.runDir, "*.xml"))
	for _, f := range files {
		uuid := strings.TrimSuffix(filepath.Base(f), ".xml")
		b, err := os.ReadFile(f)
		var def *definition
		if err == nil {
			def, err = parseDefinition(string(b))
		}
		domid, ok := byUUID[uuid]
		if err != nil || !ok {
			_ = os.Remove(f)
			continue
		}
		o, err := d.doms.Find(virt.ByUUID(uuid))
		if err != nil {
			o, err = d.doms.Add(def.cfg.Name, uuid)
		}
		if err != nil {
			d.log.Error("a running domain is left unmanaged", "name", def.cfg.Name, "domid", domid, "error", err)
			continue
		}
		o.Live, o.Priv.domid = def, domid
		o.Unlock()
		if err := d.hv.Watch(domid); err != nil {
			d.log.Warn("cannot watch domain", "name", def.cfg.Name, "domid", domid, "error", err)
		}
		d.log.Info("found running domain again", "name", def.cfg.Name, "domid", domid)
	}
	return nil
}

func (d *Driver) setAutostartFile(uuid string, on bool) error {
	p := d.autoPath(uuid)
	if on {
		return atomicfile.Rewrite(p, nil, 0o600)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
