package format

import (
	"bytes"
	"encoding/binary"
	"encoding/json"

	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/cryptobyte"
)

const esdkVectors = "../../testdata/esdk/v4-Net-4.0.1"

type esdkTest struct {
	name       string
	ciphertext []byte
	context    map[string]string
	masterKeys []map[string]string
}

// loadESDK reads the AWS Encryption SDK decrypt manifest (testdata/esdk).
func loadESDK(t testing.TB) []esdkTest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(esdkVectors, "manifest.json"))
	require.NoError(t, err)
	var m struct {
		Tests map[string]struct {
			Ciphertext        string              `json:"ciphertext"`
			MasterKeys        []map[string]string `json:"master-keys"`
			EncryptionContext map[string]string   `json:"encryption-context"`
		} `json:"tests"`
	}
	require.NoError(t, json.Unmarshal(b, &m))
	require.Len(t, m.Tests, 132)
	var out []esdkTest
	for name, tc := range m.Tests {
		ct, err := os.ReadFile(filepath.Join(esdkVectors, strings.TrimPrefix(tc.Ciphertext, "file://")))
		require.NoError(t, err)
		out = append(out, esdkTest{name, ct, tc.EncryptionContext, tc.MasterKeys})
	}
	return out
}

func TestParseMessageHeaderVectors(t *testing.T) {
	seen := map[uint16]int{}
	for _, tc := range loadESDK(t) {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := ParseMessageHeader(tc.ciphertext, HeaderLimits{MaxEDKs: 10})
			require.NoError(t, err)
			id, err := strconv.ParseUint(tc.name[:4], 16, 16)
			require.NoError(t, err)
			assert.Equal(t, uint16(id), h.Suite.ID, "suite named by the vector")
			seen[h.Suite.ID]++
			if h.Suite.Version == 2 {
				assert.Len(t, h.MessageID, 32)
				assert.Len(t, h.Commitment, 32)
			} else {
				assert.Len(t, h.MessageID, 16)
				assert.Nil(t, h.Commitment)
			}
			// Signed suites store the verification key in the context.
			stored := maps.Clone(h.ContextMap())
			pub, signed := stored["aws-crypto-public-key"]
			assert.Equal(t, h.Suite.SignatureHash != 0, signed, "aws-crypto-public-key iff signed")
			if signed {
				assert.NotEmpty(t, pub)
				delete(stored, "aws-crypto-public-key")
			}
			// With the RequiredEncryptionContext CMM the required pairs are
			// not stored: the reader supplies them, and they are authenticated
			// with the header. The stored pairs are a subset of the manifest's.
			if strings.Contains(tc.name, "cmm_RequiredEncryptionContext") {
				assert.Less(t, len(stored), len(tc.context))
			} else {
				assert.Equal(t, len(tc.context), len(stored))
			}
			for k, v := range stored {
				assert.Equal(t, tc.context[k], v, "context pair %q", k)
			}
			require.Len(t, h.EDKs, len(tc.masterKeys))
			for i, mk := range tc.masterKeys {
				if mk["type"] == "aws-kms" {
					assert.Equal(t, "aws-kms", h.EDKs[i].ProviderID)
					assert.True(t, strings.HasPrefix(string(h.EDKs[i].ProviderInfo), "arn:aws:kms:"))
				} else {
					assert.Equal(t, mk["provider-id"], h.EDKs[i].ProviderID)
					assert.True(t, bytes.HasPrefix(h.EDKs[i].ProviderInfo, []byte(mk["key"])), "provider info names the key")
				}
			}
			assert.True(t, h.Framed)
			assert.Positive(t, h.FrameLength)
			assert.Len(t, h.Tag, 16)
			assert.Less(t, len(h.Body), n)

			out, err := h.AppendHeader(nil)
			require.NoError(t, err)
			assert.Equal(t, tc.ciphertext[:n], out, "the writer is the parser's inverse")
			for i := range n { // every truncation of the header fails
				_, _, err := ParseMessageHeader(tc.ciphertext[:i], HeaderLimits{})
				require.ErrorIs(t, err, ErrHeader, "truncated at %d", i)
			}
		})
	}
	for id := range suites {
		assert.Positive(t, seen[id], "no vector for suite %04x", id)
	}
}

