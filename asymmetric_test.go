package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// crSigHash is the hash of each signing algorithm.
var crSigHash = map[kms.SigningAlgorithm]crypto.Hash{
	kms.RSASSAPSSSHA256: crypto.SHA256, kms.RSASSAPSSSHA384: crypto.SHA384, kms.RSASSAPSSSHA512: crypto.SHA512,
	kms.RSASSAPKCS1V15SHA256: crypto.SHA256, kms.RSASSAPKCS1V15SHA384: crypto.SHA384, kms.RSASSAPKCS1V15SHA512: crypto.SHA512,
	kms.ECDSASHA256: crypto.SHA256, kms.ECDSASHA384: crypto.SHA384, kms.ECDSASHA512: crypto.SHA512,
	kms.ED25519SHA512: crypto.SHA512, kms.ED25519PHSHA512: crypto.SHA512,
}

var crAllSigningAlgs = []kms.SigningAlgorithm{
	kms.RSASSAPSSSHA256, kms.RSASSAPSSSHA384, kms.RSASSAPSSSHA512,
	kms.RSASSAPKCS1V15SHA256, kms.RSASSAPKCS1V15SHA384, kms.RSASSAPKCS1V15SHA512,
	kms.ECDSASHA256, kms.ECDSASHA384, kms.ECDSASHA512, kms.ED25519SHA512, kms.ED25519PHSHA512,
}

// crSigningAlgs are the algorithms AWS KMS allows for each SIGN_VERIFY spec.
var crSigningAlgs = map[kms.KeySpec][]kms.SigningAlgorithm{
	kms.RSA2048:             crAllSigningAlgs[:6:6],
	kms.RSA3072:             crAllSigningAlgs[:6:6],
	kms.RSA4096:             crAllSigningAlgs[:6:6],
	kms.ECCNISTP256:         {kms.ECDSASHA256},
	kms.ECCNISTP384:         {kms.ECDSASHA384},
	kms.ECCNISTP521:         {kms.ECDSASHA512},
	kms.ECCNISTEdwards25519: {kms.ED25519SHA512, kms.ED25519PHSHA512},
}

