// Package format holds the byte encodings of pocketkms: the canonical
// encryption context and the KMS ciphertext blob. Every encoding is specified
// in docs/FORMAT.md and built and parsed with cryptobyte, never with offsets.
package format

import (
	"encoding/binary"
	"errors"
	"slices"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// Limits on an encryption context, enforced when encoding it.
const (
	// MaxContextBytes bounds the canonical encoding of an encryption context.
	MaxContextBytes = 8192
)

// ErrContext reports an encryption context that cannot be encoded: an empty
// key, a key or value that is not valid UTF-8, or an encoding over
// MaxContextBytes. The message names no key or value.
var ErrContext = errors.New("invalid encryption context")

// AppendContext appends the canonical encoding of the encryption context ec
// to b (docs/FORMAT.md, "Encryption context"):
//
//	uint16 count;
//	struct { opaque key<1..2^16-1>; opaque value<0..2^16-1>; } pairs[count];
//
// with pairs sorted by the bytes of their keys. A nil or empty context
// encodes as count 0.
func AppendContext(b []byte, ec map[string]string) ([]byte, error) {
	if len(ec) == 0 {
		return append(b, 0, 0), nil
	}
	var small [8]string
	keys := small[:0]
	size := 2
	for k, v := range ec {
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, ErrContext
		}
		size += 4 + len(k) + len(v)
		if size > MaxContextBytes {
			return nil, ErrContext
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// Every length is below MaxContextBytes, so each fits its uint16
	// prefix; the appends below cannot overflow a prefix. (ParseContext, the
	// parser, uses cryptobyte; FuzzParseContext checks the two agree.)
	b = slices.Grow(b, size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(keys)))
	for _, k := range keys {
		v := ec[k]
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	return b, nil
}

// ParseContext decodes a canonical encryption context. It rejects encodings
// that are not canonical: keys out of order or repeated, an empty key, text
// that is not UTF-8, trailing bytes, or more than MaxContextBytes.
func ParseContext(in []byte) (map[string]string, error) {
	if len(in) > MaxContextBytes {
		return nil, ErrContext
	}
	s := cryptobyte.String(in)
	var n uint16
	if !s.ReadUint16(&n) {
		return nil, ErrContext
	}
	ec := make(map[string]string, n)
	var prev []byte
	for i := 0; i < int(n); i++ {
		var k, v cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&k) || !s.ReadUint16LengthPrefixed(&v) ||
			len(k) == 0 || !utf8.Valid(k) || !utf8.Valid(v) ||
			(i > 0 && string(prev) >= string(k)) {
			return nil, ErrContext
		}
		prev = k
		ec[string(k)] = string(v)
	}
	if !s.Empty() {
		return nil, ErrContext
	}
	return ec, nil
}
