package kms_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/internal/format"
	"github.com/pocketkms/kms/kmstest"
)

// crRequireErr checks that err is an *kms.Error of operation op that
// matches sentinel with errors.Is.
func crRequireErr(t testing.TB, err error, op kms.Op, sentinel error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.ErrorIs(t, err, sentinel, msgAndArgs...)
	var ke *kms.Error
	require.ErrorAs(t, err, &ke, msgAndArgs...)
	require.Equal(t, op, ke.Op, msgAndArgs...)
}

// crRand returns n bytes from crypto/rand.
func crRand(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// crFlipBit returns a copy of b with bit i (0 = lowest bit of b[0]) inverted.
func crFlipBit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i/8] ^= 1 << (i % 8)
	return c
}

// crBlobNaming returns a well-formed ciphertext blob that names keyID and
// version but was sealed by nothing: Decrypt must resolve and check the key
// before it can fail.
func crBlobNaming(t testing.TB, keyID string, version uint32) []byte {
	t.Helper()
	h := format.BlobHeader{KeyID: keyID, KeyVersion: version}
	b, err := h.AppendHeader(nil)
	require.NoError(t, err)
	return append(b, make([]byte, 32)...)
}

// crRequireDecrypts checks that blob decrypts to want under ec.
func crRequireDecrypts(t testing.TB, r *kmstest.Ring, blob []byte, ec kms.EncryptionContext, want []byte) *kms.DecryptOutput {
	t.Helper()
	d, err := r.Decrypt(context.Background(), kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, d.Plaintext), "decrypted plaintext differs")
	return d
}

func TestEncryptDecryptSymmetricSizes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	ec := kms.EncryptionContext{"purpose": "sizes"}
	for _, tc := range []struct {
		n       int
		wantErr error
	}{
		{0, kms.ErrInvalidArgument},
		{1, nil},
		{2, nil},
		{100, nil},
		{4095, nil},
		{kms.MaxPlaintextSize, nil},
		{kms.MaxPlaintextSize + 1, kms.ErrInvalidArgument},
		{6144, kms.ErrInvalidArgument},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			t.Parallel()
			pt := crRand(t, tc.n)
			out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: ec})
			if tc.wantErr != nil {
				crRequireErr(t, err, kms.OpEncrypt, tc.wantErr)
				require.Nil(t, out)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, k.Arn, out.KeyID)
			assert.Equal(t, uint32(1), out.KeyVersion)
			assert.Equal(t, kms.SymmetricDefaultAlgorithm, out.EncryptionAlgorithm)
			// FORMAT.md: 73 bytes of overhead for a UUID key ID.
			assert.Len(t, out.CiphertextBlob, 73+tc.n)
			h, _, _, err := format.ParseBlob(out.CiphertextBlob)
			require.NoError(t, err)
			assert.Equal(t, k.KeyID, h.KeyID, "the blob names its key")
			assert.Equal(t, uint32(1), h.KeyVersion, "the blob names its version")
			assert.False(t, tc.n >= 8 && bytes.Contains(out.CiphertextBlob, pt), "plaintext appears in the blob")
			d := crRequireDecrypts(t, r, out.CiphertextBlob, ec, pt)
			assert.Equal(t, k.Arn, d.KeyID)
			assert.Equal(t, uint32(1), d.KeyVersion)
			assert.Equal(t, kms.SymmetricDefaultAlgorithm, d.EncryptionAlgorithm)
		})
	}
	t.Run("nil plaintext", func(t *testing.T) {
		t.Parallel()
		_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID})
		crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidArgument)
	})
	t.Run("fresh nonce per blob", func(t *testing.T) {
		t.Parallel()
		pt := []byte("same plaintext")
		a, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt})
		require.NoError(t, err)
		b, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt})
		require.NoError(t, err)
		assert.False(t, bytes.Equal(a.CiphertextBlob, b.CiphertextBlob))
	})
}

func TestEncryptDecryptSymmetricKeyNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	other := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	rsaKey := r.CreateKey(kms.RSA2048, kms.EncryptDecrypt)
	require.NoError(t, r.CreateAlias(ctx, "alias/names", k.KeyID))
	require.NoError(t, r.CreateAlias(ctx, "alias/other", other.KeyID))
	names := map[string]string{
		"key ID":    k.KeyID,
		"key ARN":   k.Arn,
		"alias":     "alias/names",
		"alias ARN": r.AliasARN("alias/names"),
	}
	ec := kms.EncryptionContext{"k": "v"}
	for encName, encID := range names {
		pt := []byte("encrypted by " + encName)
		out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: encID, Plaintext: pt, EncryptionContext: ec})
		require.NoError(t, err, encName)
		require.Equal(t, k.Arn, out.KeyID, "Encrypt reports the key ARN whatever the name")
		decNames := map[string]string{"no key": ""}
		for n, id := range names {
			decNames[n] = id
		}
		for decName, decID := range decNames {
			t.Run(encName+"/"+decName, func(t *testing.T) {
				t.Parallel()
				d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, KeyID: decID, EncryptionContext: ec})
				require.NoError(t, err)
				require.True(t, bytes.Equal(pt, d.Plaintext))
				require.Equal(t, k.Arn, d.KeyID)
			})
		}
	}
	blob, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionContext: ec})
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		keyID   string
		wantErr error
	}{
		{"other key ID", other.KeyID, kms.ErrIncorrectKey},
		{"other key ARN", other.Arn, kms.ErrIncorrectKey},
		{"alias of other key", "alias/other", kms.ErrIncorrectKey},
		{"RSA key", rsaKey.KeyID, kms.ErrIncorrectKey},
		{"unknown key", "00000000-0000-4000-8000-000000000000", kms.ErrNotFound},
		{"unknown alias", "alias/nope", kms.ErrNotFound},
		{"ARN of another account", strings.Replace(k.Arn, kms.DefaultAccount, "999999999999", 1), kms.ErrNotFound},
		{"ARN of another region", strings.Replace(k.Arn, kms.DefaultRegion, "eu-west-1", 1), kms.ErrNotFound},
		{"name with a space", "a b", kms.ErrInvalidArgument},
	} {
		t.Run("wrong key/"+tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob, KeyID: tc.keyID, EncryptionContext: ec})
			crRequireErr(t, err, kms.OpDecrypt, tc.wantErr)
			require.Nil(t, d)
		})
	}
	t.Run("encrypt names no key", func(t *testing.T) {
		t.Parallel()
		_, err := r.Encrypt(ctx, kms.EncryptInput{Plaintext: []byte("x")})
		crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidArgument)
		_, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/nope", Plaintext: []byte("x")})
		crRequireErr(t, err, kms.OpEncrypt, kms.ErrNotFound)
	})
}

func TestEncryptDecryptSymmetricContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	pt := []byte("context-bound plaintext")
	sealed := kms.EncryptionContext{"purpose": "orders", "tenant": "17"}
	out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: sealed})
	require.NoError(t, err)
	noCtx, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt})
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		blob    []byte
		ec      kms.EncryptionContext
		wantErr error
	}{
		{"same pairs", out.CiphertextBlob, kms.EncryptionContext{"tenant": "17", "purpose": "orders"}, nil},
		{"missing context", out.CiphertextBlob, nil, kms.ErrInvalidCiphertext},
		{"empty context", out.CiphertextBlob, kms.EncryptionContext{}, kms.ErrInvalidCiphertext},
		{"missing pair", out.CiphertextBlob, kms.EncryptionContext{"purpose": "orders"}, kms.ErrInvalidCiphertext},
		{"extra pair", out.CiphertextBlob, kms.EncryptionContext{"purpose": "orders", "tenant": "17", "x": ""}, kms.ErrInvalidCiphertext},
		{"changed value", out.CiphertextBlob, kms.EncryptionContext{"purpose": "orders", "tenant": "18"}, kms.ErrInvalidCiphertext},
		{"changed key", out.CiphertextBlob, kms.EncryptionContext{"purpose": "orders", "Tenant": "17"}, kms.ErrInvalidCiphertext},
		{"swapped values", out.CiphertextBlob, kms.EncryptionContext{"purpose": "17", "tenant": "orders"}, kms.ErrInvalidCiphertext},
		{"concatenation", out.CiphertextBlob, kms.EncryptionContext{"purpose": "orderst", "enant": "17"}, kms.ErrInvalidCiphertext},
		{"invalid context", out.CiphertextBlob, kms.EncryptionContext{"": "x"}, kms.ErrInvalidArgument},
		{"none sealed, none given", noCtx.CiphertextBlob, nil, nil},
		{"none sealed, empty map given", noCtx.CiphertextBlob, kms.EncryptionContext{}, nil},
		{"none sealed, pair given", noCtx.CiphertextBlob, kms.EncryptionContext{"purpose": "orders"}, kms.ErrInvalidCiphertext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, keyID := range []string{"", k.KeyID} {
				d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: tc.blob, KeyID: keyID, EncryptionContext: tc.ec})
				if tc.wantErr != nil {
					crRequireErr(t, err, kms.OpDecrypt, tc.wantErr)
					require.Nil(t, d)
					require.NotContains(t, err.Error(), string(pt))
					continue
				}
				require.NoError(t, err)
				require.True(t, bytes.Equal(pt, d.Plaintext))
			}
		})
	}

	for _, tc := range []struct {
		name string
		ec   kms.EncryptionContext
	}{
		{"empty key", kms.EncryptionContext{"": "v"}},
		{"invalid UTF-8 key", kms.EncryptionContext{"\xff": "v"}},
		{"invalid UTF-8 value", kms.EncryptionContext{"k": "\xc3\x28"}},
		{"oversized", kms.EncryptionContext{"k": strings.Repeat("v", 8192)}},
	} {
		t.Run("encrypt refuses/"+tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: tc.ec})
			crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidArgument)
			require.Nil(t, out)
		})
	}
}

func TestDecryptSymmetricMalformed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	ec := kms.EncryptionContext{"a": "b"}
	pt := []byte("sixteen byte msg")
	out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: ec})
	require.NoError(t, err)
	blob := out.CiphertextBlob
	crRequireDecrypts(t, r, blob, ec, pt)

	// The key ID and its length prefix: a flip there names another key,
	// which does not exist (or is not the one named), or is not printable.
	idStart, idEnd := 4, 5+len(k.KeyID)
	decryptFails := func(t *testing.T, b []byte, keyID string, allowed ...error) {
		t.Helper()
		d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: b, KeyID: keyID, EncryptionContext: ec})
		require.Error(t, err)
		require.Nil(t, d, "output with an error")
		var ke *kms.Error
		require.ErrorAs(t, err, &ke)
		require.Equal(t, kms.OpDecrypt, ke.Op)
		for _, s := range allowed {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error %v matches none of %v", err, allowed)
	}

	t.Run("every bit flip", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < 8*len(blob); i++ {
			b := crFlipBit(blob, i)
			if i/8 >= idStart && i/8 < idEnd {
				decryptFails(t, b, "", kms.ErrInvalidCiphertext, kms.ErrNotFound)
				decryptFails(t, b, k.KeyID, kms.ErrInvalidCiphertext, kms.ErrIncorrectKey)
				continue
			}
			decryptFails(t, b, "", kms.ErrInvalidCiphertext)
			decryptFails(t, b, k.KeyID, kms.ErrInvalidCiphertext)
		}
	})
	t.Run("every truncation", func(t *testing.T) {
		t.Parallel()
		for n := 0; n < len(blob); n++ {
			decryptFails(t, blob[:n], "", kms.ErrInvalidCiphertext)
			decryptFails(t, blob[:n], k.KeyID, kms.ErrInvalidCiphertext)
		}
	})
	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"appended byte", append(bytes.Clone(blob), 0)},
		{"appended block", append(bytes.Clone(blob), make([]byte, 16)...)},
		{"oversized random", crRand(t, kms.MaxCiphertextSize+1)},
		{"oversized valid prefix", append(bytes.Clone(blob), make([]byte, kms.MaxCiphertextSize)...)},
		{"random, same length", crRand(t, len(blob))},
		{"all zero", make([]byte, len(blob))},
		{"tag only", blob[len(blob)-16:]},
		{"header without ciphertext", blob[:idEnd+4+12]},
		{"another key's version", func() []byte {
			b := bytes.Clone(blob)
			b[idEnd+3] = 2 // version 2 does not exist
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			decryptFails(t, tc.blob, "", kms.ErrInvalidCiphertext)
			decryptFails(t, tc.blob, k.KeyID, kms.ErrInvalidCiphertext)
		})
	}
	t.Run("blob of another key with its header rewritten", func(t *testing.T) {
		t.Parallel()
		other := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		o, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: other.KeyID, Plaintext: pt, EncryptionContext: ec})
		require.NoError(t, err)
		b := bytes.Clone(o.CiphertextBlob)
		copy(b[5:], k.KeyID) // both IDs are 36 bytes
		decryptFails(t, b, "", kms.ErrInvalidCiphertext)
		decryptFails(t, b, k.KeyID, kms.ErrInvalidCiphertext)
		decryptFails(t, o.CiphertextBlob, k.KeyID, kms.ErrIncorrectKey)
	})
}

func TestEncryptDecryptSymmetricRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	ec := kms.EncryptionContext{"rot": "1"}
	pt1, pt2, pt3 := []byte("made by version 1"), []byte("made by version 2"), []byte("made by version 3")
	o1, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt1, EncryptionContext: ec})
	require.NoError(t, err)
	require.Equal(t, uint32(1), o1.KeyVersion)
	v, err := r.RotateKeyOnDemand(ctx, k.KeyID)
	require.NoError(t, err)
	require.Equal(t, uint32(2), v)
	o2, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt2, EncryptionContext: ec})
	require.NoError(t, err)
	require.Equal(t, uint32(2), o2.KeyVersion)
	v, err = r.RotateKeyOnDemand(ctx, k.Arn)
	require.NoError(t, err)
	require.Equal(t, uint32(3), v)
	o3, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt3, EncryptionContext: ec})
	require.NoError(t, err)
	require.Equal(t, uint32(3), o3.KeyVersion)

	for i, tc := range []struct {
		blob []byte
		pt   []byte
	}{{o1.CiphertextBlob, pt1}, {o2.CiphertextBlob, pt2}, {o3.CiphertextBlob, pt3}} {
		want := uint32(i + 1)
		h, _, _, err := format.ParseBlob(tc.blob)
		require.NoError(t, err)
		require.Equal(t, want, h.KeyVersion)
		// KeyVersion is ignored for symmetric blobs: they name their version.
		for _, pin := range []uint32{0, 1, 2, 3, 99} {
			d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: tc.blob, KeyID: k.KeyID, KeyVersion: pin, EncryptionContext: ec})
			require.NoError(t, err)
			require.True(t, bytes.Equal(tc.pt, d.Plaintext))
			require.Equal(t, want, d.KeyVersion, "Decrypt uses the blob's version")
		}
	}
	// A blob made by version 1 relabelled as version 2 must not open.
	b := bytes.Clone(o1.CiphertextBlob)
	b[5+len(k.KeyID)+3] = 2
	_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: b, EncryptionContext: ec})
	crRequireErr(t, err, kms.OpDecrypt, kms.ErrInvalidCiphertext)
}

func TestEncryptDecryptWrongUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	sym := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	rsaEnc := r.CreateKey(kms.RSA2048, kms.EncryptDecrypt)
	rsaSign := r.CreateKey(kms.RSA2048, kms.SignVerify)
	ecSign := r.CreateKey(kms.ECCNISTP256, kms.SignVerify)
	ecAgree := r.CreateKey(kms.ECCNISTP256, kms.KeyAgreement)
	edSign := r.CreateKey(kms.ECCNISTEdwards25519, kms.SignVerify)
	hmacKey := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
	symBlob, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: sym.KeyID, Plaintext: []byte("x")})
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		keyID string
		alg   kms.EncryptionAlgorithm
	}{
		{"HMAC key", hmacKey.KeyID, ""},
		{"HMAC key with SYMMETRIC_DEFAULT", hmacKey.KeyID, kms.SymmetricDefaultAlgorithm},
		{"RSA SIGN_VERIFY key", rsaSign.KeyID, kms.RSAESOAEPSHA256},
		{"ECC SIGN_VERIFY key", ecSign.KeyID, kms.RSAESOAEPSHA256},
		{"ECC KEY_AGREEMENT key", ecAgree.KeyID, kms.RSAESOAEPSHA1},
		{"Ed25519 key", edSign.KeyID, ""},
		{"symmetric key with RSAES_OAEP_SHA_256", sym.KeyID, kms.RSAESOAEPSHA256},
		{"symmetric key with RSAES_OAEP_SHA_1", sym.KeyID, kms.RSAESOAEPSHA1},
		{"symmetric key with unknown algorithm", sym.KeyID, "AES_256_GCM"},
		{"RSA key with default algorithm", rsaEnc.KeyID, ""},
		{"RSA key with SYMMETRIC_DEFAULT", rsaEnc.KeyID, kms.SymmetricDefaultAlgorithm},
		{"RSA key with unknown algorithm", rsaEnc.KeyID, "RSAES_PKCS1_V1_5"},
	} {
		t.Run("encrypt/"+tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: tc.keyID, Plaintext: []byte("x"), EncryptionAlgorithm: tc.alg})
			crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidUsage)
			require.Nil(t, out)
		})
	}
	for _, tc := range []struct {
		name  string
		keyID string
		alg   kms.EncryptionAlgorithm
		blob  []byte
	}{
		{"symmetric blob with RSAES_OAEP_SHA_256", sym.KeyID, kms.RSAESOAEPSHA256, symBlob.CiphertextBlob},
		{"RSA SIGN_VERIFY key", rsaSign.KeyID, kms.RSAESOAEPSHA256, make([]byte, 256)},
		{"HMAC key", hmacKey.KeyID, kms.RSAESOAEPSHA1, make([]byte, 256)},
		{"ECC key", ecAgree.KeyID, kms.RSAESOAEPSHA256, make([]byte, 256)},
	} {
		t.Run("decrypt/"+tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: tc.blob, KeyID: tc.keyID, EncryptionAlgorithm: tc.alg})
			crRequireErr(t, err, kms.OpDecrypt, kms.ErrInvalidUsage)
			require.Nil(t, d)
		})
	}
}

// crOAEPLimits are the AWS KMS plaintext limits of RSA encryption.
var crOAEPLimits = map[kms.KeySpec]map[kms.EncryptionAlgorithm]int{
	kms.RSA2048: {kms.RSAESOAEPSHA1: 214, kms.RSAESOAEPSHA256: 190},
	kms.RSA3072: {kms.RSAESOAEPSHA1: 342, kms.RSAESOAEPSHA256: 318},
	kms.RSA4096: {kms.RSAESOAEPSHA1: 470, kms.RSAESOAEPSHA256: 446},
}

