// Package rpcerr converts between virt's error kinds and gRPC status codes.
// It is used only at process boundaries (the driver shims, the daemon and
// the client), so that a kind survives any number of hops.
package rpcerr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/virtd/virtd/virt"
)

var kindCodes = []struct {
	kind error
	code codes.Code
}{
	{virt.ErrNotFound, codes.NotFound},
	{virt.ErrAlreadyExists, codes.AlreadyExists},
	{virt.ErrInvalidArgument, codes.InvalidArgument},
	{virt.ErrFailedPrecondition, codes.FailedPrecondition},
	{virt.ErrUnavailable, codes.Unavailable},
	{virt.ErrNotSupported, codes.Unimplemented},
	{virt.ErrPermissionDenied, codes.PermissionDenied},
	{virt.ErrResourceExhausted, codes.ResourceExhausted},
	{virt.ErrInternal, codes.Internal},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// ToStatus turns err into a gRPC status error with the code of its kind and
// its whole message, marked as sent by virtd (see FromPeer). A status error
// passes through unchanged.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	kind := virt.KindOf(err)
	if kind == nil {
		switch {
		case errors.Is(err, context.Canceled):
			kind = context.Canceled
		case errors.Is(err, context.DeadlineExceeded):
			kind = context.DeadlineExceeded
		}
	}
	code := codes.Unknown
	for _, kc := range kindCodes {
		if kind == kc.kind {
			code = kc.code
			break
		}
	}
	st, derr := status.New(code, err.Error()).WithDetails(&errdetails.ErrorInfo{Domain: peerDomain, Reason: code.String()})
	if derr != nil {
		return status.Error(code, err.Error())
	}
	return st.Err()
}

// peerDomain marks the statuses a virtd process sends, in their
// ErrorInfo detail.
const peerDomain = "virtd"

// peerError is an error a virtd process sent: the daemon or a driver
// answered, as opposed to gRPC failing to reach it.
type peerError struct{ error }

func (e peerError) Unwrap() error { return e.error }

// FromPeer reports whether err is an answer a virtd process sent (through
// ToStatus, then FromStatus), rather than gRPC's own failure, such as a
// connection that broke because the process at the other end died.
func FromPeer(err error) bool {
	var p peerError
	return errors.As(err, &p)
}

func sentByPeer(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == peerDomain {
			return true
		}
	}
	return false
}

// FromStatus turns a gRPC status error back into an error of the matching
// kind, carrying the remote message. Errors that are not status errors are
// returned as they are.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch {
	case st.Code() == codes.ResourceExhausted:
		msg = explainSizeLimit(msg)
	case st.Code() == codes.Internal && strings.Contains(msg, "string field contains invalid UTF-8"):
		// gRPC's (un)marshalling of a request with such text, on either
		// side: the caller's input, not a fault of virtd.
		return virt.WithKind(virt.ErrInvalidArgument, "the request holds text that is not valid UTF-8 (domain XML, names and URIs must be UTF-8)")
	}
	kind := virt.ErrInternal
	for _, kc := range kindCodes {
		if st.Code() == kc.code {
			kind = kc.kind
			break
		}
	}
	if sentByPeer(st) {
		return peerError{virt.WithKind(kind, msg)}
	}
	return virt.WithKind(kind, msg)
}

// grpcSizeLimit matches gRPC's own words for a message over the size limit,
// received or about to be sent.
var grpcSizeLimit = regexp.MustCompile(`^grpc: (received|trying to send) message larger than max \((\d+) vs\. (\d+)\)$`)

// explainSizeLimit says in virtd's words what gRPC refused for its size.
func explainSizeLimit(msg string) string {
	m := grpcSizeLimit.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	return fmt.Sprintf("a message of %s bytes is larger than the limit of %s bytes (max_message_size)", m[2], m[3])
}

// Wrap is FromStatus with context: "prefix: message", kind kept.
func Wrap(err error, format string, args ...any) error {
	err = FromStatus(err)
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// ContextInterceptor is a unary client interceptor: a call that fails
// because its context ended reports the context's own error (deadline
// exceeded or cancelled), not whichever stream reset the transport saw
// first. (When the caller's deadline passes, the server side of a
// propagated deadline may reset the stream with CANCEL just before the
// client's own timer fires.)
func ContextInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil && ctx.Err() != nil {
		if c := status.Code(err); c == codes.Canceled || c == codes.DeadlineExceeded {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return err
}

// Subscribed waits for the header a server sends once it has registered a
// watch (virtd's event streams). A stream the server ended without one, to
// refuse it, gives the server's error, with its kind.
func Subscribed(stream grpc.ClientStream) error {
	md, err := stream.Header()
	if err == nil && md == nil {
		// Ended without a header: the status is what RecvMsg returns.
		err = stream.RecvMsg(new(emptypb.Empty))
		if err == nil || err == io.EOF {
			err = status.Error(codes.Unavailable, "the stream ended before it was registered")
		}
	}
	return FromStatus(err)
}