func crDigest(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

// crStdVerify verifies a KMS signature with the standard library alone, from
// the DER public key GetPublicKey returned.
func crStdVerify(t testing.TB, pubDER []byte, alg kms.SigningAlgorithm, mt kms.MessageType, msg, sig []byte) bool {
	t.Helper()
	pk, err := x509.ParsePKIXPublicKey(pubDER)
	require.NoError(t, err)
	h := crSigHash[alg]
	digest := msg
	if mt != kms.MessageDigest && alg != kms.ED25519SHA512 {
		digest = crDigest(h, msg)
	}
	switch alg {
	case kms.RSASSAPSSSHA256, kms.RSASSAPSSSHA384, kms.RSASSAPSSSHA512:
		return rsa.VerifyPSS(pk.(*rsa.PublicKey), h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case kms.RSASSAPKCS1V15SHA256, kms.RSASSAPKCS1V15SHA384, kms.RSASSAPKCS1V15SHA512:
		return rsa.VerifyPKCS1v15(pk.(*rsa.PublicKey), h, digest, sig) == nil
	case kms.ECDSASHA256, kms.ECDSASHA384, kms.ECDSASHA512:
		return ecdsa.VerifyASN1(pk.(*ecdsa.PublicKey), digest, sig)
	case kms.ED25519SHA512:
		return ed25519.Verify(pk.(ed25519.PublicKey), msg, sig)
	case kms.ED25519PHSHA512:
		return ed25519.VerifyWithOptions(pk.(ed25519.PublicKey), digest, sig, &ed25519.Options{Hash: crypto.SHA512}) == nil
	}
	t.Fatalf("unknown algorithm %s", alg)
	return false
}

// crCheckPublicKey checks the parsed public key against the spec.
func crCheckPublicKey(t testing.TB, spec kms.KeySpec, der []byte) {
	t.Helper()
	pk, err := x509.ParsePKIXPublicKey(der)
	require.NoError(t, err)
	switch spec {
	case kms.RSA2048, kms.RSA3072, kms.RSA4096:
		p, ok := pk.(*rsa.PublicKey)
		require.True(t, ok, "%T", pk)
		require.Equal(t, map[kms.KeySpec]int{kms.RSA2048: 2048, kms.RSA3072: 3072, kms.RSA4096: 4096}[spec], p.N.BitLen())
	case kms.ECCNISTP256, kms.ECCNISTP384, kms.ECCNISTP521:
		p, ok := pk.(*ecdsa.PublicKey)
		require.True(t, ok, "%T", pk)
		want := map[kms.KeySpec]elliptic.Curve{kms.ECCNISTP256: elliptic.P256(), kms.ECCNISTP384: elliptic.P384(), kms.ECCNISTP521: elliptic.P521()}[spec]
		require.Equal(t, want.Params().Name, p.Curve.Params().Name)
	case kms.ECCNISTEdwards25519:
		_, ok := pk.(ed25519.PublicKey)
		require.True(t, ok, "%T", pk)
	default:
		t.Fatalf("no public key for %s", spec)
	}
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, spec := range []kms.KeySpec{
		kms.RSA2048, kms.RSA3072, kms.RSA4096,
		kms.ECCNISTP256, kms.ECCNISTP384, kms.ECCNISTP521, kms.ECCNISTEdwards25519,
	} {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := r.CreateKey(spec, kms.SignVerify)
			allowed := crSigningAlgs[spec]
			require.Equal(t, allowed, k.SigningAlgorithms)
			pk, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
			require.NoError(t, err)
			require.Equal(t, k.Arn, pk.KeyID)
			require.Equal(t, uint32(1), pk.KeyVersion)
			require.Equal(t, spec, pk.KeySpec)
			require.Equal(t, kms.SignVerify, pk.KeyUsage)
			require.Equal(t, allowed, pk.SigningAlgorithms)
			require.Empty(t, pk.EncryptionAlgorithms)
			require.Empty(t, pk.KeyAgreementAlgorithms)
			crCheckPublicKey(t, spec, pk.PublicKey)

			messages := map[string][]byte{
				"1 byte":     {0x42},
				"short":      []byte("a message to sign"),
				"4096 bytes": bytes.Repeat([]byte{0xA5}, kms.MaxSignMessageSize),
			}
			for _, alg := range allowed {
				h := crSigHash[alg]
				t.Run(string(alg), func(t *testing.T) {
					for mname, raw := range messages {
						types := []kms.MessageType{"", kms.MessageRaw}
						if alg != kms.ED25519SHA512 {
							types = append(types, kms.MessageDigest)
						}
						for _, mt := range types {
							msg := raw
							if mt == kms.MessageDigest {
								msg = crDigest(h, raw)
							}
							what := fmt.Sprintf("%s %s", mname, mt)
							s, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, MessageType: mt, SigningAlgorithm: alg})
							require.NoError(t, err, what)
							require.Equal(t, k.Arn, s.KeyID)
							require.Equal(t, uint32(1), s.KeyVersion)
							require.Equal(t, alg, s.SigningAlgorithm)
							require.True(t, crStdVerify(t, pk.PublicKey, alg, mt, msg, s.Signature), "standard library rejects the signature: %s", what)

							v, err := r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: msg, MessageType: mt, Signature: s.Signature, SigningAlgorithm: alg})
							require.NoError(t, err, what)
							require.True(t, v.SignatureValid)
							require.Equal(t, uint32(1), v.KeyVersion)
							require.Equal(t, k.Arn, v.KeyID)
							require.Equal(t, alg, v.SigningAlgorithm)

							bad := []struct {
								name string
								in   kms.VerifyInput
							}{
								{"first bit of signature", kms.VerifyInput{Message: msg, Signature: crFlipBit(s.Signature, 0)}},
								{"last bit of signature", kms.VerifyInput{Message: msg, Signature: crFlipBit(s.Signature, 8*len(s.Signature)-1)}},
								{"middle bit of signature", kms.VerifyInput{Message: msg, Signature: crFlipBit(s.Signature, 4*len(s.Signature)+1)}},
								{"truncated signature", kms.VerifyInput{Message: msg, Signature: s.Signature[:len(s.Signature)-1]}},
								{"extended signature", kms.VerifyInput{Message: msg, Signature: append(bytes.Clone(s.Signature), 0)}},
								{"first bit of message", kms.VerifyInput{Message: crFlipBit(msg, 0), Signature: s.Signature}},
								{"last bit of message", kms.VerifyInput{Message: crFlipBit(msg, 8*len(msg)-1), Signature: s.Signature}},
							}
							for _, b := range bad {
								in := b.in
								in.KeyID, in.MessageType, in.SigningAlgorithm = k.KeyID, mt, alg
								out, err := r.Verify(ctx, in)
								crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidSignature, "%s: %s", what, b.name)
								require.Nil(t, out)
								require.Equal(t, "KMSInvalidSignatureException", kms.ErrorCode(err))
							}
							// A signature over RAW verifies as a DIGEST of the same hash.
							if mt != kms.MessageDigest && alg != kms.ED25519SHA512 {
								_, err := r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: crDigest(h, raw), MessageType: kms.MessageDigest, Signature: s.Signature, SigningAlgorithm: alg})
								require.NoError(t, err, what)
							}
						}
					}

					if alg == kms.ED25519SHA512 {
						_, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: make([]byte, 64), MessageType: kms.MessageDigest, SigningAlgorithm: alg})
						crRequireErr(t, err, kms.OpSign, kms.ErrInvalidArgument, "ED25519_SHA_512 refuses DIGEST")
						_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: make([]byte, 64), MessageType: kms.MessageDigest, Signature: make([]byte, 64), SigningAlgorithm: alg})
						crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidArgument, "ED25519_SHA_512 refuses DIGEST")
					} else {
						for _, n := range []int{0, 1, h.Size() - 1, h.Size() + 1, 2 * h.Size()} {
							_, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: make([]byte, n), MessageType: kms.MessageDigest, SigningAlgorithm: alg})
							crRequireErr(t, err, kms.OpSign, kms.ErrInvalidArgument, "%d-byte digest", n)
							_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: make([]byte, n), MessageType: kms.MessageDigest, Signature: make([]byte, 64), SigningAlgorithm: alg})
							crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidArgument, "%d-byte digest", n)
						}
					}
					long := make([]byte, kms.MaxSignMessageSize+1)
					_, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: long, SigningAlgorithm: alg})
					crRequireErr(t, err, kms.OpSign, kms.ErrInvalidArgument, "oversized message")
					_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: long, Signature: make([]byte, 64), SigningAlgorithm: alg})
					crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidArgument, "oversized message")
					_, err = r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: []byte("m"), MessageType: "HASH", SigningAlgorithm: alg})
					crRequireErr(t, err, kms.OpSign, kms.ErrInvalidArgument, "unknown message type")
					for _, sig := range [][]byte{nil, {}, make([]byte, kms.MaxSignatureSize+1)} {
						_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: []byte("m"), Signature: sig, SigningAlgorithm: alg})
						crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidArgument, "%d-byte signature", len(sig))
					}
				})
			}
			t.Run("algorithms of other specs", func(t *testing.T) {
				for _, alg := range append(crAllSigningAlgs, "", "RSASSA_PSS_SHA_1", "ECDSA_SHA_224") {
					if crContains(allowed, alg) {
						continue
					}
					out, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: []byte("m"), SigningAlgorithm: alg})
					crRequireErr(t, err, kms.OpSign, kms.ErrInvalidUsage, alg)
					require.Nil(t, out)
					_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: []byte("m"), Signature: make([]byte, 64), SigningAlgorithm: alg})
					crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidUsage, alg)
				}
			})
		})
	}
}

