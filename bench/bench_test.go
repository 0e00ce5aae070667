package bench

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"

	"github.com/pocketkms/kms"
)

// sizes are the plaintext sizes of the size-swept benchmarks.
var sizes = []struct {
	name string
	n    int
}{
	{"64B", 64},
	{"1KiB", 1024},
	{"4KiB", 4096},
}

// benchContext is the one-pair encryption context of the symmetric
// benchmarks.
var benchContext = kms.EncryptionContext{"purpose": "bench"}

// message returns n random bytes.
func message(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// newRing returns a zero-Config ring and the ID of a new key of the spec
// and usage given.
func newRing(tb testing.TB, spec kms.KeySpec, usage kms.KeyUsage) (*kms.KeyRing, string) {
	tb.Helper()
	ring, err := kms.NewKeyRing(kms.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	md, err := ring.CreateKey(context.Background(), kms.CreateKeyInput{Description: "bench", KeySpec: spec, KeyUsage: usage})
	if err != nil {
		tb.Fatal(err)
	}
	return ring, md.KeyID
}

// kmsRoundTrip is one op of BenchmarkEncrypt.
func kmsRoundTrip(ctx context.Context, ring *kms.KeyRing, keyID string, pt []byte) ([]byte, error) {
	enc, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: keyID, Plaintext: pt, EncryptionContext: benchContext})
	if err != nil {
		return nil, err
	}
	dec, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: benchContext})
	if err != nil {
		return nil, err
	}
	return dec.Plaintext, nil
}

