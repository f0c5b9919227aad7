// Package libxl is the Xen driver's binding to libxenlight, Xen's toolstack
// library: a context (Open), the domain calls the driver needs, libxl's
// event loop, and the conversion of the driver's domain model (package
// domconfig) to libxl_domain_config, which can be checked with libxl's own
// JSON generator without a hypervisor (ConfigJSON).
//
// It is the only cgo in virtd and the only package that links Xen's
// libraries; only the virtd-driver-xen executable imports it. Building it
// needs Debian's libxen-dev, libyajl-dev and pkg-config.
package libxl

/*
#cgo pkg-config: xenlight xentoollog yajl
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <xentoollog.h>

// xv_open allocates a libxl context whose log goes into a memory buffer,
// so that the reason for a failure can be reported in libxl's own words.
// On failure *log holds what libxl and the Xen libraries said (free it).
static int xv_open(libxl_ctx **ctx, xentoollog_logger **lg, char **log) {
	size_t size = 0;
	FILE *mem = open_memstream(log, &size);
	if (!mem)
		return -1;
	xentoollog_logger_stdiostream *s = xtl_createlogger_stdiostream(mem, XTL_WARN, 0);
	if (!s) {
		fclose(mem);
		return -1;
	}
	int rc = libxl_ctx_alloc(ctx, LIBXL_VERSION, 0, (xentoollog_logger *)s);
	if (rc == 0) {
		// Freed while its logger lives: libxl_ctx_free logs through it.
		libxl_ctx_free(*ctx);
		*ctx = NULL;
	}
	xtl_logger_destroy((xentoollog_logger *)s);
	fclose(mem);
	if (rc == 0) {
		// Keep logging, to stderr, which the driver's host re-logs.
		s = xtl_createlogger_stdiostream(stderr, XTL_WARN, 0);
		if (!s)
			return -1;
		*lg = (xentoollog_logger *)s;
		rc = libxl_ctx_alloc(ctx, LIBXL_VERSION, 0, *lg);
		if (rc != 0) {
			xtl_logger_destroy(*lg);
			*lg = NULL;
		}
	}
	return rc;
}

// Go owns SIGCHLD; it tells libxl when one arrives.
static libxl_childproc_hooks xv_hooks = { .chldowner = libxl_sigchld_owner_mainloop };

static void xv_setmode(libxl_ctx *ctx) {
	libxl_childproc_setmode(ctx, &xv_hooks, NULL);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// Ctx is an open libxl context. Its methods are safe for concurrent use
// (libxl locks the context itself).
type Ctx struct {
	ctx *C.libxl_ctx
	lg  *C.xentoollog_logger

	mu       sync.Mutex
	closed   bool
	sigchld  chan os.Signal
	stopOnce sync.Once
	stop     chan struct{}
}

// ErrNoHypervisor is what Open returns, wrapped with libxl's words, when
// the host runs no Xen hypervisor (or this process may not use it).
var ErrNoHypervisor = errors.New("no Xen hypervisor on this host")

// Open allocates a libxl context. It fails on a host without Xen: libxl
// cannot open the hypervisor's privileged command interface
// (/dev/xen/privcmd or /proc/xen/privcmd).
func Open() (*Ctx, error) {
	var ctx *C.libxl_ctx
	var lg *C.xentoollog_logger
	var log *C.char
	rc := C.xv_open(&ctx, &lg, &log)
	said := ""
	if log != nil {
		said = strings.TrimSpace(C.GoString(log))
		C.free(unsafe.Pointer(log))
	}
	if rc != 0 {
		return nil, openError(int(rc), said)
	}
	c := &Ctx{ctx: ctx, lg: lg, sigchld: make(chan os.Signal, 1), stop: make(chan struct{})}
	C.xv_setmode(ctx)
	signal.Notify(c.sigchld, syscall.SIGCHLD)
	go c.forwardSIGCHLD()
	return c, nil
}

// openError explains a failed libxl_ctx_alloc: libxl's own lines, led by
// what they mean for a person.
func openError(rc int, said string) error {
	reason := fmt.Sprintf("libxl_ctx_alloc failed with error %d", rc)
	if said != "" {
		lines := strings.Split(said, "\n")
		for i, l := range lines {
			lines[i] = strings.TrimSpace(l)
		}
		reason = strings.Join(lines, "; ")
	}
	_, errPrivcmd := os.Stat("/dev/xen/privcmd")
	_, errProc := os.Stat("/proc/xen/privcmd")
	if errPrivcmd != nil && errProc != nil {
		return fmt.Errorf("%w: cannot open the privileged command interface (/dev/xen/privcmd, /proc/xen/privcmd do not exist): %s", ErrNoHypervisor, reason)
	}
	return fmt.Errorf("%w: cannot use the privileged command interface: %s", ErrNoHypervisor, reason)
}

func (c *Ctx) forwardSIGCHLD() {
	for {
		select {
		case <-c.sigchld:
			c.mu.Lock()
			if !c.closed {
				C.libxl_childproc_sigchld_occurred(c.ctx)
			}
			c.mu.Unlock()
		case <-c.stop:
			return
		}
	}
}

// Close frees the context. The caller must have stopped using it.
func (c *Ctx) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.stopOnce.Do(func() { close(c.stop) })
	signal.Stop(c.sigchld)
	C.libxl_ctx_free(c.ctx)
	if c.lg != nil {
		C.xtl_logger_destroy(c.lg)
	}
}

// Error is a failed libxl call.
type Error struct {
	Op   string
	Code int
}

func (e *Error) Error() string {
	return fmt.Sprintf("libxl %s failed: %s (%d)", e.Op, errorName(e.Code), e.Code)
}

// errorName names libxl's error codes (libxl.h's ERROR_*).
func errorName(code int) string {
	names := map[int]string{
		-1: "non-specific error", -2: "version mismatch", -3: "failure", -4: "not implemented",
		-5: "out of memory", -6: "invalid argument", -7: "guest timed out",
		-8: "no paravirtualised drivers in the guest", -9: "aborted",
		-10: "not ready", -11: "bad configuration", -12: "locking failed",
		-15: "domain does not exist", -21: "domain not found",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return "error"
}

// check turns a libxl return code into an error.
func check(op string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	return &Error{Op: op, Code: int(rc)}
}

// Version returns the hypervisor's version in libvirt's encoding
// (major*1000000 + minor*1000).
func (c *Ctx) Version() uint64 {
	v := C.libxl_get_version_info(c.ctx)
	if v == nil {
		return 0
	}
	return uint64(v.xen_version_major)*1000000 + uint64(v.xen_version_minor)*1000
}

// PhysInfo is what the driver reports as node information.
type PhysInfo struct {
	CPUs, MHz, Nodes, CoresPerSocket, ThreadsPerCore uint32
	MemoryKiB                                        uint64
}

// PhysInfo reads the host's CPUs and memory from Xen.
func (c *Ctx) PhysInfo() (*PhysInfo, error) {
	var p C.libxl_physinfo
	C.libxl_physinfo_init(&p)
	defer C.libxl_physinfo_dispose(&p)
	if err := check("get_physinfo", C.libxl_get_physinfo(c.ctx, &p)); err != nil {
		return nil, err
	}
	return &PhysInfo{
		CPUs:           uint32(p.nr_cpus),
		MHz:            uint32(p.cpu_khz / 1000),
		Nodes:          uint32(p.nr_nodes),
		CoresPerSocket: uint32(p.cores_per_socket),
		ThreadsPerCore: uint32(p.threads_per_core),
		MemoryKiB:      uint64(p.total_pages) * 4,
	}, nil
}
