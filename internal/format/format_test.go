package format

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// seedBlobs returns the blobs of the decrypt vectors.
func seedBlobs(t testing.TB) [][]byte {
	files, err := filepath.Glob("../../testdata/vectors/decrypt/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var v struct{ Blob string }
		require.NoError(t, json.Unmarshal(b, &v))
		blob, err := hex.DecodeString(v.Blob)
		require.NoError(t, err)
		out = append(out, blob)
	}
	return out
}

func TestBlobRoundTrip(t *testing.T) {
	h := BlobHeader{KeyID: "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3", KeyVersion: 7}
	copy(h.Nonce[:], "abcdefghijkl")
	enc, err := h.AppendHeader(nil)
	require.NoError(t, err)
	require.Len(t, enc, HeaderSize(len(h.KeyID)))
	blob := append(bytes.Clone(enc), make([]byte, TagSize)...)
	got, header, sealed, err := ParseBlob(blob)
	require.NoError(t, err)
	require.Equal(t, h, got)
	require.Equal(t, enc, header)
	require.Len(t, sealed, TagSize)
}

func TestAppendHeaderRejects(t *testing.T) {
	for _, h := range []BlobHeader{
		{KeyID: "", KeyVersion: 1},
		{KeyID: "k", KeyVersion: 0},
		{KeyID: strings.Repeat("k", MaxKeyIDLen+1), KeyVersion: 1},
	} {
		_, err := h.AppendHeader(nil)
		require.ErrorIs(t, err, ErrMalformed)
	}
}

func TestContext(t *testing.T) {
	tests := []struct {
		name string
		ec   map[string]string
		want string // hex, "" for an error
	}{
		{"nil", nil, "0000"},
		{"empty", map[string]string{}, "0000"},
		{"one", map[string]string{"a": "b"}, "0001" + "0001" + "61" + "0001" + "62"},
		{"sorted, prefix first", map[string]string{"ab": "", "a": "x"}, "0002" + "0001" + "61" + "0001" + "78" + "0002" + "6162" + "0000"},
		{"empty key", map[string]string{"": "x"}, ""},
		{"bad utf-8 key", map[string]string{"\xff": "x"}, ""},
		{"bad utf-8 value", map[string]string{"k": "\xc3"}, ""},
		{"too big", map[string]string{"k": strings.Repeat("v", MaxContextBytes)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendContext(nil, tt.ec)
			if tt.want == "" {
				require.ErrorIs(t, err, ErrContext)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, hex.EncodeToString(got))
			back, err := ParseContext(got)
			require.NoError(t, err)
			require.Len(t, back, len(tt.ec))
			for k, v := range tt.ec {
				require.Equal(t, v, back[k])
			}
		})
	}
}

func TestParseContextRejectsNonCanonical(t *testing.T) {
	for name, in := range map[string]string{
		"short":        "00",
		"count high":   "0001",
		"out of order": "0002" + "0001" + "62" + "0000" + "0001" + "61" + "0000",
		"repeated key": "0002" + "0001" + "61" + "0000" + "0001" + "61" + "0000",
		"empty key":    "0001" + "0000" + "0000",
		"trailing":     "0000" + "00",
		"bad utf-8":    "0001" + "0001" + "ff" + "0000",
	} {
		b, err := hex.DecodeString(in)
		require.NoError(t, err)
		_, err = ParseContext(b)
		require.ErrorIs(t, err, ErrContext, name)
	}
}

// FuzzParseBlob checks that the parser never panics and accepts only one
// encoding: whatever it accepts re-encodes to the same header bytes.
func FuzzParseBlob(f *testing.F) {
	for _, b := range seedBlobs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, header, sealed, err := ParseBlob(in)
		if err != nil {
			return
		}
		enc, err := h.AppendHeader(nil)
		if err != nil || !bytes.Equal(enc, header) || !bytes.Equal(append(enc, sealed...), in) {
			t.Fatalf("non-canonical blob accepted: %x", in)
		}
		if len(sealed) < TagSize {
			t.Fatalf("blob without a tag accepted")
		}
	})
}

// FuzzParseContext checks that every accepted encoding is the canonical
// encoding of what it decodes to.
func FuzzParseContext(f *testing.F) {
	for _, ec := range []map[string]string{nil, {"a": "b"}, {"purpose": "test", "tenant": "17", "é": "ü"}} {
		b, err := AppendContext(nil, ec)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ec, err := ParseContext(in)
		if err != nil {
			return
		}
		enc, err := AppendContext(nil, ec)
		if err != nil || !bytes.Equal(enc, in) {
			t.Fatalf("non-canonical context accepted: %x", in)
		}
	})
}
