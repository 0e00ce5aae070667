package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

func newEnvelope(t *testing.T, r *kmstest.Ring, cfg kms.EnvelopeConfig) *kms.Envelope {
	t.Helper()
	env, err := kms.NewEnvelope(r.KeyRing, cfg)
	require.NoError(t, err)
	return env
}

func TestEnvelopeSealOpen(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	primary := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	dr := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	require.NoError(t, r.CreateAlias(ctx, "alias/orders", primary.KeyID))
	// Never use a literal key like this outside tests.
	raw, err := kms.RawAESRecipient("hsm", "backup", bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	ec := kms.EncryptionContext{"order": "17"}
	for _, suite := range []uint16{kms.SuiteCommitted, kms.SuiteCommittedSigned} {
		for _, size := range []int{0, 1, 4096, 4097, 3*4096 + 5} {
			t.Run(fmt.Sprintf("%04x/%d", suite, size), func(t *testing.T) {
				env := newEnvelope(t, r, kms.EnvelopeConfig{
					Recipients: []kms.Recipient{kms.KeyRecipient("alias/orders"), kms.KeyRecipient(dr.KeyID), raw},
					Suite:      suite, FrameLength: 4096,
				})
				pt := bytes.Repeat([]byte("p"), size)
				msg, err := env.Seal(ctx, pt, ec)
				require.NoError(t, err)

				got, err := env.Open(ctx, msg, ec)
				require.NoError(t, err)
				require.True(t, bytes.Equal(pt, got))

				// Each recipient alone opens it.
				for _, rc := range []kms.Recipient{kms.KeyRecipient(primary.Arn), kms.KeyRecipient(dr.KeyID), raw} {
					one := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{rc}})
					got, err := one.Open(ctx, msg, nil)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got))
				}

				h, err := kms.ParseHeader(msg)
				require.NoError(t, err)
				assert.Equal(t, suite, h.Suite)
				assert.Equal(t, uint8(2), h.Version)
				assert.True(t, h.Committing)
				assert.Equal(t, suite == kms.SuiteCommittedSigned, h.Signed)
				assert.Equal(t, "17", h.EncryptionContext["order"])
				assert.Equal(t, 4096, h.FrameLength)
				require.Len(t, h.Recipients, 3)
				assert.Equal(t, primary.Arn, h.Recipients[0].KeyARN)
				assert.Equal(t, uint32(1), h.Recipients[0].KeyVersion)
				assert.Equal(t, dr.Arn, h.Recipients[1].KeyARN)
				assert.Equal(t, "hsm", h.Recipients[2].ProviderID)
			})
		}
	}
}

