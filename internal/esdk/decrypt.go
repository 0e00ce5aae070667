// Package esdk opens messages in the AWS Encryption SDK message format
// (docs/FORMAT.md, section 4): key derivation and commitment, header
// authentication, framed and non-framed bodies, the footer signature, and
// the raw AES and raw RSA keyrings' encrypted data keys. It is the engine
// under the Envelope; its API is internal while the Envelope takes shape.
package esdk

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"maps"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/pocketkms/kms/internal/format"
)

// Errors. An authentication failure of any part is ErrOpen and nothing else.
var (
	ErrMalformed      = errors.New("malformed message")
	ErrOpen           = errors.New("message authentication failed")
	ErrNonCommitting  = errors.New("message uses a non-committing suite and the policy requires commitment")
	ErrNoKey          = errors.New("no recipient could unwrap the data key")
	ErrContextMissing = errors.New("required encryption context is missing")
)

// Unwrapper returns the data key from one of the encrypted data keys, given
// the full encryption context (stored and required pairs), or ErrNoKey.
type Unwrapper func(edks []format.EDK, ec map[string]string) ([]byte, error)

// Options control Open.
type Options struct {
	// AllowNonCommitting lets Open read suites without key commitment (all
	// format 1 suites), like the SDK's REQUIRE_ENCRYPT_ALLOW_DECRYPT.
	AllowNonCommitting bool
	// MaxEDKs bounds the encrypted data keys read; 0 means no bound.
	MaxEDKs int
	// Reproduced is the encryption context the reader supplies: pairs stored
	// in the header must match it, and pairs absent from the header are the
	// required encryption context, authenticated with the header.
	Reproduced map[string]string
}

// Open authenticates and decrypts a whole message. It returns the
// plaintext only when every part authenticates, and the parsed header.
func Open(msg []byte, unwrap Unwrapper, opt Options) ([]byte, *format.MessageHeader, error) {
	return AppendOpen(nil, msg, unwrap, opt)
}

// AppendOpen is Open appending the plaintext to dst, which must not
// overlap msg. On error it returns nil and leaves no plaintext in dst's
// spare capacity.
func AppendOpen(dst, msg []byte, unwrap Unwrapper, opt Options) ([]byte, *format.MessageHeader, error) {
	h, n, err := format.ParseMessageHeader(msg, format.HeaderLimits{MaxEDKs: opt.MaxEDKs})
	if err != nil {
		return nil, nil, ErrMalformed
	}
	aead, err := openHeader(h, unwrap, opt)
	if err != nil {
		return nil, h, err
	}
	out, bodyEnd, err := openBody(dst, aead, h, msg, n)
	if err != nil {
		return nil, h, err
	}
	if err := checkFooter(h, msg, bodyEnd); err != nil {
		clear(out[len(dst):])
		return nil, h, err
	}
	return out, h, nil
}

// openHeader applies the commitment policy, checks the reproduced context,
// unwraps the data key, derives the content key and authenticates the
// header.
func openHeader(h *format.MessageHeader, unwrap Unwrapper, opt Options) (cipher.AEAD, error) {
	if !h.Suite.Committing && !opt.AllowNonCommitting {
		return nil, ErrNonCommitting
	}
	// full is the stored context plus the required pairs, copied only when
	// there are any.
	full, required := h.Context, map[string]string(nil)
	for k, v := range opt.Reproduced {
		if stored, ok := h.Context[k]; ok {
			if stored != v {
				return nil, ErrContextMissing
			}
			continue
		}
		if required == nil {
			full, required = maps.Clone(h.Context), map[string]string{}
			if full == nil {
				full = map[string]string{}
			}
		}
		full[k], required[k] = v, v
	}
	dataKey, err := unwrap(h.EDKs, full)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	if len(dataKey) != h.Suite.KeyLen {
		return nil, ErrOpen
	}
	aead, err := contentAEAD(h, dataKey)
	if err != nil {
		return nil, err
	}
	// The header tag covers the body and the required pairs.
	aad := h.Body
	if len(required) > 0 {
		enc, err := format.AppendContext(nil, required)
		if err != nil {
			return nil, ErrContextMissing
		}
		aad = append(slices.Clone(h.Body), enc...)
	}
	if _, err := aead.Open(nil, h.IV, h.Tag, aad); err != nil {
		return nil, ErrOpen
	}
	return aead, nil
}

