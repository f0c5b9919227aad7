package virt

import "fmt"

// State is libvirt's virDomainState; the numbers are libvirt's.
type State int32

// Domain states.
const (
	StateNoState     State = 0
	StateRunning     State = 1
	StateBlocked     State = 2
	StatePaused      State = 3
	StateShutdown    State = 4 // being shut down
	StateShutoff     State = 5
	StateCrashed     State = 6
	StatePMSuspended State = 7
)

var stateNames = [...]string{"no state", "running", "idle", "paused", "in shutdown", "shut off", "crashed", "pmsuspended"}

// String returns the state as virsh prints it ("running", "shut off").
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state %d", int32(s))
}

// Active reports whether a domain in this state has a running instance.
func (s State) Active() bool {
	switch s {
	case StateRunning, StateBlocked, StatePaused, StateShutdown, StatePMSuspended:
		return true
	}
	return false
}

// Reasons, per state, with libvirt's numbers (virDomainRunningReason and
// friends). A reason only means something together with its state.
const (
	RunningUnknown           int32 = 0
	RunningBooted            int32 = 1
	RunningMigrated          int32 = 2
	RunningRestored          int32 = 3
	RunningFromSnapshot      int32 = 4
	RunningUnpaused          int32 = 5
	RunningMigrationCanceled int32 = 6
	RunningSaveCanceled      int32 = 7
	RunningWakeup            int32 = 8
	RunningCrashed           int32 = 9
	RunningPostcopy          int32 = 10

	PausedUnknown      int32 = 0
	PausedUser         int32 = 1
	PausedMigration    int32 = 2
	PausedSave         int32 = 3
	PausedDump         int32 = 4
	PausedIOError      int32 = 5
	PausedWatchdog     int32 = 6
	PausedFromSnapshot int32 = 7
	PausedShuttingDown int32 = 8
	PausedSnapshot     int32 = 9
	PausedCrashed      int32 = 10
	PausedStarting     int32 = 11

	ShutdownUnknown int32 = 0
	ShutdownUser    int32 = 1

	ShutoffUnknown      int32 = 0
	ShutoffShutdown     int32 = 1
	ShutoffDestroyed    int32 = 2
	ShutoffCrashed      int32 = 3
	ShutoffMigrated     int32 = 4
	ShutoffSaved        int32 = 5
	ShutoffFailed       int32 = 6
	ShutoffFromSnapshot int32 = 7
	ShutoffDaemon       int32 = 8

	CrashedUnknown  int32 = 0
	CrashedPanicked int32 = 1
)

var reasonNames = map[State][]string{
	StateNoState:     {"unknown"},
	StateRunning:     {"unknown", "booted", "migrated", "restored", "from snapshot", "unpaused", "migration canceled", "save canceled", "event wakeup", "crashed", "post-copy"},
	StateBlocked:     {"unknown"},
	StatePaused:      {"unknown", "user", "migrating", "saving", "dumping", "I/O error", "watchdog", "from snapshot", "shutting down", "creating snapshot", "crashed", "starting up"},
	StateShutdown:    {"unknown", "user"},
	StateShutoff:     {"unknown", "shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from snapshot", "daemon"},
	StateCrashed:     {"unknown", "panicked"},
	StatePMSuspended: {"unknown"},
}

// ReasonString returns the reason as `virsh domstate --reason` prints it.
func ReasonString(s State, reason int32) string {
	names := reasonNames[s]
	if reason >= 0 && int(reason) < len(names) {
		return names[reason]
	}
	return "unknown"
}
