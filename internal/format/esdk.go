package format

import (
	"crypto"
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// This file is the header of the AWS Encryption SDK message format,
// versions 1 and 2 (docs/FORMAT.md, section 4): the suites, and the header
// parser and writer. The body (frames), the footer and the key derivation
// come with the Envelope.

// Suite is an ESDK algorithm suite.
type Suite struct {
	ID uint16
	// Version is the message format version the suite is written in.
	Version uint8
	// KeyLen is the length of the data key and of the AES-GCM key.
	KeyLen int
	// KDF is HKDF's hash, or 0 for none (the data key is the content key).
	KDF crypto.Hash
	// SignatureHash is the ECDSA signature's hash (SHA-256 with P-256,
	// SHA-384 with P-384), or 0 for an unsigned suite.
	SignatureHash crypto.Hash
	// Committing suites carry a 32-byte commitment key as suite data.
	Committing bool
}

// The suites the ESDK defines. Every suite uses a 12-byte IV and a 16-byte
// AES-GCM tag.
var suites = map[uint16]Suite{
	0x0014: {0x0014, 1, 16, 0, 0, false},
	0x0046: {0x0046, 1, 24, 0, 0, false},
	0x0078: {0x0078, 1, 32, 0, 0, false},
	0x0114: {0x0114, 1, 16, crypto.SHA256, 0, false},
	0x0146: {0x0146, 1, 24, crypto.SHA256, 0, false},
	0x0178: {0x0178, 1, 32, crypto.SHA256, 0, false},
	0x0214: {0x0214, 1, 16, crypto.SHA256, crypto.SHA256, false},
	0x0346: {0x0346, 1, 24, crypto.SHA384, crypto.SHA384, false},
	0x0378: {0x0378, 1, 32, crypto.SHA384, crypto.SHA384, false},
	0x0478: {0x0478, 2, 32, crypto.SHA512, 0, true},
	0x0578: {0x0578, 2, 32, crypto.SHA512, crypto.SHA384, true},
}

// SuiteByID returns the suite with the given ID.
func SuiteByID(id uint16) (Suite, bool) {
	s, ok := suites[id]
	return s, ok
}

// Message format constants.
const (
	esdkIVLen        = 12
	esdkTagLen       = 16
	esdkCommitLen    = 32
	ContentNonFramed = 0x01
	ContentFramed    = 0x02
)

// ErrHeader reports a message header that does not parse or breaks a limit.
var ErrHeader = errors.New("malformed message header")

// EDK is an encrypted data key: a recipient's wrapped copy of the data key.
type EDK struct {
	ProviderID   string
	ProviderInfo []byte
	Ciphertext   []byte
}

// MessageHeader is a parsed ESDK message header.
type MessageHeader struct {
	Suite     Suite
	MessageID []byte // 16 bytes in version 1, 32 in version 2
	// Context is the encryption context; RawContext its serialization as
	// read (the key-value pairs, without the AAD length), which the header
	// authentication covers byte for byte.
	Context     map[string]string
	RawContext  []byte
	EDKs        []EDK
	Framed      bool
	FrameLength uint32
	// Commitment is the 32-byte commitment key of a committing suite.
	Commitment []byte
	// IV and Tag authenticate the header body: IV is read in version 1 and
	// all zeros in version 2.
	IV  []byte
	Tag []byte
	// Body is the serialized header body, the associated data of the header
	// authentication tag.
	Body []byte

	zeroIV [esdkIVLen]byte // IV of version 2, allocated with the header
}

// HeaderLimits bound what ParseMessageHeader accepts.
type HeaderLimits struct {
	// MaxEDKs is the most encrypted data keys a header may carry; 0 means
	// the format's own bound (65,535).
	MaxEDKs int
}

// ParseMessageHeader parses a version 1 or 2 message header at the start
// of in and returns it with the number of bytes it took (body and
// authentication). It checks structure and limits only; authenticating
// the header needs the data key.
func ParseMessageHeader(in []byte, lim HeaderLimits) (*MessageHeader, int, error) {
	s := cryptobyte.String(in)
	var (
		h       MessageHeader
		version uint8
		suiteID uint16
	)
	if !s.ReadUint8(&version) || (version != 1 && version != 2) {
		return nil, 0, ErrHeader
	}
	if version == 1 {
		var typ uint8
		if !s.ReadUint8(&typ) || typ != 0x80 {
			return nil, 0, ErrHeader
		}
	}
	if !s.ReadUint16(&suiteID) {
		return nil, 0, ErrHeader
	}
	suite, ok := suites[suiteID]
	if !ok || suite.Version != version {
		return nil, 0, ErrHeader
	}
	h.Suite = suite
	idLen := 16
	if version == 2 {
		idLen = 32
	}
	var aad cryptobyte.String
	var edkCount uint16
	if !s.ReadBytes(&h.MessageID, idLen) ||
		!s.ReadUint16LengthPrefixed(&aad) ||
		!s.ReadUint16(&edkCount) || edkCount == 0 ||
		(lim.MaxEDKs > 0 && int(edkCount) > lim.MaxEDKs) {
		return nil, 0, ErrHeader
	}
	ctx, err := parseESDKContext(aad)
	if err != nil {
		return nil, 0, err
	}
	h.Context, h.RawContext = ctx, aad
	h.EDKs = make([]EDK, 0, edkCount)
	for range edkCount {
		var id, info, ct cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&id) || !utf8.Valid(id) ||
			!s.ReadUint16LengthPrefixed(&info) ||
			!s.ReadUint16LengthPrefixed(&ct) {
			return nil, 0, ErrHeader
		}
		pid := "aws-kms" // the common provider ID costs no allocation
		if string(id) != pid {
			pid = string(id)
		}
		h.EDKs = append(h.EDKs, EDK{ProviderID: pid, ProviderInfo: info, Ciphertext: ct})
	}
	var content uint8
	if !s.ReadUint8(&content) || (content != ContentNonFramed && content != ContentFramed) {
		return nil, 0, ErrHeader
	}
	h.Framed = content == ContentFramed
	if version == 1 {
		var reserved uint32
		var ivLen uint8
		if !s.ReadUint32(&reserved) || reserved != 0 || !s.ReadUint8(&ivLen) || ivLen != esdkIVLen {
			return nil, 0, ErrHeader
		}
	}
	if !s.ReadUint32(&h.FrameLength) || h.Framed != (h.FrameLength > 0) {
		return nil, 0, ErrHeader
	}
	if suite.Committing && !s.ReadBytes(&h.Commitment, esdkCommitLen) {
		return nil, 0, ErrHeader
	}
	bodyLen := len(in) - len(s)
	h.Body = in[:bodyLen:bodyLen]
	if version == 1 {
		if !s.ReadBytes(&h.IV, esdkIVLen) {
			return nil, 0, ErrHeader
		}
	} else {
		h.IV = h.zeroIV[:]
	}
	if !s.ReadBytes(&h.Tag, esdkTagLen) {
		return nil, 0, ErrHeader
	}
	return &h, len(in) - len(s), nil
}

