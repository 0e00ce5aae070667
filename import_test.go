package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// crExternalKey creates a key of origin EXTERNAL, in PendingImport.
func crExternalKey(t testing.TB, r *kmstest.Ring, spec kms.KeySpec, usage kms.KeyUsage) *kms.KeyMetadata {
	t.Helper()
	m, err := r.KeyRing.CreateKey(context.Background(), kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Origin: kms.OriginExternal})
	require.NoError(t, err)
	require.Equal(t, kms.KeyStatePendingImport, m.KeyState)
	require.Equal(t, kms.OriginExternal, m.Origin)
	return m
}

// crParams calls GetParametersForImport and fails the test on error.
func crParams(t testing.TB, r *kmstest.Ring, keyID string, alg kms.WrappingAlgorithm, spec kms.WrappingKeySpec) *kms.GetParametersForImportOutput {
	t.Helper()
	p, err := r.GetParametersForImport(context.Background(), kms.GetParametersForImportInput{KeyID: keyID, WrappingAlgorithm: alg, WrappingKeySpec: spec})
	require.NoError(t, err)
	return p
}

// crWrap encrypts material to the parameters' wrapping key as a client would.
func crWrap(t testing.TB, p *kms.GetParametersForImportOutput, alg kms.WrappingAlgorithm, material []byte) []byte {
	t.Helper()
	enc, err := kmstest.WrapForImport(p.PublicKey, alg, material)
	require.NoError(t, err)
	return enc
}

// crImport imports material into keyID through fresh import parameters;
// mod, if not nil, changes the ImportKeyMaterial input before the call.
func crImport(t testing.TB, r *kmstest.Ring, keyID string, alg kms.WrappingAlgorithm, material []byte, mod func(*kms.ImportKeyMaterialInput)) error {
	t.Helper()
	p := crParams(t, r, keyID, alg, kms.WrappingRSA2048)
	in := kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, alg, material)}
	if mod != nil {
		mod(&in)
	}
	return r.ImportKeyMaterial(context.Background(), in)
}

func crPKCS8(t testing.TB, k crypto.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return der
}

func crPKIX(t testing.TB, k crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	require.NoError(t, err)
	return der
}

func crECKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	require.NoError(t, err)
	return k
}

var crWrappingAlgs = []kms.WrappingAlgorithm{kms.WrapRSAESOAEPSHA1, kms.WrapRSAESOAEPSHA256, kms.WrapRSAAESKeyWrapSHA1, kms.WrapRSAAESKeyWrapSHA256}

func TestImportWrappingAlgorithmsAndSpecs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type combo struct {
		alg  kms.WrappingAlgorithm
		spec kms.WrappingKeySpec
		bits int
	}
	var combos []combo
	for _, alg := range crWrappingAlgs {
		combos = append(combos, combo{alg, kms.WrappingRSA2048, 2048})
	}
	combos = append(combos, combo{kms.WrapRSAESOAEPSHA256, kms.WrappingRSA3072, 3072}, combo{kms.WrapRSAAESKeyWrapSHA1, kms.WrappingRSA4096, 4096})
	for _, c := range combos {
		t.Run(fmt.Sprintf("%s/%s", c.alg, c.spec), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
			p := crParams(t, r, k.KeyID, c.alg, c.spec)
			require.Equal(t, k.Arn, p.KeyID)
			require.NotEmpty(t, p.ImportToken)
			require.True(t, p.ParametersValidTo.Equal(kmstest.Epoch.Add(kms.ImportParametersLifetime)), "valid for 24 hours: %v", p.ParametersValidTo)
			pk, err := x509.ParsePKIXPublicKey(p.PublicKey)
			require.NoError(t, err)
			rp, ok := pk.(*rsa.PublicKey)
			require.True(t, ok, "%T", pk)
			require.Equal(t, c.bits, rp.N.BitLen())

			material := crRand(t, 32)
			require.NoError(t, r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: k.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, c.alg, material)}))
			ev, ok := r.Events.Last()
			require.True(t, ok)
			require.Equal(t, kms.OpImportKeyMaterial, ev.Op)
			require.Equal(t, kms.OutcomeAllowed, ev.Outcome)
			require.Equal(t, uint32(1), ev.KeyVersion)

			m, err := r.DescribeKey(ctx, k.KeyID)
			require.NoError(t, err)
			require.Equal(t, kms.KeyStateEnabled, m.KeyState)
			require.True(t, m.Enabled)
			require.Equal(t, kms.OriginExternal, m.Origin)
			require.Equal(t, uint32(1), m.PrimaryVersion)
			require.Equal(t, 1, m.Versions)
			require.Equal(t, kms.KeyMaterialDoesNotExpire, m.ExpirationModel)
			require.True(t, m.ValidTo.IsZero())

			pt := []byte("under imported material")
			ec := kms.EncryptionContext{"imported": "yes"}
			out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: ec})
			require.NoError(t, err)
			require.Equal(t, uint32(1), out.KeyVersion)
			crRequireDecrypts(t, r, out.CiphertextBlob, ec, pt)

			// An asymmetric private key through the same algorithm.
			ek := crExternalKey(t, r, kms.ECCNISTP256, kms.SignVerify)
			priv := crECKey(t, elliptic.P256())
			p = crParams(t, r, ek.KeyID, c.alg, c.spec)
			require.NoError(t, r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: ek.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, c.alg, crPKCS8(t, priv))}))
			s, err := r.Sign(ctx, kms.SignInput{KeyID: ek.KeyID, Message: pt, SigningAlgorithm: kms.ECDSASHA256})
			require.NoError(t, err)
			h := sha256.Sum256(pt)
			require.True(t, ecdsa.VerifyASN1(&priv.PublicKey, h[:], s.Signature))
		})
	}
	t.Run("invalid parameters", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		k := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
		aws := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		del := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
		_, err := r.ScheduleKeyDeletion(ctx, del.KeyID, 7)
		require.NoError(t, err)
		for _, tc := range []struct {
			name    string
			in      kms.GetParametersForImportInput
			wantErr error
		}{
			{"no algorithm", kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingKeySpec: kms.WrappingRSA2048}, kms.ErrInvalidArgument},
			{"unknown algorithm", kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingAlgorithm: "RSAES_PKCS1_V1_5", WrappingKeySpec: kms.WrappingRSA2048}, kms.ErrInvalidArgument},
			{"no spec", kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingAlgorithm: kms.WrapRSAESOAEPSHA256}, kms.ErrInvalidArgument},
			{"unknown spec", kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: "RSA_1024"}, kms.ErrInvalidArgument},
			{"no key", kms.GetParametersForImportInput{WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: kms.WrappingRSA2048}, kms.ErrInvalidArgument},
			{"unknown key", kms.GetParametersForImportInput{KeyID: "alias/none", WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: kms.WrappingRSA2048}, kms.ErrNotFound},
			{"AWS_KMS key", kms.GetParametersForImportInput{KeyID: aws.KeyID, WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: kms.WrappingRSA2048}, kms.ErrUnsupported},
			{"pending deletion", kms.GetParametersForImportInput{KeyID: del.KeyID, WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: kms.WrappingRSA2048}, kms.ErrPendingDeletion},
		} {
			out, err := r.GetParametersForImport(ctx, tc.in)
			crRequireErr(t, err, kms.OpGetParametersForImport, tc.wantErr, tc.name)
			require.Nil(t, out, tc.name)
		}
	})
}

