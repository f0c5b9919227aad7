// Package domlist is a driver's list of its domains, in the manner of
// libvirt's virDomainObjList: one object per domain, found by name, UUID
// or (running domains) ID, and the rules of what a new definition may
// claim, written once for every driver.
//
// The rules of Define are libvirt's:
//
//   - a UUID that is already a domain's, under another name, is refused:
//     "domain 'a' is already defined with uuid ..." (renaming through
//     define is not supported);
//   - a name that is already a domain's, with another UUID, is refused:
//     "domain 'a' already exists with uuid ...";
//   - the same name and UUID replace the persistent definition. A running
//     domain goes on with the definition it was started with, and boots
//     the new one next time; a transient running domain becomes
//     persistent.
//
// Both refusals are virt.ErrAlreadyExists. The UUID is checked first, as
// libvirt does.
//
// Create (libvirt's virDomainCreateXML, virsh create) claims a name and a
// UUID under the same two rules, and then:
//
//   - the same name and UUID as an inactive persistent domain start that
//     domain with the new definition as its live one; the persistent
//     definition stays, for the next boot;
//   - the same name and UUID as an active domain, or as one that is being
//     started, are refused as virt.ErrFailedPrecondition ("domain 'a' is
//     already active"), as libvirt refuses them (VIR_ERR_OPERATION_INVALID);
//   - otherwise a new transient domain is added, hidden until its driver
//     has started it (Show): lookups and lists do not find it, a failed
//     start leaves nothing anyone saw, and its name and UUID are taken
//     meanwhile ("domain 'a' is being started").
//
// Locking: each object has its own lock, which guards its exported fields
// and which a driver holds while it reads or changes the domain; the list
// has a read-write lock of its own. An object's lock is taken before the
// list's, never after, so a slow operation on one domain holds up neither
// the others nor the lookups of the list.
package domlist

