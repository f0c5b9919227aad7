package virt

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestErrorVocabulary(t *testing.T) {
	notFound := fmt.Errorf("no domain with matching name 'x': %w", ErrNotFound)
	pathErr := &fs.PathError{Op: "open", Path: "/etc/virtd/qemu/x.xml", Err: fs.ErrPermission}
	for _, tt := range []struct {
		name string
		err  error
		kind error
		text string
		msg  string
	}{
		{"plain wrap", notFound, ErrNotFound,
			"no domain with matching name 'x': not found", "no domain with matching name 'x'"},
		{"kind given to a cause without one", Errorf(ErrInternal, "writing the record: %w", pathErr), ErrInternal,
			"writing the record: open /etc/virtd/qemu/x.xml: permission denied: internal error", "writing the record: open /etc/virtd/qemu/x.xml: permission denied"},
		{"the outer kind wins and the inner reads once", Errorf(ErrInvalidArgument, "domain 'x': %w", notFound), ErrInvalidArgument,
			"domain 'x': no domain with matching name 'x': invalid argument", "domain 'x': no domain with matching name 'x'"},
		{"the same kind twice is named once", Errorf(ErrInvalidArgument, "%w", fmt.Errorf("bad name: %w", ErrInvalidArgument)), ErrInvalidArgument,
			"bad name: invalid argument", "bad name"},
		{"%v flattens the cause but still reads once", Errorf(ErrUnavailable, "controller: %v", WithKind(ErrInternal, "boom: internal error")), ErrUnavailable,
			"controller: boom: unavailable", "controller: boom"},
		{"a wrap of a kind error keeps its kind", fmt.Errorf("driver %q: %w", "qemu", Errorf(ErrNotSupported, "no console")), ErrNotSupported,
			`driver "qemu": no console: not supported`, `driver "qemu": no console`},
		{"a message that crossed a process", WithKind(ErrNotFound, "no domain with matching id 3: not found"), ErrNotFound,
			"no domain with matching id 3: not found", "no domain with matching id 3"},
		{"a peer message without the suffix", WithKind(ErrUnavailable, "connection refused"), ErrUnavailable,
			"connection refused: unavailable", "connection refused"},
		{"no kind", errors.New("boom"), nil, "boom", "boom"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if k := KindOf(tt.err); k != tt.kind {
				t.Errorf("KindOf = %v, want %v", k, tt.kind)
			}
			if tt.kind != nil && !errors.Is(tt.err, tt.kind) {
				t.Errorf("errors.Is(err, %v) is false", tt.kind)
			}
			if got := tt.err.Error(); got != tt.text {
				t.Errorf("Error() = %q, want %q", got, tt.text)
			}
			if got := Message(tt.err); got != tt.msg {
				t.Errorf("Message = %q, want %q", got, tt.msg)
			}
		})
	}
}

func TestErrorfKeepsTheCause(t *testing.T) {
	pathErr := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}
	err := fmt.Errorf("loading: %w", Errorf(ErrInternal, "reading: %w", pathErr))
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/x" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the cause is lost: %v", err)
	}
	// The outer kind wins: errors.Is does not find the inner one.
	inner := Errorf(ErrFailedPrecondition, "starting: %w", fmt.Errorf("gone: %w", ErrNotFound))
	if KindOf(inner) != ErrFailedPrecondition || errors.Is(inner, ErrNotFound) || !errors.Is(inner, ErrFailedPrecondition) {
		t.Errorf("KindOf = %v, Is(not found) = %v", KindOf(inner), errors.Is(inner, ErrNotFound))
	}
}
