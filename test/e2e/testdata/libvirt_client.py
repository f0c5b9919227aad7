"""python3-libvirt against virtd's libvirt socket.

Usage: libvirt_client.py URI DOMAIN-XML

Walks one domain through its life with lifecycle callbacks on libvirt's
default event loop, then makes the calls that management tools
(virt-manager, libvirt-dbus, monitoring exporters) make on connect and on
refresh. Prints one line per step; exits non-zero on the first failure.
"""
import sys
import threading
import time

import libvirt

uri, xml = sys.argv[1], open(sys.argv[2]).read()

libvirt.virEventRegisterDefaultImpl()


def loop():
    while True:
        libvirt.virEventRunDefaultImpl()


threading.Thread(target=loop, daemon=True).start()

events = []
cond = threading.Condition()


def lifecycle(conn, dom, event, detail, opaque):
    with cond:
        events.append((dom.name(), event, detail))
        cond.notify_all()


def wait_event(name, event, detail, timeout=30):
    deadline = time.time() + timeout
    with cond:
        while (name, event, detail) not in events:
            left = deadline - time.time()
            if left <= 0:
                sys.exit("no event %r for %s; got %r" % ((event, detail), name, events))
            cond.wait(left)
    print("event", name, event, detail)


def expect_error(what, code, fn, *args):
    try:
        fn(*args)
    except libvirt.libvirtError as e:
        if e.get_error_code() != code:
            sys.exit("%s: error code %d (%s), want %d" % (what, e.get_error_code(), e, code))
        print("error as expected:", what, "->", e.get_error_code())
        return
    sys.exit("%s: no error, want code %d" % (what, code))


conn = libvirt.open(uri)
print("lib version", conn.getLibVersion(), "type", conn.getType(), "uri", conn.getURI())
assert conn.getLibVersion() == 9000000
assert conn.getHostname()
assert conn.isAlive() == 1
conn.registerCloseCallback(lambda c, reason, opaque: None, None)

cb = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None)
dom = conn.defineXML(xml)
name = dom.name()
wait_event(name, libvirt.VIR_DOMAIN_EVENT_DEFINED, libvirt.VIR_DOMAIN_EVENT_DEFINED_ADDED)
dom.create()
wait_event(name, libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED)
state, reason = dom.state()
assert state == libvirt.VIR_DOMAIN_RUNNING, (state, reason)
info = dom.info()
assert info[0] == libvirt.VIR_DOMAIN_RUNNING, info
assert dom.isActive() == 1 and dom.isPersistent() == 1
assert "<name>%s</name>" % name in dom.XMLDesc(0)
assert "<name>%s</name>" % name in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
assert dom.OSType()
assert dom.maxMemory() > 0
dom.suspend()
wait_event(name, libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
dom.resume()
wait_event(name, libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED)

# What management tools ask on connect and on every refresh.
for d in conn.listAllDomains(0):
    d.name(), d.UUIDString(), d.ID(), d.info(), d.state(), d.isActive(), d.isPersistent()
    d.autostart(), d.hasManagedSaveImage(0), d.isUpdated()
    assert d.listAllSnapshots(0) == []
    assert d.snapshotNum(0) == 0
    assert d.snapshotListNames(0) == []
    assert d.hasCurrentSnapshot(0) == 0
    d.schedulerType()
print("domains refreshed")
assert conn.listAllNetworks(0) == []
assert conn.listAllStoragePools(0) == []
assert conn.listAllInterfaces(0) == []
assert conn.listAllDevices(0) == []
assert conn.listAllSecrets(0) == []
assert conn.listAllNWFilters(0) == []
assert conn.numOfNetworks() == 0 and conn.numOfDefinedNetworks() == 0
assert conn.numOfStoragePools() == 0 and conn.numOfSecrets() == 0
assert conn.listNetworks() == [] and conn.listStoragePools() == []
print("other kinds empty")
expect_error("network lookup", libvirt.VIR_ERR_NO_NETWORK, conn.networkLookupByName, "default")
expect_error("pool lookup", libvirt.VIR_ERR_NO_STORAGE_POOL, conn.storagePoolLookupByName, "default")
expect_error("network create", libvirt.VIR_ERR_NO_SUPPORT, conn.networkCreateXML, "<network><name>n</name></network>")
expect_error("snapshot lookup", libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT, dom.snapshotLookupByName, "s1", 0)
cbs = [
    conn.networkEventRegisterAny(None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, lambda *a: None, None),
    conn.storagePoolEventRegisterAny(None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, lambda *a: None, None),
    conn.storagePoolEventRegisterAny(None, libvirt.VIR_STORAGE_POOL_EVENT_ID_REFRESH, lambda *a: None, None),
    conn.nodeDeviceEventRegisterAny(None, libvirt.VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE, lambda *a: None, None),
    conn.nodeDeviceEventRegisterAny(None, libvirt.VIR_NODE_DEVICE_EVENT_ID_UPDATE, lambda *a: None, None),
    conn.secretEventRegisterAny(None, libvirt.VIR_SECRET_EVENT_ID_LIFECYCLE, lambda *a: None, None),
    conn.secretEventRegisterAny(None, libvirt.VIR_SECRET_EVENT_ID_VALUE_CHANGED, lambda *a: None, None),
]
print("object event registrations", cbs)
# Every domain event ID libvirt-dbus registers (lifecycle is above).
ids = []
for i in range(1, libvirt.VIR_DOMAIN_EVENT_ID_MEMORY_DEVICE_SIZE_CHANGE + 1):
    ids.append(conn.domainEventRegisterAny(None, i, lambda *a: None, None))
for i in ids:
    conn.domainEventDeregisterAny(i)
print("every domain event ID registered")
mem = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
assert mem["total"] > 0, mem
cpu = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS)
assert "user" in cpu, cpu
print("node stats", mem["total"], sorted(cpu))
for d, stats in conn.getAllDomainStats():
    assert "state.state" in stats, stats
print("all domain stats", len(conn.getAllDomainStats()))
caps = conn.getDomainCapabilities()
assert "<domainCapabilities" in caps, caps
print("domain capabilities")

dom.destroy()
wait_event(name, libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)
dom.undefine()
wait_event(name, libvirt.VIR_DOMAIN_EVENT_UNDEFINED, libvirt.VIR_DOMAIN_EVENT_UNDEFINED_REMOVED)

# A transient domain: it runs, and is gone once it stops.
t = conn.createXML(xml.replace("<name>%s</name>" % name, "<name>%s-t</name>" % name), 0)
wait_event(name + "-t", libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED)
assert t.isPersistent() == 0
t.destroy()
wait_event(name + "-t", libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)
expect_error("transient gone", libvirt.VIR_ERR_NO_DOMAIN, conn.lookupByName, name + "-t")

conn.domainEventDeregisterAny(cb)
conn.close()
print("OK")