// header builds a valid version 2 header for the negative tests.
func testHeader(t *testing.T) []byte {
	t.Helper()
	h := MessageHeader{
		Suite: suites[0x0478], MessageID: bytes.Repeat([]byte{1}, 32),
		Context: map[string]string{"a": "1"},
		EDKs:    []EDK{{ProviderID: "aws-kms", ProviderInfo: []byte("arn"), Ciphertext: []byte("ct")}},
		Framed:  true, FrameLength: 4096, Commitment: make([]byte, 32), Tag: make([]byte, 16),
	}
	b, err := h.AppendHeader(nil)
	require.NoError(t, err)
	_, n, err := ParseMessageHeader(b, HeaderLimits{})
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	return b
}

func TestParseMessageHeaderRejects(t *testing.T) {
	good := testHeader(t)
	set := func(i int, v ...byte) []byte { b := bytes.Clone(good); copy(b[i:], v); return b }
	// Offsets in the version 2 header: version 0, suite 1, message ID 3,
	// AAD length 35, AAD 37 (count 2, "a" 3, "1" 3 = 8 bytes), EDK count 45.
	cases := map[string][]byte{
		"version 3":                         set(0, 3),
		"version 1 with suite 0478":         set(0, 1),
		"unknown suite":                     set(1, 0x04, 0x79),
		"non-committing suite in version 2": set(1, 0x01, 0x78),
		"no EDKs":                           set(45, 0, 0),
		"AAD length short":                  set(35, 0, 7),
		"AAD count high":                    set(37, 0, 2),
		"empty":                             {},
	}
	dup := bytes.Clone(good[:35])
	aad := []byte{0, 2, 0, 1, 'a', 0, 1, '1', 0, 1, 'a', 0, 1, '2'}
	dup = binary.BigEndian.AppendUint16(dup, uint16(len(aad)))
	dup = append(append(dup, aad...), good[45:]...)
	cases["duplicate context key"] = dup
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := ParseMessageHeader(in, HeaderLimits{})
			require.ErrorIs(t, err, ErrHeader)
		})
	}
	t.Run("too many EDKs", func(t *testing.T) {
		_, _, err := ParseMessageHeader(good, HeaderLimits{MaxEDKs: 1})
		require.NoError(t, err)
		two := bytes.Clone(good[:45])
		two = append(two, 0, 2)
		edk := []byte{0, 1, 'p', 0, 0, 0, 1, 'c'}
		two = append(append(append(two, edk...), edk...), good[45+2+2+7+2+3+2+2:]...)
		_, _, err = ParseMessageHeader(two, HeaderLimits{})
		require.NoError(t, err, "two EDKs are a valid header")
		_, _, err = ParseMessageHeader(two, HeaderLimits{MaxEDKs: 1})
		require.ErrorIs(t, err, ErrHeader)
	})
}

func TestParseMessageHeaderV1Fields(t *testing.T) {
	var v1 []byte
	for _, tc := range loadESDK(t) {
		if strings.HasPrefix(tc.name, "0078") {
			v1 = tc.ciphertext
			break
		}
	}
	require.NotNil(t, v1)
	h, _, err := ParseMessageHeader(v1, HeaderLimits{})
	require.NoError(t, err)
	body := len(h.Body)
	// The version 1 body ends: content type, reserved (4), IV length, frame length (4).
	for name, off := range map[string]int{"reserved": body - 9, "IV length": body - 5, "content type": body - 10} {
		b := bytes.Clone(v1)
		b[off] ^= 0x40
		_, _, err := ParseMessageHeader(b, HeaderLimits{})
		require.ErrorIs(t, err, ErrHeader, name)
	}
	b := bytes.Clone(v1)
	copy(b[body-4:], []byte{0, 0, 0, 0}) // framed with frame length 0
	_, _, err = ParseMessageHeader(b, HeaderLimits{})
	require.ErrorIs(t, err, ErrHeader)
}