func TestImportHMACMaterial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, ms := range crMacSpecs {
		t.Run(string(ms.spec), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			block := ms.hash.New().BlockSize()
			for _, n := range []int{ms.hash.Size(), (ms.hash.Size() + block) / 2, block} {
				material := crRand(t, n)
				k := crExternalKey(t, r, ms.spec, kms.GenerateVerifyMac)
				require.NoError(t, crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, material, nil), "%d-byte key", n)
				for _, msg := range [][]byte{{1}, []byte("message"), bytes.Repeat([]byte{7}, kms.MaxMacMessageSize)} {
					out, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: msg, MacAlgorithm: ms.alg})
					require.NoError(t, err)
					m := hmac.New(ms.hash.New, material)
					m.Write(msg)
					want := m.Sum(nil)
					require.True(t, hmac.Equal(want, out.Mac), "the tag is crypto/hmac over the imported key (%d bytes)", n)
					_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: want, MacAlgorithm: ms.alg})
					require.NoError(t, err)
				}
			}
		})
	}
}

func TestImportAsymmetricMaterial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	msg := []byte("signed by imported material")

	t.Run("RSA_2048 SIGN_VERIFY", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		k := r.ImportKey(kms.RSA2048, kms.SignVerify, crPKCS8(t, priv))
		require.False(t, k.VerifyOnly)
		pk, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
		require.NoError(t, err)
		require.Equal(t, crPKIX(t, &priv.PublicKey), pk.PublicKey)
		digest := sha256.Sum256(msg)
		for _, alg := range []kms.SigningAlgorithm{kms.RSASSAPSSSHA256, kms.RSASSAPKCS1V15SHA256} {
			s, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, SigningAlgorithm: alg})
			require.NoError(t, err)
			if alg == kms.RSASSAPSSSHA256 {
				require.NoError(t, rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, digest[:], s.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}))
			} else {
				require.NoError(t, rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, digest[:], s.Signature))
			}
		}
		local, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		require.NoError(t, err)
		_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: msg, Signature: local, SigningAlgorithm: kms.RSASSAPSSSHA256})
		require.NoError(t, err)
		_, err = r.RotateKeyOnDemand(ctx, k.KeyID)
		crRequireErr(t, err, kms.OpRotateKeyOnDemand, kms.ErrUnsupported, "imported keys do not rotate")
	})
	t.Run("RSA_2048 ENCRYPT_DECRYPT", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		k := r.ImportKey(kms.RSA2048, kms.EncryptDecrypt, crPKCS8(t, priv))
		pt := []byte("for the imported RSA key")
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, pt, nil)
		require.NoError(t, err)
		d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: ct, KeyID: k.KeyID, EncryptionAlgorithm: kms.RSAESOAEPSHA256})
		require.NoError(t, err)
		require.True(t, bytes.Equal(pt, d.Plaintext))
		out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionAlgorithm: kms.RSAESOAEPSHA256})
		require.NoError(t, err)
		local, err := rsa.DecryptOAEP(sha256.New(), nil, priv, out.CiphertextBlob, nil)
		require.NoError(t, err)
		require.True(t, bytes.Equal(pt, local))
	})
	for _, c := range []struct {
		spec  kms.KeySpec
		curve elliptic.Curve
		alg   kms.SigningAlgorithm
		hash  crypto.Hash
	}{
		{kms.ECCNISTP256, elliptic.P256(), kms.ECDSASHA256, crypto.SHA256},
		{kms.ECCNISTP384, elliptic.P384(), kms.ECDSASHA384, crypto.SHA384},
		{kms.ECCNISTP521, elliptic.P521(), kms.ECDSASHA512, crypto.SHA512},
	} {
		t.Run(string(c.spec)+" SIGN_VERIFY", func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			priv := crECKey(t, c.curve)
			k := r.ImportKey(c.spec, kms.SignVerify, crPKCS8(t, priv))
			pk, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
			require.NoError(t, err)
			require.Equal(t, crPKIX(t, &priv.PublicKey), pk.PublicKey)
			digest := crDigest(c.hash, msg)
			s, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, SigningAlgorithm: c.alg})
			require.NoError(t, err)
			require.True(t, ecdsa.VerifyASN1(&priv.PublicKey, digest, s.Signature), "the original public key verifies")
			local, err := ecdsa.SignASN1(rand.Reader, priv, digest)
			require.NoError(t, err)
			_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: digest, MessageType: kms.MessageDigest, Signature: local, SigningAlgorithm: c.alg})
			require.NoError(t, err)
		})
		t.Run(string(c.spec)+" KEY_AGREEMENT", func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			priv := crECKey(t, c.curve)
			k := r.ImportKey(c.spec, kms.KeyAgreement, crPKCS8(t, priv))
			curve := crECDHCurves[c.spec]
			peer, peerDER := crPeerKey(t, curve)
			out, err := r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: k.KeyID, KeyAgreementAlgorithm: kms.ECDH, PublicKey: peerDER})
			require.NoError(t, err)
			require.Equal(t, kms.OriginExternal, out.KeyOrigin)
			mine, err := priv.ECDH()
			require.NoError(t, err)
			want, err := mine.ECDH(peer.PublicKey())
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, out.SharedSecret), "the secret is ECDH with the imported private key")
		})
	}
	t.Run("ECC_NIST_EDWARDS25519", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		k := r.ImportKey(kms.ECCNISTEdwards25519, kms.SignVerify, crPKCS8(t, priv))
		s, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, SigningAlgorithm: kms.ED25519SHA512})
		require.NoError(t, err)
		require.True(t, ed25519.Verify(pub, msg, s.Signature))
		s, err = r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, SigningAlgorithm: kms.ED25519PHSHA512})
		require.NoError(t, err)
		require.NoError(t, ed25519.VerifyWithOptions(pub, crDigest(crypto.SHA512, msg), s.Signature, &ed25519.Options{Hash: crypto.SHA512}))
		_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: msg, Signature: ed25519.Sign(priv, msg), SigningAlgorithm: kms.ED25519SHA512})
		require.NoError(t, err)
	})
}

func TestImportVerifyOnlyKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	msg := []byte("signed outside the ring")
	ecPriv := crECKey(t, elliptic.P256())
	digest := crDigest(crypto.SHA256, msg)
	ecSig, err := ecdsa.SignASN1(rand.Reader, ecPriv, digest)
	require.NoError(t, err)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	for _, c := range []struct {
		name string
		spec kms.KeySpec
		der  []byte
		alg  kms.SigningAlgorithm
		sig  []byte
	}{
		{"ECC_NIST_P256", kms.ECCNISTP256, crPKIX(t, &ecPriv.PublicKey), kms.ECDSASHA256, ecSig},
		{"ECC_NIST_EDWARDS25519", kms.ECCNISTEdwards25519, crPKIX(t, edPub), kms.ED25519SHA512, ed25519.Sign(edPriv, msg)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := r.ImportKey(c.spec, kms.SignVerify, c.der)
			require.True(t, k.VerifyOnly)
			require.Equal(t, kms.KeyStateEnabled, k.KeyState)
			pk, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
			require.NoError(t, err)
			require.Equal(t, c.der, pk.PublicKey)

			v, err := r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: msg, Signature: c.sig, SigningAlgorithm: c.alg})
			require.NoError(t, err)
			require.Equal(t, uint32(1), v.KeyVersion)
			if c.alg == kms.ECDSASHA256 {
				_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: digest, MessageType: kms.MessageDigest, Signature: c.sig, SigningAlgorithm: c.alg})
				require.NoError(t, err)
			}
			_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: msg, Signature: crFlipBit(c.sig, 8*len(c.sig)-9), SigningAlgorithm: c.alg})
			crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidSignature)
			_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: crFlipBit(msg, 3), Signature: c.sig, SigningAlgorithm: c.alg})
			crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidSignature)

			s, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, SigningAlgorithm: c.alg})
			crRequireErr(t, err, kms.OpSign, kms.ErrUnsupported, "a public key cannot sign")
			require.Nil(t, s)
			require.Equal(t, "UnsupportedOperationException", kms.ErrorCode(err))
		})
	}
	t.Run("refused for other usages", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		for _, c := range []struct {
			spec  kms.KeySpec
			usage kms.KeyUsage
			der   []byte
		}{
			{kms.ECCNISTP256, kms.KeyAgreement, crPKIX(t, &ecPriv.PublicKey)},
			{kms.RSA2048, kms.EncryptDecrypt, crPKIX(t, &rsaPriv.PublicKey)},
		} {
			k := crExternalKey(t, r, c.spec, c.usage)
			err := crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, c.der, nil)
			crRequireErr(t, err, kms.OpImportKeyMaterial, kms.ErrIncorrectKeyMaterial, "%s %s", c.spec, c.usage)
			m, err := r.DescribeKey(ctx, k.KeyID)
			require.NoError(t, err)
			require.Equal(t, kms.KeyStatePendingImport, m.KeyState)
		}
	})
}

