package domlist

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

// def is a definition as a driver has one; rev tells versions apart.
type def struct {
	name, uuid string
	rev        int
}

func (d *def) Name() string { return d.name }
func (d *def) UUID() string { return d.uuid }

type object = Object[*def, string]

const (
	uuidA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	uuidB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
)

// domain is one domain a test starts with.
type domain struct {
	name, uuid string
	persistent bool
	running    bool
}

// build makes a list holding have; each persistent definition is rev 1,
// each live one rev 0.
func build(t *testing.T, have ...domain) *List[*def, string] {
	t.Helper()
	l := New[*def, string]()
	for i, h := range have {
		o, err := l.Add(h.name, h.uuid)
		if err != nil {
			t.Fatalf("Add(%s, %s): %v", h.name, h.uuid, err)
		}
		if h.persistent {
			o.Persistent = &def{h.name, h.uuid, 1}
		}
		if h.running {
			o.Live = &def{h.name, h.uuid, 0}
			o.State, o.Reason = virt.StateRunning, virt.RunningBooted
			o.SetID(int32(i + 1))
		}
		o.Unlock()
	}
	return l
}

func TestDefineRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		have   []domain
		define *def
		// wantErr is part of the refusal; empty for a success.
		wantErr    string
		wantDetail int32
		// wantLive: the running domain keeps its live definition.
		wantLive bool
	}{
		{name: "new domain", define: &def{"a", uuidA, 2}, wantDetail: virt.DefinedAdded},
		{name: "same name and UUID replace the definition",
			have: []domain{{"a", uuidA, true, false}}, define: &def{"a", uuidA, 2}, wantDetail: virt.DefinedUpdated},
		{name: "running: the new definition is for the next boot",
			have: []domain{{"a", uuidA, true, true}}, define: &def{"a", uuidA, 2}, wantDetail: virt.DefinedUpdated, wantLive: true},
		{name: "transient running domain becomes persistent",
			have: []domain{{"a", uuidA, false, true}}, define: &def{"a", uuidA, 2}, wantDetail: virt.DefinedAdded, wantLive: true},
		{name: "name taken by another UUID",
			have: []domain{{"a", uuidA, true, false}}, define: &def{"a", uuidB, 2},
			wantErr: "domain 'a' already exists with uuid " + uuidA},
		{name: "name of a transient domain taken",
			have: []domain{{"a", uuidA, false, true}}, define: &def{"a", uuidB, 2},
			wantErr: "domain 'a' already exists with uuid " + uuidA},
		{name: "UUID taken by another name",
			have: []domain{{"a", uuidA, true, false}}, define: &def{"b", uuidA, 2},
			wantErr: "domain 'a' is already defined with uuid " + uuidA},
		{name: "UUID checked before name",
			have: []domain{{"a", uuidA, true, false}, {"b", uuidB, true, false}}, define: &def{"a", uuidB, 2},
			wantErr: "domain 'b' is already defined with uuid " + uuidB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := build(t, tc.have...)
			before := l.List(0)
			o, detail, err := l.Define(tc.define, nil)
			if tc.wantErr != "" {
				if !errors.Is(err, virt.ErrAlreadyExists) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Define = %v, want already exists: %q", err, tc.wantErr)
				}
				if after := l.List(0); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Errorf("a refused define changed the list: %v, was %v", after, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Define: %v", err)
			}
			if o.mu.TryLock() {
				t.Error("Define returned the object unlocked")
			}
			if detail != tc.wantDetail {
				t.Errorf("detail = %d, want %d", detail, tc.wantDetail)
			}
			if o.Persistent != tc.define || !o.IsPersistent() {
				t.Errorf("Persistent = %+v, want %+v", o.Persistent, tc.define)
			}
			if live := o.Live != nil && o.Live.rev == 0; live != tc.wantLive {
				t.Errorf("live definition kept: %v, want %v (Live %+v)", live, tc.wantLive, o.Live)
			}
			if o.Current() != o.Live && tc.wantLive || o.Current() != tc.define && !tc.wantLive {
				t.Errorf("Current = %+v", o.Current())
			}
			o.Unlock()
			if n := len(l.List(0)); n != max(len(tc.have), 1) {
				t.Errorf("%d domains listed after define, want %d", n, max(len(tc.have), 1))
			}
			for _, key := range []virt.Lookup{virt.ByName(tc.define.name), virt.ByUUID(tc.define.uuid)} {
				if got, err := l.Get(key); got != o || err != nil {
					t.Errorf("Get(%+v) = %p, %v; want the defined object %p", key, got, err, o)
				}
			}
		})
	}
}