func TestEnvelopeOpenFailures(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	other := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	env := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}, FrameLength: 64})
	ec := kms.EncryptionContext{"tenant": "a", "purpose": "test"}
	pt := bytes.Repeat([]byte("secret "), 30)
	msg, err := env.Seal(ctx, pt, ec)
	require.NoError(t, err)

	expectOpen := func(t *testing.T, env *kms.Envelope, msg []byte, ec kms.EncryptionContext, want error) {
		t.Helper()
		got, err := env.Open(ctx, msg, ec)
		require.ErrorIs(t, err, want)
		require.Nil(t, got)
		var ke *kms.Error
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, kms.OpOpen, ke.Op)
	}
	t.Run("wrong context value", func(t *testing.T) {
		expectOpen(t, env, msg, kms.EncryptionContext{"tenant": "b"}, kms.ErrInvalidCiphertext)
	})
	t.Run("required pair that was never there", func(t *testing.T) {
		expectOpen(t, env, msg, kms.EncryptionContext{"extra": "x"}, kms.ErrInvalidCiphertext)
	})
	t.Run("subset of the stored context opens", func(t *testing.T) {
		got, err := env.Open(ctx, msg, kms.EncryptionContext{"tenant": "a"})
		require.NoError(t, err)
		require.True(t, bytes.Equal(pt, got))
	})
	t.Run("no recipient of the message", func(t *testing.T) {
		env2 := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(other.KeyID)}})
		expectOpen(t, env2, msg, nil, kms.ErrIncorrectKey)
	})
	t.Run("disabled key says so", func(t *testing.T) {
		k2 := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		env2 := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k2.KeyID)}})
		m2, err := env2.Seal(ctx, pt, nil)
		require.NoError(t, err)
		require.NoError(t, r.DisableKey(ctx, k2.KeyID))
		expectOpen(t, env2, m2, nil, kms.ErrDisabled)
	})
	t.Run("every bit flip", func(t *testing.T) {
		for i := range len(msg) * 8 {
			bad := bytes.Clone(msg)
			bad[i/8] ^= 1 << (i % 8)
			got, err := env.Open(ctx, bad, nil)
			require.Error(t, err, "bit %d", i)
			require.Nil(t, got)
		}
	})
	t.Run("truncation and trailing bytes", func(t *testing.T) {
		for _, n := range []int{0, 10, len(msg) / 2, len(msg) - 17, len(msg) - 1} {
			expectOpen(t, env, msg[:n], nil, kms.ErrInvalidCiphertext)
		}
		expectOpen(t, env, append(bytes.Clone(msg), 0), nil, kms.ErrInvalidCiphertext)
	})
	t.Run("opens after rotation", func(t *testing.T) {
		_, err := r.RotateKeyOnDemand(ctx, k.KeyID)
		require.NoError(t, err)
		got, err := env.Open(ctx, msg, ec)
		require.NoError(t, err)
		require.True(t, bytes.Equal(pt, got))
		m2, err := env.Seal(ctx, pt, ec)
		require.NoError(t, err)
		h, err := kms.ParseHeader(m2)
		require.NoError(t, err)
		assert.Equal(t, uint32(2), h.Recipients[0].KeyVersion)
	})
}

func TestEnvelopeConfig(t *testing.T) {
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	one := []kms.Recipient{kms.KeyRecipient(k.KeyID)}
	many := make([]kms.Recipient, 11)
	for i := range many {
		many[i] = kms.KeyRecipient(k.KeyID)
	}
	for name, cfg := range map[string]kms.EnvelopeConfig{
		"no recipients":        {},
		"too many recipients":  {Recipients: many},
		"nil recipient":        {Recipients: []kms.Recipient{nil}},
		"unknown suite":        {Recipients: one, Suite: 0x0178},
		"negative frame":       {Recipients: one, FrameLength: -1},
		"frame over the limit": {Recipients: one, FrameLength: 1<<30 + 1},
	} {
		_, err := kms.NewEnvelope(r.KeyRing, cfg)
		require.ErrorIs(t, err, kms.ErrInvalidArgument, name)
	}
	env := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: one})
	_, err := env.Seal(context.Background(), []byte("x"), kms.EncryptionContext{"aws-crypto-public-key": "x"})
	require.ErrorIs(t, err, kms.ErrInvalidArgument, "reserved context key")
	_, err = kms.RawAESRecipient("aws-kms", "x", make([]byte, 32))
	require.ErrorIs(t, err, kms.ErrInvalidArgument)
	_, err = kms.RawAESRecipient("ns", "x", make([]byte, 31))
	require.ErrorIs(t, err, kms.ErrInvalidArgument)
	_, err = kms.RawRSARecipient("ns", "x", "not a key", crypto.SHA256)
	require.ErrorIs(t, err, kms.ErrInvalidArgument)
}