func TestImportWrongMaterial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	p256 := crPKCS8(t, crECKey(t, elliptic.P256()))
	p384 := crPKCS8(t, crECKey(t, elliptic.P384()))
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsa2048 := crPKCS8(t, rsaPriv)
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ed := crPKCS8(t, edPriv)
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)

	for _, tc := range []struct {
		name     string
		spec     kms.KeySpec
		usage    kms.KeyUsage
		material []byte
	}{
		{"symmetric 1 byte", kms.SymmetricDefault, kms.EncryptDecrypt, []byte{1}},
		{"symmetric 16 bytes", kms.SymmetricDefault, kms.EncryptDecrypt, crRand(t, 16)},
		{"symmetric 31 bytes", kms.SymmetricDefault, kms.EncryptDecrypt, crRand(t, 31)},
		{"symmetric 33 bytes", kms.SymmetricDefault, kms.EncryptDecrypt, crRand(t, 33)},
		{"symmetric 64 bytes", kms.SymmetricDefault, kms.EncryptDecrypt, crRand(t, 64)},
		{"symmetric given a private key", kms.SymmetricDefault, kms.EncryptDecrypt, p256},
		{"HMAC_224 27 bytes", kms.HMAC224, kms.GenerateVerifyMac, crRand(t, 27)},
		{"HMAC_224 65 bytes", kms.HMAC224, kms.GenerateVerifyMac, crRand(t, 65)},
		{"HMAC_256 31 bytes", kms.HMAC256, kms.GenerateVerifyMac, crRand(t, 31)},
		{"HMAC_256 65 bytes", kms.HMAC256, kms.GenerateVerifyMac, crRand(t, 65)},
		{"HMAC_384 47 bytes", kms.HMAC384, kms.GenerateVerifyMac, crRand(t, 47)},
		{"HMAC_384 129 bytes", kms.HMAC384, kms.GenerateVerifyMac, crRand(t, 129)},
		{"HMAC_512 63 bytes", kms.HMAC512, kms.GenerateVerifyMac, crRand(t, 63)},
		{"HMAC_512 129 bytes", kms.HMAC512, kms.GenerateVerifyMac, crRand(t, 129)},
		{"P-256 given P-384", kms.ECCNISTP256, kms.SignVerify, p384},
		{"P-384 given P-256", kms.ECCNISTP384, kms.SignVerify, p256},
		{"P-521 given P-256", kms.ECCNISTP521, kms.KeyAgreement, p256},
		{"P-256 given RSA", kms.ECCNISTP256, kms.SignVerify, rsa2048},
		{"P-256 given Ed25519", kms.ECCNISTP256, kms.SignVerify, ed},
		{"P-256 given an X25519 public key", kms.ECCNISTP256, kms.SignVerify, crPKIX(t, x.PublicKey())},
		{"Ed25519 given P-256", kms.ECCNISTEdwards25519, kms.SignVerify, p256},
		{"RSA_2048 given P-256", kms.RSA2048, kms.SignVerify, p256},
		{"RSA_3072 given RSA 2048", kms.RSA3072, kms.SignVerify, rsa2048},
		{"RSA_4096 given RSA 2048", kms.RSA4096, kms.EncryptDecrypt, rsa2048},
		{"P-256 given garbage", kms.ECCNISTP256, kms.SignVerify, crRand(t, 100)},
		{"P-256 given truncated PKCS#8", kms.ECCNISTP256, kms.SignVerify, p256[:len(p256)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := crExternalKey(t, r, tc.spec, tc.usage)
			alg := kms.WrapRSAAESKeyWrapSHA256
			if len(tc.material) < 16 {
				alg = kms.WrapRSAESOAEPSHA256 // KWP wraps at least 16 bytes
			}
			err := crImport(t, r, k.KeyID, alg, tc.material, nil)
			crRequireErr(t, err, kms.OpImportKeyMaterial, kms.ErrIncorrectKeyMaterial)
			require.Equal(t, "IncorrectKeyMaterialException", kms.ErrorCode(err))
			m, err := r.DescribeKey(ctx, k.KeyID)
			require.NoError(t, err)
			require.Equal(t, kms.KeyStatePendingImport, m.KeyState)
			require.Zero(t, m.Versions)
		})
	}
}

func TestImportTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alg := kms.WrapRSAESOAEPSHA256
	for _, tc := range []struct {
		name    string
		run     func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error
		wantErr error
	}{
		{"wrong token", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.ImportToken = crRand(t, len(in.ImportToken)) })
		}, kms.ErrInvalidImportToken},
		{"token with one bit flipped", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.ImportToken = crFlipBit(in.ImportToken, 7) })
		}, kms.ErrInvalidImportToken},
		{"truncated token", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.ImportToken = in.ImportToken[:len(in.ImportToken)-1] })
		}, kms.ErrInvalidImportToken},
		{"no token", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.ImportToken = nil })
		}, kms.ErrInvalidImportToken},
		{"no parameters asked", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: crRand(t, 32), EncryptedKeyMaterial: crRand(t, 256)})
		}, kms.ErrInvalidImportToken},
		{"token of another key", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			other := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
			crParams(t, r, keyID, alg, kms.WrappingRSA2048)
			po := crParams(t, r, other.KeyID, alg, kms.WrappingRSA2048)
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: po.ImportToken, EncryptedKeyMaterial: crWrap(t, po, alg, material)})
		}, kms.ErrInvalidImportToken},
		{"token of another key, none of its own", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			other := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
			po := crParams(t, r, other.KeyID, alg, kms.WrappingRSA2048)
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: po.ImportToken, EncryptedKeyMaterial: crWrap(t, po, alg, material)})
		}, kms.ErrInvalidImportToken},
		{"expired parameters", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			p := crParams(t, r, keyID, alg, kms.WrappingRSA2048)
			r.Clock.Advance(25 * time.Hour)
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, alg, material)})
		}, kms.ErrInvalidImportToken},
		{"parameters at their expiry", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			p := crParams(t, r, keyID, alg, kms.WrappingRSA2048)
			r.Clock.Set(p.ParametersValidTo)
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, alg, material)})
		}, kms.ErrInvalidImportToken},
		{"parameters just before expiry", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			p := crParams(t, r, keyID, alg, kms.WrappingRSA2048)
			r.Clock.Set(p.ParametersValidTo.Add(-time.Second))
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, alg, material)})
		}, nil},
		{"replaced parameters", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			p1 := crParams(t, r, keyID, alg, kms.WrappingRSA2048)
			p2 := crParams(t, r, keyID, alg, kms.WrappingRSA2048)
			err := r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p1.ImportToken, EncryptedKeyMaterial: crWrap(t, p1, alg, material)})
			crRequireErr(t, err, kms.OpImportKeyMaterial, kms.ErrInvalidImportToken, "the first token is replaced")
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p2.ImportToken, EncryptedKeyMaterial: crWrap(t, p2, alg, material)})
		}, nil},
		{"reused token", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			p := crParams(t, r, keyID, alg, kms.WrappingRSA2048)
			in := kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, alg, material)}
			require.NoError(t, r.ImportKeyMaterial(ctx, in))
			return r.ImportKeyMaterial(ctx, in)
		}, kms.ErrInvalidImportToken},
		{"wrapped to other parameters", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			other := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
			po := crParams(t, r, other.KeyID, alg, kms.WrappingRSA2048)
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.EncryptedKeyMaterial = crWrap(t, po, alg, material) })
		}, kms.ErrInvalidCiphertext},
		{"wrapped with another algorithm", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			p := crParams(t, r, keyID, kms.WrapRSAESOAEPSHA256, kms.WrappingRSA2048)
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, kms.WrapRSAESOAEPSHA1, material)})
		}, kms.ErrInvalidCiphertext},
		{"key wrap expected, OAEP given", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			p := crParams(t, r, keyID, kms.WrapRSAAESKeyWrapSHA256, kms.WrappingRSA2048)
			return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, kms.WrapRSAESOAEPSHA256, material)})
		}, kms.ErrInvalidCiphertext},
		{"key wrap with its tail cut", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, kms.WrapRSAAESKeyWrapSHA256, material, func(in *kms.ImportKeyMaterialInput) {
				in.EncryptedKeyMaterial = in.EncryptedKeyMaterial[:len(in.EncryptedKeyMaterial)-8]
			})
		}, kms.ErrInvalidCiphertext},
		{"key wrap with a bit flipped", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, kms.WrapRSAAESKeyWrapSHA256, material, func(in *kms.ImportKeyMaterialInput) {
				in.EncryptedKeyMaterial = crFlipBit(in.EncryptedKeyMaterial, 8*len(in.EncryptedKeyMaterial)-1)
			})
		}, kms.ErrInvalidCiphertext},
		{"OAEP with a bit flipped", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) {
				in.EncryptedKeyMaterial = crFlipBit(in.EncryptedKeyMaterial, 100)
			})
		}, kms.ErrInvalidCiphertext},
		{"truncated OAEP", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.EncryptedKeyMaterial = in.EncryptedKeyMaterial[1:] })
		}, kms.ErrInvalidCiphertext},
		{"material not encrypted", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.EncryptedKeyMaterial = bytes.Clone(material) })
		}, kms.ErrInvalidCiphertext},
		{"empty encrypted material", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.EncryptedKeyMaterial = nil })
		}, kms.ErrInvalidArgument},
		{"oversized encrypted material", func(t *testing.T, r *kmstest.Ring, keyID string, material []byte) error {
			return crImport(t, r, keyID, alg, material, func(in *kms.ImportKeyMaterialInput) { in.EncryptedKeyMaterial = make([]byte, 6145) })
		}, kms.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
			material := crRand(t, 32)
			err := tc.run(t, r, k.KeyID, material)
			m, derr := r.DescribeKey(ctx, k.KeyID)
			require.NoError(t, derr)
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, kms.KeyStateEnabled, m.KeyState)
				return
			}
			crRequireErr(t, err, kms.OpImportKeyMaterial, tc.wantErr)
			if m.KeyState == kms.KeyStateEnabled && tc.name == "reused token" {
				return // the first use imported the material
			}
			require.Equal(t, kms.KeyStatePendingImport, m.KeyState, "a failed import leaves the key without material")
			_, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
			crRequireErr(t, err, kms.OpEncrypt, kms.ErrPendingImport)
			// The key still takes its material through fresh parameters.
			require.NoError(t, crImport(t, r, k.KeyID, alg, material, nil))
		})
	}
}