// parseESDKContext decodes the AAD field's key-value pairs. An empty field
// is an empty context. Keys must be distinct and, with values, valid UTF-8.
// Unlike ParseContext it accepts pairs in any order (the header tag covers
// the bytes as written) and a count of zero.
func parseESDKContext(aad cryptobyte.String) (map[string]string, error) {
	ec := map[string]string{}
	if aad.Empty() {
		return ec, nil
	}
	// Keys and values are substrings of one copy of the field: one
	// allocation for all of them.
	all := string(aad)
	var n uint16
	if !aad.ReadUint16(&n) {
		return nil, ErrHeader
	}
	for range n {
		var k, v cryptobyte.String
		if !aad.ReadUint16LengthPrefixed(&k) || !aad.ReadUint16LengthPrefixed(&v) ||
			!utf8.Valid(k) || !utf8.Valid(v) {
			return nil, ErrHeader
		}
		ks := len(all) - len(aad) - len(v) - 2 - len(k)
		key, val := all[ks:ks+len(k)], all[len(all)-len(aad)-len(v):len(all)-len(aad)]
		if _, dup := ec[key]; dup {
			return nil, ErrHeader
		}
		ec[key] = val
	}
	if !aad.Empty() {
		return nil, ErrHeader
	}
	return ec, nil
}

