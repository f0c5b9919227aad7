package libvirtrpc

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/internal/xdr"
	"github.com/virtd/virtd/virt"
)

// proc is one procedure of the REMOTE program.
type proc struct {
	name string
	// needConn: the call needs an open connection.
	needConn bool
	// inline: the call runs before the next packet is read.
	inline bool
	errs   errClass
	fn     func(ctx context.Context, c *call) error
}

// call is one call being served: its arguments (d) and its reply (e).
type call struct {
	c *client
	// name is the procedure's, for error messages.
	name string
	h    header
	conn *core.Conn
	d    *xdr.Decoder
	e    *xdr.Encoder
	// after, when set, runs once the reply is sent.
	after func()
}

// args ends the decoding of the arguments.
func (c *call) args() error { return c.d.Done() }

// domain reads a remote_nonnull_domain and returns its UUID: libvirt
// names a domain by UUID; the name and id a client sends are hints.
func (c *call) domain() string {
	c.d.String(maxString) // name
	u := c.d.Fixed(16)
	c.d.Int32() // id
	if u == nil {
		return ""
	}
	return formatUUID(u)
}

func formatUUID(u []byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:16])
	return string(b[:])
}

// parseUUID reads a UUID in its usual form, or as 32 hex digits.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	var digits [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '-' {
			continue
		}
		if n == len(digits) {
			return u, fmt.Errorf("UUID %q is too long: %w", s, virt.ErrInvalidArgument)
		}
		digits[n] = ch
		n++
	}
	if n != len(digits) {
		return u, fmt.Errorf("UUID %q is too short: %w", s, virt.ErrInvalidArgument)
	}
	if _, err := hex.Decode(u[:], digits[:]); err != nil {
		return u, fmt.Errorf("UUID %q: %v: %w", s, err, virt.ErrInvalidArgument)
	}
	return u, nil
}

// putDomain writes a remote_nonnull_domain.
func putDomain(e *xdr.Encoder, d *virt.Domain) {
	e.String(d.Name)
	u, err := parseUUID(d.UUID)
	if err != nil {
		// A driver's UUIDs are checked when it defines them; an
		// unparsable one is a driver's bug, shown as the zero UUID.
		u = [16]byte{}
	}
	e.Fixed(u[:])
	e.Int32(d.ID)
}

// checkFlags refuses flag bits outside allowed, as libvirt refuses flags
// it does not know, naming the call's procedure.
func (c *call) checkFlags(flags, allowed uint32) error {
	if flags&^allowed != 0 {
		return &remoteError{code: errInvalidArg, domain: fromRemote,
			msg: fmt.Sprintf("unsupported flags (%#x) in %s", flags&^allowed, c.name)}
	}
	return nil
}
