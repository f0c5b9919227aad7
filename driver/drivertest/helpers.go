package drivertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// cleanupTimeout bounds the clean-up of one domain after a case.
const cleanupTimeout = time.Minute

// name returns a domain name unique within the case.
func (h *harness) name(suffix string) string {
	n := "drivertest-" + strings.NewReplacer("/", "-", " ", "-").Replace(h.t.Name())
	if suffix != "" {
		n += "-" + suffix
	}
	return n
}

// xml returns cfg.DomainXML(name) with uuid set (when not empty).
func (h *harness) xml(name, uuid string) string {
	h.t.Helper()
	doc := h.cfg.DomainXML(name)
	if uuid == "" {
		return doc
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		h.t.Fatalf("Config.DomainXML(%q) is not domain XML: %v", name, err)
	}
	x.UUID = uuid
	out, err := x.Marshal()
	if err != nil {
		h.t.Fatalf("marshal domain XML: %v", err)
	}
	return out
}

// define defines a domain from xml and arranges for it to be destroyed and
// undefined when the case ends.
func (h *harness) defineXML(doc string) *virt.Domain {
	h.t.Helper()
	d, err := h.drv.DefineDomain(h.ctx, doc)
	if err != nil {
		h.t.Fatalf("DefineDomain: %v", err)
	}
	if d == nil || d.UUID == "" || d.Name == "" {
		h.t.Fatalf("DefineDomain returned %+v, want a name and a UUID", d)
	}
	uuid := d.UUID
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_ = h.drv.DestroyDomain(ctx, uuid)
		_ = h.drv.UndefineDomain(ctx, uuid)
	})
	return d
}

// define defines cfg.DomainXML(h.name(suffix)).
func (h *harness) define(suffix string) *virt.Domain {
	h.t.Helper()
	return h.defineXML(h.xml(h.name(suffix), ""))
}

// start starts the domain and checks it is active with an ID.
func (h *harness) start(uuid string) *virt.Domain {
	h.t.Helper()
	d, err := h.drv.StartDomain(h.ctx, uuid)
	if err != nil {
		h.t.Fatalf("StartDomain(%s): %v", uuid, err)
	}
	if d == nil || d.UUID != uuid {
		h.t.Fatalf("StartDomain(%s) returned %+v", uuid, d)
	}
	return d
}

func (h *harness) lookup(key virt.Lookup) *virt.Domain {
	h.t.Helper()
	d, err := h.drv.LookupDomain(h.ctx, key)
	if err != nil {
		h.t.Fatalf("LookupDomain(%+v): %v", key, err)
	}
	return d
}

// wantState checks the domain's state and reason, through DomainState and
// through a lookup.
func (h *harness) wantState(uuid string, st virt.State, reason int32) {
	h.t.Helper()
	got, r, err := h.drv.DomainState(h.ctx, uuid)
	if err != nil {
		h.t.Fatalf("DomainState(%s): %v", uuid, err)
	}
	if got != st || r != reason {
		h.t.Fatalf("DomainState(%s) = %s (%s), want %s (%s)", uuid,
			got, virt.ReasonString(got, r), st, virt.ReasonString(st, reason))
	}
	d := h.lookup(virt.ByUUID(uuid))
	if d.State != st || d.Reason != reason {
		h.t.Fatalf("LookupDomain(%s) state %s (%s), want %s (%s)", uuid,
			d.State, virt.ReasonString(d.State, d.Reason), st, virt.ReasonString(st, reason))
	}
	if st.Active() != (d.ID > 0) {
		h.t.Fatalf("LookupDomain(%s): state %s with ID %d", uuid, d.State, d.ID)
	}
}

// waitState polls until the domain reaches st, for cfg.SettleTimeout.
func (h *harness) waitState(uuid string, st virt.State) (reason int32) {
	h.t.Helper()
	deadline := time.Now().Add(h.cfg.settle())
	for {
		got, r, err := h.drv.DomainState(h.ctx, uuid)
		if err != nil {
			h.t.Fatalf("DomainState(%s): %v", uuid, err)
		}
		if got == st {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("domain %s still %s (%s) after %v, want %s", uuid,
				got, virt.ReasonString(got, r), h.cfg.settle(), st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantKind checks err carries kind.
func (h *harness) wantKind(what string, err, kind error) {
	h.t.Helper()
	if err == nil {
		h.t.Fatalf("%s: succeeded, want an error of kind %q", what, kind)
	}
	if !errors.Is(err, kind) {
		h.t.Fatalf("%s: error %q has kind %v, want %q", what, err, virt.KindOf(err), kind)
	}
}

// list returns the domains flags select, by UUID.
func (h *harness) list(flags virt.ListFlags) map[string]virt.Domain {
	h.t.Helper()
	ds, err := h.drv.ListDomains(h.ctx, flags)
	if err != nil {
		h.t.Fatalf("ListDomains(%#x): %v", uint32(flags), err)
	}
	m := make(map[string]virt.Domain, len(ds))
	for _, d := range ds {
		if _, dup := m[d.UUID]; dup {
			h.t.Fatalf("ListDomains(%#x) lists %s (%s) twice", uint32(flags), d.Name, d.UUID)
		}
		m[d.UUID] = d
	}
	return m
}

// parseXML parses a domain XML returned by the driver.
func (h *harness) parseXML(what, doc string) *libvirtxml.Domain {
	h.t.Helper()
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		h.t.Fatalf("%s is not domain XML: %v\n%s", what, err, doc)
	}
	return &x
}

// randomUUID returns a random version 4 UUID in libvirt's form.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