// FuzzParseMessageHeader: no panic, and whatever parses is written back
// byte for byte.
func FuzzParseMessageHeader(f *testing.F) {
	for _, tc := range loadESDK(f) {
		_, n, err := ParseMessageHeader(tc.ciphertext, HeaderLimits{})
		require.NoError(f, err)
		f.Add(tc.ciphertext[:n])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, n, err := ParseMessageHeader(in, HeaderLimits{})
		if err != nil {
			return
		}
		out, err := h.AppendHeader(nil)
		if err != nil || !bytes.Equal(out, in[:n]) {
			t.Fatalf("accepted a header it cannot write back: %x", in[:n])
		}
		want := naiveContext(t, h.RawContext)
		// Lookups first, while a small canonical context has no map yet.
		for k, v := range want {
			got, ok := h.ContextValue(k)
			has, equal := h.ContextHas(k, v)
			if !ok || got != v || !has || !equal {
				t.Fatalf("lookup of %q: %q, %v, %v, %v; want %q", k, got, ok, has, equal, v)
			}
			if _, equal := h.ContextHas(k, v+"x"); equal {
				t.Fatalf("lookup of %q matched another value", k)
			}
		}
		if _, ok := want["absent"]; !ok {
			if _, ok := h.ContextValue("absent"); ok {
				t.Fatal("found a key that is not there")
			}
		}
		if !maps.Equal(want, h.ContextMap()) {
			t.Fatalf("context %q, want %q", h.ContextMap(), want)
		}
		// The encoding handed to the KMS unwrap in place of the map must be
		// exactly the one AppendContext makes of it, or absent.
		canon, cerr := AppendContext(nil, h.ContextMap())
		if enc := h.ContextEncoding(); enc != nil && (cerr != nil || !bytes.Equal(enc, canon)) {
			t.Fatalf("ContextEncoding %x, want %x (%v)", enc, canon, cerr)
		}
	})
}

// TestContextEncoding checks when a header's context serves as its
// canonical encoding: pairs in ascending key order, none empty, within
// MaxContextBytes; an empty field stands for a count of zero.
func TestContextEncoding(t *testing.T) {
	pair := func(k, v string) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		return append(b, v...)
	}
	field := func(pairs ...[]byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(pairs)))
		for _, p := range pairs {
			b = append(b, p...)
		}
		return b
	}
	big := strings.Repeat("v", MaxContextBytes)
	for _, tc := range []struct {
		name      string
		raw       []byte
		canonical bool
	}{
		{"empty field", nil, true},
		{"count zero", field(), true},
		{"one pair", field(pair("a", "1")), true},
		{"ascending", field(pair("a", "1"), pair("b", "2"), pair("ba", "")), true},
		{"descending", field(pair("b", "2"), pair("a", "1")), false},
		{"byte order, not rune order", field(pair("Z", ""), pair("a", "")), true},
		{"empty key", field(pair("", "x")), false},
		{"over MaxContextBytes", field(pair("k", big)), false},
		{"repeated key", field(pair("a", "1"), pair("a", "1")), false},
		{"repeated key out of order", field(pair("b", ""), pair("a", ""), pair("b", "")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &MessageHeader{
				Suite: suites[0x0478], MessageID: make([]byte, 32), RawContext: tc.raw,
				EDKs:   []EDK{{ProviderID: "p", ProviderInfo: []byte("i"), Ciphertext: []byte("c")}},
				Framed: true, FrameLength: 4096, Commitment: make([]byte, 32), Tag: make([]byte, 16),
			}
			if tc.raw == nil {
				h.RawContext = []byte{}
			}
			hdr, err := h.AppendHeader(nil)
			require.NoError(t, err)
			got, _, err := ParseMessageHeader(hdr, HeaderLimits{})
			if strings.HasPrefix(tc.name, "repeated") {
				require.ErrorIs(t, err, ErrHeader)
				return
			}
			require.NoError(t, err)
			enc := got.ContextEncoding()
			if !tc.canonical {
				assert.Nil(t, enc)
				return
			}
			want, err := AppendContext(nil, got.ContextMap())
			require.NoError(t, err)
			assert.Equal(t, want, enc)
		})
	}
}

// naiveContext decodes a header's context field the plain way (a string
// per key and value), the reference for parseESDKContext's substrings.
func naiveContext(t *testing.T, raw []byte) map[string]string {
	ec := map[string]string{}
	s := cryptobyte.String(raw)
	var n uint16
	if s.Empty() {
		return ec
	}
	if !s.ReadUint16(&n) {
		t.Fatal("accepted a context field without a count")
	}
	for range n {
		var k, v cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&k) || !s.ReadUint16LengthPrefixed(&v) {
			t.Fatal("accepted a truncated context field")
		}
		ec[string(k)] = string(v)
	}
	return ec
}