// AppendHeader appends the header (body, then IV in version 1, then tag)
// to b. The context is written from RawContext if set, else canonically
// from Context (empty: AAD length 0). It is the exact inverse of
// ParseMessageHeader.
func (h *MessageHeader) AppendHeader(b []byte) ([]byte, error) {
	body, err := h.appendBody(b)
	if err != nil {
		return nil, err
	}
	if h.Suite.Version == 1 {
		if len(h.IV) != esdkIVLen {
			return nil, ErrHeader
		}
		body = append(body, h.IV...)
	}
	if len(h.Tag) != esdkTagLen {
		return nil, ErrHeader
	}
	return append(body, h.Tag...), nil
}

func (h *MessageHeader) appendBody(b []byte) ([]byte, error) {
	v := h.Suite.Version
	idLen := 16
	if v == 2 {
		idLen = 32
	}
	if s, ok := suites[h.Suite.ID]; !ok || s != h.Suite ||
		len(h.MessageID) != idLen || len(h.EDKs) == 0 || len(h.EDKs) > 0xFFFF ||
		h.Framed != (h.FrameLength > 0) || (h.Suite.Committing && len(h.Commitment) != esdkCommitLen) {
		return nil, ErrHeader
	}
	for _, e := range h.EDKs {
		if len(e.ProviderID) > 0xFFFF || len(e.ProviderInfo) > 0xFFFF || len(e.Ciphertext) > 0xFFFF || !utf8.ValidString(e.ProviderID) {
			return nil, ErrHeader
		}
	}
	// Appends, not a cryptobyte.Builder: this runs once per message sealed.
	// ParseMessageHeader is the parser; FuzzParseMessageHeader checks that
	// the two are exact inverses.
	b = append(b, v)
	if v == 1 {
		b = append(b, 0x80)
	}
	b = binary.BigEndian.AppendUint16(b, h.Suite.ID)
	b = append(b, h.MessageID...)
	if h.RawContext != nil || len(h.Context) == 0 {
		if len(h.RawContext) > 0xFFFF {
			return nil, ErrHeader
		}
		return h.appendRest(appendPrefixed(b, h.RawContext)), nil
	}
	at := len(b)
	b, err := AppendContext(append(b, 0, 0), h.Context) // serialized in place, its length set after
	if err != nil || len(b)-at-2 > 0xFFFF {
		return nil, ErrHeader
	}
	binary.BigEndian.PutUint16(b[at:], uint16(len(b)-at-2))
	return h.appendRest(b), nil
}

// appendRest appends the header body after the encryption context.
func (h *MessageHeader) appendRest(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.EDKs)))
	for _, e := range h.EDKs {
		b = appendPrefixed(b, []byte(e.ProviderID))
		b = appendPrefixed(b, e.ProviderInfo)
		b = appendPrefixed(b, e.Ciphertext)
	}
	if h.Framed {
		b = append(b, ContentFramed)
	} else {
		b = append(b, ContentNonFramed)
	}
	if h.Suite.Version == 1 {
		b = binary.BigEndian.AppendUint32(b, 0)
		b = append(b, esdkIVLen)
	}
	b = binary.BigEndian.AppendUint32(b, h.FrameLength)
	if h.Suite.Committing {
		b = append(b, h.Commitment...)
	}
	return b
}

// appendPrefixed appends v with its 16-bit length; the caller has checked
// that it fits.
func appendPrefixed(b, v []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(v))), v...)
}
