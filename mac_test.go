package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// crMacSpecs are the HMAC key specs with their algorithm and hash.
var crMacSpecs = []struct {
	spec kms.KeySpec
	alg  kms.MacAlgorithm
	hash crypto.Hash
}{
	{kms.HMAC224, kms.HMACSHA224, crypto.SHA224},
	{kms.HMAC256, kms.HMACSHA256, crypto.SHA256},
	{kms.HMAC384, kms.HMACSHA384, crypto.SHA384},
	{kms.HMAC512, kms.HMACSHA512, crypto.SHA512},
}

var crAllMacAlgs = []kms.MacAlgorithm{kms.HMACSHA224, kms.HMACSHA256, kms.HMACSHA384, kms.HMACSHA512}

func TestGenerateVerifyMac(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, ms := range crMacSpecs {
		t.Run(string(ms.spec), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := r.CreateKey(ms.spec, kms.GenerateVerifyMac)
			other := r.CreateKey(ms.spec, kms.GenerateVerifyMac)
			require.Equal(t, []kms.MacAlgorithm{ms.alg}, k.MacAlgorithms)
			size := ms.hash.Size()

			for _, msg := range [][]byte{{0}, []byte("a message"), bytes.Repeat([]byte{0x5A}, kms.MaxMacMessageSize)} {
				out, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: msg, MacAlgorithm: ms.alg})
				require.NoError(t, err)
				require.Len(t, out.Mac, size, "a full-length tag")
				require.Equal(t, k.Arn, out.KeyID)
				require.Equal(t, uint32(1), out.KeyVersion)
				require.Equal(t, ms.alg, out.MacAlgorithm)
				again, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.Arn, Message: msg, MacAlgorithm: ms.alg})
				require.NoError(t, err)
				require.True(t, bytes.Equal(out.Mac, again.Mac), "HMAC is deterministic")
				o, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: other.KeyID, Message: msg, MacAlgorithm: ms.alg})
				require.NoError(t, err)
				require.False(t, bytes.Equal(out.Mac, o.Mac), "another key gives another tag")

				v, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: out.Mac, MacAlgorithm: ms.alg})
				require.NoError(t, err)
				require.True(t, v.MacValid)
				require.Equal(t, uint32(1), v.KeyVersion)
				require.Equal(t, k.Arn, v.KeyID)
				require.Equal(t, ms.alg, v.MacAlgorithm)

				for i := 0; i < 8*size; i++ {
					_, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: crFlipBit(out.Mac, i), MacAlgorithm: ms.alg})
					crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidMac, "bit %d flipped", i)
				}
				for n := 1; n < size; n++ {
					_, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: out.Mac[:n], MacAlgorithm: ms.alg})
					crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidMac, "tag truncated to %d bytes", n)
				}
				if size < 64 {
					_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: append(bytes.Clone(out.Mac), 0), MacAlgorithm: ms.alg})
					crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidMac, "tag extended")
				}
				_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: crFlipBit(msg, 0), Mac: out.Mac, MacAlgorithm: ms.alg})
				crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidMac, "message changed")
				if len(msg) < kms.MaxMacMessageSize {
					_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: append(bytes.Clone(msg), 0), Mac: out.Mac, MacAlgorithm: ms.alg})
					crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidMac, "message extended")
				}
				if len(msg) > 1 {
					_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg[:len(msg)-1], Mac: out.Mac, MacAlgorithm: ms.alg})
					crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidMac, "message truncated")
				}
				_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: other.KeyID, Message: msg, Mac: out.Mac, MacAlgorithm: ms.alg})
				crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidMac, "another key's tag")
				require.Equal(t, "KMSInvalidMacException", kms.ErrorCode(err))
			}

			out, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: []byte("m"), MacAlgorithm: ms.alg})
			require.NoError(t, err)
			for _, tc := range []struct {
				name    string
				msg     []byte
				mac     []byte
				alg     kms.MacAlgorithm
				wantErr error
				genToo  bool // GenerateMac fails the same way
			}{
				{"empty message", nil, out.Mac, ms.alg, kms.ErrInvalidArgument, true},
				{"oversized message", make([]byte, kms.MaxMacMessageSize+1), out.Mac, ms.alg, kms.ErrInvalidArgument, true},
				{"empty tag", []byte("m"), nil, ms.alg, kms.ErrInvalidArgument, false},
				{"65-byte tag", []byte("m"), make([]byte, 65), ms.alg, kms.ErrInvalidArgument, false},
				{"no algorithm", []byte("m"), out.Mac, "", kms.ErrInvalidUsage, true},
				{"unknown algorithm", []byte("m"), out.Mac, "HMAC_SHA_1", kms.ErrInvalidUsage, true},
			} {
				_, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: tc.msg, Mac: tc.mac, MacAlgorithm: tc.alg})
				crRequireErr(t, err, kms.OpVerifyMac, tc.wantErr, tc.name)
				if tc.genToo {
					g, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: tc.msg, MacAlgorithm: tc.alg})
					crRequireErr(t, err, kms.OpGenerateMac, tc.wantErr, tc.name)
					require.Nil(t, g)
				}
			}
			for _, alg := range crAllMacAlgs {
				if alg == ms.alg {
					continue
				}
				g, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: []byte("m"), MacAlgorithm: alg})
				crRequireErr(t, err, kms.OpGenerateMac, kms.ErrInvalidUsage, "%s with %s", ms.spec, alg)
				require.Nil(t, g)
				v, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: []byte("m"), Mac: out.Mac, MacAlgorithm: alg})
				crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidUsage, "%s with %s", ms.spec, alg)
				require.Nil(t, v)
			}
		})
	}
}

func TestMacWrongUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := kmstest.New(t)
	for _, k := range []*kms.KeyMetadata{
		r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt),
		r.CreateKey(kms.RSA2048, kms.SignVerify),
		r.CreateKey(kms.ECCNISTP256, kms.SignVerify),
		r.CreateKey(kms.ECCNISTP256, kms.KeyAgreement),
	} {
		t.Run(string(k.KeySpec)+" "+string(k.KeyUsage), func(t *testing.T) {
			t.Parallel()
			g, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
			crRequireErr(t, err, kms.OpGenerateMac, kms.ErrInvalidUsage)
			require.Nil(t, g)
			require.Equal(t, "InvalidKeyUsageException", kms.ErrorCode(err))
			_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: []byte("m"), Mac: make([]byte, 32), MacAlgorithm: kms.HMACSHA256})
			crRequireErr(t, err, kms.OpVerifyMac, kms.ErrInvalidUsage)
		})
	}
	t.Run("HMAC keys do nothing else", func(t *testing.T) {
		t.Parallel()
		k := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
		_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
		crRequireErr(t, err, kms.OpEncrypt, kms.ErrInvalidUsage)
		_, err = r.Decrypt(ctx, kms.DecryptInput{KeyID: k.KeyID, CiphertextBlob: crBlobNaming(t, k.KeyID, 1)})
		crRequireErr(t, err, kms.OpDecrypt, kms.ErrInvalidUsage)
		_, err = r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256})
		crRequireErr(t, err, kms.OpGenerateDataKey, kms.ErrInvalidUsage)
		_, err = r.Sign(ctx, kms.SignInput{KeyID: k.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA256})
		crRequireErr(t, err, kms.OpSign, kms.ErrInvalidUsage)
		_, err = r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID})
		crRequireErr(t, err, kms.OpGetPublicKey, kms.ErrUnsupported)
	})
}

func TestMacAfterRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, ms := range crMacSpecs {
		t.Run(string(ms.spec), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			k := r.CreateKey(ms.spec, kms.GenerateVerifyMac)
			msg := []byte("tagged before and after rotation")
			m1, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: msg, MacAlgorithm: ms.alg})
			require.NoError(t, err)
			v, err := r.RotateKeyOnDemand(ctx, k.KeyID)
			require.NoError(t, err)
			require.Equal(t, uint32(2), v)
			m2, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: msg, MacAlgorithm: ms.alg})
			require.NoError(t, err)
			require.Equal(t, uint32(2), m2.KeyVersion, "GenerateMac uses the new primary version")
			require.False(t, bytes.Equal(m1.Mac, m2.Mac), "rotation makes a new secret")

			for _, c := range []struct {
				name    string
				mac     []byte
				pin     uint32
				wantVer uint32
				wantErr error
			}{
				{"old tag, any version", m1.Mac, 0, 1, nil},
				{"old tag, old version pinned", m1.Mac, 1, 1, nil},
				{"old tag, new version pinned", m1.Mac, 2, 0, kms.ErrInvalidMac},
				{"new tag, any version", m2.Mac, 0, 2, nil},
				{"new tag, new version pinned", m2.Mac, 2, 2, nil},
				{"new tag, old version pinned", m2.Mac, 1, 0, kms.ErrInvalidMac},
				{"absent version pinned", m1.Mac, 3, 0, kms.ErrInvalidArgument},
				{"tampered old tag", crFlipBit(m1.Mac, 5), 0, 0, kms.ErrInvalidMac},
			} {
				out, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: c.mac, MacAlgorithm: ms.alg, KeyVersion: c.pin})
				if c.wantErr != nil {
					crRequireErr(t, err, kms.OpVerifyMac, c.wantErr, c.name)
					require.Nil(t, out)
					continue
				}
				require.NoError(t, err, c.name)
				require.Equal(t, c.wantVer, out.KeyVersion, c.name)
				ev, ok := r.Events.Last()
				require.True(t, ok)
				require.Equal(t, kms.OpVerifyMac, ev.Op)
				require.Equal(t, c.wantVer, ev.KeyVersion, "%s: audited version", c.name)
			}
		})
	}
}