func crContains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// AWS KMS requires Sign and Verify messages of 1 to 4,096 bytes.
func TestSignRefusesEmptyMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.ECCNISTP256, kms.SignVerify)
	for _, msg := range [][]byte{nil, {}} {
		out, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, SigningAlgorithm: kms.ECDSASHA256})
		crRequireErr(t, err, kms.OpSign, kms.ErrInvalidArgument)
		require.Nil(t, out)
		_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: msg, Signature: make([]byte, 70), SigningAlgorithm: kms.ECDSASHA256})
		crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidArgument)
	}
}

func TestSignVerifyOtherKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	for _, spec := range []kms.KeySpec{kms.RSA2048, kms.ECCNISTP256, kms.ECCNISTEdwards25519} {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			a, b := r.CreateKey(spec, kms.SignVerify), r.CreateKey(spec, kms.SignVerify)
			for _, alg := range crSigningAlgs[spec] {
				msg := []byte("signed by a")
				s, err := r.Sign(ctx, kms.SignInput{KeyID: a.KeyID, Message: msg, SigningAlgorithm: alg})
				require.NoError(t, err)
				_, err = r.Verify(ctx, kms.VerifyInput{KeyID: b.KeyID, Message: msg, Signature: s.Signature, SigningAlgorithm: alg})
				crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidSignature, alg)
			}
		})
	}
}

func TestSignVerifyAfterRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		spec kms.KeySpec
		alg  kms.SigningAlgorithm
	}{
		{kms.ECCNISTP256, kms.ECDSASHA256},
		{kms.ECCNISTP384, kms.ECDSASHA384},
		{kms.ECCNISTEdwards25519, kms.ED25519SHA512},
		{kms.ECCNISTEdwards25519, kms.ED25519PHSHA512},
		{kms.RSA2048, kms.RSASSAPSSSHA256},
		{kms.RSA2048, kms.RSASSAPKCS1V15SHA512},
	} {
		t.Run(string(tc.spec)+"/"+string(tc.alg), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := r.CreateKey(tc.spec, kms.SignVerify)
			msg := []byte("signed before and after rotation")
			s1, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, SigningAlgorithm: tc.alg})
			require.NoError(t, err)
			require.Equal(t, uint32(1), s1.KeyVersion)
			pub1, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
			require.NoError(t, err)

			v, err := r.RotateKeyOnDemand(ctx, k.KeyID)
			require.NoError(t, err)
			require.Equal(t, uint32(2), v)

			pubPrimary, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
			require.NoError(t, err)
			require.Equal(t, uint32(2), pubPrimary.KeyVersion)
			require.NotEqual(t, pub1.PublicKey, pubPrimary.PublicKey, "rotation makes a new key pair")
			crCheckPublicKey(t, tc.spec, pubPrimary.PublicKey)
			for _, want := range []struct {
				v   uint32
				der []byte
			}{{1, pub1.PublicKey}, {2, pubPrimary.PublicKey}} {
				p, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID, KeyVersion: want.v})
				require.NoError(t, err)
				require.Equal(t, want.v, p.KeyVersion)
				require.Equal(t, want.der, p.PublicKey, "GetPublicKey selects version %d", want.v)
			}
			_, err = r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID, KeyVersion: 3})
			crRequireErr(t, err, kms.OpGetPublicKey, kms.ErrInvalidArgument)

			s2, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: msg, SigningAlgorithm: tc.alg})
			require.NoError(t, err)
			require.Equal(t, uint32(2), s2.KeyVersion, "Sign uses the new primary version")
			assert.True(t, crStdVerify(t, pubPrimary.PublicKey, tc.alg, kms.MessageRaw, msg, s2.Signature))
			assert.False(t, crStdVerify(t, pub1.PublicKey, tc.alg, kms.MessageRaw, msg, s2.Signature))
			assert.True(t, crStdVerify(t, pub1.PublicKey, tc.alg, kms.MessageRaw, msg, s1.Signature))
			assert.False(t, crStdVerify(t, pubPrimary.PublicKey, tc.alg, kms.MessageRaw, msg, s1.Signature))

			for _, c := range []struct {
				name    string
				sig     []byte
				pin     uint32
				wantVer uint32
				wantErr error
			}{
				{"old signature, any version", s1.Signature, 0, 1, nil},
				{"old signature, old version pinned", s1.Signature, 1, 1, nil},
				{"old signature, new version pinned", s1.Signature, 2, 0, kms.ErrInvalidSignature},
				{"new signature, any version", s2.Signature, 0, 2, nil},
				{"new signature, new version pinned", s2.Signature, 2, 2, nil},
				{"new signature, old version pinned", s2.Signature, 1, 0, kms.ErrInvalidSignature},
				{"absent version pinned", s1.Signature, 3, 0, kms.ErrInvalidArgument},
			} {
				out, err := r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: msg, Signature: c.sig, SigningAlgorithm: tc.alg, KeyVersion: c.pin})
				if c.wantErr != nil {
					crRequireErr(t, err, kms.OpVerify, c.wantErr, c.name)
					require.Nil(t, out)
					continue
				}
				require.NoError(t, err, c.name)
				require.Equal(t, c.wantVer, out.KeyVersion, c.name)
				ev, ok := r.Events.Last()
				require.True(t, ok)
				require.Equal(t, c.wantVer, ev.KeyVersion, "%s: audited version", c.name)
			}
		})
	}
}

func TestSignVerifyWrongUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	for _, tc := range []struct {
		spec  kms.KeySpec
		usage kms.KeyUsage
		alg   kms.SigningAlgorithm
	}{
		{kms.SymmetricDefault, kms.EncryptDecrypt, kms.RSASSAPSSSHA256},
		{kms.RSA2048, kms.EncryptDecrypt, kms.RSASSAPSSSHA256},
		{kms.RSA2048, kms.EncryptDecrypt, kms.RSASSAPKCS1V15SHA256},
		{kms.HMAC256, kms.GenerateVerifyMac, kms.ECDSASHA256},
		{kms.ECCNISTP256, kms.KeyAgreement, kms.ECDSASHA256},
		{kms.ECCNISTP384, kms.KeyAgreement, kms.ECDSASHA384},
	} {
		t.Run(fmt.Sprintf("%s %s %s", tc.spec, tc.usage, tc.alg), func(t *testing.T) {
			t.Parallel()
			k := r.CreateKey(tc.spec, tc.usage)
			out, err := r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: []byte("m"), SigningAlgorithm: tc.alg})
			crRequireErr(t, err, kms.OpSign, kms.ErrInvalidUsage)
			require.Nil(t, out)
			require.Equal(t, "InvalidKeyUsageException", kms.ErrorCode(err))
			_, err = r.Verify(ctx, kms.VerifyInput{KeyID: k.KeyID, Message: []byte("m"), Signature: make([]byte, 64), SigningAlgorithm: tc.alg})
			crRequireErr(t, err, kms.OpVerify, kms.ErrInvalidUsage)
		})
	}
	t.Run("GetPublicKey of secret keys", func(t *testing.T) {
		t.Parallel()
		for _, k := range []*kms.KeyMetadata{
			r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt),
			r.CreateKey(kms.HMAC384, kms.GenerateVerifyMac),
		} {
			out, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
			crRequireErr(t, err, kms.OpGetPublicKey, kms.ErrUnsupported, k.KeySpec)
			require.Nil(t, out)
		}
	})
	t.Run("sign keys do not encrypt", func(t *testing.T) {
		t.Parallel()
		k := r.CreateKey(kms.RSA2048, kms.SignVerify)
		_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: kms.RSAESOAEPSHA256})
		crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidUsage)
		_, err = r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: []byte("x"), MacAlgorithm: kms.HMACSHA256})
		crRequireErr(t, err, kms.OpGenerateMac, kms.ErrInvalidUsage)
		_, err = r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: k.KeyID, KeyAgreementAlgorithm: kms.ECDH, PublicKey: []byte{1}})
		crRequireErr(t, err, kms.OpDeriveSharedSecret, kms.ErrInvalidUsage)
	})
}

// crECDHCurves maps each NIST spec to its crypto/ecdh curve.
var crECDHCurves = map[kms.KeySpec]ecdh.Curve{
	kms.ECCNISTP256: ecdh.P256(), kms.ECCNISTP384: ecdh.P384(), kms.ECCNISTP521: ecdh.P521(),
}

// crPeerKey makes a peer's ECDH key on curve and its DER public key.
func crPeerKey(t testing.TB, curve ecdh.Curve) (*ecdh.PrivateKey, []byte) {
	t.Helper()
	p, err := curve.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(p.PublicKey())
	require.NoError(t, err)
	return p, der
}

