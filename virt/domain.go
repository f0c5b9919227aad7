package virt

import "time"

// Domain is what a list or a lookup returns about one domain.
type Domain struct {
	Name string
	UUID string
	// ID is -1 when the domain is not running.
	ID         int32
	State      State
	Reason     int32
	Persistent bool
	Autostart  bool
}

// Active reports whether the domain has a running instance.
func (d *Domain) Active() bool { return d.State.Active() }

// DomainInfo is libvirt's virDomainInfo.
type DomainInfo struct {
	State        State
	MaxMemoryKiB uint64
	MemoryKiB    uint64
	VCPUs        uint32
	CPUTime      time.Duration
}

// NodeInfo is libvirt's virNodeInfo.
type NodeInfo struct {
	Model     string
	MemoryKiB uint64
	CPUs      uint32
	MHz       uint32
	Nodes     uint32
	Sockets   uint32
	Cores     uint32
	Threads   uint32
}

// Lookup names one domain by exactly one of its keys.
type Lookup struct {
	Name string
	UUID string
	// ID is used when Name and UUID are empty.
	ID int32
}

// ByName, ByUUID and ByID build a Lookup.
func ByName(name string) Lookup { return Lookup{Name: name} }

// ByUUID builds a Lookup by UUID.
func ByUUID(uuid string) Lookup { return Lookup{UUID: uuid} }

// ByID builds a Lookup by the ID of a running domain.
func ByID(id int32) Lookup { return Lookup{ID: id} }

// ListFlags are libvirt's virConnectListAllDomainsFlags. Within a group the
// bits are ORed; groups are ANDed; a group with no bit set does not filter.
type ListFlags uint32

// List filter bits, libvirt's numbers.
const (
	ListActive        ListFlags = 1 << 0
	ListInactive      ListFlags = 1 << 1
	ListPersistent    ListFlags = 1 << 2
	ListTransient     ListFlags = 1 << 3
	ListRunning       ListFlags = 1 << 4
	ListPaused        ListFlags = 1 << 5
	ListShutoff       ListFlags = 1 << 6
	ListOther         ListFlags = 1 << 7
	ListManagedSave   ListFlags = 1 << 8
	ListNoManagedSave ListFlags = 1 << 9
	ListAutostart     ListFlags = 1 << 10
	ListNoAutostart   ListFlags = 1 << 11
	ListHasSnapshot   ListFlags = 1 << 12
	ListNoSnapshot    ListFlags = 1 << 13
)

// listGroups are the filter groups: bits within a group are ORed, groups
// are ANDed, and a group with no bit set does not filter.
var listGroups = []ListFlags{
	ListActive | ListInactive,
	ListPersistent | ListTransient,
	ListRunning | ListPaused | ListShutoff | ListOther,
	ListManagedSave | ListNoManagedSave,
	ListAutostart | ListNoAutostart,
	ListHasSnapshot | ListNoSnapshot,
}

// Match reports whether d passes the filter, the way libvirt's
// virConnectListAllDomains applies it. virtd has no managed save and no
// snapshots, so every domain has neither.
func (f ListFlags) Match(d *Domain) bool {
	has := ListNoManagedSave | ListNoSnapshot
	if d.State.Active() {
		has |= ListActive
	} else {
		has |= ListInactive
	}
	if d.Persistent {
		has |= ListPersistent
	} else {
		has |= ListTransient
	}
	switch d.State {
	case StateRunning:
		has |= ListRunning
	case StatePaused:
		has |= ListPaused
	case StateShutoff:
		has |= ListShutoff
	default:
		has |= ListOther
	}
	if d.Autostart {
		has |= ListAutostart
	} else {
		has |= ListNoAutostart
	}
	for _, g := range listGroups {
		if f&g != 0 && f&g&has == 0 {
			return false
		}
	}
	return true
}

// EventType is libvirt's virDomainEventType.
type EventType int32

// Lifecycle event types, libvirt's numbers.
const (
	EventDefined     EventType = 0
	EventUndefined   EventType = 1
	EventStarted     EventType = 2
	EventSuspended   EventType = 3
	EventResumed     EventType = 4
	EventStopped     EventType = 5
	EventShutdown    EventType = 6
	EventPMSuspended EventType = 7
	EventCrashed     EventType = 8
	// EventReboot is not one of libvirt's lifecycle types: it is libvirt's
	// reboot event (VIR_DOMAIN_EVENT_ID_REBOOT), a guest that reset and
	// runs on, with no detail.
	EventReboot EventType = 100
)

var eventNames = [...]string{"Defined", "Undefined", "Started", "Suspended", "Resumed", "Stopped", "Shutdown", "PMSuspended", "Crashed"}

func (t EventType) String() string {
	if t == EventReboot {
		return "Reboot"
	}
	if t >= 0 && int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "Unknown"
}

// Event details, libvirt's numbers per event type.
const (
	DefinedAdded   int32 = 0
	DefinedUpdated int32 = 1

	UndefinedRemoved int32 = 0

	StartedBooted   int32 = 0
	StartedMigrated int32 = 1
	StartedRestored int32 = 2
	StartedSnapshot int32 = 3
	StartedWakeup   int32 = 4

	SuspendedPaused int32 = 0

	ResumedUnpaused int32 = 0

	StoppedShutdown  int32 = 0
	StoppedDestroyed int32 = 1
	StoppedCrashed   int32 = 2
	StoppedMigrated  int32 = 3
	StoppedSaved     int32 = 4
	StoppedFailed    int32 = 5
	StoppedSnapshot  int32 = 6

	ShutdownFinished int32 = 0
	ShutdownGuest    int32 = 1
	ShutdownHost     int32 = 2

	EventCrashedPanicked int32 = 0
)

var eventDetails = map[EventType][]string{
	EventDefined:     {"Added", "Updated", "Renamed", "Snapshot"},
	EventUndefined:   {"Removed", "Renamed"},
	EventStarted:     {"Booted", "Migrated", "Restored", "Snapshot", "Event wakeup"},
	EventSuspended:   {"Paused", "Migrated", "I/O Error", "Watchdog", "Restored", "Snapshot", "API error", "Post-copy", "Post-copy Error"},
	EventResumed:     {"Unpaused", "Migrated", "Snapshot", "Post-copy"},
	EventStopped:     {"Shutdown", "Destroyed", "Crashed", "Migrated", "Saved", "Failed", "Snapshot"},
	EventShutdown:    {"Finished", "Finished after guest request", "Finished after host request"},
	EventPMSuspended: {"Memory", "Disk"},
	EventCrashed:     {"Panicked"},
	EventReboot:      {""},
}

// EventDetailString returns the detail as `virsh event` prints it.
func EventDetailString(t EventType, detail int32) string {
	names := eventDetails[t]
	if detail >= 0 && int(detail) < len(names) {
		return names[detail]
	}
	return "Unknown"
}

// Event is one lifecycle event of one domain.
type Event struct {
	Domain Domain
	Type   EventType
	Detail int32
	// Seq increases by one per event of one driver process.
	Seq  uint64
	Time time.Time
}
