package esdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"maps"

	"github.com/pocketkms/kms/internal/format"
)

// PublicKeyContextKey is the reserved context key of a signed suite's
// verification key.
const PublicKeyContextKey = "aws-crypto-public-key"

// MaxFrameLength bounds the frame length pocketkms writes and accepts.
const MaxFrameLength = 1 << 30

// SealInput is a message to write.
type SealInput struct {
	Suite     format.Suite // 0x0478 or 0x0578: pocketkms writes format 2 only
	DataKey   []byte       // Suite.KeyLen bytes
	EDKs      []format.EDK
	Context   map[string]string
	FrameLen  uint32
	Plaintext []byte
	Rand      io.Reader
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
func Seal(in SealInput) ([]byte, error) {
	s := in.Suite
	if s.Version != 2 || !s.Committing || len(in.DataKey) != s.KeyLen ||
		in.FrameLen == 0 || in.FrameLen > MaxFrameLength || len(in.EDKs) == 0 ||
		(s.SignatureHash != 0) != (in.Signer != nil) {
		return nil, errors.New("esdk: invalid seal input")
	}
	h := &format.MessageHeader{
		Suite: s, MessageID: make([]byte, 32), Context: in.Context, EDKs: in.EDKs,
		Framed: true, FrameLength: in.FrameLen, Tag: make([]byte, 16),
	}
	if _, err := io.ReadFull(in.Rand, h.MessageID); err != nil {
		return nil, errors.New("esdk: reading random message ID failed")
	}
	info := binary.BigEndian.AppendUint16(nil, s.ID)
	key, err := hkdf.Key(sha512.New, in.DataKey, h.MessageID, string(append(info, "DERIVEKEY"...)), s.KeyLen)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if h.Commitment, err = hkdf.Key(sha512.New, in.DataKey, h.MessageID, "COMMITKEY", 32); err != nil {
		return nil, err
	}
	h.IV = make([]byte, 12)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	n := len(in.Plaintext)
	frames := 1
	if n > 0 {
		frames = (n + int(in.FrameLen) - 1) / int(in.FrameLen)
	}
	if frames >= endOfFrames {
		return nil, errors.New("esdk: message needs too many frames")
	}
	body, err := h.AppendHeader(make([]byte, 0, 512+n+frames*36+110))
	if err != nil {
		return nil, err
	}
	// Header tag: AES-GCM over nothing, the header body as associated data.
	bodyLen := len(body) - 16
	copy(body[bodyLen:], aead.Seal(nil, h.IV, nil, body[:bodyLen]))
	out := body
	var iv [12]byte
	for seq := uint32(1); ; seq++ {
		binary.BigEndian.PutUint32(iv[8:], seq)
		chunk := in.Plaintext[min(n, int(seq-1)*int(in.FrameLen)):min(n, int(seq)*int(in.FrameLen))]
		final := int(seq) == frames
		content := frameString
		if final {
			out = binary.BigEndian.AppendUint32(out, endOfFrames)
			content = finalString
		}
		out = binary.BigEndian.AppendUint32(out, seq)
		out = append(out, iv[:]...)
		if final {
			out = binary.BigEndian.AppendUint32(out, uint32(len(chunk)))
		}
		out = aead.Seal(out, iv[:], chunk, bodyAAD(h.MessageID, content, seq, uint64(len(chunk))))
		if final {
			break
		}
	}
	if in.Signer != nil {
		d := s.SignatureHash.New()
		d.Write(out)
		sig, err := ecdsa.SignASN1(in.Rand, in.Signer, d.Sum(nil))
		if err != nil {
			return nil, err
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(sig)))
		out = append(out, sig...)
	}
	return out, nil
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
