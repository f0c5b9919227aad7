package domlist

import (
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

// Select returns, unlocked, the domains a statistics call covers, as
// libvirt's drivers pick them: those that uuids name, in that order
// (twice if named twice; a UUID that names no domain is skipped, as
// libvirt skips a domain that went away), or every domain in virsh's order
// when uuids is empty; in both cases only those that pass flags. A
// malformed UUID is an invalid argument.
//
// A domain may change, or go, once Select has let go of its lock: a
// driver locks each again, and skips one that is Removed.
func (l *List[D, P]) Select(uuids []string, flags virt.ListFlags) ([]*Object[D, P], error) {
	var objs []*Object[D, P]
	if len(uuids) == 0 {
		objs = l.objects()
	} else {
		for _, u := range uuids {
			canon, err := domutil.ParseUUID(u)
			if err != nil {
				return nil, err
			}
			l.mu.RLock()
			o := l.byUUID[canon]
			l.mu.RUnlock()
			if o != nil {
				objs = append(objs, o)
			}
		}
	}
	out := make([]*Object[D, P], 0, len(objs))
	views := make([]virt.Domain, 0, len(objs))
	for _, o := range objs {
		o.mu.Lock()
		v, removed := o.View(), o.removed
		o.mu.Unlock()
		if !removed && flags.Match(&v) {
			out = append(out, o)
			views = append(views, v)
		}
	}
	if len(uuids) == 0 {
		sortLike(out, views)
	}
	return out, nil
}

// sortLike puts objs in virsh's order (domutil.SortDomains) of their views.
func sortLike[D Def, P any](objs []*Object[D, P], views []virt.Domain) {
	pos := make(map[string]int, len(views))
	sorted := append([]virt.Domain(nil), views...)
	domutil.SortDomains(sorted)
	for i, v := range sorted {
		pos[v.UUID] = i
	}
	out := make([]*Object[D, P], len(objs))
	for i, o := range objs {
		out[pos[views[i].UUID]] = o
	}
	copy(objs, out)
}