func TestDefineCommit(t *testing.T) {
	boom := errors.New("disk full")
	t.Run("new domain: nothing is left", func(t *testing.T) {
		l := build(t)
		_, _, err := l.Define(&def{"a", uuidA, 1}, func(o *object) error {
			if o.IsPersistent() {
				t.Error("commit sees the definition already in place")
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Define = %v, want the commit's error", err)
		}
		if _, err := l.Find(virt.ByName("a")); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("after a failed commit, Find = %v, want not found", err)
		}
		if o, _, err := l.Define(&def{"a", uuidB, 1}, nil); err != nil {
			t.Errorf("the name is still taken after a failed commit: %v", err)
		} else {
			o.Unlock()
		}
	})
	t.Run("existing domain: the old definition stays", func(t *testing.T) {
		l := build(t, domain{"a", uuidA, true, false})
		_, _, err := l.Define(&def{"a", uuidA, 2}, func(*object) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("Define = %v, want the commit's error", err)
		}
		o, err := l.Find(virt.ByUUID(uuidA))
		if err != nil {
			t.Fatal(err)
		}
		defer o.Unlock()
		if o.Persistent == nil || o.Persistent.rev != 1 {
			t.Errorf("Persistent = %+v, want rev 1", o.Persistent)
		}
	})
}

func TestCreateRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		have   []domain
		create *def
		// wantKind and wantErr describe a refusal; wantKind nil for a
		// success.
		wantKind error
		wantErr  string
		// wantAdded: a new, hidden, transient domain; otherwise the
		// existing one, unchanged.
		wantAdded bool
	}{
		{name: "new domain", create: &def{"a", uuidA, 2}, wantAdded: true},
		{name: "inactive persistent domain of that name and UUID",
			have: []domain{{"a", uuidA, true, false}}, create: &def{"a", uuidA, 2}},
		{name: "running persistent domain",
			have: []domain{{"a", uuidA, true, true}}, create: &def{"a", uuidA, 2},
			wantKind: virt.ErrFailedPrecondition, wantErr: "domain 'a' is already active"},
		{name: "running transient domain",
			have: []domain{{"a", uuidA, false, true}}, create: &def{"a", uuidA, 2},
			wantKind: virt.ErrFailedPrecondition, wantErr: "domain 'a' is already active"},
		{name: "transient domain being filled in",
			have: []domain{{"a", uuidA, false, false}}, create: &def{"a", uuidA, 2},
			wantKind: virt.ErrFailedPrecondition, wantErr: "domain 'a' is already being started"},
		{name: "name taken by another UUID",
			have: []domain{{"a", uuidA, false, true}}, create: &def{"a", uuidB, 2},
			wantKind: virt.ErrAlreadyExists, wantErr: "domain 'a' already exists with uuid " + uuidA},
		{name: "UUID taken by another name",
			have: []domain{{"a", uuidA, true, false}}, create: &def{"b", uuidA, 2},
			wantKind: virt.ErrAlreadyExists, wantErr: "domain 'a' is already defined with uuid " + uuidA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := build(t, tc.have...)
			before := l.List(0)
			o, added, err := l.Create(tc.create)
			if tc.wantKind != nil {
				if !errors.Is(err, tc.wantKind) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Create = %v, want %v: %q", err, tc.wantKind, tc.wantErr)
				}
				if after := l.List(0); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Errorf("a refused create changed the list: %v, was %v", after, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if o.mu.TryLock() {
				t.Error("Create returned the object unlocked")
			}
			if added != tc.wantAdded {
				t.Errorf("added = %v, want %v", added, tc.wantAdded)
			}
			if o.Live != nil || o.State.Active() {
				t.Errorf("Create changed the domain: Live %+v, state %s", o.Live, o.State)
			}
			if tc.wantAdded && (o.IsPersistent() || o.Name() != tc.create.name || o.UUID() != tc.create.uuid) {
				t.Errorf("new domain %s (%s), persistent %v; want %s (%s), transient",
					o.Name(), o.UUID(), o.IsPersistent(), tc.create.name, tc.create.uuid)
			}
			if !tc.wantAdded && (o.Persistent == nil || o.Persistent.rev != 1) {
				t.Errorf("Persistent = %+v, want the old definition (rev 1)", o.Persistent)
			}
			o.Unlock()
			if _, err := l.Get(virt.ByName(tc.create.name)); (err == nil) == tc.wantAdded {
				t.Errorf("after Create, Get by name = %v; want found: %v", err, !tc.wantAdded)
			}
		})
	}
}

