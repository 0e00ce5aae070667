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
	// Context is the encryption context AppendHeader writes when RawContext
	// is nil. ParseMessageHeader leaves it nil: read a parsed header's
	// context with ContextMap or ContextValue.
	Context map[string]string
	// RawContext is the context's serialization as read or to write (the
	// key-value pairs, without the AAD length), which the header
	// authentication covers byte for byte.
	RawContext []byte
	// read: the header was parsed. parsed is the context read, built on
	// first need, of pairs pairs; canonical: the pairs of RawContext are in
	// ascending order of keys, so that it is the canonical encoding of the
	// context (AppendContext's).
	read        bool
	parsed      map[string]string
	pairs       int
	canonical   bool
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
	// The header and its first encrypted data key (most messages have one)
	// share one allocation.
	var (
		a = new(struct {
			h    MessageHeader
			edks [1]EDK
		})
		h       = &a.h
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
	if err := h.parseContext(aad); err != nil {
		return nil, 0, err
	}
	if edkCount == 1 {
		h.EDKs = a.edks[:0:1]
	} else {
		h.EDKs = make([]EDK, 0, min(int(edkCount), len(s)/6)) // an EDK takes 6 bytes or more
	}
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
	return h, len(in) - len(s), nil
}

// parseContext checks the AAD field's key-value pairs and keeps them as
// RawContext. An empty field is an empty context. Keys must be distinct
// and, with values, valid UTF-8. Unlike ParseContext it accepts pairs in
// any order (the header tag covers the bytes as written) and a count of
// zero. The map of the context is built here only for pairs out of order,
// to find repeated keys; in the common, canonical case it waits for
// ContextMap.
func (h *MessageHeader) parseContext(aad cryptobyte.String) error {
	h.RawContext, h.read, h.canonical = aad[:len(aad):len(aad)], true, true
	if aad.Empty() {
		return nil
	}
	var n uint16
	if !aad.ReadUint16(&n) {
		return ErrHeader
	}
	var prev cryptobyte.String
	for i := range n {
		var k, v cryptobyte.String
		if !aad.ReadUint16LengthPrefixed(&k) || !aad.ReadUint16LengthPrefixed(&v) ||
			!utf8.Valid(k) || !utf8.Valid(v) {
			return ErrHeader
		}
		if len(k) == 0 || (i > 0 && string(k) <= string(prev)) {
			h.canonical = false
		}
		prev = k
	}
	if !aad.Empty() {
		return ErrHeader
	}
	h.pairs = int(n)
	if !h.canonical {
		ec, ok := h.buildContext()
		if !ok {
			return ErrHeader // a key repeated
		}
		h.parsed = ec
	}
	return nil
}

// buildContext decodes RawContext, which parseContext checked, into a map
// whose keys and values are substrings of one copy of it (one allocation
// for all of them). It reports false if a key repeats.
func (h *MessageHeader) buildContext() (map[string]string, bool) {
	ec := make(map[string]string, h.pairs)
	if len(h.RawContext) == 0 {
		return ec, true
	}
	all := string(h.RawContext)
	s := cryptobyte.String(h.RawContext)
	var n uint16
	if !s.ReadUint16(&n) {
		return nil, false
	}
	for range n {
		var k, v cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&k) || !s.ReadUint16LengthPrefixed(&v) {
			return nil, false // not what parseContext checked
		}
		end := len(all) - len(s)
		key := all[end-len(v)-2-len(k) : end-len(v)-2]
		if _, dup := ec[key]; dup {
			return nil, false
		}
		ec[key] = all[end-len(v) : end]
	}
	return ec, true
}

// ContextMap returns the context of a parsed header, building its map on
// the first call; the caller must not modify it. For a header to be
// written, it returns Context. It is not safe for concurrent use.
func (h *MessageHeader) ContextMap() map[string]string {
	if !h.read {
		return h.Context
	}
	if h.parsed == nil {
		h.parsed, _ = h.buildContext() // parseContext ruled out repeated keys
	}
	return h.parsed
}

// ContextValue looks up one key of a parsed header's context.
func (h *MessageHeader) ContextValue(key string) (string, bool) {
	if v, ok, small := h.scanContext(key); small {
		return string(v), ok
	}
	v, ok := h.ContextMap()[key]
	return v, ok
}

// ContextHas reports whether a parsed header's context has key, and with
// value, without building its map or copying a value when it is small.
func (h *MessageHeader) ContextHas(key, value string) (has, equal bool) {
	if v, ok, small := h.scanContext(key); small {
		return ok, ok && string(v) == value
	}
	v, ok := h.ContextMap()[key]
	return ok, ok && v == value
}

// scanContext looks key up in the raw pairs of a small canonical context
// that has no map yet; small reports whether it could.
func (h *MessageHeader) scanContext(key string) (value []byte, ok, small bool) {
	if !h.read || h.parsed != nil || h.pairs > 8 {
		return nil, false, false
	}
	s := cryptobyte.String(h.RawContext)
	var n uint16
	s.ReadUint16(&n) // an empty field has no count: n stays 0
	for range n {
		var k, v cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&k) || !s.ReadUint16LengthPrefixed(&v) {
			break // not what parseContext checked
		}
		if string(k) == key {
			return v, true, true
		}
	}
	return nil, false, true
}

// ContextEncoding returns the canonical encoding of a parsed header's
// context (AppendContext's) when the header holds it as read, else nil: a
// context written in another order, with an empty key, or over
// MaxContextBytes must be encoded anew by whoever needs it.
func (h *MessageHeader) ContextEncoding() []byte {
	switch {
	case !h.read || !h.canonical || len(h.RawContext) > MaxContextBytes:
		return nil
	case len(h.RawContext) == 0:
		return []byte{0, 0}
	}
	return h.RawContext
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