func TestImportReimport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("symmetric", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		material := crRand(t, 32)
		k := r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, material)
		pt := []byte("survives re-import")
		out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt})
		require.NoError(t, err)

		err = crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, crRand(t, 32), nil)
		crRequireErr(t, err, kms.OpImportKeyMaterial, kms.ErrIncorrectKeyMaterial, "different material")
		crRequireDecrypts(t, r, out.CiphertextBlob, nil, pt)

		for _, alg := range []kms.WrappingAlgorithm{kms.WrapRSAESOAEPSHA1, kms.WrapRSAAESKeyWrapSHA256} {
			require.NoError(t, crImport(t, r, k.KeyID, alg, material, nil), "the same material again")
		}
		m, err := r.DescribeKey(ctx, k.KeyID)
		require.NoError(t, err)
		require.Equal(t, kms.KeyStateEnabled, m.KeyState)
		require.Equal(t, 1, m.Versions, "re-import makes no new version")
		require.Equal(t, uint32(1), m.PrimaryVersion)
		crRequireDecrypts(t, r, out.CiphertextBlob, nil, pt)
	})
	t.Run("HMAC", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		material := crRand(t, 48)
		k := r.ImportKey(kms.HMAC256, kms.GenerateVerifyMac, material)
		crRequireErr(t, crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, crRand(t, 48), nil), kms.OpImportKeyMaterial, kms.ErrIncorrectKeyMaterial)
		crRequireErr(t, crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, material[:32], nil), kms.OpImportKeyMaterial, kms.ErrIncorrectKeyMaterial, "a prefix of the material")
		require.NoError(t, crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, material, nil))
	})
	t.Run("ECC", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		priv := crECKey(t, elliptic.P256())
		k := r.ImportKey(kms.ECCNISTP256, kms.SignVerify, crPKCS8(t, priv))
		err := crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, crPKCS8(t, crECKey(t, elliptic.P256())), nil)
		crRequireErr(t, err, kms.OpImportKeyMaterial, kms.ErrIncorrectKeyMaterial)
		require.NoError(t, crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, crPKCS8(t, priv), nil))
		pk, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
		require.NoError(t, err)
		require.Equal(t, crPKIX(t, &priv.PublicKey), pk.PublicKey)
	})
	t.Run("into an AWS_KMS key", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		_, err := r.GetParametersForImport(ctx, kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: kms.WrappingRSA2048})
		crRequireErr(t, err, kms.OpGetParametersForImport, kms.ErrUnsupported)
		err = r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: k.KeyID, ImportToken: crRand(t, 32), EncryptedKeyMaterial: crRand(t, 256)})
		crRequireErr(t, err, kms.OpImportKeyMaterial, kms.ErrUnsupported)
		require.Equal(t, "UnsupportedOperationException", kms.ErrorCode(err))
	})
	t.Run("into a key pending deletion", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		k := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
		p := crParams(t, r, k.KeyID, kms.WrapRSAESOAEPSHA256, kms.WrappingRSA2048)
		_, err := r.ScheduleKeyDeletion(ctx, k.KeyID, 7)
		require.NoError(t, err)
		err = r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: k.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: crWrap(t, p, kms.WrapRSAESOAEPSHA256, crRand(t, 32))})
		crRequireErr(t, err, kms.OpImportKeyMaterial, kms.ErrPendingDeletion)
	})
}

