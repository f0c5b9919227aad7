package libvirtrpc

import (
	"context"
	"fmt"
)

// Object kinds that no virtd driver serves yet: networks, storage,
// interfaces, node devices, secrets and network filters. A host with
// none of them is what management tools see: lists are empty, counts 0,
// lookups the kind's not-found error, and event registrations are taken
// (no event will come); any other call on them is NO_SUPPORT naming the
// driver that is missing.

// kind is one object kind.
type kind struct {
	name string // what the driver it needs is called
	// eventIDs is libvirt 9.0's number of event IDs of the kind.
	eventIDs int32
	procs    []int32
}

var (
	kindNetwork = &kind{name: "network", eventIDs: 1, procs: []int32{
		36, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 52, 152, 153, 283, 291, 313, 314, 315,
		341, 404, 405, 406, 407, 408, 409, 410, 432, 437, 444, 445, 446}}
	kindStorage = &kind{name: "storage", eventIDs: 2, procs: []int32{
		71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93,
		94, 95, 96, 97, 98, 99, 100, 125, 154, 155, 165, 208, 209, 259, 260, 281, 282, 368, 369,
		370, 373, 378, 391}}
	kindInterface = &kind{name: "interface", procs: []int32{
		126, 127, 128, 129, 130, 131, 132, 133, 134, 137, 138, 156, 220, 221, 222, 284}}
	kindNodeDevice = &kind{name: "node device", eventIDs: 2, procs: []int32{
		111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 123, 124, 285, 297, 301, 374, 375, 376,
		377, 428, 429, 430, 433, 434, 435, 436, 447}}
	kindSecret = &kind{name: "secret", eventIDs: 2, procs: []int32{
		139, 140, 141, 142, 143, 144, 145, 146, 147, 287, 380, 381, 382, 383}}
	kindNWFilter = &kind{name: "network filter", procs: []int32{
		175, 176, 177, 178, 179, 180, 181, 286, 397, 398, 399, 400, 431}}
	kinds = []*kind{kindNetwork, kindStorage, kindInterface, kindNodeDevice, kindSecret, kindNWFilter}

	kindByProc = map[int32]*kind{}
)

// kindOf returns the object kind a procedure belongs to, if it is one of
// those no driver serves.
func kindOf(proc int32) *kind { return kindByProc[proc] }

// errNoStorageVol is the not-found error of storage volumes.
const errNoStorageVol = 50

func serveOtherKinds() {
	for _, k := range kinds {
		for _, p := range k.procs {
			kindByProc[p] = k
		}
	}
	// Lists of every object: empty.
	for num, name := range map[int32]string{
		281: "CONNECT_LIST_ALL_STORAGE_POOLS", 283: "CONNECT_LIST_ALL_NETWORKS",
		284: "CONNECT_LIST_ALL_INTERFACES", 285: "CONNECT_LIST_ALL_NODE_DEVICES",
		286: "CONNECT_LIST_ALL_NWFILTERS", 287: "CONNECT_LIST_ALL_SECRETS",
	} {
		serve(num, name, proc{needConn: true, fn: emptyListAll})
	}
	// Counts: 0.
	for num, name := range map[int32]string{
		50: "CONNECT_NUM_OF_DEFINED_NETWORKS", 52: "CONNECT_NUM_OF_NETWORKS",
		71: "CONNECT_NUM_OF_STORAGE_POOLS", 73: "CONNECT_NUM_OF_DEFINED_STORAGE_POOLS",
		126: "CONNECT_NUM_OF_INTERFACES", 137: "CONNECT_NUM_OF_DEFINED_INTERFACES",
		139: "CONNECT_NUM_OF_SECRETS", 178: "CONNECT_NUM_OF_NWFILTERS",
	} {
		serve(num, name, proc{needConn: true, fn: zeroCount})
	}
	serve(111, "NODE_NUM_OF_DEVICES", proc{needConn: true, fn: nodeNumOfDevices})
	// Lists of names: empty.
	for num, name := range map[int32]string{
		36: "CONNECT_LIST_DEFINED_NETWORKS", 38: "CONNECT_LIST_NETWORKS",
		72: "CONNECT_LIST_STORAGE_POOLS", 74: "CONNECT_LIST_DEFINED_STORAGE_POOLS",
		127: "CONNECT_LIST_INTERFACES", 138: "CONNECT_LIST_DEFINED_INTERFACES",
		140: "CONNECT_LIST_SECRETS", 179: "CONNECT_LIST_NWFILTERS",
	} {
		serve(num, name, proc{needConn: true, fn: emptyNames})
	}
	serve(112, "NODE_LIST_DEVICES", proc{needConn: true, fn: nodeListDevices})
	// Lookups by a name or a string key: the kind's not-found error.
	for num, l := range map[int32]struct {
		name, what string
		code       int32
	}{
		46:  {"NETWORK_LOOKUP_BY_NAME", "network", errNoNetwork},
		84:  {"STORAGE_POOL_LOOKUP_BY_NAME", "storage pool", errNoStoragePool},
		391: {"STORAGE_POOL_LOOKUP_BY_TARGET_PATH", "storage pool with target path", errNoStoragePool},
		95:  {"STORAGE_VOL_LOOKUP_BY_NAME", "storage volume", errNoStorageVol},
		96:  {"STORAGE_VOL_LOOKUP_BY_KEY", "storage volume with key", errNoStorageVol},
		97:  {"STORAGE_VOL_LOOKUP_BY_PATH", "storage volume with path", errNoStorageVol},
		128: {"INTERFACE_LOOKUP_BY_NAME", "interface", errNoInterface},
		129: {"INTERFACE_LOOKUP_BY_MAC_STRING", "interface with MAC address", errNoInterface},
		113: {"NODE_DEVICE_LOOKUP_BY_NAME", "node device", errNoNodeDevice},
		175: {"NWFILTER_LOOKUP_BY_NAME", "network filter", errNoNWFilter},
	} {
		serve(num, l.name, proc{needConn: true, fn: lookupString(l.what, l.code)})
	}
	for num, l := range map[int32]struct {
		name, what string
		code       int32
	}{
		47:  {"NETWORK_LOOKUP_BY_UUID", "network", errNoNetwork},
		85:  {"STORAGE_POOL_LOOKUP_BY_UUID", "storage pool", errNoStoragePool},
		141: {"SECRET_LOOKUP_BY_UUID", "secret", errNoSecret},
		176: {"NWFILTER_LOOKUP_BY_UUID", "network filter", errNoNWFilter},
	} {
		serve(num, l.name, proc{needConn: true, fn: lookupUUID(l.what, l.code)})
	}
	// Event registrations: taken; deregistration of what was taken.
	serve(313, "CONNECT_NETWORK_EVENT_REGISTER_ANY", proc{needConn: true, fn: kindRegister(kindNetwork, skipNetwork)})
	serve(368, "CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY", proc{needConn: true, fn: kindRegister(kindStorage, skipNetwork)})
	serve(374, "CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY", proc{needConn: true, fn: kindRegister(kindNodeDevice, skipNodeDevice)})
	serve(380, "CONNECT_SECRET_EVENT_REGISTER_ANY", proc{needConn: true, fn: kindRegister(kindSecret, skipSecret)})
	for num, name := range map[int32]string{
		314: "CONNECT_NETWORK_EVENT_DEREGISTER_ANY", 369: "CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY",
		375: "CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY", 381: "CONNECT_SECRET_EVENT_DEREGISTER_ANY",
	} {
		serve(num, name, proc{needConn: true, fn: kindDeregister(kindByProc[num])})
	}
}