// crPeerSecret is what the peer computes from the KMS key's DER public key.
func crPeerSecret(t testing.TB, peer *ecdh.PrivateKey, kmsPubDER []byte) []byte {
	t.Helper()
	pk, err := x509.ParsePKIXPublicKey(kmsPubDER)
	require.NoError(t, err)
	ep, ok := pk.(*ecdsa.PublicKey)
	require.True(t, ok, "%T", pk)
	pub, err := ep.ECDH()
	require.NoError(t, err)
	s, err := peer.ECDH(pub)
	require.NoError(t, err)
	return s
}

func TestDeriveSharedSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	edDER, err := x509.MarshalPKIXPublicKey(edPub)
	require.NoError(t, err)
	_, x25519DER := crPeerKey(t, ecdh.X25519())

	for spec, curve := range crECDHCurves {
		t.Run(string(spec), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := r.CreateKey(spec, kms.KeyAgreement)
			require.Equal(t, []kms.KeyAgreementAlgorithm{kms.ECDH}, k.KeyAgreementAlgorithms)
			pk, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
			require.NoError(t, err)
			require.Equal(t, []kms.KeyAgreementAlgorithm{kms.ECDH}, pk.KeyAgreementAlgorithms)
			require.Equal(t, kms.KeyAgreement, pk.KeyUsage)
			require.Empty(t, pk.SigningAlgorithms)
			crCheckPublicKey(t, spec, pk.PublicKey)

			for i := 0; i < 3; i++ {
				peer, peerDER := crPeerKey(t, curve)
				out, err := r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: k.KeyID, KeyAgreementAlgorithm: kms.ECDH, PublicKey: peerDER})
				require.NoError(t, err)
				require.Equal(t, k.Arn, out.KeyID)
				require.Equal(t, uint32(1), out.KeyVersion)
				require.Equal(t, kms.ECDH, out.KeyAgreementAlgorithm)
				require.Equal(t, kms.OriginAWSKMS, out.KeyOrigin)
				want := crPeerSecret(t, peer, pk.PublicKey)
				require.Len(t, out.SharedSecret, len(want))
				require.True(t, bytes.Equal(want, out.SharedSecret), "the peer computes the same secret")
				require.NotContains(t, fmt.Sprintf("%v %+v %#v", out, out, out), fmt.Sprintf("%x", want))
			}

			var otherCurve []byte
			for s, c := range crECDHCurves {
				if s != spec {
					_, otherCurve = crPeerKey(t, c)
					break
				}
			}
			_, good := crPeerKey(t, curve)
			for _, tc := range []struct {
				name    string
				in      kms.DeriveSharedSecretInput
				wantErr error
			}{
				{"other curve", kms.DeriveSharedSecretInput{PublicKey: otherCurve}, kms.ErrInvalidArgument},
				{"X25519 key", kms.DeriveSharedSecretInput{PublicKey: x25519DER}, kms.ErrInvalidArgument},
				{"Ed25519 key", kms.DeriveSharedSecretInput{PublicKey: edDER}, kms.ErrInvalidArgument},
				{"RSA key", kms.DeriveSharedSecretInput{PublicKey: rsaDER}, kms.ErrInvalidArgument},
				{"garbage", kms.DeriveSharedSecretInput{PublicKey: []byte("not a public key")}, kms.ErrInvalidArgument},
				{"truncated", kms.DeriveSharedSecretInput{PublicKey: good[:len(good)-1]}, kms.ErrInvalidArgument},
				{"point off the curve", kms.DeriveSharedSecretInput{PublicKey: crFlipBit(good, 8*len(good)-1)}, kms.ErrInvalidArgument},
				{"empty", kms.DeriveSharedSecretInput{}, kms.ErrInvalidArgument},
				{"oversized", kms.DeriveSharedSecretInput{PublicKey: make([]byte, 8193)}, kms.ErrInvalidArgument},
				{"no algorithm", kms.DeriveSharedSecretInput{PublicKey: good, KeyAgreementAlgorithm: "-"}, kms.ErrInvalidArgument},
				{"unknown algorithm", kms.DeriveSharedSecretInput{PublicKey: good, KeyAgreementAlgorithm: "ECDHE"}, kms.ErrInvalidArgument},
				{"absent version", kms.DeriveSharedSecretInput{PublicKey: good, KeyVersion: 2}, kms.ErrInvalidArgument},
			} {
				in := tc.in
				in.KeyID = k.KeyID
				if in.KeyAgreementAlgorithm == "" {
					in.KeyAgreementAlgorithm = kms.ECDH
				} else if in.KeyAgreementAlgorithm == "-" {
					in.KeyAgreementAlgorithm = ""
				}
				out, err := r.DeriveSharedSecret(ctx, in)
				crRequireErr(t, err, kms.OpDeriveSharedSecret, tc.wantErr, tc.name)
				require.Nil(t, out, tc.name)
			}
		})
	}
	t.Run("wrong usage", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		_, peerDER := crPeerKey(t, ecdh.P256())
		for _, k := range []*kms.KeyMetadata{
			r.CreateKey(kms.ECCNISTP256, kms.SignVerify),
			r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt),
			r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac),
			r.CreateKey(kms.ECCNISTEdwards25519, kms.SignVerify),
		} {
			out, err := r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: k.KeyID, KeyAgreementAlgorithm: kms.ECDH, PublicKey: peerDER})
			crRequireErr(t, err, kms.OpDeriveSharedSecret, kms.ErrInvalidUsage, "%s %s", k.KeySpec, k.KeyUsage)
			require.Nil(t, out)
		}
	})
	t.Run("after rotation", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		k := r.CreateKey(kms.ECCNISTP256, kms.KeyAgreement)
		pub1, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
		require.NoError(t, err)
		_, err = r.RotateKeyOnDemand(ctx, k.KeyID)
		require.NoError(t, err)
		pub2, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
		require.NoError(t, err)
		require.Equal(t, uint32(2), pub2.KeyVersion)
		peer, peerDER := crPeerKey(t, ecdh.P256())
		for _, tc := range []struct {
			pin, want uint32
			pub       []byte
		}{{0, 2, pub2.PublicKey}, {2, 2, pub2.PublicKey}, {1, 1, pub1.PublicKey}} {
			out, err := r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: k.KeyID, KeyAgreementAlgorithm: kms.ECDH, PublicKey: peerDER, KeyVersion: tc.pin})
			require.NoError(t, err)
			require.Equal(t, tc.want, out.KeyVersion)
			require.True(t, bytes.Equal(crPeerSecret(t, peer, tc.pub), out.SharedSecret), "version %d", tc.want)
		}
	})
}