// contentAEAD derives the content key and, for committing suites, checks
// the commitment in constant time.
func contentAEAD(h *format.MessageHeader, dataKey []byte) (cipher.AEAD, error) {
	s := h.Suite
	key := dataKey
	switch {
	case s.Committing:
		k, commit, err := committedKeys(s, dataKey, h.MessageID)
		if err != nil || !hmac.Equal(commit, h.Commitment) {
			return nil, ErrOpen
		}
		defer clear(k)
		key = k
	case s.KDF != 0:
		info := append(binary.BigEndian.AppendUint16(nil, s.ID), h.MessageID...)
		k, err := hkdf.Key(func() hash.Hash { return s.KDF.New() }, dataKey, nil, string(info), s.KeyLen)
		if err != nil {
			return nil, ErrOpen
		}
		key = k
	}
	return newGCM(key)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrOpen
	}
	return cipher.NewGCM(block)
}

// committedKeys derives the content key and the commitment key of a
// committing suite: HKDF (RFC 5869) with salt = message ID, one extract and
// two single-block expands (both keys are shorter than the hash), computed
// with one HMAC for the extract and one, reset, for both expands. It equals
// crypto/hkdf's result (TestCommittedKeysMatchHKDF) at a third of the
// allocations, which matter at this per-message cost.
func committedKeys(s format.Suite, dataKey, messageID []byte) (key, commit []byte, err error) {
	if s.KeyLen > s.KDF.Size() || s.KDF.Size() > 64 {
		return nil, nil, errors.New("esdk: key longer than one HKDF block")
	}
	// One allocation: 64 bytes of scratch (the PRK, then each expand's
	// input and output), the content key and the commitment key.
	buf := make([]byte, 64+s.KeyLen+32)
	scratch := buf[:64]
	key, commit = buf[64:64+s.KeyLen:64+s.KeyLen], buf[64+s.KeyLen:]
	defer clear(scratch)
	ext := hmac.New(s.KDF.New, messageID)
	ext.Write(dataKey)
	exp := hmac.New(s.KDF.New, ext.Sum(scratch[:0])) // keyed with the PRK
	info := binary.BigEndian.AppendUint16(scratch[:0], s.ID)
	exp.Write(append(info, "DERIVEKEY\x01"...))
	copy(key, exp.Sum(scratch[:0]))
	exp.Reset()
	exp.Write(append(scratch[:0], "COMMITKEY\x01"...))
	copy(commit, exp.Sum(scratch[:0]))
	return key, commit, nil
}

// Body AAD content strings.
const (
	frameString  = "AWSKMSEncryptionClient Frame"
	finalString  = "AWSKMSEncryptionClient Final Frame"
	singleString = "AWSKMSEncryptionClient Single Block"
	endOfFrames  = 0xFFFFFFFF
)

func bodyAAD(id []byte, content string, seq uint32, n uint64) []byte {
	b := make([]byte, 0, len(id)+len(content)+12)
	b = append(append(b, id...), content...)
	b = binary.BigEndian.AppendUint32(b, seq)
	return binary.BigEndian.AppendUint64(b, n)
}

