package driver

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	driverv1 "github.com/virtd/virtd/proto/virtd/driver/v1"
)

// Handshake is virtd's go-plugin handshake. The cookie keeps a driver from
// being run by hand by mistake; it is not a secret.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  APIVersion,
	MagicCookieKey:   "VIRTD_DRIVER_COOKIE",
	MagicCookieValue: "2f6b3c1e0d9a4b7c8e5f6a1b2c3d4e5f-virtd-driver",
}

// PluginName is the name under which a driver is dispensed.
const PluginName = "driver"

// Plugin binds a Driver to go-plugin's gRPC transport: GRPCServer runs in
// the driver process, GRPCClient in the host.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the driver served; only the driver process sets it.
	Impl Driver

	srv *server
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the driver API on s.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := p.srv
	if srv == nil {
		srv = newServer(p.Impl, newInstanceID())
	}
	driverv1.RegisterDriverServiceServer(s, srv)
	return nil
}

// GRPCClient returns a *Client on the connection to the driver process.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return NewClient(c), nil
}

// PluginSets is what the host gives go-plugin as VersionedPlugins: the API
// versions it speaks.
func PluginSets() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{APIVersion: {PluginName: &Plugin{}}}
}

func newInstanceID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
