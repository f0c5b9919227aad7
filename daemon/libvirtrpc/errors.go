package libvirtrpc

import (
	"errors"
	"fmt"

	"github.com/virtd/virtd/internal/xdr"
	"github.com/virtd/virtd/virt"
)

// libvirt's error numbers (virErrorNumber) that virtd answers with.
const (
	errInternal         = 1
	errNoSupport        = 3
	errNoConnect        = 5
	errInvalidConn      = 6
	errInvalidArg       = 8
	errOperationFailed  = 9
	errXML              = 27
	errDomExist         = 28
	errOperationDenied  = 29
	errRPC              = 39
	errNoDomain         = 42
	errNoNetwork        = 43
	errNoStoragePool    = 49
	errNoNodeDevice     = 53
	errOperationInvalid = 55
	errNoInterface      = 57
	errNoNWFilter       = 62
	errNoSecret         = 66
	errNoDomainSnapshot = 72
)

// libvirt's error domains (virErrorDomain).
const (
	fromNone     = 0
	fromXML      = 5
	fromDom      = 6
	fromRPC      = 7
	fromQEMU     = 10
	fromTest     = 12
	fromRemote   = 13
	fromLXC      = 17
	fromLibxl    = 41
	fromSnapshot = 35
)

// errLevelError is VIR_ERR_ERROR.
const errLevelError = 2

// remoteError is libvirt's remote_error, what an error reply carries.
type remoteError struct {
	code, domain int32
	msg          string
}

func (e *remoteError) Error() string { return e.msg }

func rpcErr(code int32, format string, args ...any) *remoteError {
	return &remoteError{code: code, domain: fromRPC, msg: fmt.Sprintf(format, args...)}
}

// errClass says how a procedure's errors read to a libvirt client.
type errClass int

const (
	// errDomainProc: not found is NO_DOMAIN.
	errDomainProc errClass = iota
	// errXMLProc: the call takes XML; an invalid argument is XML_ERROR.
	errXMLProc
	// errOpenProc: not found (no driver for the URI) is NO_CONNECT.
	errOpenProc
)

// toRemote gives err the error number a libvirt client expects for its
// kind, and keeps virtd's message.
func toRemote(err error, class errClass) *remoteError {
	var re *remoteError
	if errors.As(err, &re) {
		return re
	}
	if errors.Is(err, xdr.ErrMalformed) {
		return rpcErr(errRPC, "cannot decode the call's arguments: %v", err)
	}
	r := &remoteError{code: errInternal, domain: fromNone, msg: err.Error()}
	switch virt.KindOf(err) {
	case virt.ErrNotFound:
		r.code = errNoDomain
		if class == errOpenProc {
			r.code = errNoConnect
		}
	case virt.ErrAlreadyExists:
		r.code = errDomExist
	case virt.ErrInvalidArgument:
		r.code = errInvalidArg
		if class == errXMLProc {
			r.code, r.domain = errXML, fromXML
		}
	case virt.ErrFailedPrecondition:
		r.code = errOperationInvalid
	case virt.ErrNotSupported:
		r.code = errNoSupport
	case virt.ErrPermissionDenied:
		r.code = errOperationDenied
	case virt.ErrUnavailable, virt.ErrResourceExhausted:
		r.code = errOperationFailed
	}
	return r
}

// fromDriver is the error domain of a driver's errors.
func fromDriver(name string) int32 {
	switch name {
	case "qemu":
		return fromQEMU
	case "test":
		return fromTest
	case "lxc":
		return fromLXC
	case "xen":
		return fromLibxl
	}
	return fromDom
}

// encodeError writes libvirt's remote_error.
func encodeError(e *xdr.Encoder, r *remoteError) {
	e.Int32(r.code)
	e.Int32(r.domain)
	e.OptString(r.msg, true)
	e.Int32(errLevelError)
	e.Bool(false) // dom
	e.Bool(false) // str1
	e.Bool(false) // str2
	e.Bool(false) // str3
	e.Int32(0)    // int1
	e.Int32(0)    // int2
	e.Bool(false) // net
}

func unknownProgram(prog uint32) *remoteError {
	switch prog {
	case programQEMU:
		return &remoteError{code: errNoSupport, domain: fromRemote, msg: "the QEMU program (qemu-monitor-command and the like) is not supported by virtd"}
	case programLXC:
		return &remoteError{code: errNoSupport, domain: fromRemote, msg: "the LXC program (lxc-enter-namespace and the like) is not supported by virtd"}
	}
	return rpcErr(errRPC, "unknown program %#x", prog)
}

// unknownProc answers a procedure virtd does not serve: NO_SUPPORT with
// its number, and the driver a host would need when it belongs to an
// object kind no driver serves yet.
func unknownProc(proc int32) *remoteError {
	if k := kindOf(proc); k != nil {
		return &remoteError{code: errNoSupport, domain: fromRemote,
			msg: fmt.Sprintf("procedure %d needs a %s driver, and virtd has none installed: this operation is not supported", proc, k.name)}
	}
	return &remoteError{code: errNoSupport, domain: fromRemote, msg: fmt.Sprintf("procedure %d is not supported by virtd", proc)}
}
