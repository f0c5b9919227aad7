package client

import "github.com/virtd/virtd/virt"

// Error kinds, re-exported from package virt so that callers need only this
// package: errors.Is(err, client.ErrNotFound) holds for an error that began
// as virt.ErrNotFound in a driver.
var (
	// ErrNotFound: no such domain, driver or connection.
	ErrNotFound = virt.ErrNotFound
	// ErrAlreadyExists: a domain with that name or UUID exists.
	ErrAlreadyExists = virt.ErrAlreadyExists
	// ErrInvalidArgument: a malformed URI, XML or argument.
	ErrInvalidArgument = virt.ErrInvalidArgument
	// ErrFailedPrecondition: the operation is not valid in the domain's
	// current state (starting a running domain, for example).
	ErrFailedPrecondition = virt.ErrFailedPrecondition
	// ErrUnavailable: the daemon or the driver cannot be reached.
	ErrUnavailable = virt.ErrUnavailable
	// ErrNotSupported: the driver or this library cannot do that.
	ErrNotSupported = virt.ErrNotSupported
	// ErrPermissionDenied: refused, for example a change requested on a
	// read-only connection.
	ErrPermissionDenied = virt.ErrPermissionDenied
	// ErrResourceExhausted: the daemon refused the call at one of its
	// limits (connections, event streams, message size, bytes in flight);
	// the message names the limit and its value.
	ErrResourceExhausted = virt.ErrResourceExhausted
	// ErrInternal: anything else.
	ErrInternal = virt.ErrInternal
)
