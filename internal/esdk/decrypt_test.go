package esdk

import (
	"bytes"
	"crypto"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms/internal/format"
)

const vectors = "../../testdata/esdk/v4-Net-4.0.1"

type vectorKeys struct {
	aes256 []byte
	rsa    *rsa.PrivateKey
}

func loadKeys(t testing.TB) vectorKeys {
	b, err := os.ReadFile(filepath.Join(vectors, "keys.json"))
	require.NoError(t, err)
	var m struct {
		Keys map[string]struct{ Material string } `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(b, &m))
	var k vectorKeys
	k.aes256, err = base64.StdEncoding.DecodeString(m.Keys["aes-256"].Material)
	require.NoError(t, err)
	block, _ := pem.Decode([]byte(m.Keys["rsa-4096-private"].Material))
	require.NotNil(t, block)
	pk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	k.rsa = pk.(*rsa.PrivateKey)
	return k
}

type vectorTest struct {
	Ciphertext        string              `json:"ciphertext"`
	MasterKeys        []map[string]string `json:"master-keys"`
	EncryptionContext map[string]string   `json:"encryption-context"`
	Result            struct {
		Output struct {
			Plaintext string `json:"plaintext"`
		} `json:"output"`
	} `json:"result"`
}

func readFile(t testing.TB, uri string) []byte {
	b, err := os.ReadFile(filepath.Join(vectors, strings.TrimPrefix(uri, "file://")))
	require.NoError(t, err)
	return b
}

// TestOpenSDKVectors opens every message of the SDK's decrypt vectors whose
// data key is wrapped by a raw AES or raw RSA key (99 of 132), in every
// suite, and checks the plaintext; the 33 wrapped by AWS KMS find no key.
func TestOpenSDKVectors(t *testing.T) {
	keys := loadKeys(t)
	b, err := os.ReadFile(filepath.Join(vectors, "manifest.json"))
	require.NoError(t, err)
	var m struct{ Tests map[string]vectorTest }
	require.NoError(t, json.Unmarshal(b, &m))
	aes, err := NewRawAES("aws-raw-vectors-persistant", "aes-256", keys.aes256)
	require.NoError(t, err)
	opened, noKey := 0, 0
	for name, tc := range m.Tests {
		t.Run(name, func(t *testing.T) {
			mk := tc.MasterKeys[0]
			var kr Keyring
			switch {
			case mk["type"] == "aws-kms":
			case mk["encryption-algorithm"] == "aes":
				kr = aes
			case mk["padding-hash"] == "sha256":
				kr = NewRawRSA(mk["provider-id"], mk["key"], keys.rsa, crypto.SHA256)
			case mk["padding-hash"] == "sha512":
				kr = NewRawRSA(mk["provider-id"], mk["key"], keys.rsa, crypto.SHA512)
			default:
				t.Fatalf("unexpected master key %v", mk)
			}
			msg := readFile(t, tc.Ciphertext)
			want := readFile(t, tc.Result.Output.Plaintext)
			opt := Options{AllowNonCommitting: true, MaxEDKs: 10, Reproduced: tc.EncryptionContext}
			if kr == nil {
				_, _, err := Open(msg, Unwrappers(aes), opt)
				require.ErrorIs(t, err, ErrNoKey)
				noKey++
				return
			}
			pt, h, err := Open(msg, Unwrappers(kr), opt)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, pt), "plaintext differs")
			opened++

			if !h.Suite.Committing {
				_, _, err := Open(msg, Unwrappers(kr), Options{Reproduced: tc.EncryptionContext})
				require.ErrorIs(t, err, ErrNonCommitting, "non-committing suites need the opt-in")
			}
			if strings.Contains(name, "RequiredEncryptionContext") {
				_, _, err := Open(msg, Unwrappers(kr), Options{AllowNonCommitting: true})
				require.Error(t, err, "the required pairs must be supplied")
			}
			// Tampering anywhere fails and releases nothing. Checking every
			// byte of every vector is slow with RSA-4096; sample positions.
			for _, i := range []int{0, 5, len(h.Body) - 1, len(h.Body) + 3, len(msg) / 2, len(msg) - 20, len(msg) - 1} {
				bad := bytes.Clone(msg)
				bad[i] ^= 0x01
				pt, _, err := Open(bad, Unwrappers(kr), opt)
				require.Error(t, err, "byte %d", i)
				require.Nil(t, pt)
			}
			_, _, err = Open(msg[:len(msg)-1], Unwrappers(kr), opt)
			require.Error(t, err, "truncated")
			_, _, err = Open(append(bytes.Clone(msg), 0), Unwrappers(kr), opt)
			require.Error(t, err, "trailing byte")
		})
	}
	assert.Equal(t, 99, opened)
	assert.Equal(t, 33, noKey)
}

// FuzzOpen: arbitrary messages never panic Open and never yield plaintext
// with an error. Seeded with the raw AES messages of the SDK's vectors.
func FuzzOpen(f *testing.F) {
	keys := loadKeys(f)
	b, err := os.ReadFile(filepath.Join(vectors, "manifest.json"))
	require.NoError(f, err)
	var m struct{ Tests map[string]vectorTest }
	require.NoError(f, json.Unmarshal(b, &m))
	for _, tc := range m.Tests {
		if tc.MasterKeys[0]["encryption-algorithm"] == "aes" {
			f.Add(readFile(f, tc.Ciphertext))
		}
	}
	aes, err := NewRawAES("aws-raw-vectors-persistant", "aes-256", keys.aes256)
	require.NoError(f, err)
	opt := Options{AllowNonCommitting: true, MaxEDKs: 10, Reproduced: map[string]string{"key1": "val1", "key2": "val2"}}
	f.Fuzz(func(t *testing.T, msg []byte) {
		pt, _, err := Open(msg, Unwrappers(aes), opt)
		if err != nil && pt != nil {
			t.Fatal("plaintext returned with an error")
		}
	})
}

// TestSealOpen: messages written by Seal open with Open, for both suites
// pocketkms writes, every frame boundary case, and both raw recipients;
// tampering fails.
func TestSealOpen(t *testing.T) {
	keys := loadKeys(t)
	aes, err := NewRawAES("ns", "aes", keys.aes256)
	require.NoError(t, err)
	rsaKR := NewRawRSA("ns", "rsa", keys.rsa, crypto.SHA256)
	ec := map[string]string{"tenant": "17", "purpose": "test"}
	for _, id := range []uint16{0x0478, 0x0578} {
		for _, size := range []int{0, 1, 63, 64, 65, 128, 1000} {
			t.Run(fmt.Sprintf("%04x/%d", id, size), func(t *testing.T) {
				suite, _ := format.SuiteByID(id)
				dk := make([]byte, 32)
				_, _ = rand.Read(dk)
				in := SealInput{Suite: suite, DataKey: dk, Context: ec, FrameLen: 64, Plaintext: bytes.Repeat([]byte{0xAB}, size), Rand: rand.Reader}
				if suite.SignatureHash != 0 {
					// The recipients see the context with the verification key in it.
					signer, pub, err := NewSigner(rand.Reader)
					require.NoError(t, err)
					in.Signer, in.Context = signer, WithPublicKey(ec, pub)
				}
				e1, err := aes.Wrap(dk, in.Context, rand.Reader)
				require.NoError(t, err)
				e2, err := rsaKR.Wrap(dk, in.Context, rand.Reader)
				require.NoError(t, err)
				in.EDKs = []format.EDK{e1, e2}
				msg, err := Seal(in)
				require.NoError(t, err)
				for _, kr := range []Keyring{aes, rsaKR} {
					pt, h, err := Open(msg, Unwrappers(kr), Options{Reproduced: ec})
					require.NoError(t, err)
					require.True(t, bytes.Equal(in.Plaintext, pt))
					assert.Equal(t, id, h.Suite.ID)
				}
				for i := range msg {
					bad := bytes.Clone(msg)
					bad[i] ^= 0x80
					pt, _, err := Open(bad, Unwrappers(aes), Options{Reproduced: ec})
					require.Error(t, err, "byte %d", i)
					require.Nil(t, pt)
				}
				_, _, err = Open(msg, Unwrappers(aes), Options{Reproduced: map[string]string{"tenant": "18"}})
				require.Error(t, err, "a different context")
			})
		}
	}
}

// TestCommittedKeysMatchHKDF: the derivation equals crypto/hkdf's for
// random inputs.
func TestCommittedKeysMatchHKDF(t *testing.T) {
	for _, id := range []uint16{0x0478, 0x0578} {
		s, _ := format.SuiteByID(id)
		for range 200 {
			dk, mid := make([]byte, 32), make([]byte, 32)
			_, _ = rand.Read(dk)
			_, _ = rand.Read(mid)
			key, commit, err := committedKeys(s, dk, mid)
			require.NoError(t, err)
			info := binary.BigEndian.AppendUint16(nil, id)
			wantKey, err := hkdf.Key(sha512.New, dk, mid, string(append(info, "DERIVEKEY"...)), 32)
			require.NoError(t, err)
			wantCommit, err := hkdf.Key(sha512.New, dk, mid, "COMMITKEY", 32)
			require.NoError(t, err)
			require.True(t, bytes.Equal(wantKey, key))
			require.True(t, bytes.Equal(wantCommit, commit))
		}
	}
}

// TestOpenContextEncoding checks the encoding Open hands the unwrapper
// beside the context: the header's own bytes when they are canonical, and
// otherwise (pairs written out of order, as another writer may, or
// required pairs added) the canonical encoding of the full context, never
// the bytes as written.
func TestOpenContextEncoding(t *testing.T) {
	suite, _ := format.SuiteByID(0x0478)
	dk := make([]byte, 32)
	_, _ = rand.Read(dk)
	stored := map[string]string{"b": "2", "a": "1", "c": ""}
	// seal writes a message whose context field holds the pairs in the
	// order of keys given, and whose header tag also covers the required
	// pairs.
	seal := func(required map[string]string, order ...string) []byte {
		raw := binary.BigEndian.AppendUint16(nil, uint16(len(order)))
		for _, k := range order {
			raw = binary.BigEndian.AppendUint16(raw, uint16(len(k)))
			raw = append(raw, k...)
			raw = binary.BigEndian.AppendUint16(raw, uint16(len(stored[k])))
			raw = append(raw, stored[k]...)
		}
		h := &format.MessageHeader{
			Suite: suite, MessageID: make([]byte, 32), RawContext: raw,
			EDKs:   []format.EDK{{ProviderID: "test", ProviderInfo: []byte("k"), Ciphertext: []byte{1}}},
			Framed: true, FrameLength: 64, IV: make([]byte, 12), Tag: make([]byte, 16),
		}
		_, _ = rand.Read(h.MessageID)
		key, commit, err := committedKeys(suite, dk, h.MessageID)
		require.NoError(t, err)
		h.Commitment = commit
		aead, err := newGCM(key)
		require.NoError(t, err)
		body, err := h.AppendHeader(nil)
		require.NoError(t, err)
		body = body[:len(body)-16]
		aad := body
		if required != nil {
			aad, err = format.AppendContext(bytes.Clone(body), required)
			require.NoError(t, err)
		}
		msg := aead.Seal(body, h.IV, nil, aad)
		return appendFrame(msg, aead, h.MessageID, 1, []byte("hello"), true)
	}
	canonical, err := format.AppendContext(nil, stored)
	require.NoError(t, err)
	withRequired := map[string]string{"z": "9"}
	for k, v := range stored {
		withRequired[k] = v
	}
	fullEnc, err := format.AppendContext(nil, withRequired)
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		order    []string
		required map[string]string
		want     []byte
	}{
		{"canonical", []string{"a", "b", "c"}, nil, canonical},
		{"out of order", []string{"c", "a", "b"}, nil, canonical},
		{"required pairs", []string{"a", "b", "c"}, map[string]string{"z": "9"}, fullEnc},
		{"out of order with required pairs", []string{"b", "c", "a"}, map[string]string{"z": "9"}, fullEnc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := seal(tc.required, tc.order...)
			var got []byte
			unwrap := func(_ []format.EDK, ec Context) ([]byte, error) {
				want, err := format.AppendContext(nil, ec.Map())
				require.NoError(t, err)
				require.Equal(t, want, ec.Encoding(), "the encoding is not that of the map")
				got = bytes.Clone(ec.Encoding())
				return bytes.Clone(dk), nil
			}
			pt, _, err := Open(msg, unwrap, Options{Reproduced: tc.required})
			require.NoError(t, err)
			assert.Equal(t, "hello", string(pt))
			assert.Equal(t, tc.want, got)
		})
	}
}
