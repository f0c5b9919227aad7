package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/virt"
)

// Option configures Open, OpenReadOnly and OpenAdmin.
type Option func(*options)

type options struct {
	socket      string
	dialTimeout time.Duration
}

// WithSocket makes the client dial the unix socket at path, overriding
// both the default socket and a URI's ?socket= parameter.
func WithSocket(path string) Option {
	return func(o *options) { o.socket = path }
}

// WithDialTimeout bounds how long connecting to the socket may take
// (default 5s). The context passed to Open bounds it too.
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) { o.dialTimeout = d }
}

func buildOptions(opts []Option) *options {
	o := &options{dialTimeout: 5 * time.Second}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// dial checks that something listens on the socket, so that a missing
// daemon gives a clear error at once, then builds a gRPC client for it.
func dial(ctx context.Context, path string, o *options) (*grpc.ClientConn, error) {
	dctx, cancel := context.WithTimeout(ctx, o.dialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "unix", path)
	if err != nil {
		return nil, socketError(path, err)
	}
	nc.Close()
	cc, err := grpc.NewClient("passthrough:///virtd",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Fixed windows: no bandwidth-delay probing on a local socket.
		grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(1<<20),
		grpc.WithUnaryInterceptor(rpcerr.ContextInterceptor),
		// The daemon bounds what it sends by its max_message_size.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}))
	if err != nil {
		return nil, virt.Errorf(virt.ErrUnavailable, "cannot connect to virtd at %s: %v", path, err)
	}
	return cc, nil
}

func socketError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return virt.Errorf(virt.ErrUnavailable, "cannot connect to virtd at %s: no such file (is virtd running?)", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return virt.Errorf(virt.ErrUnavailable, "cannot connect to virtd at %s: connection refused (is virtd running?)", path)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return virt.Errorf(virt.ErrPermissionDenied, "cannot connect to virtd at %s (try the read-only socket with -r, or run as root)", path)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("cannot connect to virtd at %s: %w", path, err)
	}
	return virt.Errorf(virt.ErrUnavailable, "cannot connect to virtd at %s: %v", path, unwrapOp(err))
}

// unwrapOp drops net.OpError's "dial unix PATH:" prefix, which repeats the
// path we already name.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
