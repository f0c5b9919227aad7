package libvirtrpc

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/virtd/virtd/internal/xdr"
)

// Programs and their versions.
const (
	programRemote    = 0x20008086
	programKeepalive = 0x6b656570
	programQEMU      = 0x20008087
	programLXC       = 0x00068000
	remoteVersion    = 1
	keepaliveVersion = 1
)

// Keepalive procedures.
const (
	procPing = 1
	procPong = 2
)

// Packet types.
const (
	typeCall         = 0
	typeReply        = 1
	typeMessage      = 2
	typeStream       = 3
	typeCallWithFDs  = 4
	typeReplyWithFDs = 5
	typeStreamHole   = 6
)

// Packet status.
const (
	statusOK       = 0
	statusError    = 1
	statusContinue = 2
)

// Limits of libvirt's protocol (virnetprotocol.x, remote_protocol.x).
const (
	// maxPacket is the largest packet, its length word included.
	maxPacket = 32 << 20
	// maxString bounds every string a client sends.
	maxString = 4 << 20
	// maxDomains bounds a list of domains (REMOTE_DOMAIN_LIST_MAX).
	maxDomains = 16384
	// maxNames bounds the other lists of names and ids.
	maxNames = 16384
	// maxStreamData is the most stream data one packet carries, as
	// libvirt sends it (VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX).
	maxStreamData = 262120
	headerSize    = 24
	lenSize       = 4
)

// header is a packet's header, after its length word.
type header struct {
	prog, vers uint32
	proc       int32
	typ        int32
	serial     uint32
	status     int32
}

func (h header) String() string {
	return fmt.Sprintf("program %#x version %d procedure %d type %d serial %d", h.prog, h.vers, h.proc, h.typ, h.serial)
}

// readLength reads a packet's length word and checks it against the
// protocol's limits: what is left to read is the header and the body.
func readLength(r io.Reader, buf *[lenSize]byte) (int, error) {
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(buf[:])
	if n < lenSize+headerSize || n > maxPacket {
		return 0, fmt.Errorf("a packet of %d bytes is outside %d..%d: %w", n, lenSize+headerSize, maxPacket, xdr.ErrMalformed)
	}
	return int(n) - lenSize, nil
}

func parseHeader(p []byte) header {
	be := binary.BigEndian
	return header{
		prog: be.Uint32(p[0:]), vers: be.Uint32(p[4:]), proc: int32(be.Uint32(p[8:])),
		typ: int32(be.Uint32(p[12:])), serial: be.Uint32(p[16:]), status: int32(be.Uint32(p[20:])),
	}
}

// newPacket starts a packet with h: the length word is filled in by
// finish.
func newPacket(h header, buf []byte) *xdr.Encoder {
	e := &xdr.Encoder{B: buf[:0]}
	e.Uint32(0)
	e.Uint32(h.prog)
	e.Uint32(h.vers)
	e.Int32(h.proc)
	e.Int32(h.typ)
	e.Uint32(h.serial)
	e.Int32(h.status)
	return e
}

// finish fills in the length word.
func finish(e *xdr.Encoder) []byte {
	binary.BigEndian.PutUint32(e.B, uint32(len(e.B)))
	return e.B
}
