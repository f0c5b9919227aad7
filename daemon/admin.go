package daemon

import (
	"context"
	"time"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/internal/streamio"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
)

// admin serves AdminService on the admin socket.
type admin struct {
	apiv1.UnimplementedAdminServiceServer
	core *core.Core
}

func rejectedToAPI(rs []core.Rejected) []*apiv1.RejectedFile {
	out := make([]*apiv1.RejectedFile, len(rs))
	for i, r := range rs {
		out[i] = &apiv1.RejectedFile{Path: r.Path, Reason: r.Reason}
	}
	return out
}

func (a *admin) ListDrivers(context.Context, *apiv1.ListDriversRequest) (*apiv1.ListDriversResponse, error) {
	l := a.core.Drivers()
	resp := &apiv1.ListDriversResponse{Rejected: rejectedToAPI(l.Rejected), Directories: l.Directories}
	for _, s := range l.Drivers {
		resp.Drivers = append(resp.Drivers, &apiv1.DriverStatus{
			Name: s.Name, Path: s.Path, Version: s.Version, ApiVersion: int32(s.APIVersion),
			Schemes: s.Schemes, State: string(s.State), Health: s.Health, HealthReason: s.HealthReason,
			Pid: int64(s.PID), Restarts: int32(s.Restarts), LastError: s.LastError, ViewReady: s.ViewReady,
		})
	}
	return resp, nil
}

func (a *admin) Rescan(context.Context, *apiv1.RescanRequest) (*apiv1.RescanResponse, error) {
	added, removed, rejected := a.core.Rescan()
	return &apiv1.RescanResponse{Added: added, Removed: removed, Rejected: rejectedToAPI(rejected)}, nil
}

// Profile streams the core's profile of virtd or of a driver in chunks.
func (a *admin) Profile(req *apiv1.ProfileRequest, stream apiv1.AdminService_ProfileServer) error {
	w := streamio.NewWriter(func(b []byte) error { return stream.Send(&apiv1.ProfileResponse{Data: b}) })
	d := time.Duration(req.GetSeconds()) * time.Second
	if err := a.core.Profile(stream.Context(), req.GetDriver(), req.GetKind(), d, w); err != nil {
		return rpcerr.ToStatus(err)
	}
	return rpcerr.ToStatus(w.Flush())
}