// newGCM returns an AES-256-GCM AEAD under a random key.
func newGCM(tb testing.TB) cipher.AEAD {
	tb.Helper()
	key := message(tb, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// rawRoundTrip is one op of BenchmarkRawAESGCM: a fresh random nonce, Seal
// into a new slice, Open into a new slice.
func rawRoundTrip(g cipher.AEAD, pt []byte) ([]byte, error) {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	ct := g.Seal(nil, nonce[:], pt, nil)
	return g.Open(nil, nonce[:], ct, nil)
}

// BenchmarkEncrypt is one Encrypt and one Decrypt per op, with the
// one-pair encryption context, under no policy (policy=none: AllowAll, the
// default) and under the key-policy engine with a ten-statement key policy
// (policy=keypolicy10, bench10Policy) that allows the caller.
func BenchmarkEncrypt(b *testing.B) {
	for _, s := range sizes {
		for _, pol := range []string{"none", "keypolicy10"} {
			b.Run("size="+s.name+"/policy="+pol, func(b *testing.B) {
				ctx, ring, keyID := policyRing(b, pol)
				pt := message(b, s.n)
				b.SetBytes(int64(s.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := kmsRoundTrip(ctx, ring, keyID, pt); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// benchCaller is the principal of BenchmarkEncrypt.
var benchCaller = kms.Principal{ARN: "arn:aws:iam::111122223333:role/app", Account: "111122223333"}

// bench10Policy is a realistic ten-statement key policy: administrators,
// users bound to an encryption context, grants for resources, readers,
// auditors, operators, and three explicit denials the caller must be
// checked against. Only statement 3 allows benchCaller.
const bench10Policy = `{
  "Version": "2012-10-17",
  "Id": "bench-10",
  "Statement": [
    {"Sid": "CrossAccountRoot", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "KeyAdministrators", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/admin"},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
                "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"], "Resource": "*"},
    {"Sid": "KeyUsers", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:role/app", "arn:aws:iam::111122223333:role/worker"]},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "bench"}}},
    {"Sid": "PersistentResources", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app"},
     "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
     "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
    {"Sid": "DenyBlocked", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalTag/blocked": "true"}}},
    {"Sid": "DenyAfterExpiry", "Effect": "Deny", "Principal": "*", "Action": ["kms:Encrypt", "kms:GenerateDataKey*"], "Resource": "*",
     "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"}}},
    {"Sid": "Auditors", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/auditor"},
     "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"], "Resource": "*"},
    {"Sid": "Readers", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/reader"}, "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["purpose", "tenant"]}}},
    {"Sid": "DenyOtherAccounts", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
     "Condition": {"StringNotEquals": {"kms:CallerAccount": ["111122223333", "444455556666"]}}},
    {"Sid": "Operators", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/ops"},
     "Action": ["kms:RotateKeyOnDemand", "kms:EnableKeyRotation", "kms:GetKeyRotationStatus"], "Resource": "*"}
  ]
}`

// policyRing returns the caller's context, a ring and a symmetric key:
// with pol "none" under the default AllowAll, with "keypolicy10" under
// KeyPolicies and bench10Policy.
func policyRing(tb testing.TB, pol string) (context.Context, *kms.KeyRing, string) {
	tb.Helper()
	ctx := kms.WithPrincipal(context.Background(), benchCaller)
	if pol == "none" {
		ring, keyID := newRing(tb, kms.SymmetricDefault, kms.EncryptDecrypt)
		return ctx, ring, keyID
	}
	ring, err := kms.NewKeyRing(kms.Config{Policy: kms.KeyPolicies{}})
	if err != nil {
		tb.Fatal(err)
	}
	md, err := ring.CreateKey(ctx, kms.CreateKeyInput{Description: "bench", Policy: bench10Policy, BypassPolicyLockoutSafetyCheck: true})
	if err != nil {
		tb.Fatal(err)
	}
	return ctx, ring, md.KeyID
}

func BenchmarkRawAESGCM(b *testing.B) {
	g := newGCM(b)
	for _, s := range sizes {
		b.Run("size="+s.name, func(b *testing.B) {
			pt := message(b, s.n)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rawRoundTrip(g, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerateDataKey makes one AES_256 data key per op (plaintext and
// blob), with the one-pair encryption context.
func BenchmarkGenerateDataKey(b *testing.B) {
	ctx := context.Background()
	ring, keyID := newRing(b, kms.SymmetricDefault, kms.EncryptDecrypt)
	in := kms.GenerateDataKeyInput{KeyID: keyID, KeySpec: kms.AES256, EncryptionContext: benchContext}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.GenerateDataKey(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign signs a 1 KiB RAW message with ECDSA_SHA_256 under an
// ECC_NIST_P256 key.
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	ring, keyID := newRing(b, kms.ECCNISTP256, kms.SignVerify)
	in := kms.SignInput{KeyID: keyID, Message: message(b, 1024), MessageType: kms.MessageRaw, SigningAlgorithm: kms.ECDSASHA256}
	b.SetBytes(int64(len(in.Message)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Sign(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGenerateMac computes HMAC_SHA_256 of a 1 KiB message under an
// HMAC_256 key.
func BenchmarkGenerateMac(b *testing.B) {
	ctx := context.Background()
	ring, keyID := newRing(b, kms.HMAC256, kms.GenerateVerifyMac)
	in := kms.GenerateMacInput{KeyID: keyID, Message: message(b, 1024), MacAlgorithm: kms.HMACSHA256}
	b.SetBytes(int64(len(in.Message)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.GenerateMac(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRoundTrips checks, without -bench, that every benchmarked path works
// and returns what it was given, so the benchmarks measure real work.
func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	ring, keyID := newRing(t, kms.SymmetricDefault, kms.EncryptDecrypt)
	g := newGCM(t)
	for _, s := range sizes {
		pt := message(t, s.n)
		for name, f := range map[string]func() ([]byte, error){
			"Encrypt":   func() ([]byte, error) { return kmsRoundTrip(ctx, ring, keyID, pt) },
			"RawAESGCM": func() ([]byte, error) { return rawRoundTrip(g, pt) },
		} {
			got, err := f()
			if err != nil {
				t.Fatalf("%s/size=%s: %v", name, s.name, err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("%s/size=%s: round trip changed the plaintext", name, s.name)
			}
		}
	}

	// The context is bound: Decrypt with another one fails.
	enc, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: keyID, Plaintext: []byte("x"), EncryptionContext: benchContext})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: kms.EncryptionContext{"purpose": "other"}}); err == nil {
		t.Fatal("Decrypt with the wrong context succeeded")
	}

	dk, err := ring.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: keyID, KeySpec: kms.AES256, EncryptionContext: benchContext})
	if err != nil {
		t.Fatal(err)
	}
	if len(dk.Plaintext) != 32 {
		t.Fatalf("GenerateDataKey: %d-byte key, want 32", len(dk.Plaintext))
	}

	sring, skey := newRing(t, kms.ECCNISTP256, kms.SignVerify)
	msg := message(t, 1024)
	sig, err := sring.Sign(ctx, kms.SignInput{KeyID: skey, Message: msg, MessageType: kms.MessageRaw, SigningAlgorithm: kms.ECDSASHA256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sring.Verify(ctx, kms.VerifyInput{KeyID: skey, Message: msg, MessageType: kms.MessageRaw, Signature: sig.Signature, SigningAlgorithm: kms.ECDSASHA256}); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	mring, mkey := newRing(t, kms.HMAC256, kms.GenerateVerifyMac)
	mac, err := mring.GenerateMac(ctx, kms.GenerateMacInput{KeyID: mkey, Message: msg, MacAlgorithm: kms.HMACSHA256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mring.VerifyMac(ctx, kms.VerifyMacInput{KeyID: mkey, Message: msg, Mac: mac.Mac, MacAlgorithm: kms.HMACSHA256}); err != nil {
		t.Fatalf("VerifyMac: %v", err)
	}
}
