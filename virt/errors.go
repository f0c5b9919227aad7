package virt

import (
	"errors"
	"fmt"
	"strings"
)

// Error kinds, in the manner of containerd's errdefs. An error's kind is
// the outermost one in its chain (KindOf); its message names the kind once,
// at the end:
//
//	fmt.Errorf("domain '%s': %w", name, virt.ErrNotFound)  // "domain 'x': not found"
//	virt.Errorf(virt.ErrInternal, "writing %s: %w", path, err)
//
// The first form gives a new error a kind. The second gives a kind to an
// error made of a cause (which may carry another kind): the cause's text
// is kept without its own kind's name, so no kind is named twice, and
// errors.Is finds the outer kind only.
//
// The kind travels across process boundaries as a gRPC status code, so
// errors.Is(err, virt.ErrNotFound) holds for a client after two hops.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("operation not valid")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotSupported       = errors.New("not supported")
	ErrPermissionDenied   = errors.New("permission denied")
	// ErrResourceExhausted: a limit was reached (connections, calls in
	// flight, message size, ...); the message names the limit and its
	// value.
	ErrResourceExhausted = errors.New("resource exhausted")
	ErrInternal          = errors.New("internal error")
)

// Kinds lists every error kind.
var Kinds = []error{
	ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrFailedPrecondition,
	ErrUnavailable, ErrNotSupported, ErrPermissionDenied, ErrResourceExhausted, ErrInternal,
}

func isKind(err error) bool {
	for _, k := range Kinds {
		if err == k {
			return true
		}
	}
	return false
}

// KindOf returns the kind err carries, the outermost one in its chain, or
// nil when it carries none.
func KindOf(err error) error {
	for err != nil {
		if isKind(err) {
			return err
		}
		if k, ok := err.(*kindError); ok {
			return k.kind
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if k := KindOf(e); k != nil {
					return k
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}

// Message returns err's text without the name of its kind at the end.
func Message(err error) string {
	if k, ok := err.(*kindError); ok {
		return k.msg
	}
	s := err.Error()
	if k := KindOf(err); k != nil {
		s = strings.TrimSuffix(s, ": "+k.Error())
	}
	return s
}

// Errorf returns an error of kind whose text is the formatted message,
// then the kind's name. An error among args is written without its own
// kind's name; with %w it stays in the chain (for errors.As), unless it
// carries another kind.
func Errorf(kind error, format string, args ...any) error {
	args = append([]any(nil), args...)
	for i, a := range args {
		if err, ok := a.(error); ok && KindOf(err) != nil {
			args[i] = bare{err}
		}
	}
	cause := fmt.Errorf(format, args...)
	e := &kindError{kind: kind, msg: cause.Error()}
	// The outermost kind wins: a cause with another kind is not in the
	// chain, lest errors.Is find that kind too.
	if k := KindOf(cause); k == nil || k == kind {
		e.cause = cause
	}
	return e
}

// bare is an error written without its kind's name.
type bare struct{ err error }

func (b bare) Error() string { return Message(b.err) }
func (b bare) Unwrap() error { return b.err }

// WithKind returns an error of kind whose message is msg. It is how a
// message that crossed a process boundary gets its kind back; a msg that
// ends with the kind's name already keeps it once.
func WithKind(kind error, msg string) error {
	return &kindError{kind: kind, msg: strings.TrimSuffix(msg, ": "+kind.Error())}
}

type kindError struct {
	kind  error
	msg   string
	cause error // the formatted message, with what %w wrapped; or nil
}

func (e *kindError) Error() string { return e.msg + ": " + e.kind.Error() }

func (e *kindError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}
