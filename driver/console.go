package driver

import (
	"context"
	"fmt"
	"io"

	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/internal/streamio"
	driverv1 "github.com/virtd/virtd/proto/virtd/driver/v1"
	"github.com/virtd/virtd/virt"
)

var (
	_ NativeConverter = (*Client)(nil)
	_ Consoler        = (*Client)(nil)
)

func notSupported(what string) error {
	return fmt.Errorf("this driver does not support %s: %w", what, virt.ErrNotSupported)
}

func (s *server) DomainXMLToNative(ctx context.Context, req *driverv1.DomainXMLToNativeRequest) (*driverv1.DomainXMLToNativeResponse, error) {
	s.touch()
	conv, ok := s.impl.(NativeConverter)
	if !ok {
		return nil, rpcerr.ToStatus(notSupported("domxml-to-native"))
	}
	out, err := conv.DomainXMLToNative(ctx, req.GetFormat(), req.GetXml())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.DomainXMLToNativeResponse{Config: out}, nil
}

func (s *server) DomainXMLFromNative(ctx context.Context, req *driverv1.DomainXMLFromNativeRequest) (*driverv1.DomainXMLFromNativeResponse, error) {
	s.touch()
	conv, ok := s.impl.(NativeConverter)
	if !ok {
		return nil, rpcerr.ToStatus(notSupported("domxml-from-native"))
	}
	out, err := conv.DomainXMLFromNative(ctx, req.GetFormat(), req.GetConfig())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.DomainXMLFromNativeResponse{Xml: out}, nil
}

func (s *server) OpenConsole(stream driverv1.DriverService_OpenConsoleServer) error {
	s.touch()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	target := first.GetOpen()
	if target == nil {
		return rpcerr.ToStatus(fmt.Errorf("console stream must start with the domain to open: %w", virt.ErrInvalidArgument))
	}
	con, ok := s.impl.(Consoler)
	if !ok {
		return rpcerr.ToStatus(notSupported("consoles"))
	}
	ctx := stream.Context()
	rwc, err := con.OpenConsole(ctx, target.GetUuid(), target.GetDevName())
	if err != nil {
		return rpcerr.ToStatus(err)
	}
	defer rwc.Close()
	// Tell the caller the console is open before any output arrives.
	if err := stream.Send(&driverv1.OpenConsoleResponse{}); err != nil {
		return err
	}
	err = streamio.Serve(ctx, rwc,
		func() ([]byte, error) {
			m, err := stream.Recv()
			return m.GetInput(), err
		},
		func(b []byte) error { return stream.Send(&driverv1.OpenConsoleResponse{Output: b}) })
	if err != nil {
		return rpcerr.ToStatus(virt.Errorf(virt.ErrUnavailable, "console: %w", err))
	}
	return nil
}

// DomainXMLToNative asks the driver to convert domain XML.
func (c *Client) DomainXMLToNative(ctx context.Context, format, xml string) (string, error) {
	r, err := c.rpc.DomainXMLToNative(ctx, &driverv1.DomainXMLToNativeRequest{Format: format, Xml: xml})
	return r.GetConfig(), rpcerr.FromStatus(err)
}

// DomainXMLFromNative asks the driver to convert a native configuration.
func (c *Client) DomainXMLFromNative(ctx context.Context, format, config string) (string, error) {
	r, err := c.rpc.DomainXMLFromNative(ctx, &driverv1.DomainXMLFromNativeRequest{Format: format, Config: config})
	return r.GetXml(), rpcerr.FromStatus(err)
}

// OpenConsole attaches to a domain's console in the driver process.
func (c *Client) OpenConsole(ctx context.Context, uuid, devName string) (io.ReadWriteCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.OpenConsole(ctx)
	if err != nil {
		cancel()
		return nil, rpcerr.FromStatus(err)
	}
	open := &driverv1.OpenConsoleRequest{Msg: &driverv1.OpenConsoleRequest_Open{Open: &driverv1.ConsoleTarget{Uuid: uuid, DevName: devName}}}
	if err := stream.Send(open); err != nil {
		cancel()
		return nil, rpcerr.FromStatus(err)
	}
	// The first response says the console is open, or carries the error.
	if _, err := stream.Recv(); err != nil {
		cancel()
		return nil, rpcerr.FromStatus(err)
	}
	return streamio.New(
		func(p []byte) error {
			return stream.Send(&driverv1.OpenConsoleRequest{Msg: &driverv1.OpenConsoleRequest_Input{Input: p}})
		},
		func() ([]byte, error) {
			m, err := stream.Recv()
			return m.GetOutput(), err
		},
		cancel,
	), nil
}
