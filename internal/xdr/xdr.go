// Package xdr reads and writes the XDR encoding (RFC 4506) that libvirt's
// RPC protocol uses, with every length checked against a limit before
// anything is allocated for it.
//
// A Decoder keeps the first error it meets and returns zero values after
// it, so a message is decoded as a plain sequence of calls with one check
// at the end:
//
//	d := xdr.NewDecoder(body)
//	name := d.String(maxName)
//	flags := d.Uint32()
//	if err := d.Done(); err != nil { ... }
package xdr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ErrMalformed is the kind of every decoding error.
var ErrMalformed = errors.New("malformed XDR")

// Decoder reads XDR values from a byte slice.
type Decoder struct {
	b   []byte
	off int
	err error
}

// NewDecoder returns a Decoder over b; the strings it returns are copies.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err returns the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Done returns the first error met, or an error if bytes are left over.
func (d *Decoder) Done() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d bytes left over after the last value", len(d.b)-d.off)
	}
	return d.err
}

// Fail records err as the decoder's error unless it has one.
func (d *Decoder) Fail(format string, args ...any) { d.fail(format, args...) }

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at byte %d: %w", fmt.Sprintf(format, args...), d.off, ErrMalformed)
	}
	d.off = len(d.b)
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail("want %d bytes, %d left", n, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

// Uint32 reads an unsigned int.
func (d *Decoder) Uint32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

// Int32 reads an int.
func (d *Decoder) Int32() int32 { return int32(d.Uint32()) }

// Uint64 reads an unsigned hyper.
func (d *Decoder) Uint64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// Int64 reads a hyper.
func (d *Decoder) Int64() int64 { return int64(d.Uint64()) }

// Float64 reads a double.
func (d *Decoder) Float64() float64 { return math.Float64frombits(d.Uint64()) }

// Bool reads a bool. Any non-zero word is true, as libvirt reads it (some
// clients send 0x01000000).
func (d *Decoder) Bool() bool { return d.Uint32() != 0 }

// Len reads the length of a variable-length array and checks it against
// max and against the bytes left, counting at least minSize bytes per
// element, before anything is allocated for it.
func (d *Decoder) Len(max, minSize int) int {
	n := d.Uint32()
	if d.err != nil {
		return 0
	}
	if int64(n) > int64(max) {
		d.fail("a list of %d elements is over its limit of %d", n, max)
		return 0
	}
	if minSize > 0 && int64(n)*int64(minSize) > int64(len(d.b)-d.off) {
		d.fail("a list of %d elements cannot fit in the %d bytes left", n, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

// Opaque reads variable-length opaque data of at most max bytes. The
// slice returned aliases the input.
func (d *Decoder) Opaque(max int) []byte {
	n := d.Uint32()
	if d.err != nil {
		return nil
	}
	if int64(n) > int64(max) {
		d.fail("%d bytes are over the limit of %d", n, max)
		return nil
	}
	p := d.take(int(n))
	d.take(pad(int(n)))
	return p
}

// Fixed reads fixed-length opaque data of n bytes; the slice returned
// aliases the input.
func (d *Decoder) Fixed(n int) []byte {
	p := d.take(n)
	d.take(pad(n))
	return p
}

// String reads a string of at most max bytes, which must be UTF-8.
func (d *Decoder) String(max int) string {
	p := d.Opaque(max)
	if p == nil {
		return ""
	}
	if !utf8.Valid(p) {
		d.fail("a string is not UTF-8")
		return ""
	}
	return string(p)
}

// OptString reads an optional string (a bool, then the string if true);
// ok says whether it was present.
func (d *Decoder) OptString(max int) (s string, ok bool) {
	if !d.Bool() {
		return "", false
	}
	return d.String(max), d.err == nil
}

func pad(n int) int { return (4 - n%4) % 4 }

var zeros [4]byte

// Encoder appends XDR values to a byte slice.
type Encoder struct{ B []byte }

// Uint32 writes an unsigned int.
func (e *Encoder) Uint32(v uint32) { e.B = binary.BigEndian.AppendUint32(e.B, v) }

// Int32 writes an int.
func (e *Encoder) Int32(v int32) { e.Uint32(uint32(v)) }

// Uint64 writes an unsigned hyper.
func (e *Encoder) Uint64(v uint64) { e.B = binary.BigEndian.AppendUint64(e.B, v) }

// Int64 writes a hyper.
func (e *Encoder) Int64(v int64) { e.Uint64(uint64(v)) }

// Float64 writes a double.
func (e *Encoder) Float64(v float64) { e.Uint64(math.Float64bits(v)) }

// Bool writes a bool.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint32(1)
	} else {
		e.Uint32(0)
	}
}

// Opaque writes variable-length opaque data.
func (e *Encoder) Opaque(p []byte) {
	e.Uint32(uint32(len(p)))
	e.Fixed(p)
}

// Fixed writes fixed-length opaque data.
func (e *Encoder) Fixed(p []byte) {
	e.B = append(e.B, p...)
	e.B = append(e.B, zeros[:pad(len(p))]...)
}

// String writes a string.
func (e *Encoder) String(s string) {
	e.Uint32(uint32(len(s)))
	e.B = append(e.B, s...)
	e.B = append(e.B, zeros[:pad(len(s))]...)
}

// OptString writes an optional string: absent when ok is false.
func (e *Encoder) OptString(s string, ok bool) {
	e.Bool(ok)
	if ok {
		e.String(s)
	}
}
