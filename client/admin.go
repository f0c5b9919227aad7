package client

import (
	"context"
	"fmt"
	"io"
	"math"

	"google.golang.org/grpc"

	"github.com/virtd/virtd/internal/rpcerr"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
)

// Admin is a connection to the daemon's admin socket, which reports and
// rescans the installed drivers, and profiles virtd and its drivers.
type Admin struct {
	cc     *grpc.ClientConn
	api    apiv1.AdminServiceClient
	socket string
}

// DriverStatus describes one installed driver.
type DriverStatus struct {
	// Name is the <name> of virtd-driver-<name>.
	Name       string
	Path       string
	Version    string
	APIVersion int32
	// Schemes are the URI schemes the driver serves.
	Schemes []string
	// State is "stopped", "starting", "running" or "broken".
	State string
	// Health is "available", "unavailable" or empty when not known (the
	// driver has not run yet); HealthReason says why it is unavailable.
	Health       string
	HealthReason string
	// PID is the driver process's, zero when it is not running.
	PID       int64
	Restarts  int32
	LastError string
	// ViewReady: plain reads (list, lookups, state, XML) of this driver's
	// domains are answered by virtd itself, from what the driver told it.
	ViewReady bool
}

// RejectedFile is a file in a driver directory that the daemon refused,
// with the reason ("not owned by root", "API version 2, daemon speaks 1").
type RejectedFile struct {
	Path   string
	Reason string
}

// DriverList is what Admin.Drivers returns.
type DriverList struct {
	Drivers  []DriverStatus
	Rejected []RejectedFile
	// Directories are the driver directories searched, in order.
	Directories []string
}

// RescanResult is what Admin.Rescan returns: driver names that appeared or
// went, and the files refused.
type RescanResult struct {
	Added    []string
	Removed  []string
	Rejected []RejectedFile
}

// OpenAdmin connects to the admin socket: DefaultAdminSocket() unless
// WithSocket names another.
func OpenAdmin(ctx context.Context, opts ...Option) (*Admin, error) {
	o := buildOptions(opts)
	socket := o.socket
	if socket == "" {
		socket = DefaultAdminSocket()
	}
	cc, err := dial(ctx, socket, o)
	if err != nil {
		return nil, err
	}
	return &Admin{cc: cc, api: apiv1.NewAdminServiceClient(cc), socket: socket}, nil
}

// Socket returns the admin socket's path.
func (a *Admin) Socket() string { return a.socket }

// Close closes the socket.
func (a *Admin) Close() error { return a.cc.Close() }

// Drivers lists the installed drivers, the files refused and the
// directories searched.
func (a *Admin) Drivers(ctx context.Context) (*DriverList, error) {
	r, err := a.api.ListDrivers(ctx, &apiv1.ListDriversRequest{})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	out := &DriverList{Rejected: fromProtoRejected(r.GetRejected()), Directories: r.GetDirectories()}
	for _, d := range r.GetDrivers() {
		out.Drivers = append(out.Drivers, DriverStatus{
			Name: d.GetName(), Path: d.GetPath(), Version: d.GetVersion(), APIVersion: d.GetApiVersion(),
			Schemes: d.GetSchemes(), State: d.GetState(), Health: d.GetHealth(), HealthReason: d.GetHealthReason(),
			PID: d.GetPid(), Restarts: d.GetRestarts(), LastError: d.GetLastError(), ViewReady: d.GetViewReady(),
		})
	}
	return out, nil
}

// Rescan makes the daemon read the driver directories again, so that a
// driver package installed or removed shows up without a restart.
func (a *Admin) Rescan(ctx context.Context) (*RescanResult, error) {
	r, err := a.api.Rescan(ctx, &apiv1.RescanRequest{})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return &RescanResult{Added: r.GetAdded(), Removed: r.GetRemoved(), Rejected: fromProtoRejected(r.GetRejected())}, nil
}

func fromProtoRejected(in []*apiv1.RejectedFile) []RejectedFile {
	var out []RejectedFile
	for _, f := range in {
		out = append(out, RejectedFile{Path: f.GetPath(), Reason: f.GetReason()})
	}
	return out
}

// The kinds of profile Admin.Profile takes.
const (
	// ProfileCPU samples where the process spends CPU time, for
	// ProfileOptions.Seconds.
	ProfileCPU = "cpu"
	// ProfileHeap is the memory in use now, and allocated so far, by
	// where it was allocated.
	ProfileHeap = "heap"
	// ProfileAllocs is ProfileHeap shown by default as allocations.
	ProfileAllocs = "allocs"
	// ProfileGoroutine is the stack of every goroutine now.
	ProfileGoroutine = "goroutine"
)

// ProfileOptions says which profile Admin.Profile takes, and of which
// process.
type ProfileOptions struct {
	// Driver names the driver (the <name> of virtd-driver-<name>) whose
	// process to profile; empty for virtd itself.
	Driver string
	// Kind is one of ProfileCPU, ProfileHeap, ProfileAllocs and
	// ProfileGoroutine.
	Kind string
	// Seconds is how long a CPU profile samples, 1 to 300; zero for the
	// other kinds, which are snapshots.
	Seconds int
}

// Profile takes a profile of virtd or of one of its drivers and writes it
// to w, in pprof's format (`go tool pprof FILE` reads it). A CPU profile
// arrives once its seconds have passed. Each process takes one CPU profile
// at a time: another fails with ErrFailedPrecondition. A bad kind or
// duration fails with ErrInvalidArgument, a driver not installed with
// ErrNotFound.
func (a *Admin) Profile(ctx context.Context, opts ProfileOptions, w io.Writer) error {
	if opts.Seconds < math.MinInt32 || opts.Seconds > math.MaxInt32 {
		return fmt.Errorf("a profile of %d seconds is out of range: %w", opts.Seconds, ErrInvalidArgument)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.api.Profile(ctx, &apiv1.ProfileRequest{Kind: opts.Kind, Seconds: int32(opts.Seconds), Driver: opts.Driver})
	if err != nil {
		return rpcerr.FromStatus(err)
	}
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return rpcerr.FromStatus(err)
		}
		if _, err := w.Write(r.GetData()); err != nil {
			return err
		}
	}
}