// crDataKeyPairs describes each DataKeyPairSpec.
var crDataKeyPairs = []struct {
	spec  kms.DataKeyPairSpec
	check func(t testing.TB, priv crypto.PrivateKey)
}{
	{kms.PairRSA2048, crRSABits(2048)},
	{kms.PairRSA3072, crRSABits(3072)},
	{kms.PairRSA4096, crRSABits(4096)},
	{kms.PairECCNISTP256, crECCurve(elliptic.P256())},
	{kms.PairECCNISTP384, crECCurve(elliptic.P384())},
	{kms.PairECCNISTP521, crECCurve(elliptic.P521())},
}

func crRSABits(n int) func(testing.TB, crypto.PrivateKey) {
	return func(t testing.TB, priv crypto.PrivateKey) {
		k, ok := priv.(*rsa.PrivateKey)
		require.True(t, ok, "%T", priv)
		require.Equal(t, n, k.N.BitLen())
		require.NoError(t, k.Validate())
	}
}

func crECCurve(c elliptic.Curve) func(testing.TB, crypto.PrivateKey) {
	return func(t testing.TB, priv crypto.PrivateKey) {
		k, ok := priv.(*ecdsa.PrivateKey)
		require.True(t, ok, "%T", priv)
		require.Equal(t, c.Params().Name, k.Curve.Params().Name)
	}
}

