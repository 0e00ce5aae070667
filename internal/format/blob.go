package format

import (
	"encoding/binary"
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// Blob constants (docs/FORMAT.md, "Ciphertext blob").
const (
	blobMagic0 = 0x6B // 'k'
	blobMagic1 = 0x6D // 'm'

	// BlobVersion is the only blob format version written and read.
	BlobVersion = 0x01
	// AlgAES256GCM is AES-256-GCM with a 96-bit random nonce and a 128-bit tag.
	AlgAES256GCM = 0x01

	// NonceSize and TagSize are those of AlgAES256GCM.
	NonceSize = 12
	TagSize   = 16

	// MaxKeyIDLen bounds the key ID written in a blob.
	MaxKeyIDLen = 255
	// MaxBlobSize is the largest blob accepted, as AWS KMS bounds CiphertextBlob.
	MaxBlobSize = 6144
)

// ErrMalformed reports a blob that does not parse.
var ErrMalformed = errors.New("malformed ciphertext blob")

// BlobHeader is the cleartext part of a ciphertext blob.
type BlobHeader struct {
	KeyID      string
	KeyVersion uint32
	Nonce      [NonceSize]byte
}

// AppendHeader appends the encoded header to b. The key ID length is
// checked first, so the one-byte length prefix cannot overflow; ParseBlob,
// the parser, uses cryptobyte, and FuzzParseBlob checks the two agree.
func (h *BlobHeader) AppendHeader(b []byte) ([]byte, error) {
	if len(h.KeyID) == 0 || len(h.KeyID) > MaxKeyIDLen || h.KeyVersion == 0 {
		return nil, ErrMalformed
	}
	b = append(b, blobMagic0, blobMagic1, BlobVersion, AlgAES256GCM, byte(len(h.KeyID)))
	b = append(b, h.KeyID...)
	b = binary.BigEndian.AppendUint32(b, h.KeyVersion)
	return append(b, h.Nonce[:]...), nil
}

// HeaderSize returns the encoded size of a header for a key ID of n bytes.
func HeaderSize(n int) int { return 4 + 1 + n + 4 + NonceSize }

// ParseBlob splits a blob into its header, the encoded header bytes (the
// associated data prefix) and the AEAD ciphertext with its tag. It never
// panics and rejects anything but one canonical encoding.
func ParseBlob(in []byte) (h BlobHeader, header, sealed []byte, err error) {
	keyID, version, header, sealed, err := SplitBlob(in)
	if err != nil {
		return BlobHeader{}, nil, nil, err
	}
	h.KeyID, h.KeyVersion = string(keyID), version
	copy(h.Nonce[:], header[len(header)-NonceSize:])
	return h, header, sealed, nil
}

// SplitBlob is ParseBlob without copies: the key ID is a subslice of
// header, and the nonce ends it.
func SplitBlob(in []byte) (keyID []byte, version uint32, header, sealed []byte, err error) {
	if len(in) > MaxBlobSize {
		return nil, 0, nil, nil, ErrMalformed
	}
	s := cryptobyte.String(in)
	var (
		m0, m1, v, alg uint8
		id, nonce      cryptobyte.String
	)
	if !s.ReadUint8(&m0) || m0 != blobMagic0 ||
		!s.ReadUint8(&m1) || m1 != blobMagic1 ||
		!s.ReadUint8(&v) || v != BlobVersion ||
		!s.ReadUint8(&alg) || alg != AlgAES256GCM ||
		!s.ReadUint8LengthPrefixed(&id) || id.Empty() ||
		!s.ReadUint32(&version) || version == 0 ||
		!s.ReadBytes((*[]byte)(&nonce), NonceSize) ||
		len(s) < TagSize {
		return nil, 0, nil, nil, ErrMalformed
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return nil, 0, nil, nil, ErrMalformed // key IDs are letters, digits and '-'
		}
	}
	n := len(in) - len(s)
	return id, version, in[:n:n], []byte(s), nil
}