func emptyListAll(_ context.Context, c *call) error {
	c.d.Int32() // need_results
	c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	c.e.Uint32(0) // the objects
	c.e.Uint32(0) // ret
	return nil
}

func zeroCount(_ context.Context, c *call) error {
	if err := c.args(); err != nil {
		return err
	}
	c.e.Int32(0)
	return nil
}

func emptyNames(_ context.Context, c *call) error {
	if _, err := c.maxArg(maxNames); err != nil {
		return err
	}
	c.e.Uint32(0)
	return nil
}

func nodeNumOfDevices(_ context.Context, c *call) error {
	c.d.OptString(maxString) // cap
	c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	c.e.Int32(0)
	return nil
}

func nodeListDevices(_ context.Context, c *call) error {
	c.d.OptString(maxString) // cap
	max := c.d.Int32()
	c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if max < 0 || max > maxNames {
		return rpcErr(errRPC, "a list of %d is over the limit of %d", max, maxNames)
	}
	c.e.Uint32(0)
	return nil
}

func notFoundErr(code int32, what string) error {
	return &remoteError{code: code, domain: fromRemote, msg: fmt.Sprintf("no %s: not found (virtd has no driver that serves these objects)", what)}
}

func lookupString(what string, code int32) func(context.Context, *call) error {
	return func(_ context.Context, c *call) error {
		key := c.d.String(maxString)
		if err := c.args(); err != nil {
			return err
		}
		return notFoundErr(code, fmt.Sprintf("%s '%s'", what, key))
	}
}

func lookupUUID(what string, code int32) func(context.Context, *call) error {
	return func(_ context.Context, c *call) error {
		u := c.d.Fixed(16)
		if err := c.args(); err != nil {
			return err
		}
		return notFoundErr(code, fmt.Sprintf("%s with UUID %s", what, formatUUID(u)))
	}
}

// skipNetwork reads a remote_network or a remote_storage_pool: a name and
// a UUID.
func skipNetwork(c *call) {
	c.d.String(maxString)
	c.d.Fixed(16)
}

// skipNodeDevice reads a remote_node_device: a name.
func skipNodeDevice(c *call) { c.d.String(maxString) }

// skipSecret reads a remote_secret: a UUID, a usage type and a usage id.
func skipSecret(c *call) {
	c.d.Fixed(16)
	c.d.Int32()
	c.d.String(maxString)
}

func kindRegister(k *kind, skipObject func(*call)) func(context.Context, *call) error {
	return func(_ context.Context, c *call) error {
		id := c.d.Int32()
		if c.d.Bool() {
			skipObject(c)
		}
		if err := c.args(); err != nil {
			return err
		}
		if id < 0 || id >= k.eventIDs {
			return &remoteError{code: errInvalidArg, domain: fromRemote, msg: fmt.Sprintf("unsupported %s event ID %d", k.name, id)}
		}
		cl := c.c
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.kindCBs == nil {
			cl.kindCBs = map[int32]*kind{}
		}
		cl.nextKindCB++
		cl.kindCBs[cl.nextKindCB] = k
		c.e.Int32(cl.nextKindCB)
		return nil
	}
}

func kindDeregister(k *kind) func(context.Context, *call) error {
	return func(_ context.Context, c *call) error {
		id := c.d.Int32()
		if err := c.args(); err != nil {
			return err
		}
		cl := c.c
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if cl.kindCBs[id] != k {
			return &remoteError{code: errInvalidArg, domain: fromRemote, msg: fmt.Sprintf("no %s event callback %d is registered on this connection", k.name, id)}
		}
		delete(cl.kindCBs, id)
		return nil
	}
}
