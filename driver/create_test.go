package driver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

// TestCreateDomainOfOlderDriver: a driver built before CreateDomain gets
// gRPC's UNIMPLEMENTED, which the host shim turns into a not supported
// that says why; a driver that refuses the call itself keeps its words.
func TestCreateDomainOfOlderDriver(t *testing.T) {
	_, err := oldDriverClient(t).CreateDomain(t.Context(), "<domain type='test'><name>x</name></domain>")
	if !errors.Is(err, virt.ErrNotSupported) || !strings.Contains(err.Error(), "built without CreateDomain") {
		t.Errorf("CreateDomain of a driver without it: %v, want not supported, saying why", err)
	}
	d := drivertest.Pair(t, noCreate{testdriver.New(driver.Env{})})
	_, err = d.CreateDomain(t.Context(), "<domain type='test'><name>x</name></domain>")
	if !errors.Is(err, virt.ErrNotSupported) || err.Error() != "no transient domains here: not supported" {
		t.Errorf("CreateDomain refused by the driver: %v, want its own not supported", err)
	}
}

type noCreate struct{ driver.Driver }

func (noCreate) CreateDomain(context.Context, string) (*virt.Domain, error) {
	return nil, fmt.Errorf("no transient domains here: %w", virt.ErrNotSupported)
}

// records collects the records a Client's replies carry.
type records struct {
	mu   sync.Mutex
	recs []driver.Record
}

func (r *records) take(rec driver.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
}

// last returns the last record of uuid taken, if any.
func (r *records) last(uuid string) (driver.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.recs) - 1; i >= 0; i-- {
		if r.recs[i].UUID == uuid {
			return r.recs[i], true
		}
	}
	return driver.Record{}, false
}

// TestCreateDomainCarriesRecord: CreateDomain's reply carries the record of
// the domain it started, so the host's view has it before the call
// returns; a create that fails after it changed an existing domain carries
// that domain's record.
func TestCreateDomainCarriesRecord(t *testing.T) {
	var recs records
	impl := &failingCreate{Driver: testdriver.New(driver.Env{})}
	d := drivertest.Pair(t, impl)
	d.(*driver.Client).OnRecord(recs.take)
	ctx := t.Context()

	dom, err := d.CreateDomain(ctx, "<domain type='test'><name>tr</name><memory>1024</memory></domain>")
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := recs.last(dom.UUID)
	if !ok {
		t.Fatal("CreateDomain's reply carried no record of the domain")
	}
	if rec.Removed || rec.Domain.Name != "tr" || rec.Domain.Persistent || rec.Domain.State != virt.StateRunning ||
		rec.Domain.ID != dom.ID || !strings.Contains(rec.XML, "<name>tr</name>") {
		t.Errorf("record %+v, want tr running and transient with ID %d, with its XML", rec, dom.ID)
	}

	def, err := d.DefineDomain(ctx, "<domain type='test'><name>p</name><memory>1024</memory></domain>")
	if err != nil {
		t.Fatal(err)
	}
	impl.fail = true
	_, err = d.CreateDomain(ctx, "<domain type='test'><name>p</name><memory>1024</memory></domain>")
	if !errors.Is(err, virt.ErrInternal) {
		t.Fatalf("failing create: %v", err)
	}
	if rec, ok := recs.last(def.UUID); !ok || !rec.Domain.Autostart {
		t.Errorf("after a failed create that changed the domain: record %+v (%v), want one with autostart", rec, ok)
	}
}

// failingCreate fails CreateDomain, when fail is set, after changing the
// domain of the name (it marks it autostart), as a start that failed half
// way may leave it.
type failingCreate struct {
	driver.Driver
	fail bool
}

func (f *failingCreate) CreateDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	if !f.fail {
		return f.Driver.CreateDomain(ctx, xml)
	}
	d, err := f.LookupDomain(ctx, virt.ByName("p"))
	if err != nil {
		return nil, err
	}
	if err := f.SetDomainAutostart(ctx, d.UUID, true); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("the emulator died: %w", virt.ErrInternal)
}