import (
	"fmt"
	"sync"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

// Def is a domain definition as the list needs to know it: its name and
// its UUID in libvirt's canonical form (domutil.ParseUUID). A driver's
// definitions are pointers, whose zero value (nil) means "none".
type Def interface {
	comparable
	Name() string
	UUID() string
}

// List is a driver's domains. D is the driver's definition, P what else
// the driver keeps about each domain (its process, its monitor, ...). The
// zero List is not usable; New makes one. It is safe for concurrent use.
type List[D Def, P any] struct {
	mu     sync.RWMutex
	byUUID map[string]*Object[D, P]
	byName map[string]*Object[D, P]
	byID   map[int32]*Object[D, P]
}

// New returns an empty list.
func New[D Def, P any]() *List[D, P] {
	return &List[D, P]{
		byUUID: make(map[string]*Object[D, P]),
		byName: make(map[string]*Object[D, P]),
		byID:   make(map[int32]*Object[D, P]),
	}
}

// Object is one domain of a List. Name and UUID never change. The
// exported fields are guarded by the object's lock (Lock, Unlock); so is
// the ID (ID, SetID).
type Object[D Def, P any] struct {
	mu   sync.Mutex
	list *List[D, P]
	name string
	uuid string
	// removed, hidden and id are also changed under the list's lock.
	removed bool
	// hidden: added by Create and not yet shown (Show).
	hidden bool
	id     int32

	// Persistent is the persistent definition; zero for a transient
	// domain.
	Persistent D
	// Live is the definition the running instance was started with; zero
	// when the domain is inactive (drivers may leave it zero for a domain
	// they did not start).
	Live      D
	State     virt.State
	Reason    int32
	Autostart bool
	// Priv is the driver's own state of the domain.
	Priv P
}

// Lock locks the object.
func (o *Object[D, P]) Lock() { o.mu.Lock() }

// Unlock unlocks the object.
func (o *Object[D, P]) Unlock() { o.mu.Unlock() }

// Name is the domain's name.
func (o *Object[D, P]) Name() string { return o.name }

// UUID is the domain's UUID, in libvirt's canonical form.
func (o *Object[D, P]) UUID() string { return o.uuid }

// Removed reports whether the object has left its list. A driver that
// found an object, let go of its lock and locked it again checks this
// when it matters that the domain still exists.
func (o *Object[D, P]) Removed() bool { return o.removed }

// IsPersistent reports whether the domain has a persistent definition.
func (o *Object[D, P]) IsPersistent() bool {
	var zero D
	return o.Persistent != zero
}

// Current is the definition that describes the domain now: the live one
// when there is one, else the persistent one.
func (o *Object[D, P]) Current() D {
	var zero D
	if o.Live != zero {
		return o.Live
	}
	return o.Persistent
}

// ID is the domain's ID: the one last given with SetID, -1 for none.
func (o *Object[D, P]) ID() int32 { return o.id }

// SetID gives a domain its ID when it starts, by which Find and Get find
// it; -1 takes it away, which a driver does when the domain stops. (Xen's
// Domain-0 has ID 0.)
func (o *Object[D, P]) SetID(id int32) {
	l := o.list
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.id >= 0 && l.byID[o.id] == o {
		delete(l.byID, o.id)
	}
	o.id = id
	if id >= 0 && !o.removed {
		l.byID[id] = o
	}
}

// View is the domain as ListDomains and LookupDomain show it.
func (o *Object[D, P]) View() virt.Domain {
	return virt.Domain{
		Name: o.name, UUID: o.uuid, ID: o.id,
		State: o.State, Reason: o.Reason,
		Persistent: o.IsPersistent(), Autostart: o.Autostart,
	}
}

// Define makes def the persistent definition of its domain, under the
// rules of the package doc, and returns the domain, locked, with the
// detail of the Defined event to emit: virt.DefinedAdded for a new
// domain or one that was transient, virt.DefinedUpdated otherwise.
//
// commit, when not nil, runs once the rules have passed, with the object
// locked and before it changes: a driver saves the definition there. If
// it fails, Define returns its error and the list is as it was.
func (l *List[D, P]) Define(def D, commit func(o *Object[D, P]) error) (*Object[D, P], int32, error) {
	o, added, err := l.add(def.Name(), def.UUID(), false)
	if err != nil {
		return nil, 0, err
	}
	if commit != nil {
		if err := commit(o); err != nil {
			if added {
				l.Remove(o)
			}
			o.Unlock()
			return nil, 0, err
		}
	}
	detail := virt.DefinedUpdated
	if !o.IsPersistent() {
		detail = virt.DefinedAdded
	}
	o.Persistent = def
	return o, detail, nil
}

// Load adds def, a persistent definition a driver read from its
// directory when it starts, and returns its domain, locked. Define's rules
// apply, and a second definition of the same domain is refused: only a
// file edited by hand leads there.
func (l *List[D, P]) Load(def D) (*Object[D, P], error) {
	o, _, err := l.Define(def, func(o *Object[D, P]) error {
		if o.IsPersistent() {
			return fmt.Errorf("domain '%s' is defined twice: %w", o.Name(), virt.ErrAlreadyExists)
		}
		return nil
	})
	return o, err
}

// Create claims def's name and UUID for a domain about to start from def,
// under the rules of the package doc, and returns the domain, locked. For
// an inactive persistent domain of that name and UUID it returns that
// domain, unchanged: the driver starts it with def as its live
// definition. Otherwise it adds a new transient domain, hidden, without
// definitions (added is true): the driver starts it from def, sets Live
// and calls Show before it emits the Started event, or Removes it when
// the start fails.
//
// Between Create and Show the object may be unlocked (a driver that waits
// for its hypervisor unlocks it): nobody else finds it meanwhile.
func (l *List[D, P]) Create(def D) (o *Object[D, P], added bool, err error) {
	o, added, err = l.add(def.Name(), def.UUID(), true)
	if err != nil {
		return nil, false, err
	}
	if added {
		return o, true, nil
	}
	switch {
	case o.State.Active():
		err = fmt.Errorf("domain '%s' is already active: %w", o.name, virt.ErrFailedPrecondition)
	case !o.IsPersistent():
		err = fmt.Errorf("domain '%s' is already being started: %w", o.name, virt.ErrFailedPrecondition)
	}
	if err != nil {
		o.Unlock()
		return nil, false, err
	}
	return o, false, nil
}

// Show makes the locked domain o, which Create added, visible: lookups
// and lists find it from now on. It does nothing for a domain already
// visible, so a driver's start path may call it whatever started it.
func (l *List[D, P]) Show(o *Object[D, P]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o.hidden = false
}

// Add returns the domain with this name and UUID, locked, adding an
// inactive transient one without definitions when there is none: a driver
// that finds a running guest again (after a restart), or one its
// hypervisor runs, fills it in before it unlocks it. The name and UUID
// rules are those of Define.
func (l *List[D, P]) Add(name, uuid string) (*Object[D, P], error) {
	o, _, err := l.add(name, uuid, false)
	return o, err
}

// add finds or adds the object of name and uuid and returns it locked; a
// new one is hidden if asked (Create).
func (l *List[D, P]) add(name, uuid string, hidden bool) (*Object[D, P], bool, error) {
	for {
		l.mu.Lock()
		if o := l.byUUID[uuid]; o != nil {
			l.mu.Unlock()
			if o.name != name {
				return nil, false, fmt.Errorf("domain '%s' is already defined with uuid %s (renaming is not supported): %w",
					o.name, uuid, virt.ErrAlreadyExists)
			}
			// The object's lock comes before the list's: take it with
			// the list unlocked, then check the object is still listed.
			o.mu.Lock()
			switch {
			case o.removed:
				o.mu.Unlock()
				continue
			case o.hidden:
				o.mu.Unlock()
				return nil, false, fmt.Errorf("domain '%s' is being started: %w", name, virt.ErrFailedPrecondition)
			}
			return o, false, nil
		}
		if o := l.byName[name]; o != nil {
			l.mu.Unlock()
			return nil, false, fmt.Errorf("domain '%s' already exists with uuid %s: %w", name, o.uuid, virt.ErrAlreadyExists)
		}
		o := &Object[D, P]{list: l, name: name, uuid: uuid, id: -1, hidden: hidden, State: virt.StateShutoff, Reason: virt.ShutoffUnknown}
		o.mu.Lock() // nobody else can see it yet: this never waits
		l.byUUID[uuid] = o
		l.byName[name] = o
		l.mu.Unlock()
		return o, true, nil
	}
}

// Remove takes the locked object o off the list: lookups no longer find
// it, and whoever waits for its lock finds it Removed.
func (l *List[D, P]) Remove(o *Object[D, P]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.removed {
		return
	}
	o.removed = true
	if l.byUUID[o.uuid] == o {
		delete(l.byUUID, o.uuid)
	}
	if l.byName[o.name] == o {
		delete(l.byName, o.name)
	}
	if o.id >= 0 && l.byID[o.id] == o {
		delete(l.byID, o.id)
	}
}

// Get finds a domain by name, UUID (in any spelling domutil.ParseUUID
// accepts) or ID, and returns it unlocked: a driver with a lock to take
// before the object's (one operation at a time on a domain) takes that
// first. A miss is domutil.NotFound(key); a malformed UUID is an
// invalid argument.
func (l *List[D, P]) Get(key virt.Lookup) (*Object[D, P], error) {
	var m map[string]*Object[D, P]
	k := key.Name
	switch {
	case key.Name != "":
		m = l.byName
	case key.UUID != "":
		u, err := domutil.ParseUUID(key.UUID)
		if err != nil {
			return nil, err
		}
		key = virt.ByUUID(u)
		m, k = l.byUUID, u
	}
	l.mu.RLock()
	var o *Object[D, P]
	if m != nil {
		o = m[k]
	} else {
		o = l.byID[key.ID]
	}
	found := o != nil && !o.hidden
	l.mu.RUnlock()
	if !found {
		return nil, domutil.NotFound(key)
	}
	return o, nil
}

// Find is Get, and returns the object locked. It never returns a removed
// object, nor one that no longer has the ID looked for.
func (l *List[D, P]) Find(key virt.Lookup) (*Object[D, P], error) {
	for {
		o, err := l.Get(key)
		if err != nil {
			return nil, err
		}
		o.mu.Lock()
		byID := key.Name == "" && key.UUID == ""
		if !o.removed && (!byID || o.id == key.ID) {
			return o, nil
		}
		o.mu.Unlock()
	}
}

// objects returns the objects listed now.
// Lookup finds a domain as Find does and returns it as LookupDomain shows
// it.
func (l *List[D, P]) Lookup(key virt.Lookup) (*virt.Domain, error) {
	o, err := l.Find(key)
	if err != nil {
		return nil, err
	}
	defer o.Unlock()
	v := o.View()
	return &v, nil
}

func (l *List[D, P]) objects() []*Object[D, P] {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*Object[D, P], 0, len(l.byUUID))
	for _, o := range l.byUUID {
		if !o.hidden {
			out = append(out, o)
		}
	}
	return out
}

// Each calls fn on every domain, locking each in turn (in no particular
// order). Domains added meanwhile may be missed; removed ones and those
// Create hides are skipped.
func (l *List[D, P]) Each(fn func(o *Object[D, P])) {
	for _, o := range l.objects() {
		o.mu.Lock()
		if !o.removed && !o.hidden {
			fn(o)
		}
		o.mu.Unlock()
	}
}

// List returns the domains that pass flags, in the order virsh lists
// them (domutil.Filter): it is a driver's ListDomains.
func (l *List[D, P]) List(flags virt.ListFlags) []virt.Domain {
	var all []virt.Domain
	l.Each(func(o *Object[D, P]) { all = append(all, o.View()) })
	return domutil.Filter(all, flags)
}