// TestCreateHides: a domain Create adds is nobody else's until it is
// shown, yet its name and UUID are taken; once removed they are free.
func TestCreateHides(t *testing.T) {
	l := build(t, domain{"b", uuidB, true, false})
	o, added, err := l.Create(&def{"a", uuidA, 1})
	if err != nil || !added {
		t.Fatalf("Create = %v, added %v", err, added)
	}
	o.State = virt.StateRunning
	o.SetID(5)
	o.Unlock()
	for _, key := range []virt.Lookup{virt.ByName("a"), virt.ByUUID(uuidA), virt.ByID(5)} {
		if _, err := l.Get(key); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("Get(%+v) of a hidden domain = %v, want not found", key, err)
		}
		if _, err := l.Find(key); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("Find(%+v) of a hidden domain = %v, want not found", key, err)
		}
	}
	var names []string
	l.Each(func(o *object) { names = append(names, o.Name()) })
	if fmt.Sprint(names) != "[b]" {
		t.Errorf("Each visits %v, want [b]", names)
	}
	if got := l.List(0); len(got) != 1 || got[0].Name != "b" {
		t.Errorf("List = %v, want b only", got)
	}
	for _, tc := range []struct {
		what string
		do   func() error
		kind error
		text string
	}{
		{"define its name and UUID", func() error { _, _, err := l.Define(&def{"a", uuidA, 2}, nil); return err },
			virt.ErrFailedPrecondition, "domain 'a' is being started"},
		{"create its name and UUID", func() error { _, _, err := l.Create(&def{"a", uuidA, 2}); return err },
			virt.ErrFailedPrecondition, "domain 'a' is being started"},
		{"define its name", func() error { _, _, err := l.Define(&def{"a", domutil.NewUUID(), 2}, nil); return err },
			virt.ErrAlreadyExists, "domain 'a' already exists with uuid " + uuidA},
		{"add its UUID under another name", func() error { _, err := l.Add("c", uuidA); return err },
			virt.ErrAlreadyExists, "domain 'a' is already defined with uuid " + uuidA},
	} {
		if err := tc.do(); !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s while it is hidden: %v, want %v: %q", tc.what, err, tc.kind, tc.text)
		}
	}

	o.Lock()
	l.Show(o)
	o.Unlock()
	for _, key := range []virt.Lookup{virt.ByName("a"), virt.ByUUID(uuidA), virt.ByID(5)} {
		if got, err := l.Get(key); err != nil || got != o {
			t.Errorf("Get(%+v) once shown = %p, %v; want %p", key, got, err, o)
		}
	}
	if got := l.List(virt.ListTransient); len(got) != 1 || got[0].Name != "a" || got[0].Persistent {
		t.Errorf("List(transient) once shown = %v, want a", got)
	}

	// A failed start: the domain goes, and its name and UUID are free.
	o2, added, err := l.Create(&def{"c", domutil.NewUUID(), 1})
	if err != nil || !added {
		t.Fatalf("Create(c) = %v, added %v", err, added)
	}
	l.Remove(o2)
	o2.Unlock()
	o3, added, err := l.Create(&def{"c", domutil.NewUUID(), 1})
	if err != nil || !added {
		t.Fatalf("Create(c) after a removed one = %v, added %v", err, added)
	}
	o3.Unlock()
}

