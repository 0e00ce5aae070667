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
// the full encryption context, or ErrNoKey.
type Unwrapper func(edks []format.EDK, ec Context) ([]byte, error)

// Context is the full encryption context of a message being opened: the
// pairs stored in its header and the required ones.
type Context struct {
	h    *format.MessageHeader
	full map[string]string // stored and required pairs, when any are required
	enc  []byte
}

// Map returns the context as a map, built on the first call; the caller
// must not modify it.
func (c Context) Map() map[string]string {
	if c.full != nil {
		return c.full
	}
	return c.h.ContextMap()
}

// Encoding returns the context's canonical encoding
// (format.AppendContext's), or nil if it cannot be encoded.
func (c Context) Encoding() []byte { return c.enc }

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
	if out == nil {
		out = []byte{} // an empty plaintext is not the nil of an error
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
	// The full context is the stored one, or a copy with the required
	// pairs when there are any.
	ec, required := Context{h: h}, map[string]string(nil)
	for k, v := range opt.Reproduced {
		if has, equal := h.ContextHas(k, v); has {
			if !equal {
				return nil, ErrContextMissing
			}
			continue
		}
		if required == nil {
			ec.full, required = maps.Clone(h.ContextMap()), map[string]string{}
		}
		ec.full[k], required[k] = v, v
	}
	// The header holds the context's encoding when it is canonical and
	// complete; otherwise it is encoded once here for every recipient.
	ec.enc = h.ContextEncoding()
	if ec.enc == nil || required != nil {
		ec.enc, _ = format.AppendContext(nil, ec.Map()) // nil if it cannot be encoded
	}
	dataKey, err := unwrap(h.EDKs, ec)
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
	// The structure is checked first; then room for the whole plaintext is
	// made at once, not per frame (AES-GCM's Open reallocates a destination
	// without room), and on failure cleared.
	base := len(dst)
	var buf []byte
	room := func(n int) []byte { buf = grow(dst, n); return buf[base : base+n] }
	fail := func(err error) ([]byte, int, error) { clear(buf[base:cap(buf)]); return nil, 0, err }
	done := func(pt []byte) ([]byte, int, error) { return buf[:base+len(pt)], len(msg) - len(s), nil }
	if h.FrameLength > MaxFrameLength {
		return nil, 0, ErrFrameTooLong
	}
	if !h.Framed {
		var iv, ct []byte
		var n uint64
		if !s.ReadBytes(&iv, 12) || !s.ReadUint64(&n) || n > uint64(len(s)) || !s.ReadBytes(&ct, int(n)+16) {
			return nil, 0, ErrMalformed
		}
		out, err := aead.Open(room(int(n))[:0], iv, ct, bodyAAD(h.MessageID, singleString, 1, n))
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
			return nil, 0, ErrMalformed
		}
		final := first == endOfFrames
		var num uint32 = first
		if final && !s.ReadUint32(&num) {
			return nil, 0, ErrMalformed
		}
		if num != seq || seq == endOfFrames {
			return nil, 0, ErrMalformed // frames out of order, or too many
		}
		var iv, ct []byte
		n := h.FrameLength
		if final && (!s.ReadBytes(&iv, 12) || !s.ReadUint32(&n) || n > h.FrameLength) {
			return nil, 0, ErrMalformed
		}
		if !final && !s.ReadBytes(&iv, 12) {
			return nil, 0, ErrMalformed
		}
		at := len(msg) - len(s)
		if !s.ReadBytes(&ct, int(n)+16) {
			return nil, 0, ErrMalformed
		}
		if final {
			last, lastIV, lastAt = int(n), iv, at
			break
		}
		regular++
	}
	pt := room(regular*flen + last)
	fs := frames{aead: aead, id: h.MessageID, msg: msg, pt: pt, body: body, flen: flen,
		regular: regular, last: last, lastIV: lastIV, lastAt: lastAt}
	var err error
	if minPer := jobBytes / max(flen, 1); regular+1 <= minPer {
		err = fs.open(0, regular+1) // one job: no goroutine, and fs stays on the stack
	} else {
		shared := fs
		err = inParallel(regular+1, minPer, shared.open)
	}
	if err != nil {
		return fail(err)
	}
	return done(pt)
}

// frames locates the frames of a framed body whose structure openBody has
// checked: regular frame i at body + i*frameSize(flen), the final frame's
// content at lastAt, and the plaintext of frame i at pt[i*flen:].
type frames struct {
	aead                      cipher.AEAD
	id, msg, pt, lastIV       []byte
	body, flen, regular, last int
	lastAt                    int
}

// open opens frames lo to hi-1 into their place in pt.
func (f *frames) open(lo, hi int) error {
	for i := lo; i < hi; i++ {
		seq, content, n := uint32(i+1), frameString, f.flen
		var iv, ct []byte
		if i == f.regular {
			content, n, iv, ct = finalString, f.last, f.lastIV, f.msg[f.lastAt:f.lastAt+f.last+16]
		} else {
			at := f.body + i*frameSize(f.flen, false)
			iv, ct = f.msg[at+4:at+16], f.msg[at+16:at+16+f.flen+16]
		}
		dst := f.pt[i*f.flen : i*f.flen : i*f.flen+n]
		if _, err := f.aead.Open(dst, iv, ct, bodyAAD(f.id, content, seq, uint64(n))); err != nil {
			return ErrOpen
		}
	}
	return nil
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
	enc, ok := h.ContextValue(PublicKeyContextKey)
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
