package virt

import "errors"

// Error kinds. Wrap them with context, keeping the kind:
//
//	fmt.Errorf("domain %q: %w", name, virt.ErrNotFound)
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

// Kinds lists every error kind, most specific first.
var Kinds = []error{
	ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrFailedPrecondition,
	ErrUnavailable, ErrNotSupported, ErrPermissionDenied, ErrResourceExhausted, ErrInternal,
}

// KindOf returns the kind err carries, or nil when it carries none.
func KindOf(err error) error {
	for _, k := range Kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// WithKind returns an error whose text is msg and whose kind is kind. It is
// how a message that crossed a process boundary gets its kind back.
func WithKind(kind error, msg string) error {
	return &kindError{kind: kind, msg: msg}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }
