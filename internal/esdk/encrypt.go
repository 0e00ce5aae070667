package esdk

import (
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/pocketkms/kms/internal/format"
)

// PublicKeyContextKey is the reserved context key of a signed suite's
// verification key.
const PublicKeyContextKey = "aws-crypto-public-key"

// MaxFrameLength bounds the frame length pocketkms writes and accepts.
const MaxFrameLength = 1 << 30

// SealInput is a message to write.
type SealInput struct {
	Suite   format.Suite // 0x0478 or 0x0578: pocketkms writes format 2 only
	DataKey []byte       // Suite.KeyLen bytes
	EDKs    []format.EDK
	Context map[string]string
	// RawContext is Context's canonical encoding (format.AppendContext's),
	// or nil to have it encoded.
	RawContext []byte
	FrameLen   uint32
	Plaintext  []byte
	Rand       io.Reader
	// Signer is the ECDSA P-384 key of suite 0x0578, made by NewSigner;
	// its public key must be in Context under PublicKeyContextKey.
	Signer *ecdsa.PrivateKey
}

// NewSigner makes the per-message signing key of suite 0x0578 and returns
// it with the context value that carries its public key.
func NewSigner(rand io.Reader) (*ecdsa.PrivateKey, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand)
	if err != nil {
		return nil, "", err
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, "", err
	}
	x, y := pub[1:49], pub[49:]
	comp := append([]byte{2 | y[len(y)-1]&1}, x...)
	return k, base64.StdEncoding.EncodeToString(comp), nil
}

// Seal writes a whole message: header, framed body and, for signed suites,
// the footer.
func Seal(in SealInput) ([]byte, error) { return AppendSeal(nil, in) }

// AppendSeal is Seal appending the message to dst, which must not overlap
// in.Plaintext.
func AppendSeal(dst []byte, in SealInput) ([]byte, error) {
	n := len(in.Plaintext)
	frames := 1
	if n > 0 && in.FrameLen > 0 {
		frames = (n + int(in.FrameLen) - 1) / int(in.FrameLen)
	}
	if frames >= endOfFrames {
		return nil, errors.New("esdk: message needs too many frames")
	}
	msgStart := len(dst)
	flen := int(in.FrameLen)
	last := n - (frames-1)*flen
	size := (frames-1)*frameSize(flen, false) + frameSize(last, true)
	footer := 0
	if in.Signer != nil {
		footer = 2 + maxSignatureLen
	}
	out, aead, id, err := sealHeader(dst, in, size+footer)
	if err != nil {
		return nil, err
	}
	// Every frame's place is known: seal them in place, on all cores for a
	// large message.
	start := len(out)
	out = slices.Grow(out, size)[:start+size]
	fs := sealFrames{aead: aead, id: id, pt: in.Plaintext, out: out[start:], flen: flen, frames: frames}
	if minPer := jobBytes / flen; frames <= minPer {
		fs.seal(0, frames) // one job: no goroutine, and fs stays on the stack
	} else {
		shared := fs
		inParallel(frames, minPer, shared.seal)
	}
	return appendFooter(out, in, out[msgStart:])
}

