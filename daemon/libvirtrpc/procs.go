package libvirtrpc

import (
	"context"
	"encoding/xml"
	"fmt"
	"sort"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/virt"
)

// LibVersion is the libvirt API level whose protocol and behaviour virtd
// follows, as CONNECT_GET_LIB_VERSION reports it: clients such as
// virt-install turn features on by it. virtd's own version is in its
// admin API (virtsh version).
const LibVersion = 9000000

// Procedure numbers of the REMOTE program that virtd serves.
const (
	procConnectOpen                       = 1
	procConnectClose                      = 2
	procConnectGetType                    = 3
	procConnectGetVersion                 = 4
	procNodeGetInfo                       = 6
	procConnectGetCapabilities            = 7
	procDomainCreate                      = 9
	procDomainCreateXML                   = 10
	procDomainDefineXML                   = 11
	procDomainDestroy                     = 12
	procDomainGetXMLDesc                  = 14
	procDomainGetAutostart                = 15
	procDomainGetInfo                     = 16
	procDomainGetMaxMemory                = 17
	procDomainGetOSType                   = 19
	procConnectListDefinedDomains         = 21
	procDomainLookupByID                  = 22
	procDomainLookupByName                = 23
	procDomainLookupByUUID                = 24
	procConnectNumOfDefinedDomains        = 25
	procDomainReboot                      = 27
	procDomainResume                      = 28
	procDomainSetAutostart                = 29
	procDomainShutdown                    = 33
	procDomainSuspend                     = 34
	procDomainUndefine                    = 35
	procConnectListDomains                = 37
	procConnectNumOfDomains               = 51
	procDomainGetSchedulerType            = 56
	procConnectGetHostname                = 59
	procConnectSupportsFeature            = 60
	procAuthList                          = 66
	procConnectDomainEventRegister        = 105
	procConnectDomainEventDeregister      = 106
	procDomainEventLifecycle              = 107
	procConnectGetURI                     = 110
	procDomainGetSecurityLabel            = 121
	procNodeGetSecurityModel              = 122
	procConnectDomainXMLFromNative        = 135
	procConnectDomainXMLToNative          = 136
	procConnectIsSecure                   = 149
	procDomainIsActive                    = 150
	procDomainIsPersistent                = 151
	procConnectGetLibVersion              = 157
	procConnectDomainEventRegisterAny     = 167
	procConnectDomainEventDeregisterAny   = 168
	procDomainHasManagedSaveImage         = 183
	procDomainSnapshotNum                 = 187
	procDomainSnapshotListNames           = 188
	procDomainSnapshotLookupByName        = 189
	procDomainHasCurrentSnapshot          = 190
	procDomainSnapshotCurrent             = 191
	procDomainCreateWithFlags             = 196
	procDomainOpenConsole                 = 201
	procDomainIsUpdated                   = 202
	procDomainGetState                    = 212
	procDomainUndefineFlags               = 231
	procDomainDestroyFlags                = 234
	procDomainShutdownFlags               = 258
	procConnectListAllDomains             = 273
	procDomainListAllSnapshots            = 274
	procConnectDomainEventCallbackRegAny  = 316
	procConnectDomainEventCallbackDeregAn = 317
	procDomainEventCallbackLifecycle      = 318
	procDomainDefineXMLFlags              = 350
	procConnectRegisterCloseCallback      = 360
	procConnectUnregisterCloseCallback    = 361
	procDomainGetMessages                 = 426
)

// procs are the procedures served, by number.
var procs = map[int32]*proc{}

func serve(num int32, name string, p proc) {
	p.name = name
	procs[num] = &p
}

