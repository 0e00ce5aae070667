package kms_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
)

// The decrypt vectors pin the ciphertext blob format of docs/FORMAT.md.
// They are written by writeVectors, an implementation of the spec that
// shares no code with the library (go test -run TestDecryptVectors -update),
// and replayed through the public API.

var update = flag.Bool("update", false, "rewrite testdata/vectors/decrypt")

const vectorDir = "testdata/vectors/decrypt"

type vector struct {
	Comment string `json:"comment"`
	// Expect is "success" or the sentinel the error must match:
	// invalid_ciphertext, incorrect_key, not_found, invalid_argument.
	Expect string `json:"expect"`
	// Keys maps key ID → version → hex material (test material only).
	Keys         map[string]map[string]string `json:"keys"`
	DecryptKeyID string                       `json:"decrypt_key_id,omitempty"`
	Context      map[string]string            `json:"context"`
	Plaintext    string                       `json:"plaintext,omitempty"`
	Blob         string                       `json:"blob"`
}

// vectorRootKey is the fixed root key of the vector stores.
// Never use a literal key like this outside tests.
var vectorRootKey = bytes.Repeat([]byte{0x42}, 32)

// ringFor builds a ring whose Store holds the vector's keys, through the
// public Store and RootKey interfaces (FORMAT.md section 3).
func ringFor(t testing.TB, v *vector) *kms.KeyRing {
	t.Helper()
	ctx := context.Background()
	rk, err := kms.NewAESRootKey(vectorRootKey, nil)
	require.NoError(t, err)
	st := kms.NewMemoryStore()
	for id, vers := range v.Keys {
		rec := &kms.KeyRecord{KeyID: id, Spec: kms.SymmetricDefault, Usage: kms.EncryptDecrypt, Origin: kms.OriginAWSKMS, State: kms.KeyStateEnabled}
		for vs, mh := range vers {
			n, err := strconv.Atoi(vs)
			require.NoError(t, err)
			m, err := hex.DecodeString(mh)
			require.NoError(t, err)
			ad := append([]byte("pocketkms/v1/material\x00"+id+"\x00"), binary.BigEndian.AppendUint32(nil, uint32(n))...)
			w, err := rk.Wrap(ctx, m, ad)
			require.NoError(t, err)
			rec.Versions = append(rec.Versions, kms.VersionRecord{Version: uint32(n), Wrapped: w})
			rec.Primary = max(rec.Primary, uint32(n))
		}
		slices.SortFunc(rec.Versions, func(a, b kms.VersionRecord) int { return int(a.Version) - int(b.Version) })
		require.NoError(t, st.PutKey(ctx, rec))
	}
	ring, err := kms.NewKeyRing(kms.Config{Store: st, RootKey: rk})
	require.NoError(t, err)
	return ring
}

func loadVectors(t testing.TB) map[string]*vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no vectors in %s", vectorDir)
	out := make(map[string]*vector, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var v vector
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields() // a typo must not skip a check
		require.NoError(t, dec.Decode(&v), f)
		require.Contains(t, []string{"success", "invalid_ciphertext", "incorrect_key", "not_found", "invalid_argument"}, v.Expect, f)
		out[filepath.Base(f)] = &v
	}
	return out
}

var expectErr = map[string]error{
	"invalid_ciphertext": kms.ErrInvalidCiphertext,
	"incorrect_key":      kms.ErrIncorrectKey,
	"not_found":          kms.ErrNotFound,
	"invalid_argument":   kms.ErrInvalidArgument,
}

func TestDecryptVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	for name, v := range loadVectors(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ring := ringFor(t, v)
			blob, err := hex.DecodeString(v.Blob)
			require.NoError(t, err)
			out, err := ring.Decrypt(context.Background(), kms.DecryptInput{
				CiphertextBlob: blob, KeyID: v.DecryptKeyID, EncryptionContext: v.Context,
			})
			if v.Expect != "success" {
				require.ErrorIs(t, err, expectErr[v.Expect], v.Comment)
				require.Nil(t, out)
				return
			}
			require.NoError(t, err, v.Comment)
			want, err := hex.DecodeString(v.Plaintext)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, out.Plaintext), "plaintext differs")
		})
	}
}