func TestEncryptDecryptRSA(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, spec := range []kms.KeySpec{kms.RSA2048, kms.RSA3072, kms.RSA4096} {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := r.CreateKey(spec, kms.EncryptDecrypt)
			require.Equal(t, []kms.EncryptionAlgorithm{kms.RSAESOAEPSHA1, kms.RSAESOAEPSHA256}, k.EncryptionAlgorithms)
			other := r.CreateKey(kms.RSA2048, kms.EncryptDecrypt)
			pk, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
			require.NoError(t, err)
			require.Equal(t, []kms.EncryptionAlgorithm{kms.RSAESOAEPSHA1, kms.RSAESOAEPSHA256}, pk.EncryptionAlgorithms)
			require.Equal(t, kms.EncryptDecrypt, pk.KeyUsage)
			parsed, err := x509.ParsePKIXPublicKey(pk.PublicKey)
			require.NoError(t, err)
			pub, ok := parsed.(*rsa.PublicKey)
			require.True(t, ok)
			modBytes := pub.Size()

			for alg, limit := range crOAEPLimits[spec] {
				t.Run(string(alg), func(t *testing.T) {
					for _, n := range []int{1, 32, limit} {
						pt := crRand(t, n)
						out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionAlgorithm: alg})
						require.NoError(t, err, "%d bytes", n)
						require.Equal(t, k.Arn, out.KeyID)
						require.Equal(t, uint32(1), out.KeyVersion)
						require.Equal(t, alg, out.EncryptionAlgorithm)
						require.Len(t, out.CiphertextBlob, modBytes, "raw RSA ciphertext")
						for _, name := range []string{k.KeyID, k.Arn} {
							d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, KeyID: name, EncryptionAlgorithm: alg})
							require.NoError(t, err)
							require.True(t, bytes.Equal(pt, d.Plaintext))
							require.Equal(t, uint32(1), d.KeyVersion)
							require.Equal(t, alg, d.EncryptionAlgorithm)
							require.Equal(t, k.Arn, d.KeyID)
						}
					}
					_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: crRand(t, limit+1), EncryptionAlgorithm: alg})
					crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidArgument, "limit+1")
					_, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, EncryptionAlgorithm: alg})
					crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidArgument, "empty plaintext")

					// A client encrypting to GetPublicKey with the standard library.
					h := sha256.New()
					if alg == kms.RSAESOAEPSHA1 {
						h = sha1.New()
					}
					pt := []byte("encrypted by a client")
					ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, pt, nil)
					require.NoError(t, err)
					d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: ct, KeyID: k.KeyID, EncryptionAlgorithm: alg})
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, d.Plaintext))

					out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionAlgorithm: alg})
					require.NoError(t, err)
					ct = out.CiphertextBlob
					otherAlg := kms.RSAESOAEPSHA1
					if alg == kms.RSAESOAEPSHA1 {
						otherAlg = kms.RSAESOAEPSHA256
					}
					for _, tc := range []struct {
						name    string
						in      kms.DecryptInput
						wantErr error
					}{
						{"no KeyID", kms.DecryptInput{CiphertextBlob: ct, EncryptionAlgorithm: alg}, kms.ErrInvalidArgument},
						{"encryption context", kms.DecryptInput{CiphertextBlob: ct, KeyID: k.KeyID, EncryptionAlgorithm: alg, EncryptionContext: kms.EncryptionContext{"a": "b"}}, kms.ErrInvalidArgument},
						{"other OAEP hash", kms.DecryptInput{CiphertextBlob: ct, KeyID: k.KeyID, EncryptionAlgorithm: otherAlg}, kms.ErrInvalidCiphertext},
						{"other key", kms.DecryptInput{CiphertextBlob: ct, KeyID: other.KeyID, EncryptionAlgorithm: alg}, kms.ErrInvalidCiphertext},
						{"first bit flipped", kms.DecryptInput{CiphertextBlob: crFlipBit(ct, 0), KeyID: k.KeyID, EncryptionAlgorithm: alg}, kms.ErrInvalidCiphertext},
						{"last bit flipped", kms.DecryptInput{CiphertextBlob: crFlipBit(ct, 8*len(ct)-1), KeyID: k.KeyID, EncryptionAlgorithm: alg}, kms.ErrInvalidCiphertext},
						{"middle bit flipped", kms.DecryptInput{CiphertextBlob: crFlipBit(ct, 4*len(ct)+3), KeyID: k.KeyID, EncryptionAlgorithm: alg}, kms.ErrInvalidCiphertext},
						{"truncated", kms.DecryptInput{CiphertextBlob: ct[:len(ct)-1], KeyID: k.KeyID, EncryptionAlgorithm: alg}, kms.ErrInvalidCiphertext},
						{"extended", kms.DecryptInput{CiphertextBlob: append(bytes.Clone(ct), 0), KeyID: k.KeyID, EncryptionAlgorithm: alg}, kms.ErrInvalidCiphertext},
						{"empty", kms.DecryptInput{KeyID: k.KeyID, EncryptionAlgorithm: alg}, kms.ErrInvalidCiphertext},
						{"oversized", kms.DecryptInput{CiphertextBlob: make([]byte, kms.MaxCiphertextSize+1), KeyID: k.KeyID, EncryptionAlgorithm: alg}, kms.ErrInvalidCiphertext},
					} {
						d, err := r.Decrypt(ctx, tc.in)
						crRequireErr(t, err, kms.OpDecrypt, tc.wantErr, tc.name)
						require.Nil(t, d, tc.name)
						require.NotContains(t, err.Error(), string(pt), tc.name)
					}
					_, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionAlgorithm: alg, EncryptionContext: kms.EncryptionContext{"a": "b"}})
					crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidArgument, "RSA refuses an encryption context")
				})
			}
		})
	}
}

func TestEncryptDecryptRSARotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.RSA2048, kms.EncryptDecrypt)
	alg := kms.RSAESOAEPSHA256
	pt1, pt2 := []byte("under version 1"), []byte("under version 2")
	o1, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt1, EncryptionAlgorithm: alg})
	require.NoError(t, err)
	require.Equal(t, uint32(1), o1.KeyVersion)
	v, err := r.RotateKeyOnDemand(ctx, k.KeyID)
	require.NoError(t, err)
	require.Equal(t, uint32(2), v)
	o2, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt2, EncryptionAlgorithm: alg})
	require.NoError(t, err)
	require.Equal(t, uint32(2), o2.KeyVersion, "Encrypt uses the new primary version")

	for _, tc := range []struct {
		name    string
		ct, pt  []byte
		pin     uint32
		wantVer uint32
		wantErr error
	}{
		{"v1 ciphertext, fallback", o1.CiphertextBlob, pt1, 0, 1, nil},
		{"v1 ciphertext, v1 pinned", o1.CiphertextBlob, pt1, 1, 1, nil},
		{"v1 ciphertext, v2 pinned", o1.CiphertextBlob, pt1, 2, 0, kms.ErrInvalidCiphertext},
		{"v2 ciphertext, primary", o2.CiphertextBlob, pt2, 0, 2, nil},
		{"v2 ciphertext, v2 pinned", o2.CiphertextBlob, pt2, 2, 2, nil},
		{"v2 ciphertext, v1 pinned", o2.CiphertextBlob, pt2, 1, 0, kms.ErrInvalidCiphertext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: tc.ct, KeyID: k.KeyID, KeyVersion: tc.pin, EncryptionAlgorithm: alg})
			if tc.wantErr != nil {
				crRequireErr(t, err, kms.OpDecrypt, tc.wantErr)
				require.Nil(t, d)
				return
			}
			require.NoError(t, err)
			require.True(t, bytes.Equal(tc.pt, d.Plaintext))
			require.Equal(t, tc.wantVer, d.KeyVersion)
		})
	}
	// A version the key does not have is a bad argument, as for Verify,
	// VerifyMac, GetPublicKey and DeriveSharedSecret, not a bad ciphertext.
	t.Run("absent version pinned", func(t *testing.T) {
		t.Parallel()
		d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: o1.CiphertextBlob, KeyID: k.KeyID, KeyVersion: 3, EncryptionAlgorithm: alg})
		crRequireErr(t, err, kms.OpDecrypt, kms.ErrInvalidArgument)
		require.Nil(t, d)
	})
}

