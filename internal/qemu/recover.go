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
		drv.removeRuntimeFiles(rec)
		drv.mu.Lock()
		if d := drv.byUUID[rec.UUID]; d != nil {
			d.state, d.reason = virt.StateShutoff, virt.ShutoffCrashed
		}
		drv.mu.Unlock()
		return
	}
	live, err := parseConfig(rec.XML)
	// The bookkeeping is under mu: the guests recovered before this one
	// already have event and exit watchers that take it.
	drv.mu.Lock()
	d := drv.byUUID[rec.UUID]
	if err != nil {
		// Keep the guest counted and killable even without its XML.
		drv.log.Error("live XML of a running guest does not parse", "name", rec.Name, "error", err)
		if d == nil {
			drv.mu.Unlock()
			return
		}
		live = d.persistent.clone()
	}
	if d == nil {
		d = &domain{}
		drv.byUUID[live.uuid()] = d
		drv.byName[live.name()] = d
	}
	inst := &instance{rec: rec, procDone: make(chan struct{}), exited: make(chan struct{})}
	if err := pidfdWatch(inst); err != nil {
		drv.log.Warn("cannot watch a recovered guest", "name", rec.Name, "pid", rec.Pid, "error", err)
		close(inst.procDone)
	}
	d.inst, d.live, d.id = inst, live, rec.ID
	d.state, d.reason = rec.State, rec.Reason
	if !d.state.Active() {
		d.state, d.reason = virt.StateRunning, virt.RunningUnknown
	}
	if rec.ID >= drv.nextID {
		drv.nextID = rec.ID + 1
	}
	drv.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mon, err := qmp.Dial(ctx, rec.QMP, func(ev qmp.Event) { drv.onEvent(inst, ev) })
	var st struct {
		Running bool `json:"running"`
	}
	statusKnown := false
	if err != nil {
		drv.log.Error("cannot reconnect to a running guest's monitor", "name", rec.Name, "pid", rec.Pid, "error", err)
	} else {
		statusKnown = mon.Execute(ctx, "query-status", nil, &st) == nil
	}
	drv.mu.Lock()
	if mon != nil {
		inst.mon = mon
	}
	switch {
	case !statusKnown:
	case st.Running && d.state != virt.StateRunning:
		d.state, d.reason = virt.StateRunning, virt.RunningUnknown
	case !st.Running && d.state != virt.StatePaused:
		d.state, d.reason = virt.StatePaused, virt.PausedUnknown
	}
	rec.Persistent = d.persistent != nil
	drv.saveRecordLocked(d)
	state := d.state
	drv.mu.Unlock()
	drv.log.Info("found a running guest again", "name", rec.Name, "pid", rec.Pid, "state", state.String())
	go drv.watchExit(d, inst)
}