// TestESDKVectors runs an AWS Encryption SDK "awses-decrypt" manifest
// through the public API: testdata/esdk/v4-Net-4.0.1 by default, or the
// directory in $ESDK_VECTORS. Messages whose keys are raw AES or raw RSA
// keys must decrypt to the expected plaintext (or fail, where the manifest
// expects an error); messages for AWS KMS keys, which cannot be unwrapped
// offline, must parse with ParseHeader.
func TestESDKVectors(t *testing.T) {
	ctx := context.Background()
	dir := os.Getenv("ESDK_VECTORS")
	if dir == "" {
		dir = "testdata/esdk/v4-Net-4.0.1"
	}
	file := func(uri string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(uri, "file://")))
		require.NoError(t, err)
		return b
	}
	var m struct {
		Manifest struct {
			Type    string `json:"type"`
			Version int    `json:"version"`
		} `json:"manifest"`
		Keys  string `json:"keys"`
		Tests map[string]struct {
			Ciphertext        string              `json:"ciphertext"`
			MasterKeys        []map[string]string `json:"master-keys"`
			EncryptionContext map[string]string   `json:"encryption-context"`
			Result            struct {
				Output *struct {
					Plaintext string `json:"plaintext"`
				} `json:"output"`
				Error *struct {
					ErrorDescription string `json:"error-description"`
				} `json:"error"`
			} `json:"result"`
		} `json:"tests"`
	}
	require.NoError(t, json.Unmarshal(file("manifest.json"), &m))
	require.Equal(t, "awses-decrypt", m.Manifest.Type)
	var keys struct {
		Keys map[string]struct {
			Type     string `json:"type"`
			KeyID    string `json:"key-id"`
			Encoding string `json:"encoding"`
			Material string `json:"material"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(file(m.Keys), &keys))

	// The manifest's keys are imported into the ring, once each; raw
	// recipients then name them by key ID.
	r := kmstest.New(t)
	imported := map[string]string{}
	importKey := func(t *testing.T, name string, spec kms.KeySpec, material []byte) string {
		if id, ok := imported[name]; ok {
			return id
		}
		imported[name] = r.ImportKey(spec, kms.EncryptDecrypt, material).KeyID
		return imported[name]
	}
	recipient := func(t *testing.T, mk map[string]string) kms.Recipient {
		k, ok := keys.Keys[mk["key"]]
		require.True(t, ok, "unknown key %q", mk["key"])
		switch mk["encryption-algorithm"] {
		case "aes":
			raw, err := base64.StdEncoding.DecodeString(k.Material)
			require.NoError(t, err)
			if len(raw) != 32 { // the ring holds AES-256 keys only
				rc, err := kms.RawAESRecipient(mk["provider-id"], k.KeyID, raw)
				require.NoError(t, err)
				return rc
			}
			rc, err := kms.RawAESKeyRecipient(mk["provider-id"], k.KeyID, importKey(t, mk["key"], kms.SymmetricDefault, raw))
			require.NoError(t, err)
			return rc
		case "rsa":
			block, _ := pem.Decode([]byte(k.Material))
			require.NotNil(t, block)
			var key any
			h := map[string]crypto.Hash{"sha1": crypto.SHA1, "sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512}[mk["padding-hash"]]
			if mk["padding-algorithm"] != "oaep-mgf1" || h == 0 {
				t.Skipf("RSA padding %s/%s is not supported (PKCS#1 v1.5 key wrapping is not offered)", mk["padding-algorithm"], mk["padding-hash"])
			}
			if k.Type == "private" {
				pk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
				require.NoError(t, err)
				spec := map[int]kms.KeySpec{2048: kms.RSA2048, 3072: kms.RSA3072, 4096: kms.RSA4096}[pk.(*rsa.PrivateKey).N.BitLen()]
				if spec != "" {
					rc, err := kms.RawRSAKeyRecipient(mk["provider-id"], k.KeyID, importKey(t, mk["key"], spec, block.Bytes), h)
					require.NoError(t, err)
					return rc
				}
				key = pk
			} else {
				pk, err := x509.ParsePKIXPublicKey(block.Bytes)
				require.NoError(t, err)
				key = pk
			}
			rc, err := kms.RawRSARecipient(mk["provider-id"], k.KeyID, key, h)
			require.NoError(t, err)
			return rc
		}
		t.Fatalf("unexpected master key %v", mk)
		return nil
	}

	counts := map[string]int{}
	for name, tc := range m.Tests {
		t.Run(name, func(t *testing.T) {
			msg := file(tc.Ciphertext)
			var rcs []kms.Recipient
			for _, mk := range tc.MasterKeys {
				if mk["type"] == "raw" {
					rcs = append(rcs, recipient(t, mk))
				}
			}
			if len(rcs) == 0 { // AWS KMS keys: the header must parse
				h, err := kms.ParseHeader(msg)
				if tc.Result.Error == nil {
					require.NoError(t, err)
					require.NotEmpty(t, h.Recipients)
					assert.Equal(t, "aws-kms", h.Recipients[0].ProviderID)
					assert.True(t, strings.HasPrefix(h.Recipients[0].KeyARN, "arn:aws:kms:"))
				}
				counts["parsed"]++
				return
			}
			env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: rcs, AllowNonCommitting: true})
			require.NoError(t, err)
			got, err := env.Open(ctx, msg, tc.EncryptionContext)
			if tc.Result.Error != nil {
				require.Error(t, err, "the manifest expects an error: %s", tc.Result.Error.ErrorDescription)
				require.Nil(t, got)
				counts["failed as expected"]++
				return
			}
			require.NoError(t, err)
			require.True(t, bytes.Equal(file(tc.Result.Output.Plaintext), got), "plaintext differs")
			counts["decrypted"]++

			if h, _ := kms.ParseHeader(msg); !h.Committing {
				strict, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: rcs})
				require.NoError(t, err)
				_, err = strict.Open(ctx, msg, tc.EncryptionContext)
				require.ErrorIs(t, err, kms.ErrUnsupported, "non-committing suites need AllowNonCommitting")
			}
		})
	}
	t.Logf("%s: %v", dir, counts)
	if os.Getenv("ESDK_VECTORS") == "" {
		assert.Equal(t, 99, counts["decrypted"])
		assert.Equal(t, 33, counts["parsed"])
	}
}

// vectorMessages returns every message of the decryption manifest in
// testdata/esdk (132, of all 11 suites, raw AES, raw RSA and aws-kms
// recipients), to seed the fuzz targets.
func vectorMessages(tb testing.TB) [][]byte {
	tb.Helper()
	const dir = "testdata/esdk/v4-Net-4.0.1"
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	require.NoError(tb, err)
	var m struct {
		Tests map[string]struct {
			Ciphertext string `json:"ciphertext"`
		} `json:"tests"`
	}
	require.NoError(tb, json.Unmarshal(b, &m))
	var msgs [][]byte
	for _, tc := range m.Tests {
		msg, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(tc.Ciphertext, "file://")))
		require.NoError(tb, err)
		msgs = append(msgs, msg)
	}
	require.Len(tb, msgs, 132)
	return msgs
}

func FuzzParseHeader(f *testing.F) {
	r := kmstest.New(f)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}})
	require.NoError(f, err)
	msg, err := env.Seal(context.Background(), []byte("seed"), kms.EncryptionContext{"a": "b"})
	require.NoError(f, err)
	f.Add(msg)
	for _, msg := range vectorMessages(f) {
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := kms.ParseHeader(in)
		if err == nil && (h.Size > len(in) || len(h.Recipients) == 0) {
			t.Fatalf("inconsistent header")
		}
	})
}

// TestRingRawRecipients: raw keyring recipients whose wrapping keys live in
// the ring write exactly what the byte-key recipients read (and back), are
// audited as Encrypt and Decrypt of their keys, and follow key state.
func TestRingRawRecipients(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	// Never use a literal key like this outside tests.
	aesKey := bytes.Repeat([]byte{0x5C}, 32)
	aesID := r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, aesKey).KeyID
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	require.NoError(t, err)
	rsaID := r.ImportKey(kms.RSA2048, kms.EncryptDecrypt, der).KeyID

	ringAES, err := kms.RawAESKeyRecipient("hsm", "aes", aesID)
	require.NoError(t, err)
	ringRSA, err := kms.RawRSAKeyRecipient("hsm", "rsa", rsaID, crypto.SHA512)
	require.NoError(t, err)
	bytesAES, err := kms.RawAESRecipient("hsm", "aes", aesKey)
	require.NoError(t, err)
	bytesRSA, err := kms.RawRSARecipient("hsm", "rsa", rsaKey, crypto.SHA512)
	require.NoError(t, err)
	ec := kms.EncryptionContext{"k": "v"}

	for _, pair := range [][2]kms.Recipient{{ringAES, bytesAES}, {bytesAES, ringAES}, {ringRSA, bytesRSA}, {bytesRSA, ringRSA}} {
		seal := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{pair[0]}})
		open := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{pair[1]}})
		msg, err := seal.Seal(ctx, []byte("interoperable"), ec)
		require.NoError(t, err)
		pt, err := open.Open(ctx, msg, ec)
		require.NoError(t, err)
		assert.Equal(t, "interoperable", string(pt))
	}

	r.Events.Reset()
	env := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{ringAES}})
	msg, err := env.Seal(ctx, []byte("x"), ec)
	require.NoError(t, err)
	_, err = env.Open(ctx, msg, ec)
	require.NoError(t, err)
	evs := r.Events.Events()
	require.Len(t, evs, 2)
	assert.Equal(t, []kms.Op{kms.OpEncrypt, kms.OpDecrypt}, []kms.Op{evs[0].Op, evs[1].Op})
	assert.Equal(t, aesID, evs[1].KeyID)
	assert.Equal(t, "v", evs[1].EncryptionContext["k"])

	require.NoError(t, r.DisableKey(ctx, aesID))
	_, err = env.Open(ctx, msg, ec)
	require.ErrorIs(t, err, kms.ErrDisabled)
	_, err = env.Seal(ctx, []byte("x"), ec)
	require.ErrorIs(t, err, kms.ErrDisabled)

	wrongKind, err := kms.RawAESKeyRecipient("hsm", "aes", rsaID)
	require.NoError(t, err)
	_, err = newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{wrongKind}}).Seal(ctx, []byte("x"), nil)
	require.ErrorIs(t, err, kms.ErrInvalidUsage)
}

func TestEnvelopeStreams(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	ec := kms.EncryptionContext{"object": "backup.tar"}
	for _, suite := range []uint16{kms.SuiteCommitted, kms.SuiteCommittedSigned} {
		for _, size := range []int{0, 1, 100000} {
			t.Run(fmt.Sprintf("%04x/%d", suite, size), func(t *testing.T) {
				env := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}, Suite: suite, FrameLength: 4096})
				pt := make([]byte, size)
				_, _ = rand.Read(pt)
				var buf bytes.Buffer
				w, err := env.NewWriter(ctx, &buf, ec)
				require.NoError(t, err)
				_, err = io.Copy(w, iotest.HalfReader(bytes.NewReader(pt)))
				require.NoError(t, err)
				require.NoError(t, w.Close())
				msg := buf.Bytes()

				got, err := env.Open(ctx, msg, ec) // a streamed message opens whole
				require.NoError(t, err)
				require.True(t, bytes.Equal(pt, got))

				sealed, err := env.Seal(ctx, pt, ec) // and a whole one streams
				require.NoError(t, err)
				for _, m := range [][]byte{msg, sealed} {
					rd, err := env.NewReader(ctx, iotest.OneByteReader(bytes.NewReader(m)), ec)
					require.NoError(t, err)
					got, err := io.ReadAll(rd)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got))
				}

				if size > 0 {
					rd, err := env.NewReader(ctx, bytes.NewReader(msg[:len(msg)-1]), ec)
					require.NoError(t, err)
					_, err = io.ReadAll(rd)
					require.ErrorIs(t, err, kms.ErrInvalidCiphertext, "a truncated stream never ends in io.EOF")
				}
				_, err = env.NewReader(ctx, bytes.NewReader(msg), kms.EncryptionContext{"object": "other"})
				require.ErrorIs(t, err, kms.ErrInvalidCiphertext)
			})
		}
	}
}

// FuzzNewReader: any input ends in an error or in exactly the plaintext of
// the seed it came from; it never panics.
func FuzzNewReader(f *testing.F) {
	r := kmstest.New(f)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}, FrameLength: 16})
	require.NoError(f, err)
	pt := []byte("a message of several frames, for the fuzzer")
	msg, err := env.Seal(context.Background(), pt, nil)
	require.NoError(f, err)
	f.Add(msg)
	for _, msg := range vectorMessages(f) { // no key here opens them: they reach the unwrap and fail
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rd, err := env.NewReader(context.Background(), bytes.NewReader(in), nil)
		if err != nil {
			return
		}
		got, err := io.ReadAll(rd)
		if !bytes.HasPrefix(pt, got) {
			t.Fatalf("released bytes that are not the message's")
		}
		if err == nil && !bytes.Equal(pt, got) {
			t.Fatalf("EOF before the whole message")
		}
	})
}

// FuzzEnvelopeOpen opens any input with a KeyRing recipient on a ring
// with no Auditor and AllowAll, the path on which the KMS unwrap takes the
// header's context bytes as they are: any input ends in an error or in
// exactly the plaintext of the seed it came from, with the context that
// seed was sealed under; it never panics.
func FuzzEnvelopeOpen(f *testing.F) {
	ctx := context.Background()
	ring, err := kms.NewKeyRing(kms.Config{})
	require.NoError(f, err)
	k, err := ring.CreateKey(ctx, kms.CreateKeyInput{})
	require.NoError(f, err)
	seeds := map[string]kms.EncryptionContext{} // plaintext -> context sealed under
	for i, tc := range []struct {
		suite uint16
		ec    kms.EncryptionContext
	}{
		{kms.SuiteCommitted, nil},
		{kms.SuiteCommitted, kms.EncryptionContext{"tenant": "7"}},
		{kms.SuiteCommitted, kms.EncryptionContext{"b": "2", "a": "1", "ä": "ü"}},
		{kms.SuiteCommittedSigned, kms.EncryptionContext{"tenant": "7"}},
	} {
		env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{
			Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}, Suite: tc.suite, FrameLength: 16,
		})
		require.NoError(f, err)
		pt := fmt.Sprintf("seed %d: a message of a few frames", i)
		seeds[pt] = tc.ec
		msg, err := env.Seal(ctx, []byte(pt), tc.ec)
		require.NoError(f, err)
		f.Add(msg, "")
		f.Add(msg, "tenant")
	}
	for _, msg := range vectorMessages(f) { // among them aws-kms recipients of another account's key
		f.Add(msg, "")
	}
	env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, in []byte, demand string) {
		var ec kms.EncryptionContext
		if demand != "" {
			ec = kms.EncryptionContext{demand: "7"}
		}
		pt, err := env.Open(ctx, in, ec)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext beside an error")
			}
			return
		}
		sealed, ok := seeds[string(pt)]
		if !ok {
			t.Fatalf("opened to a plaintext no seed has: %q", pt)
		}
		h, err := kms.ParseHeader(in)
		if err != nil {
			t.Fatalf("opened a message whose header does not parse: %v", err)
		}
		for k, v := range sealed {
			if h.EncryptionContext[k] != v {
				t.Fatalf("opened under a context other than the one sealed: %q", h.EncryptionContext)
			}
		}
		for k, v := range ec {
			if h.EncryptionContext[k] != v {
				t.Fatalf("opened without the demanded pair %q", k)
			}
		}
	})
}

func ExampleEnvelope_NewWriter() {
	ctx := context.Background()
	ring, _ := kms.NewKeyRing(kms.Config{})
	key, _ := ring.CreateKey(ctx, kms.CreateKeyInput{})
	env, _ := kms.NewEnvelope(ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(key.KeyID)}})
	ec := kms.EncryptionContext{"file": "backup.tar"}

	var stored bytes.Buffer // a file, an object store upload, ...
	w, err := env.NewWriter(ctx, &stored, ec)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(w, strings.NewReader(strings.Repeat("data ", 100000))); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // writes the final frame
		log.Fatal(err)
	}

	r, err := env.NewReader(ctx, &stored, ec)
	if err != nil {
		log.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r) // act on the data only once this returns nil
	fmt.Println(n, err)
	// Output: 500000 <nil>
}

func TestEnvelopeDataKeyCache(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	rcs := []kms.Recipient{kms.KeyRecipient(k.KeyID)}
	_, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: rcs, Cache: &kms.CacheConfig{}})
	require.ErrorIs(t, err, kms.ErrInvalidArgument, "a cache needs a MaxAge")

	env := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: rcs, Cache: &kms.CacheConfig{MaxAge: time.Minute, MaxMessages: 3, MaxBytes: 100}})
	count := func(op kms.Op) int { return len(r.Events.ByOp(op)) }
	a, b := kms.EncryptionContext{"tenant": "a"}, kms.EncryptionContext{"tenant": "b"}
	seal := func(ec kms.EncryptionContext, n int) []byte {
		t.Helper()
		msg, err := env.Seal(ctx, bytes.Repeat([]byte("x"), n), ec)
		require.NoError(t, err)
		return msg
	}

	r.Events.Reset()
	m1, m2, m3 := seal(a, 10), seal(a, 10), seal(a, 10)
	assert.Equal(t, 1, count(kms.OpGenerateDataKey), "three messages, one data key")
	h1, _ := kms.ParseHeader(m1)
	h2, _ := kms.ParseHeader(m2)
	assert.NotEqual(t, h1.MessageID, h2.MessageID, "each message has its own ID, hence content key")
	seal(a, 10)
	assert.Equal(t, 2, count(kms.OpGenerateDataKey), "MaxMessages reached")
	seal(b, 10)
	assert.Equal(t, 3, count(kms.OpGenerateDataKey), "another context, another data key")
	seal(b, 95)
	assert.Equal(t, 4, count(kms.OpGenerateDataKey), "MaxBytes would be passed")
	seal(b, 101)
	seal(b, 1)
	assert.Equal(t, 6, count(kms.OpGenerateDataKey), "a message over MaxBytes is never cached")
	r.Clock.Advance(time.Minute)
	seal(b, 1)
	assert.Equal(t, 7, count(kms.OpGenerateDataKey), "MaxAge passed")
	var buf bytes.Buffer
	w, err := env.NewWriter(ctx, &buf, b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, 8, count(kms.OpGenerateDataKey), "streams always get a fresh data key")

	// Opening: one Decrypt per distinct data key within MaxAge.
	r.Events.Reset()
	for _, m := range [][]byte{m1, m2, m3, m1} {
		pt, err := env.Open(ctx, m, a)
		require.NoError(t, err)
		assert.Len(t, pt, 10)
	}
	assert.Equal(t, 1, count(kms.OpDecrypt), "the three messages share one data key")
	_, err = env.Open(ctx, m1, b)
	require.ErrorIs(t, err, kms.ErrInvalidCiphertext, "the cache is keyed by the context too")

	// The documented trade-off: a hit bypasses the KeyRing until MaxAge.
	require.NoError(t, r.DisableKey(ctx, k.KeyID))
	_, err = env.Open(ctx, m2, a)
	require.NoError(t, err, "within MaxAge a cached data key still opens")
	r.Clock.Advance(time.Minute)
	_, err = env.Open(ctx, m2, a)
	require.ErrorIs(t, err, kms.ErrDisabled, "after MaxAge the KeyRing decides again")
}