func TestLookup(t *testing.T) {
	l := build(t, domain{"a", uuidA, true, false}, domain{"b", uuidB, true, true})
	for _, tc := range []struct {
		key     virt.Lookup
		want    string // name; empty: an error
		wantErr error
		errText string
	}{
		{key: virt.ByName("a"), want: "a"},
		{key: virt.ByUUID(uuidB), want: "b"},
		{key: virt.ByUUID(strings.ToUpper(strings.ReplaceAll(uuidA, "-", ""))), want: "a"},
		{key: virt.ByID(2), want: "b"},
		{key: virt.ByName("nope"), wantErr: virt.ErrNotFound, errText: "no domain with matching name 'nope'"},
		{key: virt.ByUUID("c0ffee00-0000-4000-8000-000000000000"), wantErr: virt.ErrNotFound,
			errText: "no domain with matching uuid 'c0ffee00-0000-4000-8000-000000000000'"},
		{key: virt.ByID(1), wantErr: virt.ErrNotFound, errText: "no domain with matching id 1"},
		{key: virt.ByUUID("xyz"), wantErr: virt.ErrInvalidArgument, errText: `invalid UUID "xyz"`},
	} {
		view, verr := l.Lookup(tc.key)
		got, err := l.Find(tc.key)
		if tc.want != "" {
			if err != nil || got.Name() != tc.want {
				t.Errorf("Find(%+v) = %v, %v; want %s", tc.key, got, err, tc.want)
				continue
			}
			want := got.View()
			got.Unlock()
			if verr != nil || *view != want {
				t.Errorf("Lookup(%+v) = %+v, %v; want %+v", tc.key, view, verr, want)
			}
			continue
		}
		if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) {
			t.Errorf("Find(%+v) = %v; want %v with %q", tc.key, err, tc.wantErr, tc.errText)
		}
		if view != nil || verr == nil || verr.Error() != err.Error() {
			t.Errorf("Lookup(%+v) = %+v, %v; want Find's error", tc.key, view, verr)
		}
	}
}

func TestSetID(t *testing.T) {
	l := build(t, domain{"a", uuidA, true, false})
	o, _ := l.Find(virt.ByName("a"))
	o.State = virt.StateRunning
	o.SetID(0) // Xen's Domain-0
	if v := o.View(); v.ID != 0 {
		t.Errorf("View().ID = %d, want 0", v.ID)
	}
	o.SetID(7)
	o.Unlock()
	if _, err := l.Find(virt.ByID(0)); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("the old ID still finds the domain: %v", err)
	}
	o, err := l.Find(virt.ByID(7))
	if err != nil {
		t.Fatalf("Find(ID 7): %v", err)
	}
	if v := o.View(); v.ID != 7 {
		t.Errorf("View().ID = %d, want 7", v.ID)
	}
	o.SetID(-1)
	if v := o.View(); v.ID != -1 {
		t.Errorf("View().ID = %d after SetID(-1), want -1", v.ID)
	}
	o.Unlock()
	if _, err := l.Find(virt.ByID(7)); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("a stopped domain is found by its old ID: %v", err)
	}
}

func TestRemove(t *testing.T) {
	l := build(t, domain{"a", uuidA, true, true}, domain{"b", uuidB, true, false})
	o, err := l.Find(virt.ByName("a"))
	if err != nil {
		t.Fatal(err)
	}
	// Whoever waits for the lock of a domain being removed does not get it.
	found := make(chan error, 1)
	go func() {
		o, err := l.Find(virt.ByName("a"))
		if err == nil {
			o.Unlock()
		}
		found <- err
	}()
	l.Remove(o)
	if !o.Removed() {
		t.Error("Removed() = false after Remove")
	}
	o.Unlock()
	if err := <-found; !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("Find while the domain was removed = %v, want not found", err)
	}
	for _, key := range []virt.Lookup{virt.ByName("a"), virt.ByUUID(uuidA), virt.ByID(1)} {
		if _, err := l.Get(key); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("Get(%+v) after Remove = %v, want not found", key, err)
		}
	}
	var names []string
	l.Each(func(o *object) { names = append(names, o.Name()) })
	if fmt.Sprint(names) != "[b]" {
		t.Errorf("Each after Remove visits %v, want [b]", names)
	}
	// The name and UUID are free again.
	o, _, err = l.Define(&def{"a", uuidA, 3}, nil)
	if err != nil {
		t.Fatalf("define again after Remove: %v", err)
	}
	o.Unlock()
}

