package kms_test

import (
	"context"
	"testing"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	require.NoError(t, r.CreateAlias(ctx, "alias/x", k.KeyID))
	ec := kms.EncryptionContext{"a": "b"}
	out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/x", Plaintext: []byte("hi"), EncryptionContext: ec})
	require.NoError(t, err)
	v2, err := r.RotateKeyOnDemand(ctx, k.Arn)
	require.NoError(t, err)
	require.Equal(t, uint32(2), v2)
	d, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	require.Equal(t, "hi", string(d.Plaintext))
	require.Equal(t, uint32(1), d.KeyVersion)
	_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
	require.ErrorIs(t, err, kms.ErrInvalidCiphertext)
	t.Log(err)
	for _, s := range []kms.KeySpec{kms.RSA2048, kms.ECCNISTP256, kms.ECCNISTEdwards25519} {
		sk := r.CreateKey(s, kms.SignVerify)
		m := sk.SigningAlgorithms[0]
		sig, err := r.Sign(ctx, kms.SignInput{KeyID: sk.KeyID, Message: []byte("m"), SigningAlgorithm: m})
		require.NoError(t, err)
		_, err = r.Verify(ctx, kms.VerifyInput{KeyID: sk.KeyID, Message: []byte("m"), Signature: sig.Signature, SigningAlgorithm: m})
		require.NoError(t, err)
	}
	hk := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
	mac, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: hk.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)
	_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: hk.KeyID, Message: []byte("m"), Mac: mac.Mac, MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)
	im := r.ImportKey(kms.HMAC256, kms.GenerateVerifyMac, make([]byte, 32))
	require.Equal(t, kms.KeyStateEnabled, im.KeyState)
	t.Logf("%d events; %+v", len(r.Events.Events()), d)
}
