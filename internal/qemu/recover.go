package qemu

import (
	"context"
	"time"

	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/virt"
)

// recover finds the guests an earlier driver process left running: each
// runtime record's pid and start time are checked against /proc, and the
// QMP monitor is reconnected. A guest that died while nobody watched is
// shut off (crashed) and its runtime files are removed.
func (drv *Driver) recover() {
	for _, rec := range drv.loadRecords() {
		drv.recoverOne(rec)
	}
}

func (drv *Driver) recoverOne(rec *record) {
	alive := rec.Pid > 0 && procfs.Alive(rec.Pid, rec.StartTime)
	if !alive {
		drv.log.Warn("guest died while the driver was away", "name", rec.Name, "pid", rec.Pid)
		drv.deleteTaps(rec.Taps)
		drv.stopHelpers(rec)
		drv.removeRuntimeFiles(rec)
		if d, err := drv.doms.Find(virt.ByUUID(rec.UUID)); err == nil {
			d.State, d.Reason = virt.StateShutoff, virt.ShutoffCrashed
			d.Unlock()
		}
		return
	}
	live, err := parseConfig(rec.XML)
	// The bookkeeping is under the domain's lock: the guests recovered
	// before this one already have event and exit watchers that take it.
	d, findErr := drv.doms.Find(virt.ByUUID(rec.UUID))
	if err != nil {
		// Keep the guest counted and killable even without its XML.
		drv.log.Error("live XML of a running guest does not parse", "name", rec.Name, "error", err)
		if findErr != nil {
			return
		}
		live = d.Persistent.clone()
		if doc, err := live.marshal(rec.ID); err == nil {
			rec.XML = doc // what DomainXML shows from now on
		}
	}
	if findErr != nil {
		// A transient domain, or one undefined while the driver was away.
		if d, err = drv.doms.Add(live.Name(), live.UUID()); err != nil {
			// Only files edited by hand get here: leave it running.
			drv.log.Error("running guest left unmanaged", "name", rec.Name, "pid", rec.Pid, "error", err)
			return
		}
	}
	inst := &instance{rec: rec, procDone: make(chan struct{}), exited: make(chan struct{})}
	if err := pidfdWatch(inst); err != nil {
		drv.log.Warn("cannot watch a recovered guest", "name", rec.Name, "pid", rec.Pid, "error", err)
		close(inst.procDone)
	}
	d.Priv.inst, d.Live = inst, live
	d.SetID(rec.ID)
	d.State, d.Reason = rec.State, rec.Reason
	if !d.State.Active() {
		d.State, d.Reason = virt.StateRunning, virt.RunningUnknown
	}
	drv.raiseLastID(rec.ID)
	d.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mon, err := qmp.Dial(ctx, rec.QMP, func(ev qmp.Event) { drv.onEvent(d, inst, ev) })
	var st struct {
		Running bool `json:"running"`
	}
	statusKnown := false
	if err != nil {
		drv.log.Error("cannot reconnect to a running guest's monitor", "name", rec.Name, "pid", rec.Pid, "error", err)
	} else {
		statusKnown = mon.Execute(ctx, "query-status", nil, &st) == nil
	}
	d.Lock()
	if mon != nil {
		inst.mon = mon
	}
	switch {
	case !statusKnown:
	case st.Running && d.State != virt.StateRunning:
		d.State, d.Reason = virt.StateRunning, virt.RunningUnknown
	case !st.Running && d.State != virt.StatePaused:
		d.State, d.Reason = virt.StatePaused, virt.PausedUnknown
	}
	rec.Persistent = d.IsPersistent()
	drv.saveRecordLocked(d)
	state := d.State
	d.Unlock()
	drv.log.Info("found a running guest again", "name", rec.Name, "pid", rec.Pid, "state", state.String())
	go drv.watchExit(d, inst)
}

// raiseLastID makes the IDs given from now on greater than id, which a
// guest found again already has.
func (drv *Driver) raiseLastID(id int32) {
	for {
		last := drv.lastID.Load()
		if id <= last || drv.lastID.CompareAndSwap(last, id) {
			return
		}
	}
}
