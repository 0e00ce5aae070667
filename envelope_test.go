package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

// TestEnvelopeOpensSDKMessages opens, through the public API, the messages
// the AWS Encryption SDK wrote with raw AES and raw RSA keyrings
// (testdata/esdk): 99 messages across all 11 suites.
func TestEnvelopeOpensSDKMessages(t *testing.T) {
	ctx := context.Background()
	dir := "testdata/esdk/v4-Net-4.0.1"
	kb, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	require.NoError(t, err)
	var keys struct {
		Keys map[string]struct{ Material string } `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(kb, &keys))
	aesKey, err := base64.StdEncoding.DecodeString(keys.Keys["aes-256"].Material)
	require.NoError(t, err)
	block, _ := pem.Decode([]byte(keys.Keys["rsa-4096-private"].Material))
	pk, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	aesR, err := kms.RawAESRecipient("aws-raw-vectors-persistant", "aes-256", aesKey)
	require.NoError(t, err)
	rsa256, err := kms.RawRSARecipient("aws-raw-vectors-persistant", "rsa-4096-private", pk.(*rsa.PrivateKey), crypto.SHA256)
	require.NoError(t, err)
	rsa512, err := kms.RawRSARecipient("aws-raw-vectors-persistant", "rsa-4096-private", pk.(*rsa.PrivateKey), crypto.SHA512)
	require.NoError(t, err)
	r := kmstest.New(t)
	reader := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{aesR, rsa256, rsa512}, AllowNonCommitting: true})
	strict := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{aesR, rsa256, rsa512}})

	mb, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	require.NoError(t, err)
	var m struct {
		Tests map[string]struct {
			Ciphertext        string              `json:"ciphertext"`
			MasterKeys        []map[string]string `json:"master-keys"`
			EncryptionContext map[string]string   `json:"encryption-context"`
			Result            struct {
				Output struct{ Plaintext string } `json:"output"`
			} `json:"result"`
		} `json:"tests"`
	}
	require.NoError(t, json.Unmarshal(mb, &m))
	opened := 0
	for name, tc := range m.Tests {
		if tc.MasterKeys[0]["type"] != "raw" {
			continue
		}
		msg, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(tc.Ciphertext, "file://")))
		require.NoError(t, err)
		want, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(tc.Result.Output.Plaintext, "file://")))
		require.NoError(t, err)
		got, err := reader.Open(ctx, msg, tc.EncryptionContext)
		require.NoError(t, err, name)
		require.True(t, bytes.Equal(want, got), name)
		h, err := kms.ParseHeader(msg)
		require.NoError(t, err)
		if !h.Committing {
			_, err := strict.Open(ctx, msg, tc.EncryptionContext)
			require.ErrorIs(t, err, kms.ErrUnsupported, "non-committing suites need AllowNonCommitting")
		}
		opened++
	}
	assert.Equal(t, 99, opened)
}

func FuzzParseHeader(f *testing.F) {
	r := kmstest.New(f)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}})
	require.NoError(f, err)
	msg, err := env.Seal(context.Background(), []byte("seed"), kms.EncryptionContext{"a": "b"})
	require.NoError(f, err)
	f.Add(msg)
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := kms.ParseHeader(in)
		if err == nil && (h.Size > len(in) || len(h.Recipients) == 0) {
			t.Fatalf("inconsistent header")
		}
	})
}