// grow returns b with room for n more bytes, at least doubling its
// capacity when it must move (so that a caller appending many messages to
// one buffer copies each byte a few times, not once per message). A new
// array comes from make, not from append's growth (slices.Grow): the
// runtime clears a large new array in preemptible chunks, where append
// clears its new part in one call that the garbage collector cannot
// interrupt, and which on a 1 MiB message kept the collector spinning on
// the other core.
func grow(b []byte, n int) []byte {
	if n <= cap(b)-len(b) {
		return b
	}
	nb := make([]byte, len(b), max(len(b)+n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// maxSignatureLen bounds the DER encoding of an ECDSA P-384 signature.
const maxSignatureLen = 2 + 2*(2+49)

// sealFrames seals the frames of a whole plaintext into out, frame i at
// i*frameSize(flen).
type sealFrames struct {
	aead         cipher.AEAD
	id, pt, out  []byte
	flen, frames int
}

func (f *sealFrames) seal(lo, hi int) error {
	for i := lo; i < hi; i++ {
		at := i * frameSize(f.flen, false)
		chunk := f.pt[i*f.flen : min(len(f.pt), (i+1)*f.flen)]
		appendFrame(f.out[at:at], f.aead, f.id, uint32(i+1), chunk, i == f.frames-1)
	}
	return nil
}

// headerSize is the size of the header sealHeader writes for in.
func headerSize(in SealInput) int {
	n := 1 + 2 + 32 + 2 + 2 + 1 + 4 + 32 + 16 // all but the context and the EDKs
	switch {
	case in.RawContext != nil:
		n += len(in.RawContext)
	case len(in.Context) == 0:
	default:
		n += 2
		for k, v := range in.Context {
			n += 4 + len(k) + len(v)
		}
	}
	for _, e := range in.EDKs {
		n += 6 + len(e.ProviderID) + len(e.ProviderInfo) + len(e.Ciphertext)
	}
	return n
}

// sealHeader checks the input, derives the keys and returns dst with the
// authenticated header appended (and room for extra bytes), the content
// AEAD and the message ID.
func sealHeader(dst []byte, in SealInput, extra int) ([]byte, cipher.AEAD, []byte, error) {
	s := in.Suite
	if s.Version != 2 || !s.Committing || len(in.DataKey) != s.KeyLen ||
		in.FrameLen == 0 || in.FrameLen > MaxFrameLength || len(in.EDKs) == 0 ||
		(s.SignatureHash != 0) != (in.Signer != nil) {
		return nil, nil, nil, errors.New("esdk: invalid seal input")
	}
	fixed := make([]byte, 32+12+16) // message ID, IV (zero) and tag, in one allocation
	h := &format.MessageHeader{
		Suite: s, MessageID: fixed[:32:32], Context: in.Context, EDKs: in.EDKs,
		Framed: true, FrameLength: in.FrameLen, IV: fixed[32:44:44], Tag: fixed[44:],
	}
	// The header holds RawContext when it is set (only for a non-empty
	// context): the bytes the recipients bound, whatever became of the map.
	h.RawContext = in.RawContext
	if _, err := io.ReadFull(in.Rand, h.MessageID); err != nil {
		return nil, nil, nil, errors.New("esdk: reading random message ID failed")
	}
	key, commit, err := committedKeys(s, in.DataKey, h.MessageID)
	if err != nil {
		return nil, nil, nil, err
	}
	defer clear(key)
	h.Commitment = commit
	aead, err := newGCM(key)
	if err != nil {
		return nil, nil, nil, err
	}
	start := len(dst)
	out, err := h.AppendHeader(grow(dst, headerSize(in)+extra))
	if err != nil {
		return nil, nil, nil, err
	}
	// Header tag: AES-GCM over nothing, the header body as associated data.
	bodyLen := len(out) - 16
	aead.Seal(out[bodyLen:bodyLen], h.IV, nil, out[start:bodyLen])
	return out, aead, h.MessageID, nil
}

// appendFrame appends frame seq, sealed, to out. The IV is the sequence
// number; the final frame carries its length.
func appendFrame(out []byte, aead cipher.AEAD, id []byte, seq uint32, chunk []byte, final bool) []byte {
	hl := frameSize(0, final) - 16
	at := len(out)
	out = append(out, make([]byte, hl)...) // the header is written in place
	iv, content, _ := putFrameHeader(out[at:], seq, len(chunk), final)
	return aead.Seal(out, iv, chunk, bodyAAD(id, content, seq, uint64(len(chunk))))
}

// sealFrameInPlace writes frame seq into b, whose n bytes of plaintext
// already sit where the frame's content goes (after 16 header bytes, 24
// for a final frame), and seals them there; b has room for the tag.
func sealFrameInPlace(b []byte, aead cipher.AEAD, id []byte, seq uint32, n int, final bool) {
	iv, content, hl := putFrameHeader(b, seq, n, final)
	pt := b[hl : hl+n]
	aead.Seal(pt[:0], iv, pt, bodyAAD(id, content, seq, uint64(n)))
}

// putFrameHeader writes the header of frame seq with n bytes of content
// to b and returns the IV (within b), the frame's content string and the
// header's length.
func putFrameHeader(b []byte, seq uint32, n int, final bool) ([]byte, string, int) {
	content, hl := frameString, 16
	if final {
		binary.BigEndian.PutUint32(b, endOfFrames)
		b, content, hl = b[4:], finalString, 24
	}
	binary.BigEndian.PutUint32(b, seq)
	iv := b[4:16]
	clear(iv[:8])
	binary.BigEndian.PutUint32(iv[8:], seq) // the IV is the sequence number
	if final {
		binary.BigEndian.PutUint32(b[16:], uint32(n))
	}
	return iv, content, hl
}

// frameSize is the encoded size of a frame of n plaintext bytes.
func frameSize(n int, final bool) int {
	if final {
		return 4 + 4 + 12 + 4 + n + 16
	}
	return 4 + 12 + n + 16
}

// appendFooter signs the message so far (signed, the bytes the signature
// covers) for a signed suite and appends the footer to out.
func appendFooter(out []byte, in SealInput, signed []byte) ([]byte, error) {
	if in.Signer == nil {
		return out, nil
	}
	d := in.Suite.SignatureHash.New()
	d.Write(signed)
	return appendSignature(out, in, d.Sum(nil))
}

func appendSignature(out []byte, in SealInput, digest []byte) ([]byte, error) {
	sig, err := ecdsa.SignASN1(in.Rand, in.Signer, digest)
	if err != nil {
		return nil, err
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(sig)))
	return append(out, sig...), nil
}

// WithPublicKey returns ec with a signed suite's public key added.
func WithPublicKey(ec map[string]string, pub string) map[string]string {
	c := maps.Clone(ec)
	if c == nil {
		c = map[string]string{}
	}
	c[PublicKeyContextKey] = pub
	return c
}

// inParallel calls f on contiguous ranges of [0, n), one range per core,
// each of at least minPer items (at least one), and returns the error of
// the first range that failed.
func inParallel(n, minPer int, f func(lo, hi int) error) error {
	per := max(minPer, 1, (n+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0))
	if per >= n {
		return f(0, n)
	}
	errs := make([]error, (n+per-1)/per)
	var wg sync.WaitGroup
	for k := 1; k < len(errs); k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = f(k*per, min(n, (k+1)*per))
		}()
	}
	errs[0] = f(0, per) // the first range on this goroutine
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
