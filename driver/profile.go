package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/virtd/virtd/internal/profiling"
	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/internal/streamio"
	driverv1 "github.com/virtd/virtd/proto/virtd/driver/v1"
	"github.com/virtd/virtd/virt"
)

// Profiler takes a profile of a driver process, in pprof's format: kind
// "cpu" samples for d, "heap", "allocs" and "goroutine" are snapshots (d
// is zero). A driver author implements nothing for it: Serve answers it
// for every driver, and the host reaches it through Client.
type Profiler interface {
	Profile(ctx context.Context, kind string, d time.Duration, w io.Writer) error
}

var _ Profiler = (*Client)(nil)

// Profile profiles this process and streams the profile in chunks. One CPU
// profile runs at a time; another is refused as a failed precondition.
func (s *server) Profile(req *driverv1.ProfileRequest, stream driverv1.DriverService_ProfileServer) error {
	s.touch()
	defer s.touch()
	w := streamio.NewWriter(func(b []byte) error { return stream.Send(&driverv1.ProfileResponse{Data: b}) })
	d := time.Duration(req.GetDurationMs()) * time.Millisecond
	if err := profiling.Write(stream.Context(), req.GetKind(), d, w); err != nil {
		return rpcerr.ToStatus(err)
	}
	return rpcerr.ToStatus(w.Flush())
}

// Profile asks the driver process for a profile of itself and writes it to
// w as it arrives.
func (c *Client) Profile(ctx context.Context, kind string, d time.Duration, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Profile(ctx, &driverv1.ProfileRequest{Kind: kind, DurationMs: d.Milliseconds()})
	if err != nil {
		return profileError(err)
	}
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return profileError(err)
		}
		if _, err := w.Write(r.GetData()); err != nil {
			return err
		}
	}
}

// profileError is a failed profile's error, with its kind; a driver built
// before profiling existed is named as such.
func profileError(err error) error {
	err = rpcerr.FromStatus(err)
	if errors.Is(err, virt.ErrNotSupported) && !rpcerr.FromPeer(err) {
		return fmt.Errorf("the driver was built without profiling (its driver API predates the Profile call): %w", virt.ErrNotSupported)
	}
	return err
}
