package daemon

import (
	"context"
	"fmt"
	"io"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/internal/streamio"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

func (s *service) DomainXMLToNative(ctx context.Context, req *apiv1.DomainXMLToNativeRequest) (*apiv1.DomainXMLToNativeResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.DomainXMLToNativeResponse, error) {
		out, err := c.DomainXMLToNative(ctx, req.GetFormat(), req.GetXml())
		return &apiv1.DomainXMLToNativeResponse{Config: out}, err
	})
}

func (s *service) DomainXMLFromNative(ctx context.Context, req *apiv1.DomainXMLFromNativeRequest) (*apiv1.DomainXMLFromNativeResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.DomainXMLFromNativeResponse, error) {
		out, err := c.DomainXMLFromNative(ctx, req.GetFormat(), req.GetConfig())
		return &apiv1.DomainXMLFromNativeResponse{Xml: out}, err
	})
}

// OpenConsole joins the client's console stream to the driver's. A console
// can type into the guest, so read-only connections may not open one.
func (s *service) OpenConsole(stream apiv1.VirtService_OpenConsoleServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	target := first.GetOpen()
	if target == nil {
		return rpcerr.ToStatus(fmt.Errorf("console stream must start with the domain to open: %w", virt.ErrInvalidArgument))
	}
	ctx := stream.Context()
	con, err := with(s, ctx, target.GetConnection(), func(c *core.Conn) (io.ReadWriteCloser, error) {
		return c.OpenConsole(ctx, target.GetUuid(), target.GetDevName())
	})
	if err != nil {
		return err
	}
	defer con.Close()
	if err := stream.Send(&apiv1.OpenConsoleResponse{}); err != nil {
		return err
	}
	err = streamio.Serve(ctx, con,
		func() ([]byte, error) {
			m, err := stream.Recv()
			return m.GetInput(), err
		},
		func(b []byte) error { return stream.Send(&apiv1.OpenConsoleResponse{Output: b}) })
	return rpcerr.ToStatus(err)
}
