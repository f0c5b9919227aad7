package client

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/virtd/virtd/virt"
)

// Transports a URI may name after its scheme ("qemu+unix://...").
const (
	// TransportLocal is the empty transport: the local unix socket.
	TransportLocal = ""
	TransportUnix  = "unix"
	// TransportTLS is accepted by ParseURI, but Open refuses it for now
	// with ErrNotSupported.
	TransportTLS = "tls"
)

// URI is a parsed libvirt connection URI:
//
//	scheme[+transport]://[host]/path[?params]
//
// for example test:///default, qemu:///system,
// qemu+unix:///system?socket=/run/virtd/virtd-sock or qemu+tls://host/system.
type URI struct {
	// Scheme is the driver scheme: "qemu", "test", "lxc", "xen".
	Scheme string
	// Transport is TransportLocal, TransportUnix or TransportTLS.
	Transport string
	// Host is the remote host (and port), only with TransportTLS.
	Host string
	// Path is the driver's path: "/system", "/session", "/default".
	Path string
	// Socket is the ?socket= parameter: the unix socket to dial instead of
	// the default one.
	Socket string
}

// ParseURI parses a connection URI. Malformed URIs are errors that wrap
// ErrInvalidArgument and name the URI and the problem.
func ParseURI(s string) (*URI, error) {
	bad := func(format string, args ...any) error {
		return virt.Errorf(virt.ErrInvalidArgument, "invalid URI %q: %s", s, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(s) == "" {
		return nil, virt.Errorf(virt.ErrInvalidArgument, "invalid URI: empty")
	}
	if i := strings.Index(s, "://"); i >= 0 {
		switch scheme := s[:i]; {
		case scheme == "":
			return nil, bad("no scheme (expected e.g. qemu:///system)")
		case strings.HasPrefix(scheme, "+"):
			return nil, bad("no scheme before %q", scheme)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		msg := err.Error()
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
		}
		return nil, bad("%s", msg)
	}
	if u.Scheme == "" {
		return nil, bad("no scheme (expected e.g. qemu:///system)")
	}
	if u.Opaque != "" {
		return nil, bad("expected %s://[host]/path", u.Scheme)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return nil, bad("fragments are not allowed")
	}
	out := &URI{Scheme: u.Scheme, Path: u.Path}
	if i := strings.IndexByte(u.Scheme, '+'); i >= 0 {
		out.Scheme, out.Transport = u.Scheme[:i], u.Scheme[i+1:]
		if out.Scheme == "" {
			return nil, bad("no scheme before %q", "+"+out.Transport)
		}
		switch out.Transport {
		case TransportUnix, TransportTLS:
		case "":
			return nil, bad("empty transport after %q", out.Scheme+"+")
		default:
			return nil, bad("unknown transport %q (virtd knows unix and tls)", out.Transport)
		}
	}
	local := out.Transport != TransportTLS
	if u.User != nil {
		if local {
			return nil, bad("a user is not allowed with a local socket")
		}
		return nil, bad("a user is not supported")
	}
	out.Host = u.Host
	if local && out.Host != "" {
		return nil, bad("host %q not allowed with the local unix transport (use %s+tls://%s%s for a remote host)",
			out.Host, out.Scheme, out.Host, out.Path)
	}
	if !local && out.Host == "" {
		return nil, bad("the tls transport needs a host")
	}
	if out.Path == "" || out.Path == "/" {
		return nil, bad("no path (expected e.g. %s:///system)", out.Scheme)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("parameters: %v", err)
	}
	for k, v := range q {
		switch k {
		case "socket":
			if !local {
				return nil, bad("parameter socket is only allowed with a unix socket")
			}
			if len(v) != 1 || v[0] == "" {
				return nil, bad("parameter socket needs exactly one path")
			}
			out.Socket = v[0]
		default:
			return nil, bad("unsupported parameter %q", k)
		}
	}
	return out, nil
}

// Local reports whether the URI is reached through a unix socket on this
// host.
func (u *URI) Local() bool { return u.Transport != TransportTLS }

// DaemonURI returns the URI the daemon sees: transport, host and socket
// stripped ("test+unix:///default?socket=/x" gives "test:///default").
func (u *URI) DaemonURI() string {
	return (&url.URL{Scheme: u.Scheme, Path: u.Path}).String()
}

// String returns the URI in its canonical form.
func (u *URI) String() string {
	scheme := u.Scheme
	if u.Transport != "" {
		scheme += "+" + u.Transport
	}
	out := &url.URL{Scheme: scheme, Host: u.Host, Path: u.Path}
	if u.Socket != "" {
		out.RawQuery = "socket=" + strings.ReplaceAll(url.QueryEscape(u.Socket), "%2F", "/")
	}
	return out.String()
}