// --- the vector writer: an independent implementation of FORMAT.md ---

const (
	vkA = "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"
	vkB = "11111111-2222-4333-8444-555555555555"
)

func vmaterial(label string) []byte {
	s := sha256.Sum256([]byte("pocketkms test vector key " + label))
	return s[:]
}

func vnonce(label string) []byte {
	s := sha256.Sum256([]byte("pocketkms test vector nonce " + label))
	return s[:12]
}

// vcontext encodes an encryption context per FORMAT.md section 1.
func vcontext(ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := binary.BigEndian.AppendUint16(nil, uint16(len(keys)))
	for _, k := range keys {
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(ec[k])))
		b = append(b, ec[k]...)
	}
	return b
}

// vheader encodes a blob header per FORMAT.md section 2.
func vheader(keyID string, version uint32, nonce []byte) []byte {
	b := []byte{0x6B, 0x6D, 0x01, 0x01, byte(len(keyID))}
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint32(b, version)
	return append(b, nonce...)
}

func vseal(key, header, pt []byte, ec map[string]string) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	nonce := header[len(header)-12:]
	return g.Seal(bytes.Clone(header), nonce, pt, append(bytes.Clone(header), vcontext(ec)...))
}

func writeVectors(t *testing.T) {
	keys := map[string]map[string]string{
		vkA: {"1": hex.EncodeToString(vmaterial("A1")), "2": hex.EncodeToString(vmaterial("A2"))},
		vkB: {"1": hex.EncodeToString(vmaterial("B1"))},
	}
	ec := map[string]string{"purpose": "test vectors", "tenant": "17"}
	pt := []byte("pocketkms vector plaintext")
	good := vseal(vmaterial("A1"), vheader(vkA, 1, vnonce("1")), pt, ec)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }
	set := func(b []byte, i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }
	hdrLen := 5 + len(vkA) + 4 + 12
	vs := map[string]vector{
		"success_basic":     {Comment: "version 1, two-pair context", Expect: "success", Context: ec, Plaintext: hex.EncodeToString(pt), Blob: hex.EncodeToString(good)},
		"success_key_named": {Comment: "Decrypt names the blob's key", Expect: "success", DecryptKeyID: vkA, Context: ec, Plaintext: hex.EncodeToString(pt), Blob: hex.EncodeToString(good)},
		"success_empty_context": {Comment: "no context encodes as count 0", Expect: "success", Plaintext: hex.EncodeToString(pt),
			Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader(vkA, 1, vnonce("2")), pt, nil))},
		"success_version_2": {Comment: "the blob names version 2", Expect: "success", Context: ec, Plaintext: hex.EncodeToString(pt),
			Blob: hex.EncodeToString(vseal(vmaterial("A2"), vheader(vkA, 2, vnonce("3")), pt, ec))},
		"success_context_order": {Comment: "keys sort bytewise, a prefix first; UTF-8 keys and values", Expect: "success",
			Context: map[string]string{"b": "1", "a": "2", "ab": "3", "é": "ü", "Z": ""}, Plaintext: hex.EncodeToString(pt),
			Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader(vkA, 1, vnonce("4")), pt, map[string]string{"b": "1", "a": "2", "ab": "3", "é": "ü", "Z": ""}))},
		"success_max_plaintext": {Comment: "4,096 bytes of plaintext", Expect: "success", Context: ec, Plaintext: hex.EncodeToString(bytes.Repeat([]byte{0xA5}, 4096)),
			Blob: hex.EncodeToString(vseal(vmaterial("B1"), vheader(vkB, 1, vnonce("5")), bytes.Repeat([]byte{0xA5}, 4096), ec))},
		"context_missing":      {Comment: "sealed with a context, opened without", Expect: "invalid_ciphertext", Blob: hex.EncodeToString(good)},
		"context_extra_pair":   {Comment: "one more pair than sealed", Expect: "invalid_ciphertext", Context: map[string]string{"purpose": "test vectors", "tenant": "17", "x": "y"}, Blob: hex.EncodeToString(good)},
		"context_value_change": {Comment: "same keys, one value differs", Expect: "invalid_ciphertext", Context: map[string]string{"purpose": "test vectors", "tenant": "18"}, Blob: hex.EncodeToString(good)},
		"context_concatenation": {Comment: "pairs that concatenate to the same string must differ", Expect: "invalid_ciphertext",
			Context: map[string]string{"purpose": "test vectorst", "enant": "17"}, Blob: hex.EncodeToString(good)},
		"header_magic":       {Comment: "first magic byte changed", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(flip(good, 0))},
		"header_version":     {Comment: "format_version 0x03", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(set(good, 2, 0x03))},
		"header_algorithm":   {Comment: "algorithm 0x02 is not defined", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(set(good, 3, 0x02))},
		"header_key_version": {Comment: "key_version 1 changed to 2: the header is bound as associated data", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(set(good, 5+len(vkA)+3, 0x02))},
		"key_version_zero":   {Comment: "key_version 0 is reserved", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader(vkA, 0, vnonce("6")), pt, ec))},
		"key_version_absent": {Comment: "key_version 3 does not exist", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader(vkA, 3, vnonce("7")), pt, ec))},
		"key_id_swapped":     {Comment: "header names key B, sealed with key A", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader(vkB, 1, vnonce("8")), pt, ec))},
		"key_id_unknown":     {Comment: "the named key does not exist", Expect: "not_found", Context: ec, Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader("99999999-2222-4333-8444-555555555555", 1, vnonce("9")), pt, ec))},
		"key_id_empty":       {Comment: "key_id of length 0", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader("", 1, vnonce("10")), pt, ec))},
		"key_id_space":       {Comment: "key_id holds a space", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader("a b", 1, vnonce("11")), pt, ec))},
		"key_id_path":        {Comment: "key_id holds a path: only letters, digits and '-' are allowed", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader("../keys/x", 1, vnonce("13")), pt, ec))},
		"key_named_other":    {Comment: "Decrypt names key B for a blob of key A", Expect: "incorrect_key", DecryptKeyID: vkB, Context: ec, Blob: hex.EncodeToString(good)},
		"nonce_flipped":      {Comment: "one nonce bit", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(flip(good, hdrLen-1))},
		"ciphertext_flipped": {Comment: "one ciphertext bit", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(flip(good, hdrLen))},
		"tag_flipped":        {Comment: "one tag bit", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(flip(good, len(good)-1))},
		"truncated_tag":      {Comment: "last byte cut", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(good[:len(good)-1])},
		"truncated_header":   {Comment: "cut inside the nonce", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(good[:hdrLen-3])},
		"no_tag":             {Comment: "header and 15 bytes", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(append(vheader(vkA, 1, vnonce("1")), make([]byte, 15)...))},
		"trailing_byte":      {Comment: "one byte appended", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(append(bytes.Clone(good), 0))},
		"oversized":          {Comment: "6,145 bytes exceeds the CiphertextBlob limit", Expect: "invalid_ciphertext", Context: ec, Blob: hex.EncodeToString(vseal(vmaterial("A1"), vheader(vkA, 1, vnonce("12")), make([]byte, 6145-73), ec))},
		"empty":              {Comment: "no bytes", Expect: "invalid_ciphertext", Context: ec, Blob: ""},
	}
	require.NoError(t, os.RemoveAll(vectorDir))
	require.NoError(t, os.MkdirAll(vectorDir, 0o755))
	for name, v := range vs {
		v.Keys = keys
		b, err := json.MarshalIndent(v, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(vectorDir, name+".json"), append(b, '\n'), 0o644))
	}
	t.Logf("wrote %d vectors to %s", len(vs), vectorDir)
}