func TestReEncrypt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	src := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	dst := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	rsaKey := r.CreateKey(kms.RSA2048, kms.EncryptDecrypt)
	hmacKey := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
	require.NoError(t, r.CreateAlias(ctx, "alias/dst", dst.KeyID))
	pt := []byte("the plaintext that never leaves")
	srcEC := kms.EncryptionContext{"stage": "source"}
	dstEC := kms.EncryptionContext{"stage": "destination", "n": "2"}
	in, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: src.KeyID, Plaintext: pt, EncryptionContext: srcEC})
	require.NoError(t, err)

	noPlaintext := func(t *testing.T, out *kms.ReEncryptOutput) {
		t.Helper()
		require.False(t, bytes.Contains(out.CiphertextBlob, pt), "plaintext in the blob")
		require.NotContains(t, fmt.Sprintf("%+v %#v", out, out), string(pt))
	}

	t.Run("symmetric to symmetric with a new context", func(t *testing.T) {
		t.Parallel()
		for _, srcName := range []string{"", src.KeyID, src.Arn} {
			out, err := r.ReEncrypt(ctx, kms.ReEncryptInput{
				CiphertextBlob: in.CiphertextBlob, SourceKeyID: srcName, SourceEncryptionContext: srcEC,
				DestinationKeyID: "alias/dst", DestinationEncryptionContext: dstEC,
			})
			require.NoError(t, err)
			noPlaintext(t, out)
			require.Equal(t, src.Arn, out.SourceKeyID)
			require.Equal(t, uint32(1), out.SourceKeyVersion)
			require.Equal(t, dst.Arn, out.KeyID)
			require.Equal(t, uint32(1), out.KeyVersion)
			require.Equal(t, kms.SymmetricDefaultAlgorithm, out.SourceEncryptionAlgorithm)
			require.Equal(t, kms.SymmetricDefaultAlgorithm, out.DestinationEncryptionAlgorithm)
			d := crRequireDecrypts(t, r, out.CiphertextBlob, dstEC, pt)
			require.Equal(t, dst.Arn, d.KeyID)
			_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: srcEC})
			crRequireErr(t, err, kms.OpDecrypt, kms.ErrInvalidCiphertext, "the old context no longer opens it")
		}
	})
	t.Run("to the rotated primary version", func(t *testing.T) {
		t.Parallel()
		k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		o, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: srcEC})
		require.NoError(t, err)
		_, err = r.RotateKeyOnDemand(ctx, k.KeyID)
		require.NoError(t, err)
		out, err := r.ReEncrypt(ctx, kms.ReEncryptInput{
			CiphertextBlob: o.CiphertextBlob, SourceEncryptionContext: srcEC,
			DestinationKeyID: k.KeyID, DestinationEncryptionContext: srcEC,
		})
		require.NoError(t, err)
		noPlaintext(t, out)
		require.Equal(t, uint32(1), out.SourceKeyVersion)
		require.Equal(t, uint32(2), out.KeyVersion)
		require.Equal(t, k.Arn, out.KeyID)
		require.Equal(t, k.Arn, out.SourceKeyID)
		h, _, _, err := format.ParseBlob(out.CiphertextBlob)
		require.NoError(t, err)
		require.Equal(t, uint32(2), h.KeyVersion)
		d := crRequireDecrypts(t, r, out.CiphertextBlob, srcEC, pt)
		require.Equal(t, uint32(2), d.KeyVersion)
	})
	t.Run("symmetric to RSA and back", func(t *testing.T) {
		t.Parallel()
		for _, alg := range []kms.EncryptionAlgorithm{kms.RSAESOAEPSHA1, kms.RSAESOAEPSHA256} {
			toRSA, err := r.ReEncrypt(ctx, kms.ReEncryptInput{
				CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: srcEC,
				DestinationKeyID: rsaKey.KeyID, DestinationEncryptionAlgorithm: alg,
			})
			require.NoError(t, err)
			noPlaintext(t, toRSA)
			require.Equal(t, alg, toRSA.DestinationEncryptionAlgorithm)
			require.Equal(t, rsaKey.Arn, toRSA.KeyID)
			require.Len(t, toRSA.CiphertextBlob, 256)
			d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: toRSA.CiphertextBlob, KeyID: rsaKey.KeyID, EncryptionAlgorithm: alg})
			require.NoError(t, err)
			require.True(t, bytes.Equal(pt, d.Plaintext))

			_, err = r.ReEncrypt(ctx, kms.ReEncryptInput{
				CiphertextBlob: toRSA.CiphertextBlob, SourceEncryptionAlgorithm: alg, DestinationKeyID: dst.KeyID,
			})
			crRequireErr(t, err, kms.OpReEncrypt, kms.ErrInvalidArgument, "RSA source needs SourceKeyID")

			back, err := r.ReEncrypt(ctx, kms.ReEncryptInput{
				CiphertextBlob: toRSA.CiphertextBlob, SourceKeyID: rsaKey.KeyID, SourceEncryptionAlgorithm: alg,
				DestinationKeyID: dst.KeyID, DestinationEncryptionContext: dstEC,
			})
			require.NoError(t, err)
			noPlaintext(t, back)
			require.Equal(t, rsaKey.Arn, back.SourceKeyID)
			require.Equal(t, alg, back.SourceEncryptionAlgorithm)
			require.Equal(t, kms.SymmetricDefaultAlgorithm, back.DestinationEncryptionAlgorithm)
			crRequireDecrypts(t, r, back.CiphertextBlob, dstEC, pt)
		}
	})
	for _, tc := range []struct {
		name    string
		in      kms.ReEncryptInput
		wantErr error
	}{
		{"no destination", kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: srcEC}, kms.ErrInvalidArgument},
		{"wrong source context", kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: dstEC, DestinationKeyID: dst.KeyID}, kms.ErrInvalidCiphertext},
		{"missing source context", kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, DestinationKeyID: dst.KeyID}, kms.ErrInvalidCiphertext},
		{"source key is another key", kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, SourceKeyID: dst.KeyID, SourceEncryptionContext: srcEC, DestinationKeyID: dst.KeyID}, kms.ErrIncorrectKey},
		{"tampered blob", kms.ReEncryptInput{CiphertextBlob: crFlipBit(in.CiphertextBlob, 8*len(in.CiphertextBlob)-1), SourceEncryptionContext: srcEC, DestinationKeyID: dst.KeyID}, kms.ErrInvalidCiphertext},
		{"empty blob", kms.ReEncryptInput{SourceEncryptionContext: srcEC, DestinationKeyID: dst.KeyID}, kms.ErrInvalidCiphertext},
		{"HMAC destination", kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: hmacKey.KeyID}, kms.ErrInvalidUsage},
		{"RSA destination without algorithm", kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: rsaKey.KeyID}, kms.ErrInvalidUsage},
		{"RSA destination with context", kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: rsaKey.KeyID, DestinationEncryptionAlgorithm: kms.RSAESOAEPSHA256, DestinationEncryptionContext: dstEC}, kms.ErrInvalidArgument},
		{"unknown destination", kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: srcEC, DestinationKeyID: "alias/none"}, kms.ErrNotFound},
	} {
		t.Run("error/"+tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := r.ReEncrypt(ctx, tc.in)
			crRequireErr(t, err, kms.OpReEncrypt, tc.wantErr)
			require.Nil(t, out)
			require.NotContains(t, err.Error(), string(pt))
		})
	}
}

func TestReEncryptAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	src := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	dst := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	_, err := r.RotateKeyOnDemand(ctx, dst.KeyID)
	require.NoError(t, err)
	pt := []byte("audited plaintext")
	srcEC, dstEC := kms.EncryptionContext{"s": "1"}, kms.EncryptionContext{"d": "2"}
	in, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: src.KeyID, Plaintext: pt, EncryptionContext: srcEC})
	require.NoError(t, err)

	r.Events.Reset()
	_, err = r.ReEncrypt(ctx, kms.ReEncryptInput{
		CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: srcEC,
		DestinationKeyID: dst.Arn, DestinationEncryptionContext: dstEC,
	})
	require.NoError(t, err)
	evs := r.Events.Events()
	require.Len(t, evs, 1, "one event for the whole ReEncrypt")
	ev := evs[0]
	require.Equal(t, kms.OpReEncrypt, ev.Op)
	require.Equal(t, kms.OutcomeAllowed, ev.Outcome)
	require.Equal(t, src.KeyID, ev.SourceKeyID)
	require.Equal(t, uint32(1), ev.SourceKeyVersion)
	require.Equal(t, dst.KeyID, ev.KeyID)
	require.Equal(t, dst.Arn, ev.KeyARN)
	require.Equal(t, uint32(2), ev.KeyVersion)
	require.Equal(t, dstEC, ev.EncryptionContext)
	require.Empty(t, ev.ErrorCode)
	require.NoError(t, ev.Err)
	require.NotContains(t, fmt.Sprintf("%+v", ev), string(pt))

	r.Events.Reset()
	_, err = r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: in.CiphertextBlob, DestinationKeyID: dst.KeyID})
	crRequireErr(t, err, kms.OpReEncrypt, kms.ErrInvalidCiphertext)
	evs = r.Events.Events()
	require.Len(t, evs, 1, "one event for a failed ReEncrypt")
	require.Equal(t, kms.OpReEncrypt, evs[0].Op)
	require.Equal(t, kms.OutcomeFailed, evs[0].Outcome)
	require.Equal(t, "InvalidCiphertextException", evs[0].ErrorCode)
}

func TestReEncryptPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pt := []byte("policy-guarded plaintext")
	srcEC, dstEC := kms.EncryptionContext{"s": "1"}, kms.EncryptionContext{"d": "2"}
	errNo := errors.New("policy says no")

	for _, tc := range []struct {
		name    string
		deny    map[kms.Op]bool
		wantErr error
	}{
		{"deny ReEncryptFrom", map[kms.Op]bool{kms.OpReEncryptFrom: true}, kms.ErrAccessDenied},
		{"deny ReEncryptTo", map[kms.Op]bool{kms.OpReEncryptTo: true}, kms.ErrAccessDenied},
		{"deny Encrypt and Decrypt only", map[kms.Op]bool{kms.OpEncrypt: true, kms.OpDecrypt: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu     sync.Mutex
				armed  bool
				asked  []kms.Request
				denied = tc.deny
			)
			policy := kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
				mu.Lock()
				defer mu.Unlock()
				if !armed {
					return nil
				}
				asked = append(asked, req)
				if denied[req.Op] {
					return errNo
				}
				return nil
			})
			r := kmstest.New(t, kms.Config{Policy: policy})
			src := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
			dst := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
			in, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: src.KeyID, Plaintext: pt, EncryptionContext: srcEC})
			require.NoError(t, err)
			mu.Lock()
			armed = true
			mu.Unlock()
			r.Events.Reset()

			out, err := r.ReEncrypt(ctx, kms.ReEncryptInput{
				CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: srcEC,
				DestinationKeyID: dst.KeyID, DestinationEncryptionContext: dstEC,
			})
			evs := r.Events.Events()
			require.Len(t, evs, 1)
			require.Equal(t, kms.OpReEncrypt, evs[0].Op)
			if tc.wantErr != nil {
				crRequireErr(t, err, kms.OpReEncrypt, tc.wantErr)
				require.ErrorIs(t, err, errNo, "the policy's reason is kept")
				require.Nil(t, out)
				require.Equal(t, kms.OutcomeDenied, evs[0].Outcome)
				require.Equal(t, "AccessDeniedException", evs[0].ErrorCode)
				return
			}
			require.NoError(t, err)
			require.Equal(t, kms.OutcomeAllowed, evs[0].Outcome)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, asked, 2, "the policy is asked twice")
			require.Equal(t, kms.OpReEncryptFrom, asked[0].Op)
			require.Equal(t, src.KeyID, asked[0].KeyID)
			require.Equal(t, srcEC, asked[0].EncryptionContext)
			require.Equal(t, kms.OpReEncryptTo, asked[1].Op)
			require.Equal(t, dst.KeyID, asked[1].KeyID)
			require.Equal(t, dstEC, asked[1].EncryptionContext)
		})
	}
}

func TestGenerateDataKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	ec := kms.EncryptionContext{"purpose": "data key"}

	type variant struct {
		name string
		op   kms.Op
		call func(context.Context, kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error)
	}
	variants := []variant{
		{"GenerateDataKey", kms.OpGenerateDataKey, r.GenerateDataKey},
		{"GenerateDataKeyWithoutPlaintext", kms.OpGenerateDataKeyWithoutPlaintext, r.GenerateDataKeyWithoutPlaintext},
	}
	for _, v := range variants {
		for _, tc := range []struct {
			name    string
			n       int
			spec    kms.DataKeySpec
			wantLen int
			wantErr error
		}{
			{"1 byte", 1, "", 1, nil},
			{"16 bytes", 16, "", 16, nil},
			{"64 bytes", 64, "", 64, nil},
			{"1024 bytes", kms.MaxDataKeyBytes, "", kms.MaxDataKeyBytes, nil},
			{"AES_128", 0, kms.AES128, 16, nil},
			{"AES_256", 0, kms.AES256, 32, nil},
			{"neither", 0, "", 0, kms.ErrInvalidArgument},
			{"both", 32, kms.AES256, 0, kms.ErrInvalidArgument},
			{"both, matching AES_128", 16, kms.AES128, 0, kms.ErrInvalidArgument},
			{"1025 bytes", kms.MaxDataKeyBytes + 1, "", 0, kms.ErrInvalidArgument},
			{"negative", -1, "", 0, kms.ErrInvalidArgument},
			{"huge", math.MaxInt, "", 0, kms.ErrInvalidArgument},
			{"unknown KeySpec", 0, "AES_512", 0, kms.ErrInvalidArgument},
		} {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				out, err := v.call(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, NumberOfBytes: tc.n, KeySpec: tc.spec, EncryptionContext: ec})
				if tc.wantErr != nil {
					crRequireErr(t, err, v.op, tc.wantErr)
					require.Nil(t, out)
					return
				}
				require.NoError(t, err)
				require.Equal(t, k.Arn, out.KeyID)
				require.Equal(t, uint32(1), out.KeyVersion)
				require.Len(t, out.CiphertextBlob, 73+tc.wantLen)
				d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
				require.NoError(t, err)
				require.Len(t, d.Plaintext, tc.wantLen)
				if v.op == kms.OpGenerateDataKeyWithoutPlaintext {
					require.Nil(t, out.Plaintext)
				} else {
					require.Len(t, out.Plaintext, tc.wantLen)
					require.True(t, bytes.Equal(out.Plaintext, d.Plaintext), "the blob holds the data key")
					if tc.wantLen >= 16 {
						require.NotContains(t, fmt.Sprintf("%v %+v %#v %x", out, out, out, out.Plaintext), fmt.Sprintf("%x", []byte(out.Plaintext)), "formatting prints the data key")
					}
				}
				_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
				crRequireErr(t, err, kms.OpDecrypt, kms.ErrInvalidCiphertext, "the context is bound")
			})
		}
	}
	t.Run("fresh keys", func(t *testing.T) {
		t.Parallel()
		a, err := r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256})
		require.NoError(t, err)
		b, err := r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256})
		require.NoError(t, err)
		require.False(t, bytes.Equal(a.Plaintext, b.Plaintext))
	})
	t.Run("after rotation", func(t *testing.T) {
		t.Parallel()
		rk := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		_, err := r.RotateKeyOnDemand(ctx, rk.KeyID)
		require.NoError(t, err)
		for _, v := range variants {
			out, err := v.call(ctx, kms.GenerateDataKeyInput{KeyID: rk.KeyID, KeySpec: kms.AES128})
			require.NoError(t, err)
			require.Equal(t, uint32(2), out.KeyVersion)
			d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
			require.NoError(t, err)
			require.Equal(t, uint32(2), d.KeyVersion)
		}
	})
	t.Run("wrong key usage", func(t *testing.T) {
		t.Parallel()
		for _, spec := range []struct {
			spec  kms.KeySpec
			usage kms.KeyUsage
		}{
			{kms.RSA2048, kms.EncryptDecrypt},
			{kms.HMAC256, kms.GenerateVerifyMac},
			{kms.ECCNISTP256, kms.SignVerify},
			{kms.ECCNISTP256, kms.KeyAgreement},
		} {
			key := r.CreateKey(spec.spec, spec.usage)
			for _, v := range variants {
				out, err := v.call(ctx, kms.GenerateDataKeyInput{KeyID: key.KeyID, KeySpec: kms.AES256})
				crRequireErr(t, err, v.op, kms.ErrInvalidUsage, "%s %s", spec.spec, v.name)
				require.Nil(t, out)
			}
		}
	})
	t.Run("invalid context and key", func(t *testing.T) {
		t.Parallel()
		for _, v := range variants {
			_, err := v.call(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256, EncryptionContext: kms.EncryptionContext{"": "x"}})
			crRequireErr(t, err, v.op, kms.ErrInvalidArgument)
			_, err = v.call(ctx, kms.GenerateDataKeyInput{KeySpec: kms.AES256})
			crRequireErr(t, err, v.op, kms.ErrInvalidArgument)
			_, err = v.call(ctx, kms.GenerateDataKeyInput{KeyID: "alias/none", KeySpec: kms.AES256})
			crRequireErr(t, err, v.op, kms.ErrNotFound)
		}
	})
}

func TestGenerateRandom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	for _, tc := range []struct {
		n       int
		wantErr bool
	}{
		{math.MinInt, true}, {-1, true}, {0, true},
		{1, false}, {2, false}, {32, false}, {kms.MaxRandomBytes, false},
		{kms.MaxRandomBytes + 1, true}, {math.MaxInt, true},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			t.Parallel()
			b, err := r.GenerateRandom(ctx, tc.n)
			if tc.wantErr {
				crRequireErr(t, err, kms.OpGenerateRandom, kms.ErrInvalidArgument)
				require.Nil(t, b)
				var ke *kms.Error
				require.ErrorAs(t, err, &ke)
				require.Empty(t, ke.KeyID)
				return
			}
			require.NoError(t, err)
			require.Len(t, b, tc.n)
		})
	}
	t.Run("distinct", func(t *testing.T) {
		t.Parallel()
		a, err := r.GenerateRandom(ctx, 32)
		require.NoError(t, err)
		b, err := r.GenerateRandom(ctx, 32)
		require.NoError(t, err)
		require.False(t, bytes.Equal(a, b))
		require.False(t, bytes.Equal(a, make([]byte, 32)))
	})
}

// crStateKeys is one key of each kind, all in the state under test, with
// inputs for every cryptographic operation on them.
type crStateKeys struct {
	sym, rsa, sign, hmac, agree string
	other                       string // an Enabled symmetric key
	symBlob, otherBlob, rsaCT   []byte
	sig, mac                    []byte
	peer                        []byte // a P-256 public key, DER
}