// openBody decrypts the body starting at off, appends the plaintext to dst
// and returns it with where the body ends.
func openBody(dst []byte, aead cipher.AEAD, h *format.MessageHeader, msg []byte, off int) ([]byte, int, error) {
	s := cryptobyte.String(msg[off:])
	// The plaintext is shorter than the body: room for it at once, not per
	// frame (AES-GCM's Open reallocates a destination without room).
	base := len(dst)
	buf := slices.Grow(dst, len(s))
	pt := buf[base:base]
	fail := func(err error) ([]byte, int, error) { clear(buf[base:cap(buf)]); return nil, 0, err }
	done := func(pt []byte) ([]byte, int, error) { return buf[:base+len(pt)], len(msg) - len(s), nil }
	if h.FrameLength > MaxFrameLength {
		return fail(ErrMalformed)
	}
	if !h.Framed {
		var iv, ct []byte
		var n uint64
		if !s.ReadBytes(&iv, 12) || !s.ReadUint64(&n) || n > uint64(len(s)) || !s.ReadBytes(&ct, int(n)+16) {
			return fail(ErrMalformed)
		}
		out, err := aead.Open(pt, iv, ct, bodyAAD(h.MessageID, singleString, 1, n))
		if err != nil {
			return fail(ErrOpen)
		}
		return done(out)
	}
	// First pass: check the frames' structure and find the final frame.
	// Regular frame i then sits at a known place, so the second pass opens
	// the frames in place of their plaintext, on all cores for a large
	// message.
	body := len(msg) - len(s)
	flen := int(h.FrameLength)
	regular, last, lastIV, lastAt := 0, 0, []byte(nil), 0
	for seq := uint32(1); ; seq++ {
		var first uint32
		if !s.ReadUint32(&first) {
			return fail(ErrMalformed)
		}
		final := first == endOfFrames
		var num uint32 = first
		if final && !s.ReadUint32(&num) {
			return fail(ErrMalformed)
		}
		if num != seq || seq == endOfFrames {
			return fail(ErrMalformed) // frames out of order, or too many
		}
		var iv, ct []byte
		n := h.FrameLength
		if final && (!s.ReadBytes(&iv, 12) || !s.ReadUint32(&n) || n > h.FrameLength) {
			return fail(ErrMalformed)
		}
		if !final && !s.ReadBytes(&iv, 12) {
			return fail(ErrMalformed)
		}
		at := len(msg) - len(s)
		if !s.ReadBytes(&ct, int(n)+16) {
			return fail(ErrMalformed)
		}
		if final {
			last, lastIV, lastAt = int(n), iv, at
			break
		}
		regular++
	}
	pt = pt[:regular*flen+last]
	err := inParallel(regular+1, jobBytes/max(flen, 1), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			seq, content, n := uint32(i+1), frameString, flen
			var iv, ct []byte
			if i == regular {
				content, n, iv, ct = finalString, last, lastIV, msg[lastAt:lastAt+last+16]
			} else {
				at := body + i*frameSize(flen, false)
				iv, ct = msg[at+4:at+16], msg[at+16:at+16+flen+16]
			}
			dst := pt[i*flen : i*flen : i*flen+n]
			if _, err := aead.Open(dst, iv, ct, bodyAAD(h.MessageID, content, seq, uint64(n))); err != nil {
				return ErrOpen
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return done(pt)
}

// checkFooter verifies the signature of a signed suite over header and
// body, and that nothing follows the message.
func checkFooter(h *format.MessageHeader, msg []byte, end int) error {
	rest := cryptobyte.String(msg[end:])
	if h.Suite.SignatureHash == 0 {
		if !rest.Empty() {
			return ErrMalformed
		}
		return nil
	}
	var sig []byte
	var sigLen uint16
	if !rest.ReadUint16(&sigLen) || !rest.ReadBytes(&sig, int(sigLen)) || !rest.Empty() {
		return ErrMalformed
	}
	d := h.Suite.SignatureHash.New()
	d.Write(msg[:end])
	return verifySignature(h, d.Sum(nil), sig)
}

// verifySignature checks a footer signature over a digest with the key
// stored in the context.
func verifySignature(h *format.MessageHeader, digest, sig []byte) error {
	enc, ok := h.Context[PublicKeyContextKey]
	if !ok {
		return ErrMalformed
	}
	point, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return ErrMalformed
	}
	curve := elliptic.P384()
	if h.Suite.SignatureHash.Size() == 32 {
		curve = elliptic.P256()
	}
	pub, err := parseCompressed(curve, point)
	if err != nil {
		return ErrMalformed
	}
	if !ecdsa.VerifyASN1(pub, digest, sig) {
		return ErrOpen
	}
	return nil
}

// parseCompressed decodes a SEC 1 compressed point.
func parseCompressed(curve elliptic.Curve, b []byte) (*ecdsa.PublicKey, error) {
	x, y := elliptic.UnmarshalCompressed(curve, b)
	if x == nil {
		return nil, ErrMalformed
	}
	n := (curve.Params().BitSize + 7) / 8
	point := make([]byte, 1+2*n)
	point[0] = 4
	x.FillBytes(point[1 : 1+n])
	y.FillBytes(point[1+n:])
	return ecdsa.ParseUncompressedPublicKey(curve, point)
}