func TestImportExpiringMaterial(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	validTo := kmstest.Epoch.Add(48 * time.Hour)
	expires := func(in *kms.ImportKeyMaterialInput) {
		in.ExpirationModel, in.ValidTo = kms.KeyMaterialExpires, validTo
	}
	symMaterial, macMaterial := crRand(t, 32), crRand(t, 32)
	ecPriv := crECKey(t, elliptic.P256())
	sym := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
	require.NoError(t, crImport(t, r, sym.KeyID, kms.WrapRSAAESKeyWrapSHA256, symMaterial, expires))
	mac := crExternalKey(t, r, kms.HMAC256, kms.GenerateVerifyMac)
	require.NoError(t, crImport(t, r, mac.KeyID, kms.WrapRSAAESKeyWrapSHA256, macMaterial, expires))
	sign := crExternalKey(t, r, kms.ECCNISTP256, kms.SignVerify)
	require.NoError(t, crImport(t, r, sign.KeyID, kms.WrapRSAAESKeyWrapSHA256, crPKCS8(t, ecPriv), expires))
	other := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)

	m, err := r.DescribeKey(ctx, sym.KeyID)
	require.NoError(t, err)
	require.Equal(t, kms.KeyMaterialExpires, m.ExpirationModel)
	require.True(t, m.ValidTo.Equal(validTo), "ValidTo %v", m.ValidTo)

	pt := []byte("expiring")
	blob, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: sym.KeyID, Plaintext: pt})
	require.NoError(t, err)
	otherBlob, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: other.KeyID, Plaintext: pt})
	require.NoError(t, err)
	tag, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: mac.KeyID, Message: pt, MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)
	sig, err := r.Sign(ctx, kms.SignInput{KeyID: sign.KeyID, Message: pt, SigningAlgorithm: kms.ECDSASHA256})
	require.NoError(t, err)

	ops := []struct {
		name string
		op   kms.Op
		run  func() error
	}{
		{"Encrypt", kms.OpEncrypt, func() error {
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: sym.KeyID, Plaintext: pt})
			return err
		}},
		{"Decrypt", kms.OpDecrypt, func() error {
			_, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob})
			return err
		}},
		{"ReEncrypt from", kms.OpReEncrypt, func() error {
			_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: blob.CiphertextBlob, DestinationKeyID: other.KeyID})
			return err
		}},
		{"ReEncrypt to", kms.OpReEncrypt, func() error {
			_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: otherBlob.CiphertextBlob, DestinationKeyID: sym.KeyID})
			return err
		}},
		{"GenerateDataKey", kms.OpGenerateDataKey, func() error {
			_, err := r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: sym.KeyID, KeySpec: kms.AES256})
			return err
		}},
		{"GenerateDataKeyWithoutPlaintext", kms.OpGenerateDataKeyWithoutPlaintext, func() error {
			_, err := r.GenerateDataKeyWithoutPlaintext(ctx, kms.GenerateDataKeyInput{KeyID: sym.KeyID, KeySpec: kms.AES256})
			return err
		}},
		{"GenerateDataKeyPair", kms.OpGenerateDataKeyPair, func() error {
			_, err := r.GenerateDataKeyPair(ctx, kms.GenerateDataKeyPairInput{KeyID: sym.KeyID, KeyPairSpec: kms.PairECCNISTP256})
			return err
		}},
		{"GenerateMac", kms.OpGenerateMac, func() error {
			_, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: mac.KeyID, Message: pt, MacAlgorithm: kms.HMACSHA256})
			return err
		}},
		{"VerifyMac", kms.OpVerifyMac, func() error {
			_, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: mac.KeyID, Message: pt, Mac: tag.Mac, MacAlgorithm: kms.HMACSHA256})
			return err
		}},
		{"Sign", kms.OpSign, func() error {
			_, err := r.Sign(ctx, kms.SignInput{KeyID: sign.KeyID, Message: pt, SigningAlgorithm: kms.ECDSASHA256})
			return err
		}},
		{"Verify", kms.OpVerify, func() error {
			_, err := r.Verify(ctx, kms.VerifyInput{KeyID: sign.KeyID, Message: pt, Signature: sig.Signature, SigningAlgorithm: kms.ECDSASHA256})
			return err
		}},
		{"GetPublicKey", kms.OpGetPublicKey, func() error {
			_, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: sign.KeyID})
			return err
		}},
	}

	r.Clock.Advance(48*time.Hour - time.Second)
	for _, op := range ops {
		require.NoError(t, op.run(), "%s a second before ValidTo", op.name)
	}
	r.Clock.Advance(time.Second)
	for _, op := range ops {
		err := op.run()
		crRequireErr(t, err, op.op, kms.ErrPendingImport, "%s at ValidTo", op.name)
		require.ErrorIs(t, err, kms.ErrInvalidState)
		require.Equal(t, "KMSInvalidStateException", kms.ErrorCode(err))
	}
	r.Clock.Advance(30 * 24 * time.Hour)
	for _, op := range ops {
		crRequireErr(t, op.run(), op.op, kms.ErrPendingImport, "%s long after ValidTo", op.name)
	}

	// As in AWS KMS, a key whose material expired is PendingImport.
	t.Run("DescribeKey reports PendingImport", func(t *testing.T) {
		for _, id := range []string{sym.KeyID, mac.KeyID, sign.KeyID} {
			m, err := r.DescribeKey(ctx, id)
			require.NoError(t, err)
			require.Equal(t, kms.KeyStatePendingImport, m.KeyState)
			require.False(t, m.Enabled)
		}
	})

	// Importing the same material again brings the keys back.
	require.NoError(t, crImport(t, r, sym.KeyID, kms.WrapRSAAESKeyWrapSHA256, symMaterial, nil))
	require.NoError(t, crImport(t, r, mac.KeyID, kms.WrapRSAESOAEPSHA256, macMaterial, nil))
	require.NoError(t, crImport(t, r, sign.KeyID, kms.WrapRSAAESKeyWrapSHA1, crPKCS8(t, ecPriv), nil))
	for _, op := range ops {
		require.NoError(t, op.run(), "%s after re-import", op.name)
	}
	crRequireDecrypts(t, r, blob.CiphertextBlob, nil, pt)
	m, err = r.DescribeKey(ctx, sym.KeyID)
	require.NoError(t, err)
	require.Equal(t, kms.KeyMaterialDoesNotExpire, m.ExpirationModel)
	require.Equal(t, kms.KeyStateEnabled, m.KeyState)
}

func TestImportExpirationValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	now := kmstest.Epoch
	for _, tc := range []struct {
		name    string
		model   kms.ExpirationModel
		validTo time.Time
		wantErr error
	}{
		{"expires without ValidTo", kms.KeyMaterialExpires, time.Time{}, kms.ErrInvalidArgument},
		{"expires in the past", kms.KeyMaterialExpires, now.Add(-time.Second), kms.ErrInvalidArgument},
		{"expires now", kms.KeyMaterialExpires, now, kms.ErrInvalidArgument},
		{"expires after 366 days", kms.KeyMaterialExpires, now.Add(366 * 24 * time.Hour), kms.ErrInvalidArgument},
		{"expires in a second", kms.KeyMaterialExpires, now.Add(time.Second), nil},
		{"expires after 365 days", kms.KeyMaterialExpires, now.Add(365 * 24 * time.Hour), nil},
		{"does not expire, with ValidTo", kms.KeyMaterialDoesNotExpire, now.Add(time.Hour), kms.ErrInvalidArgument},
		{"unknown model", "KEY_MATERIAL_ROTATES", time.Time{}, kms.ErrInvalidArgument},
		{"does not expire", kms.KeyMaterialDoesNotExpire, time.Time{}, nil},
		{"default model", "", time.Time{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := crExternalKey(t, r, kms.SymmetricDefault, kms.EncryptDecrypt)
			err := crImport(t, r, k.KeyID, kms.WrapRSAESOAEPSHA256, crRand(t, 32), func(in *kms.ImportKeyMaterialInput) {
				in.ExpirationModel, in.ValidTo = tc.model, tc.validTo
			})
			if tc.wantErr != nil {
				crRequireErr(t, err, kms.OpImportKeyMaterial, tc.wantErr)
				return
			}
			require.NoError(t, err)
			m, err := r.DescribeKey(ctx, k.KeyID)
			require.NoError(t, err)
			require.Equal(t, kms.KeyStateEnabled, m.KeyState)
			if tc.model == kms.KeyMaterialExpires {
				require.Equal(t, kms.KeyMaterialExpires, m.ExpirationModel)
				require.True(t, m.ValidTo.Equal(tc.validTo))
			} else {
				require.Equal(t, kms.KeyMaterialDoesNotExpire, m.ExpirationModel)
			}
		})
	}
}