// crStateOps are the cryptographic operations, each run against crStateKeys.
var crStateOps = []struct {
	name string
	op   kms.Op
	run  func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error
}{
	{"Encrypt", kms.OpEncrypt, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.sym, Plaintext: []byte("x")})
		return err
	}},
	{"Encrypt RSA", kms.OpEncrypt, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.rsa, Plaintext: []byte("x"), EncryptionAlgorithm: kms.RSAESOAEPSHA256})
		return err
	}},
	{"Decrypt", kms.OpDecrypt, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: k.symBlob})
		return err
	}},
	{"Decrypt naming the key", kms.OpDecrypt, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: k.symBlob, KeyID: k.sym})
		return err
	}},
	{"Decrypt RSA", kms.OpDecrypt, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: k.rsaCT, KeyID: k.rsa, EncryptionAlgorithm: kms.RSAESOAEPSHA256})
		return err
	}},
	{"ReEncrypt from", kms.OpReEncrypt, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: k.symBlob, DestinationKeyID: k.other})
		return err
	}},
	{"ReEncrypt to", kms.OpReEncrypt, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: k.otherBlob, DestinationKeyID: k.sym})
		return err
	}},
	{"GenerateDataKey", kms.OpGenerateDataKey, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.sym, KeySpec: kms.AES256})
		return err
	}},
	{"GenerateDataKeyWithoutPlaintext", kms.OpGenerateDataKeyWithoutPlaintext, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.GenerateDataKeyWithoutPlaintext(ctx, kms.GenerateDataKeyInput{KeyID: k.sym, NumberOfBytes: 8})
		return err
	}},
	{"GenerateDataKeyPair", kms.OpGenerateDataKeyPair, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.GenerateDataKeyPair(ctx, kms.GenerateDataKeyPairInput{KeyID: k.sym, KeyPairSpec: kms.PairECCNISTP256})
		return err
	}},
	{"GenerateDataKeyPairWithoutPlaintext", kms.OpGenerateDataKeyPairWithoutPlaintext, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.GenerateDataKeyPairWithoutPlaintext(ctx, kms.GenerateDataKeyPairInput{KeyID: k.sym, KeyPairSpec: kms.PairECCNISTP256})
		return err
	}},
	{"Sign", kms.OpSign, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.Sign(ctx, kms.SignInput{KeyID: k.sign, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA256})
		return err
	}},
	{"Verify", kms.OpVerify, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.Verify(ctx, kms.VerifyInput{KeyID: k.sign, Message: []byte("m"), Signature: k.sig, SigningAlgorithm: kms.ECDSASHA256})
		return err
	}},
	{"GetPublicKey", kms.OpGetPublicKey, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.sign})
		return err
	}},
	{"GenerateMac", kms.OpGenerateMac, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.hmac, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
		return err
	}},
	{"VerifyMac", kms.OpVerifyMac, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.hmac, Message: []byte("m"), Mac: k.mac, MacAlgorithm: kms.HMACSHA256})
		return err
	}},
	{"DeriveSharedSecret", kms.OpDeriveSharedSecret, func(ctx context.Context, r *kmstest.Ring, k *crStateKeys) error {
		_, err := r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: k.agree, KeyAgreementAlgorithm: kms.ECDH, PublicKey: k.peer})
		return err
	}},
}

func crNewStateKeys(t *testing.T, r *kmstest.Ring, origin kms.Origin) *crStateKeys {
	t.Helper()
	ctx := context.Background()
	create := func(spec kms.KeySpec, usage kms.KeyUsage) string {
		m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Origin: origin})
		require.NoError(t, err)
		return m.KeyID
	}
	k := &crStateKeys{
		sym: create(kms.SymmetricDefault, kms.EncryptDecrypt), rsa: create(kms.RSA2048, kms.EncryptDecrypt),
		sign: create(kms.ECCNISTP256, kms.SignVerify), hmac: create(kms.HMAC256, kms.GenerateVerifyMac),
		agree: create(kms.ECCNISTP256, kms.KeyAgreement), other: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID,
	}
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	k.peer, err = x509.MarshalPKIXPublicKey(peer.PublicKey())
	require.NoError(t, err)
	o, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.other, Plaintext: []byte("other")})
	require.NoError(t, err)
	k.otherBlob = o.CiphertextBlob
	if origin == kms.OriginExternal {
		// No material: inputs that name the keys are all the operations get.
		k.symBlob = crBlobNaming(t, k.sym, 1)
		k.rsaCT, k.sig, k.mac = make([]byte, 256), make([]byte, 72), make([]byte, 32)
		return k
	}
	s, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.sym, Plaintext: []byte("sym")})
	require.NoError(t, err)
	k.symBlob = s.CiphertextBlob
	e, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.rsa, Plaintext: []byte("rsa"), EncryptionAlgorithm: kms.RSAESOAEPSHA256})
	require.NoError(t, err)
	k.rsaCT = e.CiphertextBlob
	sig, err := r.Sign(ctx, kms.SignInput{KeyID: k.sign, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA256})
	require.NoError(t, err)
	k.sig = sig.Signature
	mac, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.hmac, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)
	k.mac = mac.Mac
	return k
}

func (k *crStateKeys) inState() []string { return []string{k.sym, k.rsa, k.sign, k.hmac, k.agree} }

func TestCryptoOpsRefuseKeyStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, st := range []struct {
		name     string
		origin   kms.Origin
		enter    func(r *kmstest.Ring, id string) error
		leave    func(r *kmstest.Ring, id string) error // back to Enabled; nil if impossible
		sentinel error
		code     string
	}{
		{
			name: "Disabled", origin: kms.OriginAWSKMS,
			enter:    func(r *kmstest.Ring, id string) error { return r.DisableKey(ctx, id) },
			leave:    func(r *kmstest.Ring, id string) error { return r.EnableKey(ctx, id) },
			sentinel: kms.ErrDisabled, code: "DisabledException",
		},
		{
			name: "PendingDeletion", origin: kms.OriginAWSKMS,
			enter: func(r *kmstest.Ring, id string) error { _, err := r.ScheduleKeyDeletion(ctx, id, 7); return err },
			leave: func(r *kmstest.Ring, id string) error {
				if err := r.CancelKeyDeletion(ctx, id); err != nil {
					return err
				}
				return r.EnableKey(ctx, id)
			},
			sentinel: kms.ErrPendingDeletion, code: "KMSInvalidStateException",
		},
		{
			name: "PendingImport", origin: kms.OriginExternal,
			enter:    func(*kmstest.Ring, string) error { return nil },
			sentinel: kms.ErrPendingImport, code: "KMSInvalidStateException",
		},
	} {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := crNewStateKeys(t, r, st.origin)
			for _, id := range k.inState() {
				require.NoError(t, st.enter(r, id))
			}
			for _, op := range crStateOps {
				err := op.run(ctx, r, k)
				crRequireErr(t, err, op.op, st.sentinel, op.name)
				require.ErrorIs(t, err, kms.ErrInvalidState, op.name)
				require.Equal(t, st.code, kms.ErrorCode(err), op.name)
				ev, ok := r.Events.Last()
				require.True(t, ok)
				require.Equal(t, op.op, ev.Op, op.name)
				require.Equal(t, kms.OutcomeFailed, ev.Outcome, op.name)
				require.Equal(t, st.code, ev.ErrorCode, op.name)
			}
			_, err := r.RotateKeyOnDemand(ctx, k.sym)
			crRequireErr(t, err, kms.OpRotateKeyOnDemand, st.sentinel)
			if st.leave == nil {
				return
			}
			for _, id := range k.inState() {
				require.NoError(t, st.leave(r, id))
			}
			for _, op := range crStateOps {
				require.NoError(t, op.run(ctx, r, k), "%s after the key is enabled again", op.name)
			}
		})
	}
}