func init() {
	// Connections.
	serve(procAuthList, "AUTH_LIST", proc{inline: true, fn: authList})
	serve(procConnectSupportsFeature, "CONNECT_SUPPORTS_FEATURE", proc{inline: true, fn: supportsFeature})
	serve(procConnectOpen, "CONNECT_OPEN", proc{inline: true, errs: errOpenProc, fn: connectOpen})
	serve(procConnectClose, "CONNECT_CLOSE", proc{inline: true, fn: connectClose})
	serve(procConnectRegisterCloseCallback, "CONNECT_REGISTER_CLOSE_CALLBACK", proc{needConn: true, fn: noArgs})
	serve(procConnectUnregisterCloseCallback, "CONNECT_UNREGISTER_CLOSE_CALLBACK", proc{needConn: true, fn: noArgs})
	serve(procConnectGetURI, "CONNECT_GET_URI", proc{needConn: true, fn: getURI})
	serve(procConnectGetType, "CONNECT_GET_TYPE", proc{needConn: true, fn: connString(hypervisorType)})
	serve(procConnectGetVersion, "CONNECT_GET_VERSION", proc{needConn: true, fn: getVersion})
	serve(procConnectGetLibVersion, "CONNECT_GET_LIB_VERSION", proc{needConn: true, fn: getLibVersion})
	serve(procConnectGetHostname, "CONNECT_GET_HOSTNAME", proc{needConn: true, fn: connString((*core.Conn).Hostname)})
	serve(procConnectGetCapabilities, "CONNECT_GET_CAPABILITIES", proc{needConn: true, fn: connString((*core.Conn).Capabilities)})
	serve(procNodeGetInfo, "NODE_GET_INFO", proc{needConn: true, fn: nodeGetInfo})
	serve(procConnectIsSecure, "CONNECT_IS_SECURE", proc{needConn: true, fn: isSecure})
	serve(procNodeGetSecurityModel, "NODE_GET_SECURITY_MODEL", proc{needConn: true, fn: securityModel})

	// Domains: lists and lookups.
	serve(procConnectListAllDomains, "CONNECT_LIST_ALL_DOMAINS", proc{needConn: true, fn: listAllDomains})
	serve(procConnectNumOfDomains, "CONNECT_NUM_OF_DOMAINS", proc{needConn: true, fn: numOf(virt.ListActive)})
	serve(procConnectNumOfDefinedDomains, "CONNECT_NUM_OF_DEFINED_DOMAINS", proc{needConn: true, fn: numOf(virt.ListInactive)})
	serve(procConnectListDomains, "CONNECT_LIST_DOMAINS", proc{needConn: true, fn: listDomainIDs})
	serve(procConnectListDefinedDomains, "CONNECT_LIST_DEFINED_DOMAINS", proc{needConn: true, fn: listDefinedNames})
	serve(procDomainLookupByName, "DOMAIN_LOOKUP_BY_NAME", proc{needConn: true, fn: lookupByName})
	serve(procDomainLookupByUUID, "DOMAIN_LOOKUP_BY_UUID", proc{needConn: true, fn: lookupByUUID})
	serve(procDomainLookupByID, "DOMAIN_LOOKUP_BY_ID", proc{needConn: true, fn: lookupByID})

	// Domains: definitions and actions.
	serve(procDomainDefineXML, "DOMAIN_DEFINE_XML", proc{needConn: true, errs: errXMLProc, fn: domainFromXML((*core.Conn).DefineDomain, false, 0)})
	serve(procDomainDefineXMLFlags, "DOMAIN_DEFINE_XML_FLAGS", proc{needConn: true, errs: errXMLProc, fn: domainFromXML((*core.Conn).DefineDomain, true, defineValidate)})
	serve(procDomainUndefine, "DOMAIN_UNDEFINE", proc{needConn: true, fn: act((*core.Conn).UndefineDomain, false, 0)})
	// virtd keeps no managed save, snapshot, checkpoint, NVRAM or TPM
	// state of its own: asking to remove or keep it changes nothing.
	serve(procDomainUndefineFlags, "DOMAIN_UNDEFINE_FLAGS", proc{needConn: true, fn: act((*core.Conn).UndefineDomain, true, 0x7f)})
	serve(procDomainCreate, "DOMAIN_CREATE", proc{needConn: true, fn: create(false)})
	serve(procDomainCreateWithFlags, "DOMAIN_CREATE_WITH_FLAGS", proc{needConn: true, fn: create(true)})
	serve(procDomainCreateXML, "DOMAIN_CREATE_XML", proc{needConn: true, errs: errXMLProc, fn: domainFromXML((*core.Conn).CreateDomain, true, createXMLValidate)})
	serve(procDomainShutdown, "DOMAIN_SHUTDOWN", proc{needConn: true, fn: act((*core.Conn).ShutdownDomain, false, 0)})
	// Shutdown and reboot flags choose a method; 0 and ACPI (1) are
	// what virtd's drivers do.
	serve(procDomainShutdownFlags, "DOMAIN_SHUTDOWN_FLAGS", proc{needConn: true, fn: act((*core.Conn).ShutdownDomain, true, 1)})
	serve(procDomainReboot, "DOMAIN_REBOOT", proc{needConn: true, fn: act((*core.Conn).RebootDomain, true, 1)})
	serve(procDomainDestroy, "DOMAIN_DESTROY", proc{needConn: true, fn: act((*core.Conn).DestroyDomain, false, 0)})
	// GRACEFUL (1): virtd's destroy never waits on the guest anyway.
	serve(procDomainDestroyFlags, "DOMAIN_DESTROY_FLAGS", proc{needConn: true, fn: act((*core.Conn).DestroyDomain, true, 1)})
	serve(procDomainSuspend, "DOMAIN_SUSPEND", proc{needConn: true, fn: act((*core.Conn).SuspendDomain, false, 0)})
	serve(procDomainResume, "DOMAIN_RESUME", proc{needConn: true, fn: act((*core.Conn).ResumeDomain, false, 0)})
	serve(procDomainSetAutostart, "DOMAIN_SET_AUTOSTART", proc{needConn: true, fn: setAutostart})

	// Domains: reads.
	serve(procDomainGetInfo, "DOMAIN_GET_INFO", proc{needConn: true, fn: getInfo})
	serve(procDomainGetState, "DOMAIN_GET_STATE", proc{needConn: true, fn: getState})
	serve(procDomainGetXMLDesc, "DOMAIN_GET_XML_DESC", proc{needConn: true, fn: getXMLDesc})
	serve(procDomainGetAutostart, "DOMAIN_GET_AUTOSTART", proc{needConn: true, fn: getAutostart})
	serve(procDomainIsActive, "DOMAIN_IS_ACTIVE", proc{needConn: true, fn: domainBool(func(d *virt.Domain) bool { return d.Active() })})
	serve(procDomainIsPersistent, "DOMAIN_IS_PERSISTENT", proc{needConn: true, fn: domainBool(func(d *virt.Domain) bool { return d.Persistent })})
	// virtd applies a definition to a running domain at its next start
	// only, and does not track whether they differ.
	serve(procDomainIsUpdated, "DOMAIN_IS_UPDATED", proc{needConn: true, fn: domainBool(func(*virt.Domain) bool { return false })})
	serve(procDomainGetOSType, "DOMAIN_GET_OS_TYPE", proc{needConn: true, fn: getOSType})
	serve(procDomainGetMaxMemory, "DOMAIN_GET_MAX_MEMORY", proc{needConn: true, fn: getMaxMemory})
	serve(procDomainHasManagedSaveImage, "DOMAIN_HAS_MANAGED_SAVE_IMAGE", proc{needConn: true, fn: domainFlagsInt(0)})
	serve(procDomainGetSchedulerType, "DOMAIN_GET_SCHEDULER_TYPE", proc{needConn: true, fn: schedulerType})
	serve(procDomainGetSecurityLabel, "DOMAIN_GET_SECURITY_LABEL", proc{needConn: true, fn: securityLabel})
	serve(procDomainGetMessages, "DOMAIN_GET_MESSAGES", proc{needConn: true, fn: getMessages})

	// Snapshots: virtd's drivers make none, so every domain has none.
	serve(procDomainSnapshotNum, "DOMAIN_SNAPSHOT_NUM", proc{needConn: true, fn: domainFlagsInt(0)})
	serve(procDomainHasCurrentSnapshot, "DOMAIN_HAS_CURRENT_SNAPSHOT", proc{needConn: true, fn: domainFlagsInt(0)})
	serve(procDomainSnapshotListNames, "DOMAIN_SNAPSHOT_LIST_NAMES", proc{needConn: true, fn: snapshotListNames})
	serve(procDomainListAllSnapshots, "DOMAIN_LIST_ALL_SNAPSHOTS", proc{needConn: true, fn: listAllSnapshots})
	serve(procDomainSnapshotLookupByName, "DOMAIN_SNAPSHOT_LOOKUP_BY_NAME", proc{needConn: true, fn: snapshotLookup})
	serve(procDomainSnapshotCurrent, "DOMAIN_SNAPSHOT_CURRENT", proc{needConn: true, fn: snapshotCurrent})

	// Native formats.
	serve(procConnectDomainXMLFromNative, "CONNECT_DOMAIN_XML_FROM_NATIVE", proc{needConn: true, fn: nativeXML((*core.Conn).DomainXMLFromNative)})
	serve(procConnectDomainXMLToNative, "CONNECT_DOMAIN_XML_TO_NATIVE", proc{needConn: true, errs: errXMLProc, fn: nativeXML((*core.Conn).DomainXMLToNative)})

	serveEvents()
	serveConsole()
	serveOtherKinds()
	serveStats()
}