func TestListFlags(t *testing.T) {
	l := New[*def, string]()
	for _, d := range []struct {
		name       string
		id         int32
		state      virt.State
		persistent bool
		autostart  bool
	}{
		{"run", 2, virt.StateRunning, true, true},
		{"paused", 1, virt.StatePaused, false, false},
		{"off-b", -1, virt.StateShutoff, true, false},
		{"off-a", -1, virt.StateShutoff, true, true},
	} {
		o, err := l.Add(d.name, domutil.NewUUID())
		if err != nil {
			t.Fatal(err)
		}
		o.State, o.Autostart = d.state, d.autostart
		o.Live = &def{name: d.name}
		if d.persistent {
			o.Persistent = o.Live
		}
		o.SetID(d.id)
		o.Unlock()
	}
	for _, tc := range []struct {
		flags virt.ListFlags
		want  string
	}{
		{0, "[paused run off-a off-b]"},
		{virt.ListActive, "[paused run]"},
		{virt.ListInactive, "[off-a off-b]"},
		{virt.ListTransient, "[paused]"},
		{virt.ListPersistent | virt.ListActive, "[run]"},
		{virt.ListAutostart, "[run off-a]"},
		{virt.ListShutoff | virt.ListPaused, "[paused off-a off-b]"},
		{virt.ListRunning | virt.ListTransient, "[]"},
	} {
		var names []string
		for _, d := range l.List(tc.flags) {
			names = append(names, d.Name)
		}
		if got := fmt.Sprint(names); got != tc.want {
			t.Errorf("List(%#x) = %s, want %s", uint32(tc.flags), got, tc.want)
		}
	}
}

// TestConcurrentDefine defines one name from many goroutines at once: with
// different UUIDs exactly one wins and the others are told the name is
// taken; with the same UUID all succeed on one domain, one of them adding
// it. Run with -race.
func TestConcurrentDefine(t *testing.T) {
	const n = 64
	t.Run("different UUIDs", func(t *testing.T) {
		l := New[*def, string]()
		var wins, taken int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				o, _, err := l.Define(&def{"x", domutil.NewUUID(), 1}, nil)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
					o.Unlock()
				case errors.Is(err, virt.ErrAlreadyExists):
					taken++
				default:
					t.Errorf("Define: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || taken != n-1 {
			t.Errorf("%d defines won and %d were refused; want 1 and %d", wins, taken, n-1)
		}
		if got := l.List(0); len(got) != 1 {
			t.Errorf("%d domains listed, want 1", len(got))
		}
	})
	t.Run("same UUID", func(t *testing.T) {
		l := New[*def, string]()
		details := map[int32]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				o, detail, err := l.Define(&def{"x", uuidA, i}, nil)
				if err != nil {
					t.Errorf("Define: %v", err)
					return
				}
				o.Unlock()
				mu.Lock()
				details[detail]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if details[virt.DefinedAdded] != 1 || details[virt.DefinedUpdated] != n-1 {
			t.Errorf("details %v, want one added and %d updated", details, n-1)
		}
		if got := l.List(0); len(got) != 1 {
			t.Errorf("%d domains listed, want 1", len(got))
		}
	})
	t.Run("define, remove, find and list together", func(t *testing.T) {
		l := New[*def, string]()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				name, uuid := fmt.Sprintf("d%d", i%4), fmt.Sprintf("%08d-0000-4000-8000-000000000000", i%4)
				for range 200 {
					if o, _, err := l.Define(&def{name, uuid, i}, nil); err == nil {
						o.SetID(int32(i))
						o.Unlock()
					}
					if o, err := l.Find(virt.ByName(name)); err == nil {
						l.Remove(o)
						o.Unlock()
					}
					if o, err := l.Find(virt.ByID(int32(i))); err == nil {
						o.Unlock()
					}
					l.List(virt.ListPersistent)
				}
			})
		}
		wg.Wait()
	})
}

// TestLoad: a driver loading its directory gets each domain once; a
// second file for the same domain, or another domain's name, is refused.
func TestLoad(t *testing.T) {
	l := New[*def, string]()
	o, err := l.Load(&def{name: "a", uuid: uuidA, rev: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !o.IsPersistent() || o.Persistent.rev != 1 {
		t.Errorf("loaded %+v", o.Persistent)
	}
	o.Unlock()
	for _, d := range []*def{{name: "a", uuid: uuidA, rev: 2}, {name: "a", uuid: uuidB}} {
		if _, err := l.Load(d); !errors.Is(err, virt.ErrAlreadyExists) {
			t.Errorf("Load(%+v): %v, want already exists", d, err)
		}
	}
	if o, err := l.Get(virt.ByName("a")); err != nil || o.Persistent.rev != 1 {
		t.Errorf("after refusals: %+v, %v", o, err)
	}
	if doms := l.List(0); len(doms) != 1 {
		t.Errorf("domains after refusals: %+v", doms)
	}
}