// A PKCS#8 key that parses but is not a crypto.Signer (X25519) must be
// refused as incorrect material, not crash the process.
func TestImportNonSignerPrivateKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	material := crPKCS8(t, x)
	for _, c := range []struct {
		spec  kms.KeySpec
		usage kms.KeyUsage
	}{
		{kms.ECCNISTP256, kms.KeyAgreement},
		{kms.ECCNISTP256, kms.SignVerify},
		{kms.ECCNISTEdwards25519, kms.SignVerify},
		{kms.RSA2048, kms.EncryptDecrypt},
	} {
		k := crExternalKey(t, r, c.spec, c.usage)
		var err error
		panicked := func() (p any) {
			defer func() { p = recover() }()
			err = crImport(t, r, k.KeyID, kms.WrapRSAAESKeyWrapSHA256, material, nil)
			return nil
		}()
		require.Nil(t, panicked, "ImportKeyMaterial panicked on an X25519 PKCS#8 key for %s %s", c.spec, c.usage)
		crRequireErr(t, err, kms.OpImportKeyMaterial, kms.ErrIncorrectKeyMaterial, "%s %s", c.spec, c.usage)
		m, err := r.DescribeKey(ctx, k.KeyID)
		require.NoError(t, err)
		require.Equal(t, kms.KeyStatePendingImport, m.KeyState)
	}
}

// A verify-only Ed25519 key must reject signatures its private key never
// made. The forgeries below hold for the all-zero public key (a point of
// order 4): S = 0 and R one of the four small-order points verify a
// quarter of all messages under it. The standard library rejects each of
// them under the key's real public key.
func TestImportVerifyOnlyEd25519RejectsForgery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	k := r.ImportKey(kms.ECCNISTEdwards25519, kms.SignVerify, crPKIX(t, pub))
	require.True(t, k.VerifyOnly)

	identity := make([]byte, 32)
	identity[0] = 1
	order4 := make([]byte, 32) // y = 0
	order4neg := make([]byte, 32)
	order4neg[31] = 0x80
	order2 := bytes.Repeat([]byte{0xff}, 32) // y = -1
	order2[0], order2[31] = 0xec, 0x7f
	forgedWithZeroKey := 0
	for i := 0; i < 16; i++ {
		msg := []byte(fmt.Sprintf("never signed %d", i))
		for _, R := range [][]byte{identity, order4, order4neg, order2} {
			sig := append(bytes.Clone(R), make([]byte, 32)...)
			require.False(t, ed25519.Verify(pub, msg, sig), "not a signature under the real key")
			if ed25519.Verify(make([]byte, 32), msg, sig) {
				forgedWithZeroKey++
			}
			out, err := r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: msg, Signature: sig, SigningAlgorithm: kms.ED25519SHA512})
			require.Nil(t, out, "Verify accepted a forged signature of %q", msg)
			crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidSignature)
		}
	}
	require.Positive(t, forgedWithZeroKey, "the forgeries are real ones for a zeroed key")
}

// TestWrapKeyMaterial checks the client half of the import protocol: what
// it wraps imports, and bad inputs get typed errors, never a panic.
func TestWrapKeyMaterial(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	for _, alg := range []kms.WrappingAlgorithm{kms.WrapRSAESOAEPSHA1, kms.WrapRSAESOAEPSHA256, kms.WrapRSAAESKeyWrapSHA1, kms.WrapRSAAESKeyWrapSHA256} {
		m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Origin: kms.OriginExternal})
		require.NoError(t, err)
		p, err := r.GetParametersForImport(ctx, kms.GetParametersForImportInput{KeyID: m.KeyID, WrappingAlgorithm: alg, WrappingKeySpec: kms.WrappingRSA2048})
		require.NoError(t, err)
		enc, err := kms.WrapKeyMaterial(p.PublicKey, alg, randomBytes(t, 32), nil)
		require.NoError(t, err, alg)
		require.NoError(t, r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: m.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: enc}), alg)
	}
	rsaPub := func() []byte {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		require.NoError(t, err)
		return der
	}()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecPub, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	require.NoError(t, err)
	for name, c := range map[string]struct {
		pub      []byte
		alg      kms.WrappingAlgorithm
		material []byte
	}{
		"not DER":                 {[]byte("nope"), kms.WrapRSAESOAEPSHA256, randomBytes(t, 32)},
		"not RSA":                 {ecPub, kms.WrapRSAESOAEPSHA256, randomBytes(t, 32)},
		"unknown algorithm":       {rsaPub, "RSAES_PKCS1_V1_5", randomBytes(t, 32)},
		"too long for OAEP alone": {rsaPub, kms.WrapRSAESOAEPSHA256, randomBytes(t, 300)},
		"empty for AES key wrap":  {rsaPub, kms.WrapRSAAESKeyWrapSHA256, nil},
	} {
		_, err := kms.WrapKeyMaterial(c.pub, c.alg, c.material, nil)
		require.ErrorIs(t, err, kms.ErrInvalidArgument, name)
	}
}
