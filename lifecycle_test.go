package kms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// This file tests key management: CreateKey, DescribeKey, ListKeys, tags,
// descriptions, enabling and disabling, deletion scheduling, on-demand
// rotation, the gate (policy and audit) and the Store behind a KeyRing.
// Aliases are tested in alias_test.go. Helpers here are shared with it.

// anyKeyID tells requireOpErr not to check Error.KeyID: for input rejected
// before any key is named (an invalid name is deliberately not echoed).
const anyKeyID = "\x00any"

// requireOpErr checks that err is an *kms.Error for op, naming keyID, that
// matches want with errors.Is.
func requireOpErr(t testing.TB, err error, want error, op kms.Op, keyID string) *kms.Error {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, want)
	var ke *kms.Error
	require.ErrorAs(t, err, &ke, "every KeyRing error is a *kms.Error")
	assert.Equal(t, op, ke.Op, "Error.Op")
	if keyID != anyKeyID {
		assert.Equal(t, keyID, ke.KeyID, "Error.KeyID")
	}
	return ke
}

// stateErrorCode is the AWS exception name of a key state sentinel.
func stateErrorCode(want error) string {
	if errors.Is(want, kms.ErrDisabled) {
		return "DisabledException"
	}
	return "KMSInvalidStateException"
}