func TestGenerateDataKeyPair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	ec := kms.EncryptionContext{"purpose": "key pair"}
	variants := []struct {
		name string
		op   kms.Op
		call func(context.Context, kms.GenerateDataKeyPairInput) (*kms.GenerateDataKeyPairOutput, error)
	}{
		{"GenerateDataKeyPair", kms.OpGenerateDataKeyPair, r.GenerateDataKeyPair},
		{"GenerateDataKeyPairWithoutPlaintext", kms.OpGenerateDataKeyPairWithoutPlaintext, r.GenerateDataKeyPairWithoutPlaintext},
	}
	for _, v := range variants {
		for _, p := range crDataKeyPairs {
			t.Run(v.name+"/"+string(p.spec), func(t *testing.T) {
				t.Parallel()
				out, err := v.call(ctx, kms.GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: p.spec, EncryptionContext: ec})
				require.NoError(t, err)
				require.Equal(t, p.spec, out.KeyPairSpec)
				require.Equal(t, k.Arn, out.KeyID)
				require.Equal(t, uint32(1), out.KeyVersion)
				pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
				require.NoError(t, err)

				d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec})
				require.NoError(t, err)
				if v.op == kms.OpGenerateDataKeyPair {
					require.NotEmpty(t, out.PrivateKeyPlaintext)
					require.True(t, bytes.Equal(out.PrivateKeyPlaintext, d.Plaintext), "the blob holds the PKCS#8 private key")
					require.False(t, bytes.Contains(out.PrivateKeyCiphertextBlob, out.PrivateKeyPlaintext))
				} else {
					require.Nil(t, out.PrivateKeyPlaintext)
				}
				priv, err := x509.ParsePKCS8PrivateKey(d.Plaintext)
				require.NoError(t, err)
				p.check(t, priv)
				signer, ok := priv.(crypto.Signer)
				require.True(t, ok)
				require.True(t, pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()), "PublicKey is the private key's")
				der, err := x509.MarshalPKIXPublicKey(signer.Public())
				require.NoError(t, err)
				require.Equal(t, out.PublicKey, der)

				_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob})
				crRequireErr(t, err, kms.OpDecrypt, kms.ErrInvalidCiphertext, "the context is bound")
				_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: kms.EncryptionContext{"purpose": "other"}})
				crRequireErr(t, err, kms.OpDecrypt, kms.ErrInvalidCiphertext, "the context is bound")
				require.NotContains(t, fmt.Sprintf("%v %+v %#v", out, out, out), fmt.Sprintf("%x", []byte(d.Plaintext)))
			})
		}
	}
	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		rsaKey := r.CreateKey(kms.RSA2048, kms.EncryptDecrypt)
		hmacKey := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
		ecKey := r.CreateKey(kms.ECCNISTP256, kms.SignVerify)
		for _, v := range variants {
			for _, tc := range []struct {
				name    string
				in      kms.GenerateDataKeyPairInput
				wantErr error
			}{
				{"no spec", kms.GenerateDataKeyPairInput{KeyID: k.KeyID}, kms.ErrInvalidArgument},
				{"unknown spec", kms.GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: "ECC_SECG_P256K1"}, kms.ErrInvalidArgument},
				{"Ed25519 spec", kms.GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: "ECC_NIST_EDWARDS25519"}, kms.ErrInvalidArgument},
				{"no key", kms.GenerateDataKeyPairInput{KeyPairSpec: kms.PairECCNISTP256}, kms.ErrInvalidArgument},
				{"unknown key", kms.GenerateDataKeyPairInput{KeyID: "alias/none", KeyPairSpec: kms.PairECCNISTP256}, kms.ErrNotFound},
				{"RSA key", kms.GenerateDataKeyPairInput{KeyID: rsaKey.KeyID, KeyPairSpec: kms.PairECCNISTP256}, kms.ErrInvalidUsage},
				{"HMAC key", kms.GenerateDataKeyPairInput{KeyID: hmacKey.KeyID, KeyPairSpec: kms.PairECCNISTP256}, kms.ErrInvalidUsage},
				{"ECC key", kms.GenerateDataKeyPairInput{KeyID: ecKey.KeyID, KeyPairSpec: kms.PairECCNISTP256}, kms.ErrInvalidUsage},
				{"invalid context", kms.GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: kms.PairECCNISTP256, EncryptionContext: kms.EncryptionContext{"": "x"}}, kms.ErrInvalidArgument},
			} {
				out, err := v.call(ctx, tc.in)
				crRequireErr(t, err, v.op, tc.wantErr, "%s: %s", v.name, tc.name)
				require.Nil(t, out)
			}
		}
	})
}