// ProcName returns the name of a procedure virtd serves, or its number.
func ProcName(num int32) string {
	if p := procs[num]; p != nil {
		return p.name
	}
	return fmt.Sprintf("procedure %d", num)
}

// Procedures lists the numbers of the procedures virtd serves, in order.
func Procedures() []int32 {
	out := make([]int32, 0, len(procs))
	for n := range procs {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func noArgs(_ context.Context, c *call) error { return c.args() }

// Connections.

// authNone is REMOTE_AUTH_NONE: a unix socket's peer is trusted as its
// file mode allows.
const authNone = 0

func authList(_ context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	c.e.Uint32(1)
	c.e.Int32(authNone)
	return nil
}

// Features of VIR_DRV_SUPPORTS_FEATURE that virtd's front end has.
var features = map[int32]bool{
	4:  true, // FD passing is refused cleanly; say no below
	8:  true, // TYPED_PARAM_STRING
	10: true, // PROGRAM_KEEPALIVE
	14: true, // REMOTE_EVENT_CALLBACK
	15: true, // REMOTE_CLOSE_CALLBACK
}

func supportsFeature(_ context.Context, c *call) error {
	f := c.d.Int32()
	if err := c.args(); err != nil {
		return err
	}
	c.e.Bool(features[f] && f != 4)
	return nil
}

// connectOpenRO is VIR_CONNECT_RO.
const connectOpenRO = 1

func connectOpen(ctx context.Context, c *call) error {
	uri, _ := c.d.OptString(maxString)
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if c.conn != nil {
		return rpcErr(errInternal, "this connection is open already, on %s", c.conn.URI())
	}
	access := core.ReadWrite
	if c.c.readOnly || flags&connectOpenRO != 0 {
		access = core.ReadOnly
	}
	conn, err := c.c.s.core.Open(ctx, uri, access)
	if err != nil {
		return err
	}
	c.c.mu.Lock()
	if c.c.conn != nil || c.c.streams == nil {
		c.c.mu.Unlock()
		conn.Close()
		return rpcErr(errInternal, "this connection is open already")
	}
	c.c.conn = conn
	c.c.mu.Unlock()
	return nil
}

func connectClose(_ context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	c.c.mu.Lock()
	conn := c.c.conn
	c.c.conn = nil
	ev := c.c.events
	c.c.events = nil
	c.c.mu.Unlock()
	if ev != nil {
		ev.stop()
	}
	if conn != nil {
		conn.Close()
	}
	return nil
}

func getURI(_ context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	c.e.String(c.conn.URI())
	return nil
}

// connString serves a call with no arguments whose answer is a string.
func connString(get func(*core.Conn, context.Context) (string, error)) func(context.Context, *call) error {
	return func(ctx context.Context, c *call) error {
		if err := c.args(); err != nil {
			return err
		}
		s, err := get(c.conn, ctx)
		if err != nil {
			return err
		}
		c.e.String(s)
		return nil
	}
}

func hypervisorType(c *core.Conn, ctx context.Context) (string, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return "", err
	}
	return v.HypervisorType, nil
}

func getVersion(ctx context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	v, err := c.conn.Version(ctx)
	if err != nil {
		return err
	}
	c.e.Uint64(v.HypervisorVersion)
	return nil
}

func getLibVersion(_ context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	c.e.Uint64(LibVersion)
	return nil
}

func nodeGetInfo(ctx context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	n, err := c.conn.NodeInfo(ctx)
	if err != nil {
		return err
	}
	// model is char[32]: each char an XDR int, NUL-terminated.
	for i := 0; i < 32; i++ {
		var ch int32
		if i < len(n.Model) && i < 31 {
			ch = int32(int8(n.Model[i]))
		}
		c.e.Int32(ch)
	}
	c.e.Uint64(n.MemoryKiB)
	c.e.Int32(int32(n.CPUs))
	c.e.Int32(int32(n.MHz))
	c.e.Int32(int32(n.Nodes))
	c.e.Int32(int32(n.Sockets))
	c.e.Int32(int32(n.Cores))
	c.e.Int32(int32(n.Threads))
	return nil
}

func isSecure(_ context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	c.e.Int32(1) // a local unix socket
	return nil
}

// cString writes a char<> as libvirt does: each char an XDR int, the
// string's bytes and a NUL.
func (c *call) cString(s string) {
	c.e.Uint32(uint32(len(s) + 1))
	for i := 0; i < len(s); i++ {
		c.e.Int32(int32(int8(s[i])))
	}
	c.e.Int32(0)
}

func securityModel(_ context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	// virtd's drivers confine guests with no security driver (no SELinux
	// or AppArmor labels): libvirt's "none" model.
	c.cString("none")
	c.cString("0")
	return nil
}

// Domains.

func listAllDomains(ctx context.Context, c *call) error {
	need := c.d.Int32()
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	doms, err := c.conn.ListDomains(ctx, virt.ListFlags(flags))
	if err != nil {
		return err
	}
	if len(doms) > maxDomains {
		return rpcErr(errRPC, "%d domains are more than one reply may carry (%d)", len(doms), maxDomains)
	}
	if need != 0 {
		c.e.Uint32(uint32(len(doms)))
		for i := range doms {
			putDomain(c.e, &doms[i])
		}
	} else {
		c.e.Uint32(0)
	}
	c.e.Uint32(uint32(len(doms)))
	return nil
}

func numOf(f virt.ListFlags) func(context.Context, *call) error {
	return func(ctx context.Context, c *call) error {
		if err := c.args(); err != nil {
			return err
		}
		doms, err := c.conn.ListDomains(ctx, f)
		if err != nil {
			return err
		}
		c.e.Int32(int32(len(doms)))
		return nil
	}
}

// maxArg reads a count of wanted results and checks it as libvirt does.
func (c *call) maxArg(limit int) (int, error) {
	n := c.d.Int32()
	if err := c.args(); err != nil {
		return 0, err
	}
	if n < 0 || int(n) > limit {
		return 0, rpcErr(errRPC, "a list of %d is over the limit of %d", n, limit)
	}
	return int(n), nil
}

func listDomainIDs(ctx context.Context, c *call) error {
	max, err := c.maxArg(maxDomains)
	if err != nil {
		return err
	}
	doms, err := c.conn.ListDomains(ctx, virt.ListActive)
	if err != nil {
		return err
	}
	sort.Slice(doms, func(i, j int) bool { return doms[i].ID < doms[j].ID })
	n := min(len(doms), max)
	c.e.Uint32(uint32(n))
	for _, d := range doms[:n] {
		c.e.Int32(d.ID)
	}
	return nil
}

func listDefinedNames(ctx context.Context, c *call) error {
	max, err := c.maxArg(maxNames)
	if err != nil {
		return err
	}
	doms, err := c.conn.ListDomains(ctx, virt.ListInactive)
	if err != nil {
		return err
	}
	n := min(len(doms), max)
	c.e.Uint32(uint32(n))
	for _, d := range doms[:n] {
		c.e.String(d.Name)
	}
	return nil
}

func (c *call) lookup(ctx context.Context, key virt.Lookup) error {
	d, err := c.conn.LookupDomain(ctx, key)
	if err != nil {
		return err
	}
	putDomain(c.e, d)
	return nil
}

func lookupByName(ctx context.Context, c *call) error {
	name := c.d.String(maxString)
	if err := c.args(); err != nil {
		return err
	}
	return c.lookup(ctx, virt.ByName(name))
}

func lookupByUUID(ctx context.Context, c *call) error {
	u := c.d.Fixed(16)
	if err := c.args(); err != nil {
		return err
	}
	return c.lookup(ctx, virt.ByUUID(formatUUID(u)))
}

func lookupByID(ctx context.Context, c *call) error {
	id := c.d.Int32()
	if err := c.args(); err != nil {
		return err
	}
	if id < 0 {
		return fmt.Errorf("no domain with id %d: %w", id, virt.ErrNotFound)
	}
	return c.lookup(ctx, virt.ByID(id))
}

// Flags of the calls that take XML: VIR_DOMAIN_DEFINE_VALIDATE (1) and
// VIR_DOMAIN_START_VALIDATE (4) ask for a check that virtd's drivers always
// make.
const (
	defineValidate    = 1
	createXMLValidate = 4
)

// domainFromXML serves DEFINE_XML(_FLAGS) and CREATE_XML: a document, flags
// when withFlags, of which allowed are accepted; the domain made.
func domainFromXML(fn func(*core.Conn, context.Context, string) (*virt.Domain, error), withFlags bool, allowed uint32) func(context.Context, *call) error {
	return func(ctx context.Context, c *call) error {
		doc := c.d.String(maxString)
		var flags uint32
		if withFlags {
			flags = c.d.Uint32()
		}
		if err := c.args(); err != nil {
			return err
		}
		if err := c.checkFlags(flags, allowed); err != nil {
			return err
		}
		d, err := fn(c.conn, ctx, doc)
		if err != nil {
			return err
		}
		putDomain(c.e, d)
		return nil
	}
}

// act serves a call on a domain that returns nothing: with a flags word
// when withFlags, of which allowed are accepted.
func act(fn func(*core.Conn, context.Context, string) error, withFlags bool, allowed uint32) func(context.Context, *call) error {
	return func(ctx context.Context, c *call) error {
		uuid := c.domain()
		var flags uint32
		if withFlags {
			flags = c.d.Uint32()
		}
		if err := c.args(); err != nil {
			return err
		}
		if err := c.checkFlags(flags, allowed); err != nil {
			return err
		}
		return fn(c.conn, ctx, uuid)
	}
}

// createForceBoot is VIR_DOMAIN_START_FORCE_BOOT: there is no managed
// save to ignore.
const createForceBoot = 8

func create(withFlags bool) func(context.Context, *call) error {
	return func(ctx context.Context, c *call) error {
		uuid := c.domain()
		var flags uint32
		if withFlags {
			flags = c.d.Uint32()
		}
		if err := c.args(); err != nil {
			return err
		}
		if err := c.checkFlags(flags, createForceBoot); err != nil {
			return err
		}
		d, err := c.conn.StartDomain(ctx, uuid)
		if err != nil {
			return err
		}
		if withFlags {
			putDomain(c.e, d)
		}
		return nil
	}
}

func setAutostart(ctx context.Context, c *call) error {
	uuid := c.domain()
	on := c.d.Int32()
	if err := c.args(); err != nil {
		return err
	}
	return c.conn.SetDomainAutostart(ctx, uuid, on != 0)
}

func getInfo(ctx context.Context, c *call) error {
	uuid := c.domain()
	if err := c.args(); err != nil {
		return err
	}
	i, err := c.conn.DomainInfo(ctx, uuid)
	if err != nil {
		return err
	}
	c.e.Uint32(uint32(i.State))
	c.e.Uint64(i.MaxMemoryKiB)
	c.e.Uint64(i.MemoryKiB)
	c.e.Uint32(i.VCPUs)
	c.e.Uint64(uint64(i.CPUTime.Nanoseconds()))
	return nil
}

func getState(ctx context.Context, c *call) error {
	uuid := c.domain()
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if err := c.checkFlags(flags, 0); err != nil {
		return err
	}
	st, reason, err := c.conn.DomainState(ctx, uuid)
	if err != nil {
		return err
	}
	c.e.Int32(int32(st))
	c.e.Int32(reason)
	return nil
}

// GET_XML_DESC flags: SECURE (1) asks for passwords, which virtd's XML
// always carries as given; INACTIVE (2) the persistent definition.
const (
	xmlSecure   = 1
	xmlInactive = 2
)

func getXMLDesc(ctx context.Context, c *call) error {
	uuid := c.domain()
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if err := c.checkFlags(flags, xmlSecure|xmlInactive); err != nil {
		return err
	}
	s, err := c.conn.DomainXML(ctx, uuid, flags&xmlInactive != 0)
	if err != nil {
		return err
	}
	c.e.String(s)
	return nil
}

func getAutostart(ctx context.Context, c *call) error {
	uuid := c.domain()
	if err := c.args(); err != nil {
		return err
	}
	on, err := c.conn.DomainAutostart(ctx, uuid)
	if err != nil {
		return err
	}
	c.e.Bool(on)
	return nil
}

// byUUID returns the domain a call names, or NO_DOMAIN.
func (c *call) byUUID(ctx context.Context, uuid string) (*virt.Domain, error) {
	return c.conn.LookupDomain(ctx, virt.ByUUID(uuid))
}

func domainBool(f func(*virt.Domain) bool) func(context.Context, *call) error {
	return func(ctx context.Context, c *call) error {
		uuid := c.domain()
		if err := c.args(); err != nil {
			return err
		}
		d, err := c.byUUID(ctx, uuid)
		if err != nil {
			return err
		}
		c.e.Bool(f(d))
		return nil
	}
}

// domainFlagsInt answers a call on (domain, flags) with a constant, once
// the domain is known to exist.
func domainFlagsInt(v int32) func(context.Context, *call) error {
	return func(ctx context.Context, c *call) error {
		uuid := c.domain()
		c.d.Uint32()
		if err := c.args(); err != nil {
			return err
		}
		if _, err := c.byUUID(ctx, uuid); err != nil {
			return err
		}
		c.e.Int32(v)
		return nil
	}
}

// osTypeOf reads <os><type> of a domain's XML.
func osTypeOf(doc string) string {
	var d struct {
		OS struct {
			Type string `xml:"type"`
		} `xml:"os"`
	}
	if xml.Unmarshal([]byte(doc), &d) != nil || d.OS.Type == "" {
		return "hvm"
	}
	return d.OS.Type
}

func getOSType(ctx context.Context, c *call) error {
	uuid := c.domain()
	if err := c.args(); err != nil {
		return err
	}
	s, err := c.conn.DomainXML(ctx, uuid, false)
	if err != nil {
		return err
	}
	c.e.String(osTypeOf(s))
	return nil
}

func getMaxMemory(ctx context.Context, c *call) error {
	uuid := c.domain()
	if err := c.args(); err != nil {
		return err
	}
	i, err := c.conn.DomainInfo(ctx, uuid)
	if err != nil {
		return err
	}
	c.e.Uint64(i.MaxMemoryKiB)
	return nil
}

func schedulerType(ctx context.Context, c *call) error {
	uuid := c.domain()
	if err := c.args(); err != nil {
		return err
	}
	if _, err := c.byUUID(ctx, uuid); err != nil {
		return err
	}
	// The host's scheduler, with no parameters virtd lets one set.
	c.e.String("posix")
	c.e.Int32(0)
	return nil
}

func securityLabel(ctx context.Context, c *call) error {
	uuid := c.domain()
	if err := c.args(); err != nil {
		return err
	}
	if _, err := c.byUUID(ctx, uuid); err != nil {
		return err
	}
	c.cString("") // no label: the "none" model
	c.e.Int32(0)  // not enforcing
	return nil
}

func getMessages(ctx context.Context, c *call) error {
	uuid := c.domain()
	c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if _, err := c.byUUID(ctx, uuid); err != nil {
		return err
	}
	c.e.Uint32(0) // no tainting or deprecation messages
	return nil
}

func snapshotListNames(ctx context.Context, c *call) error {
	uuid := c.domain()
	max := c.d.Int32()
	c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if max < 0 || max > maxNames {
		return rpcErr(errRPC, "a list of %d is over the limit of %d", max, maxNames)
	}
	if _, err := c.byUUID(ctx, uuid); err != nil {
		return err
	}
	c.e.Uint32(0)
	return nil
}

func listAllSnapshots(ctx context.Context, c *call) error {
	uuid := c.domain()
	c.d.Int32() // need_results
	c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if _, err := c.byUUID(ctx, uuid); err != nil {
		return err
	}
	c.e.Uint32(0) // snapshots
	c.e.Int32(0)  // ret
	return nil
}

func noSnapshot(ctx context.Context, c *call, uuid, what string) error {
	d, err := c.byUUID(ctx, uuid)
	if err != nil {
		return err
	}
	return &remoteError{code: errNoDomainSnapshot, domain: fromSnapshot,
		msg: fmt.Sprintf("domain '%s' has no %s: virtd keeps no snapshots", d.Name, what)}
}

func snapshotLookup(ctx context.Context, c *call) error {
	uuid := c.domain()
	name := c.d.String(maxString)
	c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	return noSnapshot(ctx, c, uuid, fmt.Sprintf("snapshot %q", name))
}

func snapshotCurrent(ctx context.Context, c *call) error {
	uuid := c.domain()
	c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	return noSnapshot(ctx, c, uuid, "current snapshot")
}

// nativeXML serves CONNECT_DOMAIN_XML_FROM_NATIVE and _TO_NATIVE: a
// format, a document, flags; the converted document.
func nativeXML(conv func(*core.Conn, context.Context, string, string) (string, error)) func(context.Context, *call) error {
	return func(ctx context.Context, c *call) error {
		format := c.d.String(maxString)
		in := c.d.String(maxString)
		flags := c.d.Uint32()
		if err := c.args(); err != nil {
			return err
		}
		if err := c.checkFlags(flags, 0); err != nil {
			return err
		}
		out, err := conv(c.conn, ctx, format, in)
		if err != nil {
			return err
		}
		c.e.String(out)
		return nil
	}
}