var (
	uuidV4Pattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	keyARNPattern = regexp.MustCompile(`^arn:aws:kms:us-east-1:111122223333:key/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// mgmtEncrypt encrypts pt under the key named name and checks the output.
func mgmtEncrypt(t testing.TB, ring *kms.KeyRing, name, pt string, ec kms.EncryptionContext) *kms.EncryptOutput {
	t.Helper()
	out, err := ring.Encrypt(context.Background(), kms.EncryptInput{KeyID: name, Plaintext: []byte(pt), EncryptionContext: ec})
	require.NoError(t, err)
	require.NotEmpty(t, out.CiphertextBlob)
	return out
}

// mgmtDecrypts checks that blob decrypts to want with the given version.
// The plaintext is compared with bytes.Equal so that a failure prints none.
func mgmtDecrypts(t testing.TB, ring *kms.KeyRing, blob []byte, ec kms.EncryptionContext, want string, wantVersion uint32) {
	t.Helper()
	out, err := ring.Decrypt(context.Background(), kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	require.NoError(t, err)
	require.True(t, bytes.Equal([]byte(want), out.Plaintext), "decrypted plaintext differs from the encrypted one")
	require.Equal(t, wantVersion, out.KeyVersion, "DecryptOutput.KeyVersion")
}

func mustDescribe(t testing.TB, ring *kms.KeyRing, name string) *kms.KeyMetadata {
	t.Helper()
	m, err := ring.DescribeKey(context.Background(), name)
	require.NoError(t, err)
	return m
}

func listAllTags(t testing.TB, ring *kms.KeyRing, keyID string) []kms.Tag {
	t.Helper()
	out, err := ring.ListResourceTags(context.Background(), kms.ListResourceTagsInput{KeyID: keyID})
	require.NoError(t, err)
	require.False(t, out.Truncated)
	return out.Tags
}

// stateFixture is a symmetric key brought to a state, with a blob it made
// while it was enabled (nil for a key that never had material).
type stateFixture struct {
	key  *kms.KeyMetadata
	blob []byte
	ec   kms.EncryptionContext
	pt   string
}

func keyInState(t testing.TB, r *kmstest.Ring, state kms.KeyState) stateFixture {
	t.Helper()
	ctx := context.Background()
	if state == kms.KeyStatePendingImport {
		m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Origin: kms.OriginExternal})
		require.NoError(t, err)
		require.Equal(t, kms.KeyStatePendingImport, m.KeyState)
		return stateFixture{key: m}
	}
	m := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	fx := stateFixture{ec: kms.EncryptionContext{"fixture": string(state)}, pt: "made while " + string(state)}
	fx.blob = mgmtEncrypt(t, r.KeyRing, m.KeyID, fx.pt, fx.ec).CiphertextBlob
	switch state {
	case kms.KeyStateEnabled:
	case kms.KeyStateDisabled:
		require.NoError(t, r.DisableKey(ctx, m.KeyID))
	case kms.KeyStatePendingDeletion:
		_, err := r.ScheduleKeyDeletion(ctx, m.KeyID, 7)
		require.NoError(t, err)
	default:
		t.Fatalf("no fixture for state %s", state)
	}
	fx.key = mustDescribe(t, r.KeyRing, m.KeyID)
	require.Equal(t, state, fx.key.KeyState)
	return fx
}

var allKeyStates = []kms.KeyState{kms.KeyStateEnabled, kms.KeyStateDisabled, kms.KeyStatePendingDeletion, kms.KeyStatePendingImport}

// ---------------------------------------------------------------- CreateKey

var (
	allKeySpecs = []kms.KeySpec{
		kms.SymmetricDefault, kms.RSA2048, kms.RSA3072, kms.RSA4096,
		kms.ECCNISTP256, kms.ECCNISTP384, kms.ECCNISTP521, kms.ECCNISTEdwards25519,
		kms.HMAC224, kms.HMAC256, kms.HMAC384, kms.HMAC512,
	}
	allKeyUsages = []kms.KeyUsage{kms.EncryptDecrypt, kms.SignVerify, kms.GenerateVerifyMac, kms.KeyAgreement}
)

// wantAlgorithms is what DescribeKey must list for an allowed spec and
// usage (AWS KMS key spec reference); ok is false for a disallowed pair.
type wantAlgorithms struct {
	enc  []kms.EncryptionAlgorithm
	sign []kms.SigningAlgorithm
	mac  []kms.MacAlgorithm
	ka   []kms.KeyAgreementAlgorithm
	ok   bool
}

func expectedAlgorithms(spec kms.KeySpec, usage kms.KeyUsage) wantAlgorithms {
	rsaSign := []kms.SigningAlgorithm{
		kms.RSASSAPSSSHA256, kms.RSASSAPSSSHA384, kms.RSASSAPSSSHA512,
		kms.RSASSAPKCS1V15SHA256, kms.RSASSAPKCS1V15SHA384, kms.RSASSAPKCS1V15SHA512,
	}
	ecdh := []kms.KeyAgreementAlgorithm{kms.ECDH}
	switch {
	case spec == kms.SymmetricDefault && usage == kms.EncryptDecrypt:
		return wantAlgorithms{enc: []kms.EncryptionAlgorithm{kms.SymmetricDefaultAlgorithm}, ok: true}
	case strings.HasPrefix(string(spec), "RSA_") && usage == kms.EncryptDecrypt:
		return wantAlgorithms{enc: []kms.EncryptionAlgorithm{kms.RSAESOAEPSHA1, kms.RSAESOAEPSHA256}, ok: true}
	case strings.HasPrefix(string(spec), "RSA_") && usage == kms.SignVerify:
		return wantAlgorithms{sign: rsaSign, ok: true}
	case spec == kms.ECCNISTP256 && usage == kms.SignVerify:
		return wantAlgorithms{sign: []kms.SigningAlgorithm{kms.ECDSASHA256}, ok: true}
	case spec == kms.ECCNISTP384 && usage == kms.SignVerify:
		return wantAlgorithms{sign: []kms.SigningAlgorithm{kms.ECDSASHA384}, ok: true}
	case spec == kms.ECCNISTP521 && usage == kms.SignVerify:
		return wantAlgorithms{sign: []kms.SigningAlgorithm{kms.ECDSASHA512}, ok: true}
	case spec == kms.ECCNISTEdwards25519 && usage == kms.SignVerify:
		return wantAlgorithms{sign: []kms.SigningAlgorithm{kms.ED25519SHA512, kms.ED25519PHSHA512}, ok: true}
	case (spec == kms.ECCNISTP256 || spec == kms.ECCNISTP384 || spec == kms.ECCNISTP521) && usage == kms.KeyAgreement:
		return wantAlgorithms{ka: ecdh, ok: true}
	case strings.HasPrefix(string(spec), "HMAC_") && usage == kms.GenerateVerifyMac:
		return wantAlgorithms{mac: []kms.MacAlgorithm{kms.MacAlgorithm("HMAC_SHA_" + strings.TrimPrefix(string(spec), "HMAC_"))}, ok: true}
	}
	return wantAlgorithms{}
}

// TestCreateKeySpecUsageMatrix creates a key of every KeySpec × KeyUsage
// pair on one ring, concurrently: the allowed pairs succeed with the right
// metadata, the others fail with ErrInvalidArgument and create nothing.
func TestCreateKeySpecUsageMatrix(t *testing.T) {
	t.Parallel()
	r := kmstest.New(t)
	var created atomic.Int32
	t.Run("pairs", func(t *testing.T) {
		for _, spec := range allKeySpecs {
			for _, usage := range allKeyUsages {
				want := expectedAlgorithms(spec, usage)
				t.Run(string(spec)+"/"+string(usage), func(t *testing.T) {
					t.Parallel()
					ctx := t.Context()
					m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Description: "matrix"})
					if !want.ok {
						requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpCreateKey, "")
						assert.Equal(t, "ValidationException", kms.ErrorCode(err))
						assert.Nil(t, m)
						return
					}
					require.NoError(t, err)
					created.Add(1)
					assert.Regexp(t, uuidV4Pattern, m.KeyID)
					assert.Regexp(t, keyARNPattern, m.Arn)
					assert.Equal(t, "arn:aws:kms:us-east-1:111122223333:key/"+m.KeyID, m.Arn)
					assert.Equal(t, r.KeyARN(m.KeyID), m.Arn)
					assert.Equal(t, "111122223333", m.AWSAccountID)
					assert.Equal(t, kmstest.Epoch, m.CreationDate)
					assert.True(t, m.Enabled)
					assert.Equal(t, "matrix", m.Description)
					assert.Equal(t, spec, m.KeySpec)
					assert.Equal(t, usage, m.KeyUsage)
					assert.Equal(t, kms.KeyStateEnabled, m.KeyState)
					assert.Equal(t, kms.OriginAWSKMS, m.Origin)
					assert.Equal(t, "CUSTOMER", m.KeyManager)
					assert.Equal(t, uint32(1), m.PrimaryVersion)
					assert.Equal(t, 1, m.Versions)
					assert.Zero(t, m.DeletionDate)
					assert.Zero(t, m.PendingDeletionWindowInDays)
					assert.False(t, m.VerifyOnly)
					assert.Empty(t, m.ExpirationModel)
					assert.ElementsMatch(t, want.enc, m.EncryptionAlgorithms, "EncryptionAlgorithms")
					assert.ElementsMatch(t, want.sign, m.SigningAlgorithms, "SigningAlgorithms")
					assert.ElementsMatch(t, want.mac, m.MacAlgorithms, "MacAlgorithms")
					assert.ElementsMatch(t, want.ka, m.KeyAgreementAlgorithms, "KeyAgreementAlgorithms")

					d, err := r.DescribeKey(ctx, m.KeyID)
					require.NoError(t, err)
					assert.Equal(t, m, d, "DescribeKey returns what CreateKey did")
				})
			}
		}
	})
	out, err := r.ListKeys(t.Context(), kms.ListKeysInput{Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, out.Keys, int(created.Load()), "only the allowed pairs made keys")
	assert.Equal(t, 18, int(created.Load()), "18 allowed KeySpec × KeyUsage pairs")
}

func TestCreateKeyDefaultsAndInvalidInput(t *testing.T) {
	t.Parallel()
	tags51 := make([]kms.Tag, 51)
	tags50 := tags51[:50]
	for i := range tags51 {
		tags51[i] = kms.Tag{TagKey: fmt.Sprintf("k%02d", i), TagValue: "v"}
	}
	cases := []struct {
		name string
		in   kms.CreateKeyInput
		want error // nil: succeeds
	}{
		{"zero input is SYMMETRIC_DEFAULT ENCRYPT_DECRYPT AWS_KMS", kms.CreateKeyInput{}, nil},
		{"description of 8192 characters", kms.CreateKeyInput{Description: strings.Repeat("é", kms.MaxDescriptionLen)}, nil},
		{"50 tags", kms.CreateKeyInput{Tags: tags50}, nil},
		{"tag with empty value", kms.CreateKeyInput{Tags: []kms.Tag{{TagKey: "k"}}}, nil},
		{"HMAC spec with default usage", kms.CreateKeyInput{KeySpec: kms.HMAC256}, kms.ErrInvalidArgument},
		{"ECC spec with default usage", kms.CreateKeyInput{KeySpec: kms.ECCNISTP256}, kms.ErrInvalidArgument},
		{"unknown KeySpec", kms.CreateKeyInput{KeySpec: "AES_256"}, kms.ErrInvalidArgument},
		{"lower-case KeySpec", kms.CreateKeyInput{KeySpec: "symmetric_default"}, kms.ErrInvalidArgument},
		{"unknown KeyUsage", kms.CreateKeyInput{KeyUsage: "ENCRYPT"}, kms.ErrInvalidArgument},
		{"unknown Origin", kms.CreateKeyInput{Origin: "AWS_CLOUDHSM"}, kms.ErrInvalidArgument},
		{"description of 8193 characters", kms.CreateKeyInput{Description: strings.Repeat("a", kms.MaxDescriptionLen+1)}, kms.ErrInvalidArgument},
		{"description not UTF-8", kms.CreateKeyInput{Description: "bad \xff\xfe"}, kms.ErrInvalidArgument},
		{"51 tags", kms.CreateKeyInput{Tags: tags51}, kms.ErrLimitExceeded},
		{"tag key aws:", kms.CreateKeyInput{Tags: []kms.Tag{{TagKey: "aws:owner", TagValue: "x"}}}, kms.ErrInvalidArgument},
		{"tag key AWS: any case", kms.CreateKeyInput{Tags: []kms.Tag{{TagKey: "AwS:owner", TagValue: "x"}}}, kms.ErrInvalidArgument},
		{"empty tag key", kms.CreateKeyInput{Tags: []kms.Tag{{TagValue: "x"}}}, kms.ErrInvalidArgument},
		{"tag key of 129 characters", kms.CreateKeyInput{Tags: []kms.Tag{{TagKey: strings.Repeat("k", 129)}}}, kms.ErrInvalidArgument},
		{"tag value of 257 characters", kms.CreateKeyInput{Tags: []kms.Tag{{TagKey: "k", TagValue: strings.Repeat("v", 257)}}}, kms.ErrInvalidArgument},
		{"tag value not UTF-8", kms.CreateKeyInput{Tags: []kms.Tag{{TagKey: "k", TagValue: "\xc3"}}}, kms.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			m, err := r.KeyRing.CreateKey(ctx, tc.in)
			list, lerr := r.ListKeys(ctx, kms.ListKeysInput{})
			require.NoError(t, lerr)
			if tc.want != nil {
				requireOpErr(t, err, tc.want, kms.OpCreateKey, "")
				assert.Nil(t, m)
				assert.Empty(t, list.Keys, "a refused CreateKey creates nothing")
				return
			}
			require.NoError(t, err)
			require.Len(t, list.Keys, 1)
			assert.Equal(t, m.KeyID, list.Keys[0].KeyID)
			if tc.in.KeySpec == "" {
				assert.Equal(t, kms.SymmetricDefault, m.KeySpec)
				assert.Equal(t, kms.EncryptDecrypt, m.KeyUsage)
				assert.Equal(t, kms.OriginAWSKMS, m.Origin)
			}
			assert.Equal(t, tc.in.Description, m.Description)
			tags := listAllTags(t, r.KeyRing, m.KeyID)
			assert.Len(t, tags, len(tc.in.Tags))
		})
	}
}

func TestCreateKeyExternalOrigin(t *testing.T) {
	t.Parallel()
	for _, pair := range []struct {
		spec  kms.KeySpec
		usage kms.KeyUsage
	}{
		{kms.SymmetricDefault, kms.EncryptDecrypt},
		{kms.HMAC384, kms.GenerateVerifyMac},
		{kms.ECCNISTP384, kms.SignVerify},
		{kms.RSA2048, kms.EncryptDecrypt},
	} {
		t.Run(string(pair.spec), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{KeySpec: pair.spec, KeyUsage: pair.usage, Origin: kms.OriginExternal})
			require.NoError(t, err)
			assert.Equal(t, kms.OriginExternal, m.Origin)
			assert.Equal(t, kms.KeyStatePendingImport, m.KeyState)
			assert.False(t, m.Enabled)
			assert.Zero(t, m.PrimaryVersion, "no version before import")
			assert.Zero(t, m.Versions)
			assert.Equal(t, "CUSTOMER", m.KeyManager)
			assert.Regexp(t, keyARNPattern, m.Arn)
			assert.Equal(t, m, mustDescribe(t, r.KeyRing, m.Arn))

			// Every cryptographic use refuses with ErrPendingImport.
			var useErr error
			switch pair.usage {
			case kms.EncryptDecrypt:
				alg := kms.SymmetricDefaultAlgorithm
				if pair.spec != kms.SymmetricDefault {
					alg = kms.RSAESOAEPSHA256
				}
				_, useErr = r.Encrypt(ctx, kms.EncryptInput{KeyID: m.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: alg})
				requireOpErr(t, useErr, kms.ErrPendingImport, kms.OpEncrypt, m.KeyID)
			case kms.GenerateVerifyMac:
				_, useErr = r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: m.KeyID, Message: []byte("x"), MacAlgorithm: kms.HMACSHA384})
				requireOpErr(t, useErr, kms.ErrPendingImport, kms.OpGenerateMac, m.KeyID)
			case kms.SignVerify:
				_, useErr = r.Sign(ctx, kms.SignInput{KeyID: m.KeyID, Message: []byte("x"), SigningAlgorithm: kms.ECDSASHA384})
				requireOpErr(t, useErr, kms.ErrPendingImport, kms.OpSign, m.KeyID)
			}
			assert.ErrorIs(t, useErr, kms.ErrInvalidState)
			assert.Equal(t, "KMSInvalidStateException", kms.ErrorCode(useErr))
		})
	}
}

// -------------------------------------------------------------- DescribeKey

func TestDescribeKeyNaming(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	other := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	require.NoError(t, r.CreateAlias(ctx, "alias/orders", k.KeyID))
	unknown := "0b9e5a7c-1f2d-4e3a-9b8c-7d6e5f4a3b2c"
	arnIn := func(region, account string) string {
		return "arn:aws:kms:" + region + ":" + account + ":key/" + k.KeyID
	}

	cases := []struct {
		name, key string
		want      error  // nil: describes k
		wantKeyID string // Error.KeyID
	}{
		{"key ID", k.KeyID, nil, ""},
		{"key ARN", k.Arn, nil, ""},
		{"alias", "alias/orders", nil, ""},
		{"alias ARN", r.AliasARN("alias/orders"), nil, ""},
		{"unknown key ID", unknown, kms.ErrNotFound, unknown},
		{"unknown key ARN", r.KeyARN(unknown), kms.ErrNotFound, r.KeyARN(unknown)},
		{"key ID in another case", strings.ToUpper(k.KeyID), kms.ErrNotFound, strings.ToUpper(k.KeyID)},
		{"ARN in another region", arnIn("eu-west-1", "111122223333"), kms.ErrNotFound, arnIn("eu-west-1", "111122223333")},
		{"ARN in another account", arnIn("us-east-1", "444455556666"), kms.ErrNotFound, arnIn("us-east-1", "444455556666")},
		{"ARN in another partition", "arn:aws-cn:kms:us-east-1:111122223333:key/" + k.KeyID, kms.ErrNotFound, "arn:aws-cn:kms:us-east-1:111122223333:key/" + k.KeyID},
		{"ARN of another service", "arn:aws:s3:us-east-1:111122223333:key/" + k.KeyID, kms.ErrNotFound, "arn:aws:s3:us-east-1:111122223333:key/" + k.KeyID},
		{"ARN of no resource type", "arn:aws:kms:us-east-1:111122223333:" + k.KeyID, kms.ErrNotFound, "arn:aws:kms:us-east-1:111122223333:" + k.KeyID},
		{"ARN with empty key ID", "arn:aws:kms:us-east-1:111122223333:key/", kms.ErrNotFound, "arn:aws:kms:us-east-1:111122223333:key/"},
		{"unknown alias", "alias/nope", kms.ErrNotFound, "alias/nope"},
		{"unknown alias ARN", r.AliasARN("alias/nope"), kms.ErrNotFound, r.AliasARN("alias/nope")},
		{"alias ARN in another region", "arn:aws:kms:eu-west-1:111122223333:alias/orders", kms.ErrNotFound, "arn:aws:kms:eu-west-1:111122223333:alias/orders"},
		// A key ARN whose key ID part is an alias name is not an alias ARN.
		{"key ARN holding an alias name", "arn:aws:kms:us-east-1:111122223333:key/alias/orders", kms.ErrNotFound, "arn:aws:kms:us-east-1:111122223333:key/alias/orders"},
		{"empty", "", kms.ErrInvalidArgument, ""},
		{"space inside", k.KeyID[:8] + " " + k.KeyID[9:], kms.ErrInvalidArgument, anyKeyID},
		{"control character", k.KeyID + "\n", kms.ErrInvalidArgument, anyKeyID},
		{"not ASCII", "alias/ordérs", kms.ErrInvalidArgument, anyKeyID},
		{"longer than 2048", strings.Repeat("a", 2049), kms.ErrInvalidArgument, anyKeyID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := r.DescribeKey(t.Context(), tc.key)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, k, m)
				assert.NotEqual(t, other.KeyID, m.KeyID)
				return
			}
			assert.Nil(t, m)
			requireOpErr(t, err, tc.want, kms.OpDescribeKey, tc.wantKeyID)
		})
	}
}

// TestDescribeKeyInEveryState checks DescribeKey works whatever the state.
func TestDescribeKeyInEveryState(t *testing.T) {
	t.Parallel()
	for _, st := range allKeyStates {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			fx := keyInState(t, r, st)
			m := mustDescribe(t, r.KeyRing, fx.key.KeyID)
			assert.Equal(t, st, m.KeyState)
			assert.Equal(t, st == kms.KeyStateEnabled, m.Enabled)
		})
	}
}

// ------------------------------------------------------------------ ListKeys

func TestListKeysPagination(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	const n = 101
	var want []string
	for range n - 2 {
		want = append(want, r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID)
	}
	// Keys in every state are listed.
	want = append(want, keyInState(t, r, kms.KeyStatePendingImport).key.KeyID)
	want = append(want, keyInState(t, r, kms.KeyStatePendingDeletion).key.KeyID)
	slices.Sort(want)

	for _, limit := range []int{0, 1, 2, 7, 50, 100, 101, 102, 1000} {
		t.Run(fmt.Sprintf("Limit=%d", limit), func(t *testing.T) {
			t.Parallel()
			eff := limit
			if eff == 0 {
				eff = 100 // the default page size
			}
			var got []string
			marker := ""
			for page := 0; ; page++ {
				require.Less(t, page, n+1, "the walk must end")
				out, err := r.ListKeys(ctx, kms.ListKeysInput{Limit: limit, Marker: marker})
				require.NoError(t, err)
				require.LessOrEqual(t, len(out.Keys), eff)
				for _, e := range out.Keys {
					assert.Equal(t, r.KeyARN(e.KeyID), e.KeyArn)
					got = append(got, e.KeyID)
				}
				if !out.Truncated {
					assert.Empty(t, out.NextMarker, "no NextMarker on the last page")
					break
				}
				require.Len(t, out.Keys, eff, "a truncated page is full")
				require.NotEmpty(t, out.NextMarker)
				assert.Equal(t, out.Keys[len(out.Keys)-1].KeyID, out.NextMarker)
				marker = out.NextMarker
			}
			assert.Equal(t, want, got, "every key exactly once, in key ID order")
		})
	}

	t.Run("marker after the last key", func(t *testing.T) {
		t.Parallel()
		out, err := r.ListKeys(ctx, kms.ListKeysInput{Marker: want[len(want)-1]})
		require.NoError(t, err)
		assert.Empty(t, out.Keys)
		assert.False(t, out.Truncated)
	})
	t.Run("unknown marker continues after it", func(t *testing.T) {
		t.Parallel()
		out, err := r.ListKeys(ctx, kms.ListKeysInput{Marker: want[10] + "0", Limit: 1000})
		require.NoError(t, err)
		require.NotEmpty(t, out.Keys)
		assert.Equal(t, want[11], out.Keys[0].KeyID)
	})
}

func TestListKeysInvalidInput(t *testing.T) {
	t.Parallel()
	r := kmstest.New(t)
	r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	cases := []struct {
		name string
		in   kms.ListKeysInput
	}{
		{"negative Limit", kms.ListKeysInput{Limit: -1}},
		{"Limit 1001", kms.ListKeysInput{Limit: 1001}},
		{"Limit huge", kms.ListKeysInput{Limit: 1 << 40}},
		{"Marker with space", kms.ListKeysInput{Marker: "a b"}},
		{"Marker not ASCII", kms.ListKeysInput{Marker: "é"}},
		{"Marker longer than 1024", kms.ListKeysInput{Marker: strings.Repeat("a", 1025)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := r.ListKeys(t.Context(), tc.in)
			assert.Nil(t, out)
			requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpListKeys, "")
		})
	}
}

// ---------------------------------------------------------------------- Tags

func TestTagResource(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		start []kms.Tag // tags given to CreateKey
		add   []kms.Tag
		want  error     // nil: succeeds
		tags  []kms.Tag // the key's tags afterwards (sorted)
	}{
		{
			name: "add to none",
			add:  []kms.Tag{tag("b", "2"), tag("a", "1")},
			tags: []kms.Tag{tag("a", "1"), tag("b", "2")},
		},
		{
			name:  "overwrite a value and add",
			start: []kms.Tag{tag("a", "1"), tag("b", "2")},
			add:   []kms.Tag{tag("b", "two"), tag("c", "3")},
			tags:  []kms.Tag{tag("a", "1"), tag("b", "two"), tag("c", "3")},
		},
		{
			name:  "same key twice in one call: last wins",
			start: []kms.Tag{tag("a", "1")},
			add:   []kms.Tag{tag("a", "x"), tag("a", "y")},
			tags:  []kms.Tag{tag("a", "y")},
		},
		{
			name:  "empty value",
			start: []kms.Tag{tag("a", "1")},
			add:   []kms.Tag{tag("a", "")},
			tags:  []kms.Tag{tag("a", "")},
		},
		{
			name: "limits: key of 128 and value of 256 characters",
			add:  []kms.Tag{tag(strings.Repeat("ü", 128), strings.Repeat("ß", 256))},
			tags: []kms.Tag{tag(strings.Repeat("ü", 128), strings.Repeat("ß", 256))},
		},
		{
			name: "aws in the middle is not reserved",
			add:  []kms.Tag{tag("my-aws:x", "1"), tag("aws", "2")},
			tags: []kms.Tag{tag("aws", "2"), tag("my-aws:x", "1")},
		},
		{
			name:  "fill to 50",
			start: numberedTags(0, 49),
			add:   numberedTags(49, 50),
			tags:  numberedTags(0, 50),
		},
		{
			name:  "overwrite at 50",
			start: numberedTags(0, 50),
			add:   []kms.Tag{tag("k00", "new")},
			tags:  append([]kms.Tag{tag("k00", "new")}, numberedTags(1, 50)...),
		},
		{
			name:  "51st tag",
			start: numberedTags(0, 50),
			add:   []kms.Tag{tag("zz", "1")},
			want:  kms.ErrLimitExceeded,
			tags:  numberedTags(0, 50),
		},
		{
			name:  "51 at once, none applied",
			start: []kms.Tag{tag("a", "1")},
			add:   numberedTags(0, 50),
			want:  kms.ErrLimitExceeded,
			tags:  []kms.Tag{tag("a", "1")},
		},
		{
			name:  "aws: prefix is reserved",
			start: []kms.Tag{tag("a", "1")},
			add:   []kms.Tag{tag("b", "2"), tag("aws:created-by", "me")},
			want:  kms.ErrInvalidArgument,
			tags:  []kms.Tag{tag("a", "1")},
		},
		{
			name: "AWS: prefix in another case is reserved",
			add:  []kms.Tag{tag("AWS:x", "1")},
			want: kms.ErrInvalidArgument,
		},
		{
			name: "empty key",
			add:  []kms.Tag{tag("", "1")},
			want: kms.ErrInvalidArgument,
		},
		{
			name: "key of 129 characters",
			add:  []kms.Tag{tag(strings.Repeat("k", 129), "1")},
			want: kms.ErrInvalidArgument,
		},
		{
			name: "value of 257 characters",
			add:  []kms.Tag{tag("k", strings.Repeat("v", 257))},
			want: kms.ErrInvalidArgument,
		},
		{
			name: "key not UTF-8",
			add:  []kms.Tag{tag("k\xff", "1")},
			want: kms.ErrInvalidArgument,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Tags: tc.start})
			require.NoError(t, err)
			err = r.TagResource(ctx, m.Arn, tc.add)
			if tc.want != nil {
				requireOpErr(t, err, tc.want, kms.OpTagResource, m.KeyID)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.tags, nilIfEmpty(listAllTags(t, r.KeyRing, m.KeyID)))
		})
	}
}

func tag(k, v string) kms.Tag { return kms.Tag{TagKey: k, TagValue: v} }

func numberedTags(from, to int) []kms.Tag {
	var out []kms.Tag
	for i := from; i < to; i++ {
		out = append(out, kms.Tag{TagKey: fmt.Sprintf("k%02d", i), TagValue: fmt.Sprint(i)})
	}
	return out
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestUntagResource(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		remove []string
		tags   []kms.Tag
	}{
		{"one", []string{"b"}, []kms.Tag{tag("a", "1"), tag("c", "3")}},
		{"all", []string{"c", "a", "b"}, nil},
		{"absent keys are ignored", []string{"x", "a"}, []kms.Tag{tag("b", "2"), tag("c", "3")}},
		{"none", nil, []kms.Tag{tag("a", "1"), tag("b", "2"), tag("c", "3")}},
		{"keys match exactly", []string{"A", "b "}, []kms.Tag{tag("a", "1"), tag("b", "2"), tag("c", "3")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Tags: []kms.Tag{tag("c", "3"), tag("a", "1"), tag("b", "2")}})
			require.NoError(t, err)
			require.NoError(t, r.UntagResource(ctx, m.KeyID, tc.remove))
			assert.Equal(t, tc.tags, nilIfEmpty(listAllTags(t, r.KeyRing, m.KeyID)))
		})
	}
}

func TestListResourceTagsPagination(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Tags: numberedTags(0, 50)})
	require.NoError(t, err)
	empty := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	want := numberedTags(0, 50)

	for _, limit := range []int{0, 1, 3, 7, 49, 50} {
		t.Run(fmt.Sprintf("Limit=%d", limit), func(t *testing.T) {
			t.Parallel()
			eff := limit
			if eff == 0 {
				eff = 50
			}
			var got []kms.Tag
			marker := ""
			for page := 0; ; page++ {
				require.Less(t, page, 51, "the walk must end")
				out, err := r.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: m.KeyID, Limit: limit, Marker: marker})
				require.NoError(t, err)
				require.LessOrEqual(t, len(out.Tags), eff)
				got = append(got, out.Tags...)
				if !out.Truncated {
					assert.Empty(t, out.NextMarker)
					break
				}
				require.Len(t, out.Tags, eff)
				assert.Equal(t, out.Tags[len(out.Tags)-1].TagKey, out.NextMarker)
				marker = out.NextMarker
			}
			assert.Equal(t, want, got, "every tag exactly once, sorted by key")
		})
	}
	t.Run("no tags", func(t *testing.T) {
		t.Parallel()
		out, err := r.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: empty.KeyID})
		require.NoError(t, err)
		assert.Empty(t, out.Tags)
		assert.False(t, out.Truncated)
	})
	t.Run("by alias", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, r.CreateAlias(ctx, "alias/tagged", m.KeyID))
		out, err := r.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: "alias/tagged", Limit: 2})
		require.NoError(t, err)
		assert.Equal(t, want[:2], out.Tags)
	})
	for _, tc := range []struct {
		name  string
		in    kms.ListResourceTagsInput
		want  error
		keyID string
	}{
		{"Limit 51", kms.ListResourceTagsInput{KeyID: m.KeyID, Limit: 51}, kms.ErrInvalidArgument, anyKeyID},
		{"negative Limit", kms.ListResourceTagsInput{KeyID: m.KeyID, Limit: -1}, kms.ErrInvalidArgument, anyKeyID},
		{"no key", kms.ListResourceTagsInput{}, kms.ErrInvalidArgument, ""},
		{"unknown key", kms.ListResourceTagsInput{KeyID: "alias/none"}, kms.ErrNotFound, "alias/none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := r.ListResourceTags(ctx, tc.in)
			assert.Nil(t, out)
			requireOpErr(t, err, tc.want, kms.OpListResourceTags, tc.keyID)
		})
	}
}

// ------------------------------------------------------ UpdateKeyDescription

func TestUpdateKeyDescription(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, desc string
		want       error
	}{
		{"replace", "payments key", nil},
		{"clear", "", nil},
		{"8192 characters", strings.Repeat("ç", kms.MaxDescriptionLen), nil},
		{"8193 characters", strings.Repeat("c", kms.MaxDescriptionLen+1), kms.ErrInvalidArgument},
		{"not UTF-8", "caf\xe9", kms.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Description: "original"})
			require.NoError(t, err)
			err = r.UpdateKeyDescription(ctx, m.KeyID, tc.desc)
			got := mustDescribe(t, r.KeyRing, m.KeyID).Description
			if tc.want != nil {
				requireOpErr(t, err, tc.want, kms.OpUpdateKeyDescription, m.KeyID)
				assert.Equal(t, "original", got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.desc, got)
		})
	}
}

// ------------------------------------------------------- the state machine

// stateOp is one operation on a fixture key. want says what it returns in
// each state: nil for success, else the state sentinel.
type stateOp struct {
	name string
	op   kms.Op
	run  func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error
	want map[kms.KeyState]error
	// next is the state after success (empty: unchanged).
	next kms.KeyState
	// blob means the operation needs fx.blob, which PendingImport keys lack.
	blob bool
}

var cryptoRefusals = map[kms.KeyState]error{
	kms.KeyStateEnabled:         nil,
	kms.KeyStateDisabled:        kms.ErrDisabled,
	kms.KeyStatePendingDeletion: kms.ErrPendingDeletion,
	kms.KeyStatePendingImport:   kms.ErrPendingImport,
}

func stateOps() []stateOp {
	onlyPendingDeletionRefuses := map[kms.KeyState]error{kms.KeyStatePendingDeletion: kms.ErrPendingDeletion}
	return []stateOp{
		{name: "Encrypt", op: kms.OpEncrypt, want: cryptoRefusals, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: fx.key.KeyID, Plaintext: []byte("p")})
			return err
		}},
		{name: "Decrypt", op: kms.OpDecrypt, want: cryptoRefusals, blob: true, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			out, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: fx.blob, EncryptionContext: fx.ec})
			if err == nil && !bytes.Equal(out.Plaintext, []byte(fx.pt)) {
				return errors.New("wrong plaintext")
			}
			return err
		}},
		{name: "GenerateDataKey", op: kms.OpGenerateDataKey, want: cryptoRefusals, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			_, err := r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: fx.key.KeyID, KeySpec: kms.AES256})
			return err
		}},
		{name: "GenerateDataKeyWithoutPlaintext", op: kms.OpGenerateDataKeyWithoutPlaintext, want: cryptoRefusals, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			_, err := r.GenerateDataKeyWithoutPlaintext(ctx, kms.GenerateDataKeyInput{KeyID: fx.key.KeyID, NumberOfBytes: 16})
			return err
		}},
		{name: "ReEncrypt from", op: kms.OpReEncrypt, want: cryptoRefusals, blob: true, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			dst := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
			_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: fx.blob, SourceEncryptionContext: fx.ec, DestinationKeyID: dst.KeyID})
			return err
		}},
		{name: "ReEncrypt to", op: kms.OpReEncrypt, want: cryptoRefusals, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			src := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
			blob := mgmtEncrypt(t, r.KeyRing, src.KeyID, "p", nil).CiphertextBlob
			_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyID: fx.key.KeyID})
			return err
		}},
		{name: "RotateKeyOnDemand", op: kms.OpRotateKeyOnDemand, want: cryptoRefusals, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			_, err := r.RotateKeyOnDemand(ctx, fx.key.KeyID)
			return err
		}},
		{name: "DescribeKey", op: kms.OpDescribeKey, want: nil, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			_, err := r.DescribeKey(ctx, fx.key.KeyID)
			return err
		}},
		{name: "ListResourceTags", op: kms.OpListResourceTags, want: nil, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			_, err := r.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: fx.key.KeyID})
			return err
		}},
		{name: "ListAliases", op: kms.OpListAliases, want: nil, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			_, err := r.ListAliases(ctx, kms.ListAliasesInput{KeyID: fx.key.KeyID})
			return err
		}},
		{name: "EnableKey", op: kms.OpEnableKey, next: kms.KeyStateEnabled, want: map[kms.KeyState]error{
			kms.KeyStatePendingDeletion: kms.ErrPendingDeletion, kms.KeyStatePendingImport: kms.ErrPendingImport,
		}, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			return r.EnableKey(ctx, fx.key.KeyID)
		}},
		{name: "DisableKey", op: kms.OpDisableKey, next: kms.KeyStateDisabled, want: map[kms.KeyState]error{
			kms.KeyStatePendingDeletion: kms.ErrPendingDeletion, kms.KeyStatePendingImport: kms.ErrPendingImport,
		}, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			return r.DisableKey(ctx, fx.key.KeyID)
		}},
		{name: "ScheduleKeyDeletion", op: kms.OpScheduleKeyDeletion, next: kms.KeyStatePendingDeletion, want: onlyPendingDeletionRefuses, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			_, err := r.ScheduleKeyDeletion(ctx, fx.key.KeyID, 10)
			return err
		}},
		{name: "CancelKeyDeletion", op: kms.OpCancelKeyDeletion, next: kms.KeyStateDisabled, want: map[kms.KeyState]error{
			kms.KeyStateEnabled: kms.ErrInvalidState, kms.KeyStateDisabled: kms.ErrInvalidState, kms.KeyStatePendingImport: kms.ErrInvalidState,
		}, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			return r.CancelKeyDeletion(ctx, fx.key.KeyID)
		}},
		{name: "UpdateKeyDescription", op: kms.OpUpdateKeyDescription, want: onlyPendingDeletionRefuses, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			return r.UpdateKeyDescription(ctx, fx.key.KeyID, "new")
		}},
		{name: "TagResource", op: kms.OpTagResource, want: onlyPendingDeletionRefuses, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			return r.TagResource(ctx, fx.key.KeyID, []kms.Tag{{TagKey: "k", TagValue: "v"}})
		}},
		{name: "UntagResource", op: kms.OpUntagResource, want: onlyPendingDeletionRefuses, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			return r.UntagResource(ctx, fx.key.KeyID, []string{"k"})
		}},
		{name: "CreateAlias", op: kms.OpCreateAlias, want: onlyPendingDeletionRefuses, run: func(ctx context.Context, t testing.TB, r *kmstest.Ring, fx stateFixture) error {
			return r.CreateAlias(ctx, "alias/state", fx.key.KeyID)
		}},
	}
}

// TestKeyStateMatrix runs each key operation on a key in each state: the
// allowed ones succeed, the others fail with the state's sentinel (which
// matches ErrInvalidState), its exception name and an event, and leave
// the key as it was.
func TestKeyStateMatrix(t *testing.T) {
	t.Parallel()
	for _, op := range stateOps() {
		for _, st := range allKeyStates {
			if op.blob && st == kms.KeyStatePendingImport {
				continue
			}
			t.Run(op.name+"/"+string(st), func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				r := kmstest.New(t)
				fx := keyInState(t, r, st)
				r.Events.Reset()
				err := op.run(ctx, t, r, fx)
				after := mustDescribe(t, r.KeyRing, fx.key.KeyID)
				evs := r.Events.ByOp(op.op)
				require.NotEmpty(t, evs)
				ev := evs[len(evs)-1]

				want := op.want[st]
				if want == nil {
					require.NoError(t, err)
					assert.Equal(t, kms.OutcomeAllowed, ev.Outcome)
					switch {
					case op.op == kms.OpCancelKeyDeletion:
						assert.Equal(t, kms.KeyStateDisabled, after.KeyState)
					case op.next != "":
						assert.Equal(t, op.next, after.KeyState)
					default:
						assert.Equal(t, st, after.KeyState)
					}
					return
				}
				requireOpErr(t, err, want, op.op, fx.key.KeyID)
				assert.ErrorIs(t, err, kms.ErrInvalidState, "every state refusal matches ErrInvalidState")
				assert.Equal(t, stateErrorCode(want), kms.ErrorCode(err))
				assert.Equal(t, kms.OutcomeFailed, ev.Outcome)
				assert.Equal(t, stateErrorCode(want), ev.ErrorCode)
				if op.name == "ReEncrypt from" {
					// The event's KeyID is ReEncrypt's destination; the refused key is its source.
					assert.Equal(t, fx.key.KeyID, ev.SourceKeyID)
				} else {
					assert.Equal(t, fx.key.KeyID, ev.KeyID)
				}
				assert.Equal(t, fx.key, after, "a refused operation changes nothing")
			})
		}
	}
}

// ------------------------------------------------------ Enable and Disable

func TestDisableEnableKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	sym := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	hmac := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
	sig := r.CreateKey(kms.ECCNISTP256, kms.SignVerify)
	ec := kms.EncryptionContext{"purpose": "disable test"}
	blob := mgmtEncrypt(t, r.KeyRing, sym.KeyID, "before", ec).CiphertextBlob
	mac, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: hmac.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)
	sg, err := r.Sign(ctx, kms.SignInput{KeyID: sig.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA256})
	require.NoError(t, err)

	uses := []struct {
		name string
		op   kms.Op
		key  *kms.KeyMetadata
		run  func() error
	}{
		{"Encrypt", kms.OpEncrypt, sym, func() error {
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: sym.KeyID, Plaintext: []byte("x")})
			return err
		}},
		{"Decrypt", kms.OpDecrypt, sym, func() error {
			_, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
			return err
		}},
		{"GenerateDataKey", kms.OpGenerateDataKey, sym, func() error {
			_, err := r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: sym.KeyID, NumberOfBytes: 32})
			return err
		}},
		{"GenerateMac", kms.OpGenerateMac, hmac, func() error {
			_, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: hmac.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
			return err
		}},
		{"VerifyMac", kms.OpVerifyMac, hmac, func() error {
			_, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: hmac.KeyID, Message: []byte("m"), Mac: mac.Mac, MacAlgorithm: kms.HMACSHA256})
			return err
		}},
		{"Sign", kms.OpSign, sig, func() error {
			_, err := r.Sign(ctx, kms.SignInput{KeyID: sig.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA256})
			return err
		}},
		{"Verify", kms.OpVerify, sig, func() error {
			_, err := r.Verify(ctx, kms.VerifyInput{KeyID: sig.KeyID, Message: []byte("m"), Signature: sg.Signature, SigningAlgorithm: kms.ECDSASHA256})
			return err
		}},
		{"GetPublicKey", kms.OpGetPublicKey, sig, func() error {
			_, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: sig.KeyID})
			return err
		}},
	}
	for _, k := range []*kms.KeyMetadata{sym, hmac, sig} {
		require.NoError(t, r.DisableKey(ctx, k.KeyID))
		require.NoError(t, r.DisableKey(ctx, k.Arn), "disabling a disabled key does nothing")
		m := mustDescribe(t, r.KeyRing, k.KeyID)
		assert.Equal(t, kms.KeyStateDisabled, m.KeyState)
		assert.False(t, m.Enabled)
	}
	for _, u := range uses {
		err := u.run()
		requireOpErr(t, err, kms.ErrDisabled, u.op, u.key.KeyID)
		assert.Equal(t, "DisabledException", kms.ErrorCode(err), u.name)
	}
	for _, k := range []*kms.KeyMetadata{sym, hmac, sig} {
		require.NoError(t, r.EnableKey(ctx, k.KeyID))
		require.NoError(t, r.EnableKey(ctx, k.KeyID), "enabling an enabled key does nothing")
		m := mustDescribe(t, r.KeyRing, k.KeyID)
		assert.Equal(t, kms.KeyStateEnabled, m.KeyState)
		assert.True(t, m.Enabled)
	}
	for _, u := range uses {
		assert.NoError(t, u.run(), "%s after EnableKey", u.name)
	}
	mgmtDecrypts(t, r.KeyRing, blob, ec, "before", 1)
}

// ---------------------------------------------------------- key deletion

func TestScheduleKeyDeletion(t *testing.T) {
	t.Parallel()
	cases := []struct {
		days     int
		want     error
		wantDays int
	}{
		{0, nil, 30},
		{7, nil, 7},
		{8, nil, 8},
		{29, nil, 29},
		{30, nil, 30},
		{6, kms.ErrInvalidArgument, 0},
		{1, kms.ErrInvalidArgument, 0},
		{31, kms.ErrInvalidArgument, 0},
		{-7, kms.ErrInvalidArgument, 0},
		{365, kms.ErrInvalidArgument, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("days=%d", tc.days), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
			blob := mgmtEncrypt(t, r.KeyRing, k.KeyID, "p", nil).CiphertextBlob
			r.Clock.Advance(90*time.Minute + 7*time.Second)
			now := kmstest.Epoch.Add(90*time.Minute + 7*time.Second)

			m, err := r.ScheduleKeyDeletion(ctx, k.KeyID, tc.days)
			if tc.want != nil {
				requireOpErr(t, err, tc.want, kms.OpScheduleKeyDeletion, k.KeyID)
				assert.Nil(t, m)
				assert.Equal(t, k, mustDescribe(t, r.KeyRing, k.KeyID), "the key is unchanged")
				mgmtDecrypts(t, r.KeyRing, blob, nil, "p", 1)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, kms.KeyStatePendingDeletion, m.KeyState)
			assert.False(t, m.Enabled)
			assert.Equal(t, tc.wantDays, m.PendingDeletionWindowInDays)
			assert.Equal(t, now.Add(time.Duration(tc.wantDays)*24*time.Hour), m.DeletionDate)
			assert.Equal(t, m, mustDescribe(t, r.KeyRing, k.KeyID))

			// Every use is refused, and so is scheduling again.
			_, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
			requireOpErr(t, err, kms.ErrPendingDeletion, kms.OpEncrypt, k.KeyID)
			_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob})
			requireOpErr(t, err, kms.ErrPendingDeletion, kms.OpDecrypt, k.KeyID)
			_, err = r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES128})
			requireOpErr(t, err, kms.ErrPendingDeletion, kms.OpGenerateDataKey, k.KeyID)
			r.Clock.Advance(time.Hour)
			_, err = r.ScheduleKeyDeletion(ctx, k.KeyID, 7)
			requireOpErr(t, err, kms.ErrInvalidState, kms.OpScheduleKeyDeletion, k.KeyID)
			assert.Equal(t, "KMSInvalidStateException", kms.ErrorCode(err))
			assert.Equal(t, m, mustDescribe(t, r.KeyRing, k.KeyID), "scheduling twice keeps the first date")
		})
	}
}

func TestScheduleKeyDeletionOtherKinds(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	hmac := r.CreateKey(kms.HMAC512, kms.GenerateVerifyMac)
	sig := r.CreateKey(kms.ECCNISTEdwards25519, kms.SignVerify)
	disabled := keyInState(t, r, kms.KeyStateDisabled)
	for _, k := range []*kms.KeyMetadata{hmac, sig, disabled.key} {
		m, err := r.ScheduleKeyDeletion(ctx, k.Arn, 7)
		require.NoError(t, err)
		assert.Equal(t, kms.KeyStatePendingDeletion, m.KeyState)
	}
	_, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: hmac.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA512})
	requireOpErr(t, err, kms.ErrPendingDeletion, kms.OpGenerateMac, hmac.KeyID)
	_, err = r.Sign(ctx, kms.SignInput{KeyID: sig.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ED25519SHA512})
	requireOpErr(t, err, kms.ErrPendingDeletion, kms.OpSign, sig.KeyID)
	_, err = r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: sig.KeyID})
	requireOpErr(t, err, kms.ErrPendingDeletion, kms.OpGetPublicKey, sig.KeyID)
}

func TestCancelKeyDeletion(t *testing.T) {
	t.Parallel()
	t.Run("back to Disabled, then enabling restores use", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := kmstest.New(t)
		fx := keyInState(t, r, kms.KeyStatePendingDeletion)
		require.NoError(t, r.CancelKeyDeletion(ctx, fx.key.Arn))
		m := mustDescribe(t, r.KeyRing, fx.key.KeyID)
		assert.Equal(t, kms.KeyStateDisabled, m.KeyState)
		assert.False(t, m.Enabled)
		assert.Zero(t, m.DeletionDate)
		assert.Zero(t, m.PendingDeletionWindowInDays)
		_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: fx.key.KeyID, Plaintext: []byte("x")})
		requireOpErr(t, err, kms.ErrDisabled, kms.OpEncrypt, fx.key.KeyID)

		require.NoError(t, r.EnableKey(ctx, fx.key.KeyID))
		mgmtDecrypts(t, r.KeyRing, fx.blob, fx.ec, fx.pt, 1)
		mgmtEncrypt(t, r.KeyRing, fx.key.KeyID, "after", nil)

		err = r.CancelKeyDeletion(ctx, fx.key.KeyID)
		requireOpErr(t, err, kms.ErrInvalidState, kms.OpCancelKeyDeletion, fx.key.KeyID)
	})
	t.Run("EXTERNAL key never imported goes back to PendingImport", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := kmstest.New(t)
		fx := keyInState(t, r, kms.KeyStatePendingImport)
		m, err := r.ScheduleKeyDeletion(ctx, fx.key.KeyID, 0)
		require.NoError(t, err)
		assert.Equal(t, kms.KeyStatePendingDeletion, m.KeyState)
		assert.Equal(t, kmstest.Epoch.Add(30*24*time.Hour), m.DeletionDate)
		require.NoError(t, r.CancelKeyDeletion(ctx, fx.key.KeyID))
		m = mustDescribe(t, r.KeyRing, fx.key.KeyID)
		assert.Equal(t, kms.KeyStatePendingImport, m.KeyState)
		assert.Zero(t, m.DeletionDate)
		// And it still takes material.
		require.NoError(t, kmstest.ImportMaterial(ctx, r.KeyRing, fx.key.KeyID, randomBytes(t, 32)))
		assert.Equal(t, kms.KeyStateEnabled, mustDescribe(t, r.KeyRing, fx.key.KeyID).KeyState)
	})
	t.Run("imported EXTERNAL key goes back to Disabled", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := kmstest.New(t)
		k := r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, randomBytes(t, 32))
		_, err := r.ScheduleKeyDeletion(ctx, k.KeyID, 7)
		require.NoError(t, err)
		require.NoError(t, r.CancelKeyDeletion(ctx, k.KeyID))
		assert.Equal(t, kms.KeyStateDisabled, mustDescribe(t, r.KeyRing, k.KeyID).KeyState)
	})
	for _, st := range []kms.KeyState{kms.KeyStateEnabled, kms.KeyStateDisabled, kms.KeyStatePendingImport} {
		t.Run("not pending deletion: "+string(st), func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			fx := keyInState(t, r, st)
			err := r.CancelKeyDeletion(t.Context(), fx.key.KeyID)
			requireOpErr(t, err, kms.ErrInvalidState, kms.OpCancelKeyDeletion, fx.key.KeyID)
			assert.NotErrorIs(t, err, kms.ErrDisabled)
			assert.Equal(t, "KMSInvalidStateException", kms.ErrorCode(err))
			assert.Equal(t, fx.key, mustDescribe(t, r.KeyRing, fx.key.KeyID))
		})
	}
}

// ------------------------------------------------- naming errors, every op

// TestKeyManagementNamingErrors gives each key management operation an
// empty, malformed, unknown or foreign key name.
func TestKeyManagementNamingErrors(t *testing.T) {
	t.Parallel()
	ops := []struct {
		op  kms.Op
		run func(ctx context.Context, r *kmstest.Ring, name string) error
	}{
		{kms.OpDescribeKey, func(ctx context.Context, r *kmstest.Ring, n string) error {
			_, err := r.DescribeKey(ctx, n)
			return err
		}},
		{kms.OpEnableKey, func(ctx context.Context, r *kmstest.Ring, n string) error { return r.EnableKey(ctx, n) }},
		{kms.OpDisableKey, func(ctx context.Context, r *kmstest.Ring, n string) error { return r.DisableKey(ctx, n) }},
		{kms.OpScheduleKeyDeletion, func(ctx context.Context, r *kmstest.Ring, n string) error {
			_, err := r.ScheduleKeyDeletion(ctx, n, 7)
			return err
		}},
		{kms.OpCancelKeyDeletion, func(ctx context.Context, r *kmstest.Ring, n string) error { return r.CancelKeyDeletion(ctx, n) }},
		{kms.OpUpdateKeyDescription, func(ctx context.Context, r *kmstest.Ring, n string) error {
			return r.UpdateKeyDescription(ctx, n, "d")
		}},
		{kms.OpTagResource, func(ctx context.Context, r *kmstest.Ring, n string) error {
			return r.TagResource(ctx, n, []kms.Tag{{TagKey: "k", TagValue: "v"}})
		}},
		{kms.OpUntagResource, func(ctx context.Context, r *kmstest.Ring, n string) error {
			return r.UntagResource(ctx, n, []string{"k"})
		}},
		{kms.OpListResourceTags, func(ctx context.Context, r *kmstest.Ring, n string) error {
			_, err := r.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: n})
			return err
		}},
		{kms.OpRotateKeyOnDemand, func(ctx context.Context, r *kmstest.Ring, n string) error {
			_, err := r.RotateKeyOnDemand(ctx, n)
			return err
		}},
		{kms.OpListAliases, func(ctx context.Context, r *kmstest.Ring, n string) error {
			if n == "" {
				return errSkip // an empty KeyID lists every alias
			}
			_, err := r.ListAliases(ctx, kms.ListAliasesInput{KeyID: n})
			return err
		}},
	}
	unknown := "5f8c2f1e-3c4b-4a5d-8e6f-7a8b9c0d1e2f"
	names := []struct {
		name, key string
		want      error
		keyID     string
	}{
		{"empty", "", kms.ErrInvalidArgument, ""},
		{"whitespace", " ", kms.ErrInvalidArgument, anyKeyID},
		{"too long", strings.Repeat("k", 2049), kms.ErrInvalidArgument, anyKeyID},
		{"unknown ID", unknown, kms.ErrNotFound, unknown},
		{"unknown ARN", "arn:aws:kms:us-east-1:111122223333:key/" + unknown, kms.ErrNotFound, "arn:aws:kms:us-east-1:111122223333:key/" + unknown},
		{"unknown alias", "alias/missing", kms.ErrNotFound, "alias/missing"},
		{"foreign region", "arn:aws:kms:ap-south-1:111122223333:key/KEY", kms.ErrNotFound, "arn:aws:kms:ap-south-1:111122223333:key/KEY"},
		{"foreign account", "arn:aws:kms:us-east-1:999999999999:key/KEY", kms.ErrNotFound, "arn:aws:kms:us-east-1:999999999999:key/KEY"},
	}
	for _, o := range ops {
		for _, n := range names {
			t.Run(string(o.op)+"/"+n.name, func(t *testing.T) {
				t.Parallel()
				r := kmstest.New(t)
				k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
				key := strings.ReplaceAll(n.key, "KEY", k.KeyID)
				wantKeyID := strings.ReplaceAll(n.keyID, "KEY", k.KeyID)
				err := o.run(t.Context(), r, key)
				if errors.Is(err, errSkip) {
					t.Skip("not applicable")
				}
				requireOpErr(t, err, n.want, o.op, wantKeyID)
				evs := r.Events.ByOp(o.op)
				require.Len(t, evs, 1, "one event per call")
				assert.Equal(t, kms.OutcomeFailed, evs[0].Outcome)
				assert.Equal(t, kms.ErrorCode(err), evs[0].ErrorCode)
				assert.Empty(t, evs[0].KeyID, "no key resolved")
				assert.Equal(t, k, mustDescribe(t, r.KeyRing, k.KeyID), "the existing key is untouched")
			})
		}
	}
}

var errSkip = errors.New("skip")

// --------------------------------------------------------- wrong usage/key

func TestWrongUsageAndWrongKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	sym := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	sym2 := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	hmac := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
	sig := r.CreateKey(kms.ECCNISTP256, kms.SignVerify)
	agree := r.CreateKey(kms.ECCNISTP256, kms.KeyAgreement)
	require.NoError(t, r.CreateAlias(ctx, "alias/sym2", sym2.KeyID))
	require.NoError(t, r.CreateAlias(ctx, "alias/hmac", hmac.KeyID))
	blob := mgmtEncrypt(t, r.KeyRing, sym.KeyID, "p", nil).CiphertextBlob
	pub, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: agree.KeyID})
	require.NoError(t, err)

	cases := []struct {
		name  string
		op    kms.Op
		keyID string // Error.KeyID
		want  error
		run   func() error
	}{
		{"Encrypt with an HMAC key named by alias", kms.OpEncrypt, hmac.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/hmac", Plaintext: []byte("x")})
			return err
		}},
		{"Encrypt with a signing key", kms.OpEncrypt, sig.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: sig.Arn, Plaintext: []byte("x")})
			return err
		}},
		{"Encrypt symmetric with RSA OAEP", kms.OpEncrypt, sym.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: sym.KeyID, Plaintext: []byte("x"), EncryptionAlgorithm: kms.RSAESOAEPSHA256})
			return err
		}},
		{"GenerateDataKey with an HMAC key", kms.OpGenerateDataKey, hmac.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: hmac.KeyID, KeySpec: kms.AES256})
			return err
		}},
		{"GenerateMac with a symmetric key", kms.OpGenerateMac, sym.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: sym.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
			return err
		}},
		{"GenerateMac with another hash", kms.OpGenerateMac, hmac.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: hmac.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA512})
			return err
		}},
		{"Sign with a symmetric key", kms.OpSign, sym.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.Sign(ctx, kms.SignInput{KeyID: sym.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA256})
			return err
		}},
		{"Sign P-256 with SHA-384", kms.OpSign, sig.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.Sign(ctx, kms.SignInput{KeyID: sig.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA384})
			return err
		}},
		{"Sign with a key agreement key", kms.OpSign, agree.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.Sign(ctx, kms.SignInput{KeyID: agree.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA256})
			return err
		}},
		{"DeriveSharedSecret with a signing key", kms.OpDeriveSharedSecret, sig.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: sig.KeyID, KeyAgreementAlgorithm: kms.ECDH, PublicKey: pub.PublicKey})
			return err
		}},
		{"GetPublicKey of a symmetric key", kms.OpGetPublicKey, sym.KeyID, kms.ErrUnsupported, func() error {
			_, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: sym.KeyID})
			return err
		}},
		{"GetParametersForImport of an AWS_KMS key", kms.OpGetParametersForImport, sym.KeyID, kms.ErrUnsupported, func() error {
			_, err := r.GetParametersForImport(ctx, kms.GetParametersForImportInput{KeyID: sym.KeyID, WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, WrappingKeySpec: kms.WrappingRSA2048})
			return err
		}},
		{"Decrypt naming another key", kms.OpDecrypt, sym2.KeyID, kms.ErrIncorrectKey, func() error {
			_, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob, KeyID: sym2.KeyID})
			return err
		}},
		{"Decrypt naming another key by alias", kms.OpDecrypt, sym2.KeyID, kms.ErrIncorrectKey, func() error {
			_, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob, KeyID: "alias/sym2"})
			return err
		}},
		{"ReEncrypt naming another source key", kms.OpReEncrypt, sym2.KeyID, kms.ErrIncorrectKey, func() error {
			_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: blob, SourceKeyID: sym2.KeyID, DestinationKeyID: sym.KeyID})
			return err
		}},
		{"ReEncrypt to an HMAC key", kms.OpReEncrypt, hmac.KeyID, kms.ErrInvalidUsage, func() error {
			_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyID: hmac.KeyID})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireOpErr(t, tc.run(), tc.want, tc.op, tc.keyID)
		})
	}
}

// ---------------------------------------------------------------- rotation

// rotationKind produces something under a key's primary version and checks
// a product of an earlier version, for one kind of key.
type rotationKind struct {
	spec  kms.KeySpec
	usage kms.KeyUsage
	// make uses the primary version and returns the product and the version
	// the output reports.
	make func(t *testing.T, r *kmstest.Ring, key string, i int) ([]byte, uint32)
	// check uses a product and returns the version the output reports.
	check func(t *testing.T, r *kmstest.Ring, key string, i int, product []byte) uint32
}

func rotationKinds() map[string]rotationKind {
	msg := func(i int) []byte { return []byte(fmt.Sprintf("message %d", i)) }
	ec := func(i int) kms.EncryptionContext { return kms.EncryptionContext{"i": fmt.Sprint(i)} }
	return map[string]rotationKind{
		"symmetric": {
			spec: kms.SymmetricDefault, usage: kms.EncryptDecrypt,
			make: func(t *testing.T, r *kmstest.Ring, key string, i int) ([]byte, uint32) {
				out := mgmtEncrypt(t, r.KeyRing, key, string(msg(i)), ec(i))
				return out.CiphertextBlob, out.KeyVersion
			},
			check: func(t *testing.T, r *kmstest.Ring, key string, i int, p []byte) uint32 {
				out, err := r.Decrypt(t.Context(), kms.DecryptInput{CiphertextBlob: p, EncryptionContext: ec(i)})
				require.NoError(t, err)
				require.True(t, bytes.Equal(msg(i), out.Plaintext), "plaintext differs")
				return out.KeyVersion
			},
		},
		"HMAC": {
			spec: kms.HMAC256, usage: kms.GenerateVerifyMac,
			make: func(t *testing.T, r *kmstest.Ring, key string, i int) ([]byte, uint32) {
				out, err := r.GenerateMac(t.Context(), kms.GenerateMacInput{KeyID: key, Message: msg(i), MacAlgorithm: kms.HMACSHA256})
				require.NoError(t, err)
				return out.Mac, out.KeyVersion
			},
			check: func(t *testing.T, r *kmstest.Ring, key string, i int, p []byte) uint32 {
				out, err := r.VerifyMac(t.Context(), kms.VerifyMacInput{KeyID: key, Message: msg(i), Mac: p, MacAlgorithm: kms.HMACSHA256})
				require.NoError(t, err)
				return out.KeyVersion
			},
		},
		"ECDSA": {
			spec: kms.ECCNISTP256, usage: kms.SignVerify,
			make: func(t *testing.T, r *kmstest.Ring, key string, i int) ([]byte, uint32) {
				out, err := r.Sign(t.Context(), kms.SignInput{KeyID: key, Message: msg(i), SigningAlgorithm: kms.ECDSASHA256})
				require.NoError(t, err)
				pk, err := r.GetPublicKey(t.Context(), kms.GetPublicKeyInput{KeyID: key})
				require.NoError(t, err)
				require.Equal(t, out.KeyVersion, pk.KeyVersion, "GetPublicKey gives the primary version")
				return out.Signature, out.KeyVersion
			},
			check: func(t *testing.T, r *kmstest.Ring, key string, i int, p []byte) uint32 {
				out, err := r.Verify(t.Context(), kms.VerifyInput{KeyID: key, Message: msg(i), Signature: p, SigningAlgorithm: kms.ECDSASHA256})
				require.NoError(t, err)
				return out.KeyVersion
			},
		},
		"RSA OAEP": {
			spec: kms.RSA2048, usage: kms.EncryptDecrypt,
			make: func(t *testing.T, r *kmstest.Ring, key string, i int) ([]byte, uint32) {
				out, err := r.Encrypt(t.Context(), kms.EncryptInput{KeyID: key, Plaintext: msg(i), EncryptionAlgorithm: kms.RSAESOAEPSHA256})
				require.NoError(t, err)
				return out.CiphertextBlob, out.KeyVersion
			},
			check: func(t *testing.T, r *kmstest.Ring, key string, i int, p []byte) uint32 {
				out, err := r.Decrypt(t.Context(), kms.DecryptInput{KeyID: key, CiphertextBlob: p, EncryptionAlgorithm: kms.RSAESOAEPSHA256})
				require.NoError(t, err)
				require.True(t, bytes.Equal(msg(i), out.Plaintext), "plaintext differs")
				return out.KeyVersion
			},
		},
	}
}

func TestRotateKeyOnDemand(t *testing.T) {
	t.Parallel()
	for name, kind := range rotationKinds() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			k := r.CreateKey(kind.spec, kind.usage)
			require.NoError(t, r.CreateAlias(ctx, "alias/rotating", k.KeyID))
			names := []string{k.KeyID, k.Arn, "alias/rotating", r.AliasARN("alias/rotating")}

			var products [][]byte
			for i := range 4 {
				p, v := kind.make(t, r, names[i], i)
				require.Equal(t, uint32(i+1), v, "output names the primary version")
				products = append(products, p)
				if i == 3 {
					break
				}
				r.Clock.Advance(time.Hour)
				r.Events.Reset()
				nv, err := r.RotateKeyOnDemand(ctx, names[i])
				require.NoError(t, err)
				require.Equal(t, uint32(i+2), nv, "versions increase by one")
				m := mustDescribe(t, r.KeyRing, k.KeyID)
				assert.Equal(t, nv, m.PrimaryVersion, "the primary moves to the new version")
				assert.Equal(t, i+2, m.Versions)
				assert.Equal(t, kms.KeyStateEnabled, m.KeyState)
				assert.Equal(t, k.CreationDate, m.CreationDate)
				evs := r.Events.ByOp(kms.OpRotateKeyOnDemand)
				require.Len(t, evs, 1)
				assert.Equal(t, nv, evs[0].KeyVersion)
				assert.Equal(t, k.KeyID, evs[0].KeyID)
				assert.Equal(t, kms.OutcomeAllowed, evs[0].Outcome)
			}
			for i, p := range products {
				assert.Equal(t, uint32(i+1), kind.check(t, r, k.KeyID, i, p), "product %d checks with the version that made it", i)
			}
		})
	}
}

func TestRotateKeyOnDemandRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, r *kmstest.Ring) (name, keyID string)
		want  error
	}{
		{"disabled", func(t *testing.T, r *kmstest.Ring) (string, string) {
			fx := keyInState(t, r, kms.KeyStateDisabled)
			return fx.key.KeyID, fx.key.KeyID
		}, kms.ErrDisabled},
		{"pending deletion", func(t *testing.T, r *kmstest.Ring) (string, string) {
			fx := keyInState(t, r, kms.KeyStatePendingDeletion)
			return fx.key.Arn, fx.key.KeyID
		}, kms.ErrPendingDeletion},
		{"EXTERNAL, imported", func(t *testing.T, r *kmstest.Ring) (string, string) {
			m := r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, randomBytes(t, 32))
			return m.KeyID, m.KeyID
		}, kms.ErrUnsupported},
		{"EXTERNAL HMAC, imported", func(t *testing.T, r *kmstest.Ring) (string, string) {
			m := r.ImportKey(kms.HMAC256, kms.GenerateVerifyMac, randomBytes(t, 32))
			return m.KeyID, m.KeyID
		}, kms.ErrUnsupported},
		{"EXTERNAL, pending import", func(t *testing.T, r *kmstest.Ring) (string, string) {
			fx := keyInState(t, r, kms.KeyStatePendingImport)
			return fx.key.KeyID, fx.key.KeyID
		}, kms.ErrPendingImport},
		{"unknown", func(t *testing.T, r *kmstest.Ring) (string, string) {
			return "alias/none", "alias/none"
		}, kms.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			name, id := tc.setup(t, r)
			var before *kms.KeyMetadata
			if tc.want != kms.ErrNotFound {
				before = mustDescribe(t, r.KeyRing, id)
			}
			r.Events.Reset()
			v, err := r.RotateKeyOnDemand(t.Context(), name)
			assert.Zero(t, v)
			requireOpErr(t, err, tc.want, kms.OpRotateKeyOnDemand, id)
			evs := r.Events.Events()
			require.Len(t, evs, 1)
			assert.Equal(t, kms.ErrorCode(err), evs[0].ErrorCode)
			if before != nil {
				assert.Equal(t, before, mustDescribe(t, r.KeyRing, id), "no version added")
			}
		})
	}
	t.Run("exception names", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		m := r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, randomBytes(t, 32))
		_, err := r.RotateKeyOnDemand(t.Context(), m.KeyID)
		assert.Equal(t, "UnsupportedOperationException", kms.ErrorCode(err))
		fx := keyInState(t, r, kms.KeyStateDisabled)
		_, err = r.RotateKeyOnDemand(t.Context(), fx.key.KeyID)
		assert.Equal(t, "DisabledException", kms.ErrorCode(err))
	})
}

// ------------------------------------------------------- the gate: audit

// TestAuditOneEventPerCall checks the event of a representative set of
// calls: exactly one each, with the right fields.
func TestAuditOneEventPerCall(t *testing.T) {
	t.Parallel()
	principal := kms.Principal{ARN: "arn:aws:iam::111122223333:role/app", Account: "111122223333"}
	type env struct {
		r    *kmstest.Ring
		key  *kms.KeyMetadata // enabled symmetric, aliased alias/app
		off  *kms.KeyMetadata // disabled symmetric
		ext  *kms.KeyMetadata // EXTERNAL, imported (only where ext is set)
		blob []byte
	}
	cases := []struct {
		name    string
		op      kms.Op
		run     func(ctx context.Context, e env) error
		keyOf   func(e env) *kms.KeyMetadata // the event's key; nil: none
		outcome kms.Outcome
		code    string
		want    error
		version uint32
	}{
		{"CreateKey", kms.OpCreateKey, func(ctx context.Context, e env) error {
			_, err := e.r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{})
			return err
		}, nil, kms.OutcomeAllowed, "", nil, 1},
		{"CreateKey invalid", kms.OpCreateKey, func(ctx context.Context, e env) error {
			_, err := e.r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{KeySpec: kms.HMAC256})
			return err
		}, nil, kms.OutcomeFailed, "ValidationException", kms.ErrInvalidArgument, 0},
		{"DescribeKey by alias", kms.OpDescribeKey, func(ctx context.Context, e env) error {
			_, err := e.r.DescribeKey(ctx, "alias/app")
			return err
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeAllowed, "", nil, 0},
		{"DescribeKey unknown", kms.OpDescribeKey, func(ctx context.Context, e env) error {
			_, err := e.r.DescribeKey(ctx, "alias/unknown")
			return err
		}, nil, kms.OutcomeFailed, "NotFoundException", kms.ErrNotFound, 0},
		{"ListKeys", kms.OpListKeys, func(ctx context.Context, e env) error {
			_, err := e.r.ListKeys(ctx, kms.ListKeysInput{Limit: 1})
			return err
		}, nil, kms.OutcomeAllowed, "", nil, 0},
		{"Encrypt", kms.OpEncrypt, func(ctx context.Context, e env) error {
			_, err := e.r.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/app", Plaintext: []byte("x")})
			return err
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeAllowed, "", nil, 1},
		{"Encrypt disabled", kms.OpEncrypt, func(ctx context.Context, e env) error {
			_, err := e.r.Encrypt(ctx, kms.EncryptInput{KeyID: e.off.KeyID, Plaintext: []byte("x")})
			return err
		}, func(e env) *kms.KeyMetadata { return e.off }, kms.OutcomeFailed, "DisabledException", kms.ErrDisabled, 0},
		{"Decrypt", kms.OpDecrypt, func(ctx context.Context, e env) error {
			_, err := e.r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: e.blob})
			return err
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeAllowed, "", nil, 1},
		{"DisableKey", kms.OpDisableKey, func(ctx context.Context, e env) error {
			return e.r.DisableKey(ctx, e.key.Arn)
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeAllowed, "", nil, 0},
		{"EnableKey", kms.OpEnableKey, func(ctx context.Context, e env) error {
			return e.r.EnableKey(ctx, e.off.KeyID)
		}, func(e env) *kms.KeyMetadata { return e.off }, kms.OutcomeAllowed, "", nil, 0},
		{"ScheduleKeyDeletion out of range", kms.OpScheduleKeyDeletion, func(ctx context.Context, e env) error {
			_, err := e.r.ScheduleKeyDeletion(ctx, e.key.KeyID, 3)
			return err
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeFailed, "ValidationException", kms.ErrInvalidArgument, 0},
		{"CancelKeyDeletion not pending", kms.OpCancelKeyDeletion, func(ctx context.Context, e env) error {
			return e.r.CancelKeyDeletion(ctx, e.key.KeyID)
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeFailed, "KMSInvalidStateException", kms.ErrInvalidState, 0},
		{"TagResource over the limit", kms.OpTagResource, func(ctx context.Context, e env) error {
			return e.r.TagResource(ctx, e.key.KeyID, numberedTags(0, 51))
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeFailed, "LimitExceededException", kms.ErrLimitExceeded, 0},
		{"RotateKeyOnDemand", kms.OpRotateKeyOnDemand, func(ctx context.Context, e env) error {
			_, err := e.r.RotateKeyOnDemand(ctx, e.key.KeyID)
			return err
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeAllowed, "", nil, 2},
		{"RotateKeyOnDemand EXTERNAL", kms.OpRotateKeyOnDemand, func(ctx context.Context, e env) error {
			_, err := e.r.RotateKeyOnDemand(ctx, e.ext.KeyID)
			return err
		}, func(e env) *kms.KeyMetadata { return e.ext }, kms.OutcomeFailed, "UnsupportedOperationException", kms.ErrUnsupported, 0},
		{"CreateAlias taken", kms.OpCreateAlias, func(ctx context.Context, e env) error {
			return e.r.CreateAlias(ctx, "alias/app", e.off.KeyID)
		}, func(e env) *kms.KeyMetadata { return e.off }, kms.OutcomeFailed, "AlreadyExistsException", kms.ErrAlreadyExists, 0},
		{"DeleteAlias", kms.OpDeleteAlias, func(ctx context.Context, e env) error {
			return e.r.DeleteAlias(ctx, "alias/app")
		}, func(e env) *kms.KeyMetadata { return e.key }, kms.OutcomeAllowed, "", nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t)
			e := env{r: r, key: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)}
			require.NoError(t, r.CreateAlias(t.Context(), "alias/app", e.key.KeyID))
			e.off = keyInState(t, r, kms.KeyStateDisabled).key
			if strings.Contains(tc.name, "EXTERNAL") { // only this case needs the (slow) import
				e.ext = r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, randomBytes(t, 32))
			}
			e.blob = mgmtEncrypt(t, r.KeyRing, e.key.KeyID, "p", nil).CiphertextBlob
			r.Clock.Advance(42 * time.Second)
			r.Events.Reset()

			err := tc.run(kms.WithPrincipal(t.Context(), principal), e)
			evs := r.Events.Events()
			require.Len(t, evs, 1, "exactly one event per call")
			ev := evs[0]
			assert.Equal(t, tc.op, ev.Op)
			assert.Equal(t, tc.outcome, ev.Outcome)
			assert.Equal(t, tc.code, ev.ErrorCode)
			assert.Equal(t, principal, ev.Principal)
			assert.Equal(t, kmstest.Epoch.Add(42*time.Second), ev.Time)
			assert.NotEmpty(t, ev.RequestID)
			assert.Equal(t, tc.version, ev.KeyVersion)
			switch {
			case tc.keyOf != nil:
				k := tc.keyOf(e)
				assert.Equal(t, k.KeyID, ev.KeyID)
				assert.Equal(t, k.Arn, ev.KeyARN)
			case tc.op == kms.OpCreateKey && tc.want == nil:
				assert.Regexp(t, uuidV4Pattern, ev.KeyID, "CreateKey names the new key")
				assert.Equal(t, r.KeyARN(ev.KeyID), ev.KeyARN)
			default:
				assert.Empty(t, ev.KeyID)
				assert.Empty(t, ev.KeyARN)
			}
			if tc.want == nil {
				require.NoError(t, err)
				assert.NoError(t, ev.Err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.ErrorIs(t, ev.Err, tc.want)
			assert.Equal(t, kms.ErrorCode(err), ev.ErrorCode)
		})
	}
}

func TestAuditRequestIDsAreUnique(t *testing.T) {
	t.Parallel()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				_, _ = r.DescribeKey(context.Background(), k.KeyID)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, ev := range r.Events.Events() {
		assert.False(t, seen[ev.RequestID], "duplicate RequestID %s", ev.RequestID)
		seen[ev.RequestID] = true
	}
	assert.Len(t, seen, 201)
}

// countingAuditor fails while fail is set and counts every event.
type countingAuditor struct {
	fail   atomic.Bool
	events atomic.Int32
	// ctxErr records whether any Audit saw a cancelled context.
	ctxErr atomic.Bool
}

func (a *countingAuditor) Audit(ctx context.Context, _ kms.Event) error {
	a.events.Add(1)
	if ctx.Err() != nil {
		a.ctxErr.Store(true)
	}
	if a.fail.Load() {
		return errors.New("audit sink unavailable")
	}
	return nil
}

func TestAuditRequired(t *testing.T) {
	t.Parallel()
	type env struct {
		ring *kms.KeyRing
		key  *kms.KeyMetadata
		hmac *kms.KeyMetadata
		blob []byte
	}
	cases := []struct {
		name  string
		op    kms.Op
		keyOf func(e env) string
		run   func(ctx context.Context, e env) (result any, err error)
	}{
		{"CreateKey", kms.OpCreateKey, nil, func(ctx context.Context, e env) (any, error) {
			return e.ring.CreateKey(ctx, kms.CreateKeyInput{})
		}},
		{"DescribeKey", kms.OpDescribeKey, func(e env) string { return e.key.KeyID }, func(ctx context.Context, e env) (any, error) {
			return e.ring.DescribeKey(ctx, "alias/audited")
		}},
		{"ListKeys", kms.OpListKeys, func(env) string { return "" }, func(ctx context.Context, e env) (any, error) {
			return e.ring.ListKeys(ctx, kms.ListKeysInput{})
		}},
		{"Encrypt", kms.OpEncrypt, func(e env) string { return e.key.KeyID }, func(ctx context.Context, e env) (any, error) {
			return e.ring.Encrypt(ctx, kms.EncryptInput{KeyID: e.key.KeyID, Plaintext: []byte("x")})
		}},
		{"Decrypt", kms.OpDecrypt, func(e env) string { return e.key.KeyID }, func(ctx context.Context, e env) (any, error) {
			return e.ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: e.blob})
		}},
		{"GenerateDataKey", kms.OpGenerateDataKey, func(e env) string { return e.key.KeyID }, func(ctx context.Context, e env) (any, error) {
			return e.ring.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: e.key.KeyID, KeySpec: kms.AES256})
		}},
		{"GenerateMac", kms.OpGenerateMac, func(e env) string { return e.hmac.KeyID }, func(ctx context.Context, e env) (any, error) {
			return e.ring.GenerateMac(ctx, kms.GenerateMacInput{KeyID: e.hmac.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
		}},
		{"RotateKeyOnDemand", kms.OpRotateKeyOnDemand, func(e env) string { return e.key.KeyID }, func(ctx context.Context, e env) (any, error) {
			v, err := e.ring.RotateKeyOnDemand(ctx, e.key.KeyID)
			if v == 0 {
				return nil, err
			}
			return v, err
		}},
		{"ListResourceTags", kms.OpListResourceTags, func(e env) string { return e.key.KeyID }, func(ctx context.Context, e env) (any, error) {
			return e.ring.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: e.key.KeyID})
		}},
		{"GenerateRandom", kms.OpGenerateRandom, func(env) string { return "" }, func(ctx context.Context, e env) (any, error) {
			return e.ring.GenerateRandom(ctx, 16)
		}},
	}
	setup := func(t *testing.T, required bool) (env, *countingAuditor) {
		aud := &countingAuditor{}
		ring, err := kms.NewKeyRing(kms.Config{Auditor: aud, AuditRequired: required, Clock: kmstest.NewClock(kmstest.Epoch)})
		require.NoError(t, err)
		ctx := t.Context()
		e := env{ring: ring}
		e.key, err = ring.CreateKey(ctx, kms.CreateKeyInput{})
		require.NoError(t, err)
		e.hmac, err = ring.CreateKey(ctx, kms.CreateKeyInput{KeySpec: kms.HMAC256, KeyUsage: kms.GenerateVerifyMac})
		require.NoError(t, err)
		require.NoError(t, ring.CreateAlias(ctx, "alias/audited", e.key.KeyID))
		e.blob = mgmtEncrypt(t, ring, e.key.KeyID, "p", nil).CiphertextBlob
		aud.fail.Store(true)
		aud.events.Store(0)
		return e, aud
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, aud := setup(t, true)
			res, err := tc.run(t.Context(), e)
			assert.True(t, isNil(res), "no result is released when the audit fails")
			keyID := anyKeyID
			if tc.keyOf != nil {
				keyID = tc.keyOf(e)
			}
			requireOpErr(t, err, kms.ErrAuditFailed, tc.op, keyID)
			assert.Equal(t, "KMSInternalException", kms.ErrorCode(err))
			assert.Equal(t, int32(1), aud.events.Load(), "one event, the one that failed")
		})
	}
	t.Run("a failing operation keeps its own error", func(t *testing.T) {
		t.Parallel()
		e, _ := setup(t, true)
		_, err := e.ring.DescribeKey(t.Context(), "alias/missing")
		requireOpErr(t, err, kms.ErrNotFound, kms.OpDescribeKey, "alias/missing")
		assert.NotErrorIs(t, err, kms.ErrAuditFailed)
	})
	t.Run("not required: the audit error is dropped", func(t *testing.T) {
		t.Parallel()
		e, aud := setup(t, false)
		out, err := e.ring.Encrypt(t.Context(), kms.EncryptInput{KeyID: "alias/audited", Plaintext: []byte("x")})
		require.NoError(t, err)
		assert.NotEmpty(t, out.CiphertextBlob)
		assert.Equal(t, int32(1), aud.events.Load())
	})
	t.Run("the auditor's context is never cancelled", func(t *testing.T) {
		t.Parallel()
		e, aud := setup(t, true)
		aud.fail.Store(false)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _ = e.ring.DescribeKey(ctx, e.key.KeyID)
		assert.Equal(t, int32(1), aud.events.Load())
		assert.False(t, aud.ctxErr.Load(), "Audit got a cancelled context")
	})
}

// isNil reports whether v is nil or a nil pointer, slice or map.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch x := v.(type) {
	case *kms.KeyMetadata:
		return x == nil
	case *kms.ListKeysOutput:
		return x == nil
	case *kms.EncryptOutput:
		return x == nil
	case *kms.DecryptOutput:
		return x == nil
	case *kms.GenerateDataKeyOutput:
		return x == nil
	case *kms.GenerateMacOutput:
		return x == nil
	case *kms.ListResourceTagsOutput:
		return x == nil
	case kms.Secret:
		return x == nil
	}
	return false
}

// ------------------------------------------------------ the gate: policy

// policyLog is a Policy that records every Request and denies those deny
// matches.
type policyLog struct {
	mu   sync.Mutex
	reqs []kms.Request
	deny func(kms.Request) error
}

func (p *policyLog) Authorize(_ context.Context, req kms.Request) error {
	// Keep what the tests compare; the request's time and key policy are
	// checked here, as they differ from call to call.
	if req.Time.IsZero() || (req.KeyID != "") != (req.KeyPolicy != "") {
		panic("policyLog: a request without its time, or a key without its policy")
	}
	kept := kms.Request{
		Op: req.Op, Principal: req.Principal, KeyID: req.KeyID, KeyARN: req.KeyARN,
		RequestAlias: req.RequestAlias, KeySpec: req.KeySpec, KeyUsage: req.KeyUsage, KeyOrigin: req.KeyOrigin,
		EncryptionContext: req.EncryptionContext, Algorithm: req.Algorithm, Grant: req.Grant,
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, kept)
	p.mu.Unlock()
	if p.deny != nil {
		return p.deny(req)
	}
	return nil
}

func (p *policyLog) take() []kms.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.reqs
	p.reqs = nil
	return out
}

// TestPolicySeesRequest checks the Request a Policy is given, once per
// operation.
func TestPolicySeesRequest(t *testing.T) {
	t.Parallel()
	principal := kms.Principal{
		ARN: "arn:aws:iam::111122223333:role/billing", Account: "111122223333",
		Tags: map[string]string{"team": "billing"},
	}
	pol := &policyLog{}
	r := kmstest.New(t, kms.Config{Policy: kms.PolicyFunc(pol.Authorize)})
	ctx := kms.WithPrincipal(t.Context(), principal)
	sym := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	sym2 := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	sig := r.CreateKey(kms.ECCNISTP384, kms.SignVerify)
	sig2 := r.CreateKey(kms.ECCNISTP384, kms.SignVerify)
	hmac := r.CreateKey(kms.HMAC224, kms.GenerateVerifyMac)
	require.NoError(t, r.CreateAlias(ctx, "alias/billing", sym.KeyID))
	ec := kms.EncryptionContext{"tenant": "42", "purpose": "invoice"}
	blob := mgmtEncrypt(t, r.KeyRing, sym.KeyID, "p", ec).CiphertextBlob
	pol.take()

	keyReq := func(op kms.Op, k *kms.KeyMetadata) kms.Request {
		return kms.Request{
			Op: op, Principal: principal, KeyID: k.KeyID, KeyARN: k.Arn,
			KeySpec: k.KeySpec, KeyUsage: k.KeyUsage, KeyOrigin: k.Origin,
		}
	}
	with := func(req kms.Request, f func(*kms.Request)) kms.Request { f(&req); return req }

	cases := []struct {
		name string
		run  func(t *testing.T) error
		want []kms.Request
	}{
		{"Encrypt by alias", func(t *testing.T) error {
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/billing", Plaintext: []byte("x"), EncryptionContext: ec})
			return err
		}, []kms.Request{with(keyReq(kms.OpEncrypt, sym), func(q *kms.Request) {
			q.RequestAlias, q.EncryptionContext, q.Algorithm = "alias/billing", ec, "SYMMETRIC_DEFAULT"
		})}},
		{"Encrypt by alias ARN", func(t *testing.T) error {
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: r.AliasARN("alias/billing"), Plaintext: []byte("x")})
			return err
		}, []kms.Request{with(keyReq(kms.OpEncrypt, sym), func(q *kms.Request) {
			q.RequestAlias, q.Algorithm = "alias/billing", "SYMMETRIC_DEFAULT"
		})}},
		{"Decrypt", func(t *testing.T) error {
			_, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
			return err
		}, []kms.Request{with(keyReq(kms.OpDecrypt, sym), func(q *kms.Request) {
			q.EncryptionContext, q.Algorithm = ec, "SYMMETRIC_DEFAULT"
		})}},
		{"ReEncrypt asks twice", func(t *testing.T) error {
			_, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: ec, DestinationKeyID: sym2.Arn})
			return err
		}, []kms.Request{
			with(keyReq(kms.OpReEncryptFrom, sym), func(q *kms.Request) { q.EncryptionContext, q.Algorithm = ec, "SYMMETRIC_DEFAULT" }),
			with(keyReq(kms.OpReEncryptTo, sym2), func(q *kms.Request) { q.Algorithm = "SYMMETRIC_DEFAULT" }),
		}},
		{"Sign", func(t *testing.T) error {
			_, err := r.Sign(ctx, kms.SignInput{KeyID: sig.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA384})
			return err
		}, []kms.Request{with(keyReq(kms.OpSign, sig), func(q *kms.Request) { q.Algorithm = "ECDSA_SHA_384" })}},
		{"GenerateMac", func(t *testing.T) error {
			_, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: hmac.Arn, Message: []byte("m"), MacAlgorithm: kms.HMACSHA224})
			return err
		}, []kms.Request{with(keyReq(kms.OpGenerateMac, hmac), func(q *kms.Request) { q.Algorithm = "HMAC_SHA_224" })}},
		{"DescribeKey", func(t *testing.T) error {
			_, err := r.DescribeKey(ctx, sig.Arn)
			return err
		}, []kms.Request{keyReq(kms.OpDescribeKey, sig)}},
		{"DisableKey by alias", func(t *testing.T) error {
			return r.DisableKey(ctx, "alias/billing")
		}, []kms.Request{with(keyReq(kms.OpDisableKey, sym), func(q *kms.Request) { q.RequestAlias = "alias/billing" })}},
		{"EnableKey", func(t *testing.T) error {
			return r.EnableKey(ctx, sym.KeyID)
		}, []kms.Request{keyReq(kms.OpEnableKey, sym)}},
		{"TagResource", func(t *testing.T) error {
			return r.TagResource(ctx, hmac.KeyID, []kms.Tag{{TagKey: "a", TagValue: "b"}})
		}, []kms.Request{keyReq(kms.OpTagResource, hmac)}},
		{"RotateKeyOnDemand", func(t *testing.T) error {
			_, err := r.RotateKeyOnDemand(ctx, sym2.KeyID)
			return err
		}, []kms.Request{keyReq(kms.OpRotateKeyOnDemand, sym2)}},
		{"CreateAlias", func(t *testing.T) error {
			return r.CreateAlias(ctx, "alias/sig", sig.KeyID)
		}, []kms.Request{with(keyReq(kms.OpCreateAlias, sig), func(q *kms.Request) { q.RequestAlias = "alias/sig" })}},
		{"UpdateAlias asks for the old key and the new one", func(t *testing.T) error {
			return r.UpdateAlias(ctx, "alias/sig", sig2.KeyID)
		}, []kms.Request{
			with(keyReq(kms.OpUpdateAlias, sig), func(q *kms.Request) { q.RequestAlias = "alias/sig" }),
			with(keyReq(kms.OpUpdateAlias, sig2), func(q *kms.Request) { q.RequestAlias = "alias/sig" }),
		}},
		{"ListKeys", func(t *testing.T) error {
			_, err := r.ListKeys(ctx, kms.ListKeysInput{})
			return err
		}, []kms.Request{{Op: kms.OpListKeys, Principal: principal}}},
		{"ListAliases", func(t *testing.T) error {
			_, err := r.ListAliases(ctx, kms.ListAliasesInput{})
			return err
		}, []kms.Request{{Op: kms.OpListAliases, Principal: principal}}},
		{"not asked for an unknown key", func(t *testing.T) error {
			_, err := r.DescribeKey(ctx, "alias/unknown")
			return err
		}, nil},
		{"not asked for a disabled key's crypto", func(t *testing.T) error {
			off := keyInState(t, r, kms.KeyStateDisabled)
			pol.take()
			_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: off.key.KeyID, Plaintext: []byte("x")})
			return err
		}, nil},
	}
	// Sequential: the cases share the ring and the policy log.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_ = tc.run(t)
			assert.Equal(t, tc.want, pol.take())
		})
	}
	t.Run("no principal", func(t *testing.T) {
		_, err := r.DescribeKey(t.Context(), sym.KeyID)
		require.NoError(t, err)
		reqs := pol.take()
		require.Len(t, reqs, 1)
		assert.Zero(t, reqs[0].Principal)
	})
}

// TestPolicySeesCreateKeyParameters checks that a Policy can tell which
// kind of key CreateKey would make, as the kms:KeySpec, kms:KeyUsage and
// kms:KeyOrigin condition keys of AWS KMS allow for CreateKey.
func TestPolicySeesCreateKeyParameters(t *testing.T) {
	t.Parallel()
	pol := &policyLog{}
	r := kmstest.New(t, kms.Config{Policy: pol})
	_, err := r.KeyRing.CreateKey(t.Context(), kms.CreateKeyInput{KeySpec: kms.HMAC256, KeyUsage: kms.GenerateVerifyMac, Origin: kms.OriginExternal})
	require.NoError(t, err)
	reqs := pol.take()
	require.Len(t, reqs, 1)
	assert.Equal(t, kms.OpCreateKey, reqs[0].Op)
	assert.Empty(t, reqs[0].KeyID, "no key exists yet")
	assert.Equal(t, kms.HMAC256, reqs[0].KeySpec, "Request.KeySpec on CreateKey")
	assert.Equal(t, kms.GenerateVerifyMac, reqs[0].KeyUsage, "Request.KeyUsage on CreateKey")
	assert.Equal(t, kms.OriginExternal, reqs[0].KeyOrigin, "Request.KeyOrigin on CreateKey")
}

// TestPolicyDenies runs operations a Policy denies: each fails with
// ErrAccessDenied (and the Policy's reason), audits a denial, and changes
// nothing.
func TestPolicyDenies(t *testing.T) {
	t.Parallel()
	intruder := kms.Principal{ARN: "arn:aws:iam::444455556666:role/intruder", Account: "444455556666"}
	errNotYours := errors.New("principal is not in the key's account")
	deny := kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
		if req.Principal.Account == intruder.Account {
			return errNotYours
		}
		return nil
	})
	type env struct {
		r    *kmstest.Ring
		key  *kms.KeyMetadata
		blob []byte
	}
	cases := []struct {
		name  string
		op    kms.Op
		noKey bool
		run   func(ctx context.Context, e env) error
	}{
		{"CreateKey", kms.OpCreateKey, true, func(ctx context.Context, e env) error {
			_, err := e.r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{})
			return err
		}},
		{"ListKeys", kms.OpListKeys, true, func(ctx context.Context, e env) error {
			_, err := e.r.ListKeys(ctx, kms.ListKeysInput{})
			return err
		}},
		{"DescribeKey", kms.OpDescribeKey, false, func(ctx context.Context, e env) error {
			_, err := e.r.DescribeKey(ctx, "alias/guarded")
			return err
		}},
		{"Encrypt", kms.OpEncrypt, false, func(ctx context.Context, e env) error {
			_, err := e.r.Encrypt(ctx, kms.EncryptInput{KeyID: e.key.KeyID, Plaintext: []byte("x")})
			return err
		}},
		{"Decrypt", kms.OpDecrypt, false, func(ctx context.Context, e env) error {
			_, err := e.r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: e.blob})
			return err
		}},
		{"GenerateDataKey", kms.OpGenerateDataKey, false, func(ctx context.Context, e env) error {
			_, err := e.r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: e.key.KeyID, NumberOfBytes: 8})
			return err
		}},
		{"DisableKey", kms.OpDisableKey, false, func(ctx context.Context, e env) error {
			return e.r.DisableKey(ctx, e.key.KeyID)
		}},
		{"ScheduleKeyDeletion", kms.OpScheduleKeyDeletion, false, func(ctx context.Context, e env) error {
			_, err := e.r.ScheduleKeyDeletion(ctx, e.key.KeyID, 7)
			return err
		}},
		{"UpdateKeyDescription", kms.OpUpdateKeyDescription, false, func(ctx context.Context, e env) error {
			return e.r.UpdateKeyDescription(ctx, e.key.KeyID, "pwned")
		}},
		{"TagResource", kms.OpTagResource, false, func(ctx context.Context, e env) error {
			return e.r.TagResource(ctx, e.key.KeyID, []kms.Tag{{TagKey: "owner", TagValue: "intruder"}})
		}},
		{"RotateKeyOnDemand", kms.OpRotateKeyOnDemand, false, func(ctx context.Context, e env) error {
			_, err := e.r.RotateKeyOnDemand(ctx, e.key.KeyID)
			return err
		}},
		{"CreateAlias", kms.OpCreateAlias, false, func(ctx context.Context, e env) error {
			return e.r.CreateAlias(ctx, "alias/mine-now", e.key.KeyID)
		}},
		{"DeleteAlias", kms.OpDeleteAlias, false, func(ctx context.Context, e env) error {
			return e.r.DeleteAlias(ctx, "alias/guarded")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := kmstest.New(t, kms.Config{Policy: deny})
			e := env{r: r, key: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)}
			require.NoError(t, r.CreateAlias(t.Context(), "alias/guarded", e.key.KeyID))
			e.blob = mgmtEncrypt(t, r.KeyRing, e.key.KeyID, "p", nil).CiphertextBlob
			beforeKeys, err := r.ListKeys(t.Context(), kms.ListKeysInput{})
			require.NoError(t, err)
			beforeAliases, err := r.ListAliases(t.Context(), kms.ListAliasesInput{})
			require.NoError(t, err)
			r.Events.Reset()

			err = tc.run(kms.WithPrincipal(t.Context(), intruder), e)
			keyID := e.key.KeyID
			if tc.noKey {
				keyID = ""
			}
			requireOpErr(t, err, kms.ErrAccessDenied, tc.op, keyID)
			assert.ErrorIs(t, err, errNotYours, "the Policy's reason is kept")
			assert.Equal(t, "AccessDeniedException", kms.ErrorCode(err))
			evs := r.Events.Events()
			require.Len(t, evs, 1)
			assert.Equal(t, kms.OutcomeDenied, evs[0].Outcome)
			assert.Equal(t, "AccessDeniedException", evs[0].ErrorCode)
			assert.Equal(t, intruder, evs[0].Principal)
			assert.Equal(t, keyID, evs[0].KeyID)
			assert.ErrorIs(t, evs[0].Err, kms.ErrAccessDenied)

			// Nothing changed.
			assert.Equal(t, e.key, mustDescribe(t, r.KeyRing, e.key.KeyID))
			assert.Empty(t, listAllTags(t, r.KeyRing, e.key.KeyID))
			afterKeys, err := r.ListKeys(t.Context(), kms.ListKeysInput{})
			require.NoError(t, err)
			assert.Equal(t, beforeKeys, afterKeys)
			afterAliases, err := r.ListAliases(t.Context(), kms.ListAliasesInput{})
			require.NoError(t, err)
			assert.Equal(t, beforeAliases, afterAliases)
		})
	}
	t.Run("a reason that is already ErrAccessDenied", func(t *testing.T) {
		t.Parallel()
		reason := fmt.Errorf("outside business hours: %w", kms.ErrAccessDenied)
		r := kmstest.New(t, kms.Config{Policy: kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
			if req.Op == kms.OpEncrypt {
				return reason
			}
			return nil
		})})
		k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		_, err := r.Encrypt(t.Context(), kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
		requireOpErr(t, err, kms.ErrAccessDenied, kms.OpEncrypt, k.KeyID)
		assert.ErrorIs(t, err, reason)
		ev, ok := r.Events.Last()
		require.True(t, ok)
		assert.Equal(t, kms.OutcomeDenied, ev.Outcome)
	})
}

// ------------------------------------------------------------------ Store

// faultyStore wraps a MemoryStore and fails writes on demand.
type faultyStore struct {
	*kms.MemoryStore
	failPutKey   atomic.Bool
	failPutAlias atomic.Bool
	conflicts    atomic.Int32 // PutKey calls still to fail with ErrConflict
	putKeyCalls  atomic.Int32
}

var errStoreDown = errors.New("faulty store: write failed")

func (s *faultyStore) PutKey(ctx context.Context, r *kms.KeyRecord) error {
	s.putKeyCalls.Add(1)
	if s.failPutKey.Load() {
		return errStoreDown
	}
	for {
		n := s.conflicts.Load()
		if n <= 0 {
			break
		}
		if s.conflicts.CompareAndSwap(n, n-1) {
			return fmt.Errorf("faulty store: revision moved: %w", kms.ErrConflict)
		}
	}
	return s.MemoryStore.PutKey(ctx, r)
}

func (s *faultyStore) PutAlias(ctx context.Context, a kms.AliasRecord, create bool) error {
	if s.failPutAlias.Load() {
		return errStoreDown
	}
	return s.MemoryStore.PutAlias(ctx, a, create)
}

func newRootKey(t testing.TB) kms.RootKey {
	t.Helper()
	rk, err := kms.NewAESRootKey(randomBytes(t, 32), nil)
	require.NoError(t, err)
	return rk
}

func newFaultyRing(t testing.TB) (*kmstest.Ring, *faultyStore, kms.RootKey) {
	t.Helper()
	fs := &faultyStore{MemoryStore: kms.NewMemoryStore()}
	rk := newRootKey(t)
	return kmstest.New(t, kms.Config{Store: fs, RootKey: rk}), fs, rk
}

func TestNewKeyRingConfig(t *testing.T) {
	t.Parallel()
	fs := &faultyStore{MemoryStore: kms.NewMemoryStore()}
	cases := []struct {
		name string
		cfg  kms.Config
		want error
	}{
		{"zero", kms.Config{}, nil},
		{"MemoryStore without RootKey", kms.Config{Store: kms.NewMemoryStore()}, kms.ErrInvalidArgument},
		{"RootKey without Store", kms.Config{RootKey: newRootKey(t)}, kms.ErrInvalidArgument},
		{"other Store without RootKey", kms.Config{Store: fs}, kms.ErrInvalidArgument},
		{"other Store with RootKey", kms.Config{Store: fs, RootKey: newRootKey(t)}, nil},
		{"Region not ARN-safe", kms.Config{Region: "us east 1"}, kms.ErrInvalidArgument},
		{"Account not ARN-safe", kms.Config{Account: "1111:2222"}, kms.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ring, err := kms.NewKeyRing(tc.cfg)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Nil(t, ring)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, ring)
		})
	}
	t.Run("NewAESRootKey needs 32 bytes", func(t *testing.T) {
		t.Parallel()
		for _, n := range []int{0, 16, 24, 31, 33, 64} {
			rk, err := kms.NewAESRootKey(make([]byte, n), nil)
			assert.ErrorIs(t, err, kms.ErrInvalidArgument, "%d bytes", n)
			assert.Nil(t, rk)
		}
	})
	t.Run("Region and Account shape ARNs", func(t *testing.T) {
		t.Parallel()
		ring, err := kms.NewKeyRing(kms.Config{Region: "eu-central-1", Account: "123456789012"})
		require.NoError(t, err)
		m, err := ring.CreateKey(t.Context(), kms.CreateKeyInput{})
		require.NoError(t, err)
		assert.Equal(t, "arn:aws:kms:eu-central-1:123456789012:key/"+m.KeyID, m.Arn)
		assert.Equal(t, "123456789012", m.AWSAccountID)
		_, err = ring.DescribeKey(t.Context(), m.Arn)
		require.NoError(t, err)
		_, err = ring.DescribeKey(t.Context(), "arn:aws:kms:us-east-1:111122223333:key/"+m.KeyID)
		requireOpErr(t, err, kms.ErrNotFound, kms.OpDescribeKey, "arn:aws:kms:us-east-1:111122223333:key/"+m.KeyID)
	})
}

// TestStoreWriteFailure makes the Store fail the write of each key
// management operation: the operation fails, and the key keeps its
// previous state, in the ring, in the Store and for a second ring, and
// still works.
func TestStoreWriteFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		op    kms.Op
		state kms.KeyState
		run   func(ctx context.Context, r *kmstest.Ring, keyID string) error
	}{
		{"DisableKey", kms.OpDisableKey, kms.KeyStateEnabled, func(ctx context.Context, r *kmstest.Ring, id string) error {
			return r.DisableKey(ctx, id)
		}},
		{"EnableKey", kms.OpEnableKey, kms.KeyStateDisabled, func(ctx context.Context, r *kmstest.Ring, id string) error {
			return r.EnableKey(ctx, id)
		}},
		{"ScheduleKeyDeletion", kms.OpScheduleKeyDeletion, kms.KeyStateEnabled, func(ctx context.Context, r *kmstest.Ring, id string) error {
			_, err := r.ScheduleKeyDeletion(ctx, id, 7)
			return err
		}},
		{"CancelKeyDeletion", kms.OpCancelKeyDeletion, kms.KeyStatePendingDeletion, func(ctx context.Context, r *kmstest.Ring, id string) error {
			return r.CancelKeyDeletion(ctx, id)
		}},
		{"UpdateKeyDescription", kms.OpUpdateKeyDescription, kms.KeyStateEnabled, func(ctx context.Context, r *kmstest.Ring, id string) error {
			return r.UpdateKeyDescription(ctx, id, "changed")
		}},
		{"TagResource", kms.OpTagResource, kms.KeyStateEnabled, func(ctx context.Context, r *kmstest.Ring, id string) error {
			return r.TagResource(ctx, id, []kms.Tag{{TagKey: "new", TagValue: "tag"}, {TagKey: "env", TagValue: "changed"}})
		}},
		{"UntagResource", kms.OpUntagResource, kms.KeyStateEnabled, func(ctx context.Context, r *kmstest.Ring, id string) error {
			return r.UntagResource(ctx, id, []string{"env"})
		}},
		{"RotateKeyOnDemand", kms.OpRotateKeyOnDemand, kms.KeyStateEnabled, func(ctx context.Context, r *kmstest.Ring, id string) error {
			_, err := r.RotateKeyOnDemand(ctx, id)
			return err
		}},
	}
	for _, tc := range cases {
		for _, mode := range []string{"write error", "persistent conflict"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				r, fs, rk := newFaultyRing(t)
				m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Description: "original", Tags: []kms.Tag{{TagKey: "env", TagValue: "prod"}}})
				require.NoError(t, err)
				ec := kms.EncryptionContext{"a": "b"}
				blob := mgmtEncrypt(t, r.KeyRing, m.KeyID, "secret", ec).CiphertextBlob
				switch tc.state {
				case kms.KeyStateDisabled:
					require.NoError(t, r.DisableKey(ctx, m.KeyID))
				case kms.KeyStatePendingDeletion:
					_, err := r.ScheduleKeyDeletion(ctx, m.KeyID, 7)
					require.NoError(t, err)
				}
				before := mustDescribe(t, r.KeyRing, m.KeyID)
				beforeTags := listAllTags(t, r.KeyRing, m.KeyID)
				beforeRec, err := fs.MemoryStore.GetKey(ctx, m.KeyID)
				require.NoError(t, err)

				r.Events.Reset()
				if mode == "write error" {
					fs.failPutKey.Store(true)
				} else {
					fs.conflicts.Store(1000)
				}
				err = tc.run(ctx, r, m.KeyID)
				fs.failPutKey.Store(false)
				left := fs.conflicts.Swap(0)

				if mode == "write error" {
					requireOpErr(t, err, errStoreDown, tc.op, m.KeyID)
					assert.Equal(t, "KMSInternalException", kms.ErrorCode(err))
				} else {
					requireOpErr(t, err, kms.ErrConflict, tc.op, m.KeyID)
					assert.Equal(t, "ConflictException", kms.ErrorCode(err))
					assert.Less(t, left, int32(1000-1), "the ring retried a conflict")
				}
				evs := r.Events.Events()
				require.Len(t, evs, 1)
				assert.Equal(t, kms.OutcomeFailed, evs[0].Outcome)

				// The previous state, in the ring, the Store and another ring.
				assert.Equal(t, before, mustDescribe(t, r.KeyRing, m.KeyID))
				assert.Equal(t, beforeTags, listAllTags(t, r.KeyRing, m.KeyID))
				afterRec, err := fs.MemoryStore.GetKey(ctx, m.KeyID)
				require.NoError(t, err)
				assert.Equal(t, beforeRec.Revision, afterRec.Revision, "nothing was written")
				// A ring that never saw the key reads the previous state too.
				other := kmstest.New(t, kms.Config{Store: fs, RootKey: rk})
				assert.Equal(t, before, mustDescribe(t, other.KeyRing, m.KeyID))

				// The key still works.
				if before.KeyState == kms.KeyStatePendingDeletion {
					require.NoError(t, r.CancelKeyDeletion(ctx, m.KeyID))
				}
				if before.KeyState != kms.KeyStateEnabled {
					require.NoError(t, r.EnableKey(ctx, m.KeyID))
				}
				mgmtDecrypts(t, r.KeyRing, blob, ec, "secret", 1)
				out := mgmtEncrypt(t, r.KeyRing, m.KeyID, "again", nil)
				assert.Equal(t, uint32(1), out.KeyVersion)
				// (A fresh ring: other cached the key's old state; see
				// TestSharedMemoryStore for rings that share a Store.)
				third := kmstest.New(t, kms.Config{Store: fs, RootKey: rk})
				mgmtDecrypts(t, third.KeyRing, out.CiphertextBlob, nil, "again", 1)

				// And the operation succeeds once the Store does.
				if tc.op != kms.OpCancelKeyDeletion && tc.op != kms.OpEnableKey {
					require.NoError(t, tc.run(ctx, r, m.KeyID))
				}
				if tc.op == kms.OpRotateKeyOnDemand {
					assert.Equal(t, uint32(2), mustDescribe(t, r.KeyRing, m.KeyID).PrimaryVersion, "the failed rotation left no version behind")
				}
			})
		}
	}
}

func TestStoreTransientConflictIsRetried(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r, fs, _ := newFaultyRing(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	fs.conflicts.Store(2)
	require.NoError(t, r.DisableKey(ctx, k.KeyID))
	assert.Zero(t, fs.conflicts.Load())
	assert.Equal(t, kms.KeyStateDisabled, mustDescribe(t, r.KeyRing, k.KeyID).KeyState)
	rec, err := fs.MemoryStore.GetKey(ctx, k.KeyID)
	require.NoError(t, err)
	assert.Equal(t, kms.KeyStateDisabled, rec.State)
}

func TestStoreWriteFailureOnCreate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r, fs, _ := newFaultyRing(t)
	fs.failPutKey.Store(true)
	m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{})
	assert.Nil(t, m)
	requireOpErr(t, err, errStoreDown, kms.OpCreateKey, "")
	fs.failPutKey.Store(false)
	out, err := r.ListKeys(ctx, kms.ListKeysInput{})
	require.NoError(t, err)
	assert.Empty(t, out.Keys)
	evs := r.Events.ByOp(kms.OpCreateKey)
	require.Len(t, evs, 1)
	assert.Equal(t, kms.OutcomeFailed, evs[0].Outcome)
	assert.Equal(t, "KMSInternalException", evs[0].ErrorCode)
	assert.Empty(t, evs[0].KeyID, "no key was created")
	// The ring still works.
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	mgmtEncrypt(t, r.KeyRing, k.KeyID, "p", nil)
}

// TestSharedMemoryStore runs two rings on one MemoryStore and one root key.
func TestSharedMemoryStore(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (a, b *kmstest.Ring, ms *kms.MemoryStore) {
		ms = kms.NewMemoryStore()
		rk := newRootKey(t)
		return kmstest.New(t, kms.Config{Store: ms, RootKey: rk}), kmstest.New(t, kms.Config{Store: ms, RootKey: rk}), ms
	}
	t.Run("a key created in one ring works in the other", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b, _ := setup(t)
		k := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		ec := kms.EncryptionContext{"ring": "a"}
		blob := mgmtEncrypt(t, a.KeyRing, k.KeyID, "from a", ec).CiphertextBlob
		mgmtDecrypts(t, b.KeyRing, blob, ec, "from a", 1)
		assert.Equal(t, k, mustDescribe(t, b.KeyRing, k.Arn))
		back := mgmtEncrypt(t, b.KeyRing, k.KeyID, "from b", nil).CiphertextBlob
		mgmtDecrypts(t, a.KeyRing, back, nil, "from b", 1)
		list, err := b.ListKeys(ctx, kms.ListKeysInput{})
		require.NoError(t, err)
		require.Len(t, list.Keys, 1)
		assert.Equal(t, k.KeyID, list.Keys[0].KeyID)
	})
	t.Run("an alias created in one ring resolves in the other", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b, _ := setup(t)
		k := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		require.NoError(t, a.CreateAlias(ctx, "alias/shared", k.KeyID))
		assert.Equal(t, k.KeyID, mustDescribe(t, b.KeyRing, "alias/shared").KeyID)
		blob := mgmtEncrypt(t, b.KeyRing, "alias/shared", "p", nil).CiphertextBlob
		mgmtDecrypts(t, a.KeyRing, blob, nil, "p", 1)
	})
	t.Run("an update through a stale ring keeps the other ring's change", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b, ms := setup(t)
		k := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		_ = mustDescribe(t, b.KeyRing, k.KeyID) // b caches revision 1
		require.NoError(t, a.DisableKey(ctx, k.KeyID))
		require.NoError(t, b.TagResource(ctx, k.KeyID, []kms.Tag{{TagKey: "by", TagValue: "b"}}))
		rec, err := ms.GetKey(ctx, k.KeyID)
		require.NoError(t, err)
		assert.Equal(t, kms.KeyStateDisabled, rec.State, "b's write did not undo a's DisableKey")
		assert.Equal(t, []kms.Tag{{TagKey: "by", TagValue: "b"}}, rec.Tags)
		assert.Equal(t, kms.KeyStateDisabled, mustDescribe(t, b.KeyRing, k.KeyID).KeyState)
	})
	t.Run("a version rotated in one ring decrypts in the other", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b, _ := setup(t)
		k := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		v1 := mgmtEncrypt(t, a.KeyRing, k.KeyID, "v1", nil).CiphertextBlob
		mgmtDecrypts(t, b.KeyRing, v1, nil, "v1", 1) // b caches version 1 only
		v, err := a.RotateKeyOnDemand(ctx, k.KeyID)
		require.NoError(t, err)
		require.Equal(t, uint32(2), v)
		out := mgmtEncrypt(t, a.KeyRing, k.KeyID, "v2", nil)
		require.Equal(t, uint32(2), out.KeyVersion)
		mgmtDecrypts(t, b.KeyRing, out.CiphertextBlob, nil, "v2", 2)
	})
	t.Run("a key disabled in one ring is refused by the other", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b, _ := setup(t)
		k := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		mgmtEncrypt(t, b.KeyRing, k.KeyID, "p", nil) // b caches the key, Enabled
		require.NoError(t, a.DisableKey(ctx, k.KeyID))
		// Within CacheTTL b may still use its copy; once it has passed, b reads the Store again.
		b.Clock.Advance(kms.DefaultCacheTTL)
		_, err := b.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("after disable")})
		requireOpErr(t, err, kms.ErrDisabled, kms.OpEncrypt, k.KeyID)
		assert.Equal(t, kms.KeyStateDisabled, mustDescribe(t, b.KeyRing, k.KeyID).KeyState)
	})
	t.Run("a ring that always re-reads sees a disable at once", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		ms, rk := kms.NewMemoryStore(), newRootKey(t)
		a := kmstest.New(t, kms.Config{Store: ms, RootKey: rk})
		b := kmstest.New(t, kms.Config{Store: ms, RootKey: rk, CacheTTL: -1})
		k := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		mgmtEncrypt(t, b.KeyRing, k.KeyID, "p", nil)
		require.NoError(t, a.DisableKey(ctx, k.KeyID))
		_, err := b.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("after disable")})
		requireOpErr(t, err, kms.ErrDisabled, kms.OpEncrypt, k.KeyID)
	})
	t.Run("an alias moved in one ring is followed by the other after CacheTTL", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b, _ := setup(t)
		k1 := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		k2 := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		require.NoError(t, a.CreateAlias(ctx, "alias/moving", k1.KeyID))
		assert.Equal(t, k1.KeyID, mustDescribe(t, b.KeyRing, "alias/moving").KeyID)
		require.NoError(t, a.UpdateAlias(ctx, "alias/moving", k2.KeyID))
		b.Clock.Advance(kms.DefaultCacheTTL)
		assert.Equal(t, k2.KeyID, mustDescribe(t, b.KeyRing, "alias/moving").KeyID)
		require.NoError(t, a.DeleteAlias(ctx, "alias/moving"))
		b.Clock.Advance(kms.DefaultCacheTTL)
		_, err := b.DescribeKey(ctx, "alias/moving")
		require.ErrorIs(t, err, kms.ErrNotFound)
	})
	t.Run("a ring with another root key cannot use the keys", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, _, ms := setup(t)
		k := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		blob := mgmtEncrypt(t, a.KeyRing, k.KeyID, "p", nil).CiphertextBlob
		c := kmstest.New(t, kms.Config{Store: ms, RootKey: newRootKey(t)})
		_, err := c.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob})
		require.Error(t, err)
		var ke *kms.Error
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, kms.OpDecrypt, ke.Op)
		assert.Equal(t, "KMSInternalException", kms.ErrorCode(err))
	})
}
