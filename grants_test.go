package kms_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// This file tests grants under the KeyPolicies engine: CreateGrant,
// ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, grant
// constraints and grant tokens. Every key here has a policy that allows
// only an admin role, so other principals get access through grants alone.
// Helpers are prefixed with grant.

const (
	grantAccount    = "111122223333"
	grantAdminARN   = "arn:aws:iam::111122223333:role/admin"
	grantAppARN     = "arn:aws:iam::111122223333:role/app"
	grantOtherARN   = "arn:aws:iam::111122223333:role/other"
	grantRetirerARN = "arn:aws:iam::111122223333:role/retirer"
	grantChildARN   = "arn:aws:iam::111122223333:role/child"
	grantRootARN    = "arn:aws:iam::111122223333:root"
)

// grantAs returns ctx carrying the principal arn of account 111122223333.
func grantAs(ctx context.Context, arn string) context.Context {
	return kms.WithPrincipal(ctx, kms.Principal{ARN: arn, Account: grantAccount})
}

// grantPolicy is a key policy that allows the admin role everything, with
// the extra statements (JSON objects) appended.
func grantPolicy(extra ...string) string {
	stmts := append([]string{`{
      "Sid": "Admin",
      "Effect": "Allow",
      "Principal": {"AWS": "` + grantAdminARN + `"},
      "Action": "kms:*",
      "Resource": "*"
    }`}, extra...)
	return `{"Version": "2012-10-17", "Statement": [` + strings.Join(stmts, ",") + `]}`
}

// grantRing returns a ring under KeyPolicies.
func grantRing(t testing.TB) *kmstest.Ring {
	t.Helper()
	return kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{}})
}

// grantKey creates a key, as the admin, whose policy is policy (grantPolicy()
// when empty).
func grantKey(t testing.TB, ring *kms.KeyRing, spec kms.KeySpec, usage kms.KeyUsage, policy string) *kms.KeyMetadata {
	t.Helper()
	if policy == "" {
		policy = grantPolicy()
	}
	m, err := ring.CreateKey(grantAs(context.Background(), grantAdminARN), kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Policy: policy})
	require.NoError(t, err)
	return m
}

// grantCreate creates a grant as the principal as and fails the test on
// error.
func grantCreate(t testing.TB, ring *kms.KeyRing, as string, in kms.CreateGrantInput) *kms.CreateGrantOutput {
	t.Helper()
	out, err := ring.CreateGrant(grantAs(context.Background(), as), in)
	require.NoError(t, err)
	require.Len(t, out.GrantID, 64)
	require.NotEmpty(t, out.GrantToken)
	return out
}

// grantBlob encrypts as the admin.
func grantBlob(t testing.TB, ring *kms.KeyRing, keyID string, ec kms.EncryptionContext) []byte {
	t.Helper()
	out, err := ring.Encrypt(grantAs(context.Background(), grantAdminARN), kms.EncryptInput{KeyID: keyID, Plaintext: []byte("grant secret"), EncryptionContext: ec})
	require.NoError(t, err)
	return out.CiphertextBlob
}

func grantEncrypt(ctx context.Context, ring *kms.KeyRing, as, keyID string, ec kms.EncryptionContext) error {
	_, err := ring.Encrypt(grantAs(ctx, as), kms.EncryptInput{KeyID: keyID, Plaintext: []byte("p"), EncryptionContext: ec})
	return err
}

func grantDecrypt(ctx context.Context, ring *kms.KeyRing, as string, blob []byte, ec kms.EncryptionContext) error {
	out, err := ring.Decrypt(grantAs(ctx, as), kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	if err == nil && string(out.Plaintext) != "grant secret" {
		return fmt.Errorf("decrypted the wrong plaintext")
	}
	return err
}

func grantGenerateDataKey(ctx context.Context, ring *kms.KeyRing, as, keyID string, ec kms.EncryptionContext) error {
	_, err := ring.GenerateDataKey(grantAs(ctx, as), kms.GenerateDataKeyInput{KeyID: keyID, KeySpec: kms.AES256, EncryptionContext: ec})
	return err
}

func grantDescribe(ctx context.Context, ring *kms.KeyRing, as, keyID string) error {
	_, err := ring.DescribeKey(grantAs(ctx, as), keyID)
	return err
}

// grantDenied checks that err is an access denial of op on keyID.
func grantDenied(t testing.TB, err error, op kms.Op, keyID string, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.ErrorIs(t, err, kms.ErrAccessDenied, msgAndArgs...)
	var ke *kms.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, op, ke.Op, msgAndArgs...)
	if keyID != anyKeyID {
		assert.Equal(t, keyID, ke.KeyID, msgAndArgs...)
	}
	assert.Equal(t, "AccessDeniedException", kms.ErrorCode(err), msgAndArgs...)
}

// grantIDs lists every grant of a key (as the admin) and returns their IDs.
func grantIDs(t testing.TB, ring *kms.KeyRing, keyID string) []string {
	t.Helper()
	var ids []string
	marker := ""
	for {
		out, err := ring.ListGrants(grantAs(context.Background(), grantAdminARN), kms.ListGrantsInput{KeyID: keyID, Marker: marker})
		require.NoError(t, err)
		for _, g := range out.Grants {
			ids = append(ids, g.GrantID)
		}
		if !out.Truncated {
			return ids
		}
		marker = out.NextMarker
	}
}

func TestGrantAllows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	blob := grantBlob(t, r.KeyRing, k.KeyID, kms.EncryptionContext{"a": "b"})
	ec := kms.EncryptionContext{"a": "b"}

	// checkApp checks what role/app may do: Encrypt and Decrypt iff it
	// holds the grant; never GenerateDataKey nor DescribeKey.
	checkApp := func(t *testing.T, granted bool) {
		t.Helper()
		if granted {
			require.NoError(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k.KeyID, nil), "Encrypt by the grantee")
			require.NoError(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k.Arn, ec), "Encrypt by the grantee, key named by ARN")
			require.NoError(t, grantDecrypt(ctx, r.KeyRing, grantAppARN, blob, ec), "Decrypt by the grantee")
		} else {
			grantDenied(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k.KeyID, nil), kms.OpEncrypt, k.KeyID)
			grantDenied(t, grantDecrypt(ctx, r.KeyRing, grantAppARN, blob, ec), kms.OpDecrypt, k.KeyID)
		}
		grantDenied(t, grantGenerateDataKey(ctx, r.KeyRing, grantAppARN, k.KeyID, nil), kms.OpGenerateDataKey, k.KeyID, "the grant does not name GenerateDataKey")
		grantDenied(t, grantDescribe(ctx, r.KeyRing, grantAppARN, k.KeyID), kms.OpDescribeKey, k.KeyID, "the grant does not name DescribeKey")
		// Nobody else gains anything.
		grantDenied(t, grantEncrypt(ctx, r.KeyRing, grantOtherARN, k.KeyID, nil), kms.OpEncrypt, k.KeyID)
		grantDenied(t, grantDecrypt(ctx, r.KeyRing, grantOtherARN, blob, ec), kms.OpDecrypt, k.KeyID)
		grantDenied(t, grantDescribe(ctx, r.KeyRing, grantOtherARN, k.KeyID), kms.OpDescribeKey, k.KeyID)
		// A caller with no principal matches no grant.
		_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("p")})
		grantDenied(t, err, kms.OpEncrypt, k.KeyID)
	}
	in := kms.CreateGrantInput{
		KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantRetirerARN,
		Operations: []kms.Op{kms.OpEncrypt, kms.OpDecrypt},
	}

	t.Run("no grant", func(t *testing.T) { checkApp(t, false) })

	g1 := grantCreate(t, r.KeyRing, grantAdminARN, in)
	t.Run("granted", func(t *testing.T) { checkApp(t, true) })

	t.Run("the grantee cannot manage grants", func(t *testing.T) {
		grantDenied(t, r.RevokeGrant(grantAs(ctx, grantAppARN), k.KeyID, g1.GrantID), kms.OpRevokeGrant, k.KeyID)
		_, err := r.ListGrants(grantAs(ctx, grantAppARN), kms.ListGrantsInput{KeyID: k.KeyID})
		grantDenied(t, err, kms.OpListGrants, k.KeyID)
		_, err = r.CreateGrant(grantAs(ctx, grantAppARN), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantOtherARN, Operations: []kms.Op{kms.OpEncrypt}})
		grantDenied(t, err, kms.OpCreateGrant, k.KeyID, "the grant does not name CreateGrant")
	})

	require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g1.GrantID))
	t.Run("revoked", func(t *testing.T) { checkApp(t, false) })

	g2 := grantCreate(t, r.KeyRing, grantAdminARN, in)
	assert.NotEqual(t, g1.GrantID, g2.GrantID)
	t.Run("granted again", func(t *testing.T) { checkApp(t, true) })

	require.NoError(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g2.GrantID}))
	t.Run("retired", func(t *testing.T) { checkApp(t, false) })
	assert.Empty(t, grantIDs(t, r.KeyRing, k.KeyID))
}

// TestGrantOnOtherKey checks that a grant on one key gives nothing on
// another.
func TestGrantOnOtherKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k1 := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	k2 := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k1.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt, kms.OpDecrypt}})
	require.NoError(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k1.KeyID, nil))
	grantDenied(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k2.KeyID, nil), kms.OpEncrypt, k2.KeyID)
	grantDenied(t, grantDecrypt(ctx, r.KeyRing, grantAppARN, grantBlob(t, r.KeyRing, k2.KeyID, nil), nil), kms.OpDecrypt, k2.KeyID)
}

func TestGrantConstraints(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	pairs := kms.EncryptionContext{"Dept": "IT", "Env": "prod"}

	cases := []struct {
		name   string
		equals bool // the constraint is EncryptionContextEquals, else Subset
		ec     kms.EncryptionContext
		allow  bool
	}{
		{"equals: the same pairs", true, kms.EncryptionContext{"Dept": "IT", "Env": "prod"}, true},
		{"equals: keys in another case", true, kms.EncryptionContext{"dept": "IT", "ENV": "prod"}, true},
		{"equals: a value in another case", true, kms.EncryptionContext{"Dept": "it", "Env": "prod"}, false},
		{"equals: a different value", true, kms.EncryptionContext{"Dept": "HR", "Env": "prod"}, false},
		{"equals: an extra pair", true, kms.EncryptionContext{"Dept": "IT", "Env": "prod", "x": "y"}, false},
		{"equals: a missing pair", true, kms.EncryptionContext{"Dept": "IT"}, false},
		{"equals: a key renamed", true, kms.EncryptionContext{"Dept": "IT", "Envi": "prod"}, false},
		{"equals: no context", true, nil, false},
		{"subset: the same pairs", false, kms.EncryptionContext{"Dept": "IT", "Env": "prod"}, true},
		{"subset: extra pairs", false, kms.EncryptionContext{"Dept": "IT", "Env": "prod", "x": "y", "z": "w"}, true},
		{"subset: keys in another case, an extra pair", false, kms.EncryptionContext{"DEPT": "IT", "env": "prod", "x": "y"}, true},
		{"subset: a missing pair", false, kms.EncryptionContext{"Dept": "IT", "x": "y"}, false},
		{"subset: a different value", false, kms.EncryptionContext{"Dept": "IT", "Env": "dev"}, false},
		{"subset: a value in another case", false, kms.EncryptionContext{"Dept": "IT", "Env": "PROD"}, false},
		{"subset: the value under another key", false, kms.EncryptionContext{"Dept": "IT", "x": "prod"}, false},
		{"subset: no context", false, nil, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			grantee := fmt.Sprintf("arn:aws:iam::111122223333:role/case%d", i)
			gc := &kms.GrantConstraints{}
			if tc.equals {
				gc.EncryptionContextEquals = pairs
			} else {
				gc.EncryptionContextSubset = pairs
			}
			g := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{
				KeyID: k.KeyID, GranteePrincipal: grantee, Constraints: gc,
				Operations: []kms.Op{kms.OpEncrypt, kms.OpDecrypt, kms.OpGenerateDataKey, kms.OpDescribeKey, kms.OpRetireGrant},
			})
			blob := grantBlob(t, r.KeyRing, k.KeyID, tc.ec)
			errs := map[kms.Op]error{
				kms.OpEncrypt:         grantEncrypt(ctx, r.KeyRing, grantee, k.KeyID, tc.ec),
				kms.OpDecrypt:         grantDecrypt(ctx, r.KeyRing, grantee, blob, tc.ec),
				kms.OpGenerateDataKey: grantGenerateDataKey(ctx, r.KeyRing, grantee, k.KeyID, tc.ec),
			}
			for op, err := range errs {
				if tc.allow {
					assert.NoError(t, err, "%s with context %v", op, tc.ec)
				} else {
					grantDenied(t, err, op, k.KeyID, "%s with context %v", op, tc.ec)
				}
			}
			// The constraint does not apply to DescribeKey nor RetireGrant.
			assert.NoError(t, grantDescribe(ctx, r.KeyRing, grantee, k.KeyID))
			require.NoError(t, r.RetireGrant(grantAs(ctx, grantee), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g.GrantID}))
			// Retired: nothing is allowed any more.
			grantDenied(t, grantDescribe(ctx, r.KeyRing, grantee, k.KeyID), kms.OpDescribeKey, k.KeyID)
		})
	}

	t.Run("constraints are kept as given", func(t *testing.T) {
		grantee := "arn:aws:iam::111122223333:role/kept"
		gc := &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"Dept": "IT"}}
		g := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantee, Operations: []kms.Op{kms.OpEncrypt}, Constraints: gc})
		out, err := r.ListGrants(grantAs(ctx, grantAdminARN), kms.ListGrantsInput{KeyID: k.KeyID, GrantID: g.GrantID})
		require.NoError(t, err)
		require.Len(t, out.Grants, 1)
		require.NotNil(t, out.Grants[0].Constraints)
		assert.Equal(t, kms.EncryptionContext{"Dept": "IT"}, out.Grants[0].Constraints.EncryptionContextSubset)
		assert.Nil(t, out.Grants[0].Constraints.EncryptionContextEquals)
	})

	t.Run("invalid constraints", func(t *testing.T) {
		rsa := grantKey(t, r.KeyRing, kms.RSA2048, kms.EncryptDecrypt, "")
		ecc := grantKey(t, r.KeyRing, kms.ECCNISTP256, kms.SignVerify, "")
		hmac := grantKey(t, r.KeyRing, kms.HMAC256, kms.GenerateVerifyMac, "")
		nine := kms.EncryptionContext{}
		for i := range kms.MaxGrantConstraintPairs + 1 {
			nine[fmt.Sprintf("k%d", i)] = "v"
		}
		eight := kms.EncryptionContext{}
		for i := range kms.MaxGrantConstraintPairs {
			eight[fmt.Sprintf("k%d", i)] = "v"
		}
		sub := &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"a": "b"}}
		eq := &kms.GrantConstraints{EncryptionContextEquals: kms.EncryptionContext{"a": "b"}}
		bad := []struct {
			name string
			in   kms.CreateGrantInput
		}{
			{"subset on an RSA encryption key", kms.CreateGrantInput{KeyID: rsa.KeyID, Operations: []kms.Op{kms.OpEncrypt, kms.OpDecrypt}, Constraints: sub}},
			{"equals on an RSA encryption key", kms.CreateGrantInput{KeyID: rsa.KeyID, Operations: []kms.Op{kms.OpDecrypt}, Constraints: eq}},
			{"subset on an ECC signing key", kms.CreateGrantInput{KeyID: ecc.KeyID, Operations: []kms.Op{kms.OpSign}, Constraints: sub}},
			{"equals on an HMAC key", kms.CreateGrantInput{KeyID: hmac.KeyID, Operations: []kms.Op{kms.OpGenerateMac}, Constraints: eq}},
			{"subset on an HMAC key, DescribeKey only", kms.CreateGrantInput{KeyID: hmac.KeyID, Operations: []kms.Op{kms.OpDescribeKey}, Constraints: sub}},
			{"both kinds", kms.CreateGrantInput{KeyID: k.KeyID, Operations: []kms.Op{kms.OpEncrypt}, Constraints: &kms.GrantConstraints{
				EncryptionContextEquals: kms.EncryptionContext{"a": "b"}, EncryptionContextSubset: kms.EncryptionContext{"a": "b"},
			}}},
			{"nine pairs in equals", kms.CreateGrantInput{KeyID: k.KeyID, Operations: []kms.Op{kms.OpEncrypt}, Constraints: &kms.GrantConstraints{EncryptionContextEquals: nine}}},
			{"nine pairs in subset", kms.CreateGrantInput{KeyID: k.KeyID, Operations: []kms.Op{kms.OpEncrypt}, Constraints: &kms.GrantConstraints{EncryptionContextSubset: nine}}},
			{"an empty key", kms.CreateGrantInput{KeyID: k.KeyID, Operations: []kms.Op{kms.OpEncrypt}, Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"": "v"}}}},
			{"a 385-character value", kms.CreateGrantInput{KeyID: k.KeyID, Operations: []kms.Op{kms.OpEncrypt}, Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"a": strings.Repeat("é", 385)}}}},
		}
		for _, tc := range bad {
			tc.in.GranteePrincipal = grantAppARN
			before := grantIDs(t, r.KeyRing, tc.in.KeyID)
			_, err := r.CreateGrant(grantAs(ctx, grantAdminARN), tc.in)
			requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpCreateGrant, anyKeyID)
			assert.Equal(t, "ValidationException", kms.ErrorCode(err), tc.name)
			assert.Equal(t, before, grantIDs(t, r.KeyRing, tc.in.KeyID), "%s: no grant was made", tc.name)
		}
		// At the limits.
		for _, gc := range []*kms.GrantConstraints{
			{EncryptionContextEquals: eight}, {EncryptionContextSubset: eight},
			{EncryptionContextSubset: kms.EncryptionContext{"a": strings.Repeat("é", 384)}},
		} {
			grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantOtherARN, Operations: []kms.Op{kms.OpEncrypt}, Constraints: gc})
		}
		// Without constraints, grants on these keys are fine.
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: rsa.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpDecrypt}})
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: hmac.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpGenerateMac}})
	})
}

func TestGrantExplicitDenyWins(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, grantPolicy(`{
      "Sid": "NoDecryptForApp",
      "Effect": "Deny",
      "Principal": {"AWS": "`+grantAppARN+`"},
      "Action": "kms:Decrypt",
      "Resource": "*"
    }`, `{
      "Sid": "RetirerMayNotRetire",
      "Effect": "Deny",
      "Principal": {"AWS": "`+grantRetirerARN+`"},
      "Action": "kms:RetireGrant",
      "Resource": "*"
    }`))
	g := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{
		KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantRetirerARN,
		Operations: []kms.Op{kms.OpEncrypt, kms.OpDecrypt},
	})
	blob := grantBlob(t, r.KeyRing, k.KeyID, nil)
	require.NoError(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k.KeyID, nil), "the grant allows Encrypt")
	err := grantDecrypt(ctx, r.KeyRing, grantAppARN, blob, nil)
	grantDenied(t, err, kms.OpDecrypt, k.KeyID)
	assert.Contains(t, err.Error(), "NoDecryptForApp", "the denial names the statement")
	// The Deny is about role/app alone: a grant to another role still works.
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantOtherARN, Operations: []kms.Op{kms.OpDecrypt}})
	require.NoError(t, grantDecrypt(ctx, r.KeyRing, grantOtherARN, blob, nil))
	// A key policy can deny RetireGrant to the retiring principal.
	grantDenied(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g.GrantID}), kms.OpRetireGrant, k.KeyID)
	assert.Contains(t, grantIDs(t, r.KeyRing, k.KeyID), g.GrantID)
}

func TestCreateGrantValidation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	sym := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	hmac := grantKey(t, r.KeyRing, kms.HMAC256, kms.GenerateVerifyMac, "")
	rsa := grantKey(t, r.KeyRing, kms.RSA2048, kms.EncryptDecrypt, "")
	sign := grantKey(t, r.KeyRing, kms.ECCNISTP256, kms.SignVerify, "")
	ops := []kms.Op{kms.OpEncrypt}
	cases := []struct {
		name string
		in   kms.CreateGrantInput
	}{
		{"missing grantee", kms.CreateGrantInput{KeyID: sym.KeyID, Operations: ops}},
		{"grantee *", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: "*", Operations: ops}},
		{"grantee neither an ARN nor an account", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: "role/app", Operations: ops}},
		{"grantee too long", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: "arn:aws:iam::111122223333:role/" + strings.Repeat("a", 256), Operations: ops}},
		{"grantee with a control character", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN + "\n", Operations: ops}},
		{"retiring principal *", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: "*", Operations: ops}},
		{"no operations", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN}},
		{"an empty operation list", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{}}},
		{"an empty operation", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{""}}},
		{"an unknown operation", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt, "Frobnicate"}}},
		{"an operation in the wrong case", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{"encrypt"}}},
		{"a duplicate operation", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpDecrypt, kms.OpEncrypt, kms.OpDecrypt}}},
		{"ReEncrypt (a grant names ReEncryptFrom and ReEncryptTo)", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpReEncrypt}}},
		{"RevokeGrant", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpRevokeGrant}}},
		{"ListGrants", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpListGrants}}},
		{"ScheduleKeyDeletion", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpScheduleKeyDeletion}}},
		{"Sign on a symmetric key", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt, kms.OpSign}}},
		{"GenerateMac on a symmetric key", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpGenerateMac}}},
		{"GetPublicKey on a symmetric key", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpGetPublicKey}}},
		{"Encrypt on an HMAC key", kms.CreateGrantInput{KeyID: hmac.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpGenerateMac, kms.OpEncrypt}}},
		{"GenerateDataKey on an RSA key", kms.CreateGrantInput{KeyID: rsa.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpGenerateDataKey}}},
		{"Decrypt on a signing key", kms.CreateGrantInput{KeyID: sign.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpDecrypt}}},
		{"a name with a space", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: ops, Name: "my grant"}},
		{"a name with a dot", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: ops, Name: "my.grant"}},
		{"a name with a non-ASCII letter", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: ops, Name: "grünt"}},
		{"a name of 257 characters", kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: ops, Name: strings.Repeat("n", 257)}},
		{"no key", kms.CreateGrantInput{GranteePrincipal: grantAppARN, Operations: ops}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.Events.Reset()
			_, err := r.CreateGrant(grantAs(ctx, grantAdminARN), tc.in)
			requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpCreateGrant, anyKeyID)
			assert.Equal(t, "ValidationException", kms.ErrorCode(err))
			evs := r.Events.ByOp(kms.OpCreateGrant)
			require.Len(t, evs, 1)
			assert.Equal(t, kms.OutcomeFailed, evs[0].Outcome)
			assert.Empty(t, evs[0].GrantID)
		})
	}
	for _, k := range []*kms.KeyMetadata{sym, hmac, rsa, sign} {
		assert.Empty(t, grantIDs(t, r.KeyRing, k.KeyID), "no invalid CreateGrant made a grant")
	}

	t.Run("valid edge cases", func(t *testing.T) {
		for _, in := range []kms.CreateGrantInput{
			{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: ops, Name: strings.Repeat("n", 256)},
			{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: ops, Name: "a-Z_0:9/x"},
			{KeyID: sym.KeyID, GranteePrincipal: grantAccount, Operations: ops},
			{KeyID: sym.KeyID, GranteePrincipal: grantRootARN, RetiringPrincipal: grantAccount, Operations: ops},
			{KeyID: "alias/none-yet", GranteePrincipal: grantAppARN, Operations: ops},
		} {
			if strings.HasPrefix(in.KeyID, "alias/") {
				require.NoError(t, r.CreateAlias(grantAs(ctx, grantAdminARN), in.KeyID, sym.KeyID))
			}
			grantCreate(t, r.KeyRing, grantAdminARN, in)
		}
		// Every operation valid for each kind of key.
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: sym.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{
			kms.OpDecrypt, kms.OpEncrypt, kms.OpGenerateDataKey, kms.OpGenerateDataKeyWithoutPlaintext, kms.OpGenerateDataKeyPair,
			kms.OpGenerateDataKeyPairWithoutPlaintext, kms.OpReEncryptFrom, kms.OpReEncryptTo, kms.OpCreateGrant, kms.OpRetireGrant, kms.OpDescribeKey,
		}})
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: hmac.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{
			kms.OpGenerateMac, kms.OpVerifyMac, kms.OpCreateGrant, kms.OpRetireGrant, kms.OpDescribeKey,
		}})
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: rsa.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{
			kms.OpEncrypt, kms.OpDecrypt, kms.OpReEncryptFrom, kms.OpReEncryptTo, kms.OpGetPublicKey, kms.OpDescribeKey,
		}})
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: sign.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{
			kms.OpSign, kms.OpVerify, kms.OpGetPublicKey, kms.OpDescribeKey,
		}})
	})

	t.Run("a key pending deletion", func(t *testing.T) {
		k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
		_, err := r.ScheduleKeyDeletion(grantAs(ctx, grantAdminARN), k.KeyID, 7)
		require.NoError(t, err)
		_, err = r.CreateGrant(grantAs(ctx, grantAdminARN), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: ops})
		requireOpErr(t, err, kms.ErrInvalidState, kms.OpCreateGrant, k.KeyID)
		assert.Equal(t, "KMSInvalidStateException", kms.ErrorCode(err))
		assert.Empty(t, grantIDs(t, r.KeyRing, k.KeyID))
	})

	t.Run("a key that does not exist", func(t *testing.T) {
		_, err := r.CreateGrant(grantAs(ctx, grantAdminARN), kms.CreateGrantInput{KeyID: "0b6a7d1c-3c5e-4f2a-9d8e-1a2b3c4d5e6f", GranteePrincipal: grantAppARN, Operations: ops})
		requireOpErr(t, err, kms.ErrNotFound, kms.OpCreateGrant, anyKeyID)
	})
}

func TestCreateGrantIdempotent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	in := kms.CreateGrantInput{
		KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantRetirerARN, Name: "retry-1",
		Operations:  []kms.Op{kms.OpEncrypt, kms.OpDecrypt},
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"app": "x"}},
	}
	first := grantCreate(t, r.KeyRing, grantAdminARN, in)
	r.Clock.Advance(time.Minute)
	again := grantCreate(t, r.KeyRing, grantAdminARN, in)
	assert.Equal(t, first.GrantID, again.GrantID, "a retry returns the same grant")
	assert.NotEqual(t, first.GrantToken, again.GrantToken, "every CreateGrant returns a new token")
	// The key ARN names the key as well, and the operations in another order
	// are the same operations.
	reordered := in
	reordered.KeyID = k.Arn
	reordered.Operations = []kms.Op{kms.OpDecrypt, kms.OpEncrypt}
	third := grantCreate(t, r.KeyRing, grantAdminARN, reordered)
	assert.Equal(t, first.GrantID, third.GrantID)

	out, err := r.ListGrants(grantAs(ctx, grantAdminARN), kms.ListGrantsInput{KeyID: k.KeyID})
	require.NoError(t, err)
	require.Len(t, out.Grants, 1, "one grant")
	assert.Equal(t, kmstest.Epoch, out.Grants[0].CreationDate.UTC(), "the retry did not replace the grant")

	// Both tokens name the grant.
	require.NoError(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: again.GrantToken}))
	err = r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: first.GrantToken})
	requireOpErr(t, err, kms.ErrNotFound, kms.OpRetireGrant, k.KeyID)

	// The same name with other parameters makes a new grant each.
	base := grantCreate(t, r.KeyRing, grantAdminARN, in)
	assert.NotEqual(t, first.GrantID, base.GrantID, "after retirement the name makes a new grant")
	variants := map[string]func(*kms.CreateGrantInput){
		"other operations": func(in *kms.CreateGrantInput) { in.Operations = []kms.Op{kms.OpEncrypt} },
		"another grantee":  func(in *kms.CreateGrantInput) { in.GranteePrincipal = grantOtherARN },
		"another retiring": func(in *kms.CreateGrantInput) { in.RetiringPrincipal = grantAppARN },
		"no retiring":      func(in *kms.CreateGrantInput) { in.RetiringPrincipal = "" },
		"another constraint value": func(in *kms.CreateGrantInput) {
			in.Constraints = &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"app": "y"}}
		},
		"equals, not subset": func(in *kms.CreateGrantInput) {
			in.Constraints = &kms.GrantConstraints{EncryptionContextEquals: kms.EncryptionContext{"app": "x"}}
		},
		"no constraint": func(in *kms.CreateGrantInput) { in.Constraints = nil },
	}
	ids := map[string]bool{base.GrantID: true}
	for name, mod := range variants {
		v := in
		mod(&v)
		g := grantCreate(t, r.KeyRing, grantAdminARN, v)
		assert.False(t, ids[g.GrantID], "%s: a new grant", name)
		ids[g.GrantID] = true
	}
	assert.Len(t, grantIDs(t, r.KeyRing, k.KeyID), 1+len(variants))

	// Without a Name, the same parameters make a new grant each time.
	noName := in
	noName.Name = ""
	a := grantCreate(t, r.KeyRing, grantAdminARN, noName)
	b := grantCreate(t, r.KeyRing, grantAdminARN, noName)
	assert.NotEqual(t, a.GrantID, b.GrantID)
}

func TestCreateGrantThroughGrant(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{
		KeyID: k.KeyID, GranteePrincipal: grantAppARN,
		Operations:  []kms.Op{kms.OpCreateGrant, kms.OpDecrypt, kms.OpEncrypt},
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"tenant": "a"}},
	})
	subset := func(ec kms.EncryptionContext) *kms.GrantConstraints {
		return &kms.GrantConstraints{EncryptionContextSubset: ec}
	}
	equals := func(ec kms.EncryptionContext) *kms.GrantConstraints {
		return &kms.GrantConstraints{EncryptionContextEquals: ec}
	}
	decrypt := []kms.Op{kms.OpDecrypt}

	allowed := []struct {
		name string
		ops  []kms.Op
		gc   *kms.GrantConstraints
	}{
		{"the same constraint", decrypt, subset(kms.EncryptionContext{"tenant": "a"})},
		{"the key in another case", decrypt, subset(kms.EncryptionContext{"TENANT": "a"})},
		{"a stricter subset", decrypt, subset(kms.EncryptionContext{"tenant": "a", "x": "y"})},
		{"an equals constraint with the pair", []kms.Op{kms.OpDecrypt, kms.OpEncrypt}, equals(kms.EncryptionContext{"tenant": "a", "x": "y"})},
		{"CreateGrant itself", []kms.Op{kms.OpCreateGrant, kms.OpDecrypt}, subset(kms.EncryptionContext{"tenant": "a"})},
	}
	for _, tc := range allowed {
		t.Run("allowed: "+tc.name, func(t *testing.T) {
			g := grantCreate(t, r.KeyRing, grantAppARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: tc.ops, Constraints: tc.gc})
			out, err := r.ListGrants(grantAs(ctx, grantAdminARN), kms.ListGrantsInput{KeyID: k.KeyID, GrantID: g.GrantID})
			require.NoError(t, err)
			require.Len(t, out.Grants, 1)
			assert.Equal(t, grantAccount, out.Grants[0].IssuingAccount)
			assert.Equal(t, grantChildARN, out.Grants[0].GranteePrincipal)
		})
	}
	before := len(grantIDs(t, r.KeyRing, k.KeyID))
	denied := []struct {
		name string
		ops  []kms.Op
		gc   *kms.GrantConstraints
	}{
		{"adding GenerateDataKey", []kms.Op{kms.OpDecrypt, kms.OpGenerateDataKey}, subset(kms.EncryptionContext{"tenant": "a"})},
		{"adding DescribeKey", []kms.Op{kms.OpDecrypt, kms.OpDescribeKey}, subset(kms.EncryptionContext{"tenant": "a"})},
		{"adding RetireGrant", []kms.Op{kms.OpDecrypt, kms.OpRetireGrant}, subset(kms.EncryptionContext{"tenant": "a"})},
		{"no constraint", decrypt, nil},
		{"an empty constraint", decrypt, &kms.GrantConstraints{}},
		{"another pair", decrypt, subset(kms.EncryptionContext{"other": "a"})},
		{"another value", decrypt, subset(kms.EncryptionContext{"tenant": "b"})},
		{"the value in another case", decrypt, subset(kms.EncryptionContext{"tenant": "A"})},
		{"an equals constraint without the pair", decrypt, equals(kms.EncryptionContext{"x": "y"})},
	}
	for _, tc := range denied {
		t.Run("denied: "+tc.name, func(t *testing.T) {
			_, err := r.CreateGrant(grantAs(ctx, grantAppARN), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: tc.ops, Constraints: tc.gc})
			grantDenied(t, err, kms.OpCreateGrant, k.KeyID)
		})
	}
	assert.Len(t, grantIDs(t, r.KeyRing, k.KeyID), before, "no denied CreateGrant made a grant")

	t.Run("the child's grant works within its constraint", func(t *testing.T) {
		ok := kms.EncryptionContext{"tenant": "a", "x": "y"}
		require.NoError(t, grantDecrypt(ctx, r.KeyRing, grantChildARN, grantBlob(t, r.KeyRing, k.KeyID, ok), ok))
		bad := kms.EncryptionContext{"tenant": "b", "x": "y"}
		grantDenied(t, grantDecrypt(ctx, r.KeyRing, grantChildARN, grantBlob(t, r.KeyRing, k.KeyID, bad), bad), kms.OpDecrypt, k.KeyID)
		grantDenied(t, grantGenerateDataKey(ctx, r.KeyRing, grantChildARN, k.KeyID, ok), kms.OpGenerateDataKey, k.KeyID)
	})

	t.Run("an equals parent", func(t *testing.T) {
		parent := "arn:aws:iam::111122223333:role/eq-parent"
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{
			KeyID: k.KeyID, GranteePrincipal: parent, Operations: []kms.Op{kms.OpCreateGrant, kms.OpDecrypt},
			Constraints: equals(kms.EncryptionContext{"tenant": "a"}),
		})
		grantCreate(t, r.KeyRing, parent, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: decrypt, Constraints: equals(kms.EncryptionContext{"Tenant": "a"})})
		for _, gc := range []*kms.GrantConstraints{
			nil,
			subset(kms.EncryptionContext{"tenant": "a"}),
			subset(kms.EncryptionContext{"tenant": "a", "x": "y"}),
			equals(kms.EncryptionContext{"tenant": "a", "x": "y"}),
			equals(kms.EncryptionContext{"tenant": "b"}),
		} {
			_, err := r.CreateGrant(grantAs(ctx, parent), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: decrypt, Constraints: gc})
			grantDenied(t, err, kms.OpCreateGrant, k.KeyID, "constraint %+v", gc)
		}
	})

	t.Run("an unconstrained parent", func(t *testing.T) {
		parent := "arn:aws:iam::111122223333:role/free-parent"
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: parent, Operations: []kms.Op{kms.OpCreateGrant, kms.OpEncrypt}})
		grantCreate(t, r.KeyRing, parent, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: []kms.Op{kms.OpEncrypt}})
		grantCreate(t, r.KeyRing, parent, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: []kms.Op{kms.OpEncrypt}, Constraints: equals(kms.EncryptionContext{"z": "z"})})
		_, err := r.CreateGrant(grantAs(ctx, parent), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: []kms.Op{kms.OpDecrypt}})
		grantDenied(t, err, kms.OpCreateGrant, k.KeyID)
	})
}

func TestRetireGrant(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	other := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	newGrant := func(t *testing.T, ops ...kms.Op) *kms.CreateGrantOutput {
		t.Helper()
		return grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantRetirerARN, Operations: ops})
	}
	gone := func(t *testing.T, id string) {
		t.Helper()
		assert.NotContains(t, grantIDs(t, r.KeyRing, k.KeyID), id)
	}
	kept := func(t *testing.T, id string) {
		t.Helper()
		assert.Contains(t, grantIDs(t, r.KeyRing, k.KeyID), id)
	}

	t.Run("by token, by the retiring principal", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: g.GrantToken}))
		gone(t, g.GrantID)
		grantDenied(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k.KeyID, nil), kms.OpEncrypt, k.KeyID)
		// A second retirement finds nothing.
		err := r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: g.GrantToken})
		requireOpErr(t, err, kms.ErrNotFound, kms.OpRetireGrant, k.KeyID)
		assert.Equal(t, "NotFoundException", kms.ErrorCode(err))
	})
	t.Run("by key ID and grant ID", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g.GrantID}))
		gone(t, g.GrantID)
		err := r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g.GrantID})
		requireOpErr(t, err, kms.ErrNotFound, kms.OpRetireGrant, k.KeyID)
	})
	t.Run("by key ARN and grant ID", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: k.Arn, GrantID: g.GrantID}))
		gone(t, g.GrantID)
	})
	t.Run("by token with the matching key and grant ID", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: g.GrantToken, KeyID: k.Arn, GrantID: g.GrantID}))
		gone(t, g.GrantID)
	})
	t.Run("the grantee, only when the grant allows RetireGrant", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		err := r.RetireGrant(grantAs(ctx, grantAppARN), kms.RetireGrantInput{GrantToken: g.GrantToken})
		grantDenied(t, err, kms.OpRetireGrant, k.KeyID)
		kept(t, g.GrantID)
		require.NoError(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k.KeyID, nil), "the grant still works")

		g2 := newGrant(t, kms.OpEncrypt, kms.OpRetireGrant)
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantAppARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g2.GrantID}))
		gone(t, g2.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g.GrantID))
	})
	t.Run("the grantee's RetireGrant retires only its own grant", func(t *testing.T) {
		mine := newGrant(t, kms.OpEncrypt, kms.OpRetireGrant)
		theirs := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantOtherARN, Operations: []kms.Op{kms.OpEncrypt, kms.OpRetireGrant}})
		grantDenied(t, r.RetireGrant(grantAs(ctx, grantAppARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: theirs.GrantID}), kms.OpRetireGrant, k.KeyID)
		kept(t, theirs.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, theirs.GrantID))
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, mine.GrantID))
	})
	t.Run("the account root", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantRootARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g.GrantID}))
		gone(t, g.GrantID)
	})
	t.Run("another account's root", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		ctx := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::444455556666:root", Account: "444455556666"})
		grantDenied(t, r.RetireGrant(ctx, kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g.GrantID}), kms.OpRetireGrant, k.KeyID)
		kept(t, g.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(t.Context(), grantAdminARN), k.KeyID, g.GrantID))
	})
	t.Run("anyone else is denied", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt, kms.OpRetireGrant)
		for _, as := range []string{grantOtherARN, grantChildARN, grantAdminARN} {
			// The admin's kms:* in the key policy does not allow RetireGrant:
			// the grant decides who may retire it.
			grantDenied(t, r.RetireGrant(grantAs(ctx, as), kms.RetireGrantInput{GrantToken: g.GrantToken}), kms.OpRetireGrant, k.KeyID, as)
		}
		grantDenied(t, r.RetireGrant(ctx, kms.RetireGrantInput{GrantToken: g.GrantToken}), kms.OpRetireGrant, k.KeyID, "no principal")
		kept(t, g.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g.GrantID))
	})
	t.Run("a retiring principal given as the account", func(t *testing.T) {
		g := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantAccount, Operations: []kms.Op{kms.OpEncrypt}})
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantOtherARN), kms.RetireGrantInput{GrantToken: g.GrantToken}))
		gone(t, g.GrantID)
	})
	t.Run("a grant on another key", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		err := r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: other.KeyID, GrantID: g.GrantID})
		requireOpErr(t, err, kms.ErrNotFound, kms.OpRetireGrant, other.KeyID)
		err = r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: other.KeyID, GrantToken: g.GrantToken})
		requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpRetireGrant, anyKeyID)
		kept(t, g.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g.GrantID))
	})
	t.Run("a token and another grant ID", func(t *testing.T) {
		g1, g2 := newGrant(t, kms.OpEncrypt), newGrant(t, kms.OpDecrypt)
		err := r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: g1.GrantToken, GrantID: g2.GrantID})
		requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpRetireGrant, anyKeyID)
		kept(t, g1.GrantID)
		kept(t, g2.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g1.GrantID))
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g2.GrantID))
	})
	t.Run("no grant named", func(t *testing.T) {
		for _, in := range []kms.RetireGrantInput{{}, {KeyID: k.KeyID}, {GrantID: strings.Repeat("a", 64)}} {
			err := r.RetireGrant(grantAs(ctx, grantRetirerARN), in)
			requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpRetireGrant, anyKeyID)
			assert.Equal(t, "ValidationException", kms.ErrorCode(err))
		}
	})
	t.Run("malformed tokens", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		tok := g.GrantToken
		for _, bad := range []string{
			"garbage", "pkgt1", tok[:len(tok)-1], tok + "A", "x" + tok[1:], strings.ToUpper(tok),
			tok[:5] + strings.Repeat("_", len(tok)-5),
		} {
			err := r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: bad})
			requireOpErr(t, err, kms.ErrInvalidGrantToken, kms.OpRetireGrant, anyKeyID)
			assert.Equal(t, "InvalidGrantTokenException", kms.ErrorCode(err), bad)
		}
		kept(t, g.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g.GrantID))
	})
	t.Run("malformed grant IDs", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		for _, bad := range []string{
			"g1", g.GrantID[:63], g.GrantID + "0", strings.ToUpper(g.GrantID), strings.Repeat("g", 64), " " + g.GrantID[1:],
		} {
			err := r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: bad})
			requireOpErr(t, err, kms.ErrInvalidGrantID, kms.OpRetireGrant, anyKeyID)
			assert.Equal(t, "InvalidGrantIdException", kms.ErrorCode(err), bad)
			err = r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, bad)
			requireOpErr(t, err, kms.ErrInvalidGrantID, kms.OpRevokeGrant, anyKeyID)
			assert.Equal(t, "InvalidGrantIdException", kms.ErrorCode(err), bad)
		}
		kept(t, g.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g.GrantID))
	})
	t.Run("revoke", func(t *testing.T) {
		g := newGrant(t, kms.OpEncrypt)
		grantDenied(t, r.RevokeGrant(grantAs(ctx, grantRetirerARN), k.KeyID, g.GrantID), kms.OpRevokeGrant, k.KeyID, "RevokeGrant takes the key policy")
		grantDenied(t, r.RevokeGrant(grantAs(ctx, grantRootARN), k.KeyID, g.GrantID), kms.OpRevokeGrant, k.KeyID, "the key policy names only the admin")
		kept(t, g.GrantID)
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.Arn, g.GrantID))
		gone(t, g.GrantID)
		err := r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g.GrantID)
		requireOpErr(t, err, kms.ErrNotFound, kms.OpRevokeGrant, k.KeyID)
	})
	t.Run("on a key pending deletion", func(t *testing.T) {
		k2 := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
		g1 := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k2.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantRetirerARN, Operations: []kms.Op{kms.OpEncrypt}})
		g2 := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k2.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
		_, err := r.ScheduleKeyDeletion(grantAs(ctx, grantAdminARN), k2.KeyID, 7)
		require.NoError(t, err)
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: g1.GrantToken}))
		require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k2.KeyID, g2.GrantID))
		assert.Empty(t, grantIDs(t, r.KeyRing, k2.KeyID))
	})
	assert.Empty(t, grantIDs(t, r.KeyRing, k.KeyID), "every subtest cleaned up")
}

func TestListGrants(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	other := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: other.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
	admin := grantAs(ctx, grantAdminARN)

	want := map[string]kms.Grant{}
	for i := range 7 {
		grantee := grantAppARN
		if i%3 == 0 {
			grantee = grantOtherARN
		}
		in := kms.CreateGrantInput{
			KeyID: k.KeyID, GranteePrincipal: grantee, RetiringPrincipal: grantRetirerARN, Name: fmt.Sprintf("g%d", i),
			Operations:  []kms.Op{kms.OpEncrypt, kms.OpDecrypt},
			Constraints: &kms.GrantConstraints{EncryptionContextEquals: kms.EncryptionContext{"i": fmt.Sprint(i)}},
		}
		g := grantCreate(t, r.KeyRing, grantAdminARN, in)
		want[g.GrantID] = kms.Grant{
			KeyID: k.Arn, GrantID: g.GrantID, Name: in.Name, CreationDate: r.Clock.Now(),
			GranteePrincipal: grantee, RetiringPrincipal: grantRetirerARN, IssuingAccount: grantAccount,
			Operations: in.Operations, Constraints: in.Constraints,
		}
		r.Clock.Advance(time.Second)
	}
	wantIDs := make([]string, 0, len(want))
	for id := range want {
		wantIDs = append(wantIDs, id)
	}
	slices.Sort(wantIDs)

	t.Run("pages", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3, 6, 7, 8, 100, 0} {
			var got []string
			var pages int
			marker := ""
			for {
				out, err := r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID, Limit: limit, Marker: marker})
				require.NoError(t, err)
				pages++
				require.LessOrEqual(t, pages, 8)
				if limit > 0 {
					require.LessOrEqual(t, len(out.Grants), limit)
				}
				for _, g := range out.Grants {
					assert.Equal(t, want[g.GrantID], g, "grant %s as listed", g.GrantID)
					got = append(got, g.GrantID)
				}
				if !out.Truncated {
					assert.Empty(t, out.NextMarker)
					break
				}
				require.NotEmpty(t, out.Grants)
				assert.Equal(t, out.Grants[len(out.Grants)-1].GrantID, out.NextMarker)
				marker = out.NextMarker
			}
			assert.Equal(t, wantIDs, got, "limit %d: every grant once, by grant ID", limit)
			wantPages := 1
			if limit > 0 && limit < 7 {
				wantPages = (7 + limit - 1) / limit
			}
			assert.Equal(t, wantPages, pages, "limit %d", limit)
		}
	})
	t.Run("a grant revoked between pages", func(t *testing.T) {
		k3 := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
		for range 5 {
			grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k3.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
		}
		all := grantIDs(t, r.KeyRing, k3.KeyID)
		require.Len(t, all, 5)
		require.True(t, slices.IsSorted(all))
		out, err := r.ListGrants(admin, kms.ListGrantsInput{KeyID: k3.KeyID, Limit: 2})
		require.NoError(t, err)
		require.True(t, out.Truncated)
		require.Equal(t, all[1], out.NextMarker)
		// The grant the marker names goes away; the listing resumes after it.
		require.NoError(t, r.RevokeGrant(admin, k3.KeyID, out.NextMarker))
		out, err = r.ListGrants(admin, kms.ListGrantsInput{KeyID: k3.KeyID, Marker: out.NextMarker})
		require.NoError(t, err)
		var rest []string
		for _, g := range out.Grants {
			rest = append(rest, g.GrantID)
		}
		assert.Equal(t, all[2:], rest)
	})
	t.Run("filters", func(t *testing.T) {
		out, err := r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.Arn, GrantID: wantIDs[4]})
		require.NoError(t, err)
		require.Len(t, out.Grants, 1)
		assert.Equal(t, want[wantIDs[4]], out.Grants[0])
		assert.False(t, out.Truncated)

		var others []string
		for _, id := range wantIDs {
			if want[id].GranteePrincipal == grantOtherARN {
				others = append(others, id)
			}
		}
		require.Len(t, others, 3)
		out, err = r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID, GranteePrincipal: grantOtherARN, Limit: 2})
		require.NoError(t, err)
		require.True(t, out.Truncated)
		got := []string{out.Grants[0].GrantID, out.Grants[1].GrantID}
		out, err = r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID, GranteePrincipal: grantOtherARN, Limit: 2, Marker: out.NextMarker})
		require.NoError(t, err)
		require.False(t, out.Truncated)
		require.Len(t, out.Grants, 1)
		got = append(got, out.Grants[0].GrantID)
		assert.Equal(t, others, got)

		// Both filters; filters that match nothing.
		out, err = r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID, GrantID: others[1], GranteePrincipal: grantOtherARN})
		require.NoError(t, err)
		require.Len(t, out.Grants, 1)
		for _, in := range []kms.ListGrantsInput{
			{KeyID: k.KeyID, GrantID: others[1], GranteePrincipal: grantAppARN},
			{KeyID: k.KeyID, GranteePrincipal: grantChildARN},
			{KeyID: k.KeyID, GranteePrincipal: strings.ToUpper(grantOtherARN)},
			{KeyID: k.KeyID, GrantID: strings.Repeat("0", 64)},
			{KeyID: other.KeyID, GrantID: wantIDs[0]},
		} {
			out, err = r.ListGrants(admin, in)
			require.NoError(t, err)
			assert.Empty(t, out.Grants, "%+v", in)
			assert.False(t, out.Truncated)
		}
	})
	t.Run("the output is a copy", func(t *testing.T) {
		out, err := r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID, GrantID: wantIDs[0]})
		require.NoError(t, err)
		g := &out.Grants[0]
		g.Operations[0] = kms.OpGenerateDataKey
		g.Operations = append(g.Operations, kms.OpDescribeKey)
		g.Constraints.EncryptionContextEquals["i"] = "changed"
		g.Constraints.EncryptionContextEquals["new"] = "pair"
		g.Constraints.EncryptionContextSubset = kms.EncryptionContext{}
		g.GranteePrincipal = grantChildARN
		out, err = r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID, GrantID: wantIDs[0]})
		require.NoError(t, err)
		assert.Equal(t, want[wantIDs[0]], out.Grants[0], "the ring's grant is unchanged")
		grantee := want[wantIDs[0]].GranteePrincipal
		ec := want[wantIDs[0]].Constraints.EncryptionContextEquals
		grantDenied(t, grantDescribe(ctx, r.KeyRing, grantee, k.KeyID), kms.OpDescribeKey, k.KeyID)
		grantDenied(t, grantEncrypt(ctx, r.KeyRing, grantChildARN, k.KeyID, ec), kms.OpEncrypt, k.KeyID)
		require.NoError(t, grantEncrypt(ctx, r.KeyRing, grantee, k.KeyID, ec))
	})
	t.Run("the input is copied", func(t *testing.T) {
		in := kms.CreateGrantInput{
			KeyID: other.KeyID, GranteePrincipal: grantChildARN, Operations: []kms.Op{kms.OpDecrypt},
			Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"a": "b"}},
		}
		g := grantCreate(t, r.KeyRing, grantAdminARN, in)
		in.Operations[0] = kms.OpEncrypt
		in.Constraints.EncryptionContextSubset["a"] = "c"
		in.Constraints.EncryptionContextSubset["d"] = "e"
		out, err := r.ListGrants(admin, kms.ListGrantsInput{KeyID: other.KeyID, GrantID: g.GrantID})
		require.NoError(t, err)
		require.Len(t, out.Grants, 1)
		assert.Equal(t, []kms.Op{kms.OpDecrypt}, out.Grants[0].Operations)
		assert.Equal(t, kms.EncryptionContext{"a": "b"}, out.Grants[0].Constraints.EncryptionContextSubset)
		grantDenied(t, grantEncrypt(ctx, r.KeyRing, grantChildARN, other.KeyID, kms.EncryptionContext{"a": "c", "d": "e"}), kms.OpEncrypt, other.KeyID)
	})
	t.Run("invalid input", func(t *testing.T) {
		for _, in := range []kms.ListGrantsInput{
			{KeyID: k.KeyID, Limit: -1},
			{KeyID: k.KeyID, Limit: 101},
			{KeyID: k.KeyID, Marker: "not a marker"},
			{KeyID: k.KeyID, Marker: strings.ToUpper(wantIDs[0])},
			{},
		} {
			_, err := r.ListGrants(admin, in)
			requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpListGrants, anyKeyID)
		}
		_, err := r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID, GrantID: "g1"})
		requireOpErr(t, err, kms.ErrInvalidGrantID, kms.OpListGrants, anyKeyID)
		assert.Equal(t, "InvalidGrantIdException", kms.ErrorCode(err))
		out, err := r.ListGrants(admin, kms.ListGrantsInput{KeyID: k.KeyID, Limit: 100})
		require.NoError(t, err)
		assert.Len(t, out.Grants, 7)
	})
	t.Run("access", func(t *testing.T) {
		for _, as := range []string{grantAppARN, grantOtherARN, grantRetirerARN, grantRootARN} {
			_, err := r.ListGrants(grantAs(ctx, as), kms.ListGrantsInput{KeyID: k.KeyID})
			grantDenied(t, err, kms.OpListGrants, k.KeyID, as)
		}
	})
}

func TestListRetirableGrants(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	type pos struct{ key, grant string }
	var want []pos
	for range 3 {
		k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
		for i := range 4 {
			retiring := grantRetirerARN
			if i == 3 {
				retiring = grantOtherARN
			}
			g := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: retiring, Operations: []kms.Op{kms.OpEncrypt}})
			if retiring == grantRetirerARN {
				want = append(want, pos{k.Arn, g.GrantID})
			}
		}
		// A grant with no retiring principal is in no one's list.
		grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantRetirerARN, Operations: []kms.Op{kms.OpEncrypt}})
	}
	slices.SortFunc(want, func(a, b pos) int { return strings.Compare(a.key+"/"+a.grant, b.key+"/"+b.grant) })
	require.Len(t, want, 9)

	list := func(t *testing.T, as string, limit int) []pos {
		t.Helper()
		var got []pos
		marker := ""
		for pages := 1; ; pages++ {
			require.LessOrEqual(t, pages, 10)
			out, err := r.ListRetirableGrants(grantAs(ctx, as), kms.ListRetirableGrantsInput{RetiringPrincipal: grantRetirerARN, Limit: limit, Marker: marker})
			require.NoError(t, err)
			if limit > 0 {
				require.LessOrEqual(t, len(out.Grants), limit)
			}
			for _, g := range out.Grants {
				assert.Equal(t, grantRetirerARN, g.RetiringPrincipal)
				assert.Equal(t, grantAppARN, g.GranteePrincipal)
				assert.Equal(t, []kms.Op{kms.OpEncrypt}, g.Operations)
				assert.Regexp(t, keyARNPattern, g.KeyID, "KeyID is the key ARN")
				got = append(got, pos{g.KeyID, g.GrantID})
			}
			if !out.Truncated {
				assert.Empty(t, out.NextMarker)
				return got
			}
			require.NotEmpty(t, out.NextMarker)
			marker = out.NextMarker
		}
	}
	for _, limit := range []int{1, 2, 3, 4, 8, 9, 10, 0} {
		assert.Equal(t, want, list(t, grantRetirerARN, limit), "limit %d", limit)
	}
	// Any principal of the account may list (AWS governs this by IAM).
	assert.Equal(t, want, list(t, grantAppARN, 4))

	out, err := r.ListRetirableGrants(grantAs(ctx, grantAdminARN), kms.ListRetirableGrantsInput{RetiringPrincipal: grantChildARN})
	require.NoError(t, err)
	assert.Empty(t, out.Grants)

	// Invalid input.
	for _, in := range []kms.ListRetirableGrantsInput{
		{},
		{RetiringPrincipal: "*"},
		{RetiringPrincipal: grantRetirerARN, Limit: 101},
		{RetiringPrincipal: grantRetirerARN, Marker: "nonsense"},
		{RetiringPrincipal: grantRetirerARN, Marker: want[0].grant},
	} {
		_, err := r.ListRetirableGrants(grantAs(ctx, grantAdminARN), in)
		requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpListRetirableGrants, anyKeyID)
	}
	// A principal of another account, or none, is denied.
	_, err = r.ListRetirableGrants(kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::444455556666:role/x", Account: "444455556666"}), kms.ListRetirableGrantsInput{RetiringPrincipal: grantRetirerARN})
	grantDenied(t, err, kms.OpListRetirableGrants, anyKeyID)
	_, err = r.ListRetirableGrants(ctx, kms.ListRetirableGrantsInput{RetiringPrincipal: grantRetirerARN})
	grantDenied(t, err, kms.OpListRetirableGrants, anyKeyID)

	// Every listed grant can be retired by the retiring principal.
	for _, p := range want {
		require.NoError(t, r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: p.key, GrantID: p.grant}))
	}
	assert.Empty(t, list(t, grantRetirerARN, 0))
}

// TestListRetirableGrantsDeletedKey checks that the grants of a key whose
// deletion date has passed are no longer listed: AWS KMS deletes a key's
// grants with the key, and RetireGrant can no longer reach them.
func TestListRetirableGrantsDeletedKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	g := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantRetirerARN, Operations: []kms.Op{kms.OpEncrypt}})
	_, err := r.ScheduleKeyDeletion(grantAs(ctx, grantAdminARN), k.KeyID, 7)
	require.NoError(t, err)
	// Pending deletion: still listed, still retirable.
	out, err := r.ListRetirableGrants(grantAs(ctx, grantRetirerARN), kms.ListRetirableGrantsInput{RetiringPrincipal: grantRetirerARN})
	require.NoError(t, err)
	require.Len(t, out.Grants, 1)
	assert.Equal(t, g.GrantID, out.Grants[0].GrantID)

	r.Clock.Advance(8 * 24 * time.Hour)
	due, err := r.RunDue(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{k.KeyID}, due.Deleted)
	err = r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: g.GrantToken})
	requireOpErr(t, err, kms.ErrNotFound, kms.OpRetireGrant, anyKeyID)

	out, err = r.ListRetirableGrants(grantAs(ctx, grantRetirerARN), kms.ListRetirableGrantsInput{RetiringPrincipal: grantRetirerARN})
	require.NoError(t, err)
	assert.Empty(t, out.Grants, "a deleted key's grants go with it")
}

func TestGrantTokenUsableAtOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ms := kms.NewMemoryStore()
	rk := newRootKey(t)
	cfg := kms.Config{Store: ms, RootKey: rk, Policy: kms.KeyPolicies{}, CacheTTL: time.Hour}
	a, b := kmstest.New(t, cfg), kmstest.New(t, cfg)
	k := grantKey(t, a.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	blob := grantBlob(t, b.KeyRing, k.KeyID, nil) // b caches the key, with no grants
	grantDenied(t, grantEncrypt(ctx, b.KeyRing, grantAppARN, k.KeyID, nil), kms.OpEncrypt, k.KeyID)

	g := grantCreate(t, a.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantRetirerARN, Operations: []kms.Op{kms.OpEncrypt, kms.OpDecrypt}})
	require.NoError(t, grantEncrypt(ctx, a.KeyRing, grantAppARN, k.KeyID, nil), "the ring that made the grant knows it")

	// b's copy of the key is an hour fresh: without the token, not yet.
	grantDenied(t, grantEncrypt(ctx, b.KeyRing, grantAppARN, k.KeyID, nil), kms.OpEncrypt, k.KeyID)

	// The token is no credential: it does not help another principal.
	withTok := kms.WithGrantTokens(ctx, g.GrantToken)
	grantDenied(t, grantEncrypt(withTok, b.KeyRing, grantOtherARN, k.KeyID, nil), kms.OpEncrypt, k.KeyID)

	// With the token, at once.
	require.NoError(t, grantDecrypt(withTok, b.KeyRing, grantAppARN, blob, nil))
	require.NoError(t, grantEncrypt(withTok, b.KeyRing, grantAppARN, k.KeyID, nil))
	// Tokens for other keys are ignored, with the right one among them.
	other := grantKey(t, a.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	og := grantCreate(t, a.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: other.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
	require.NoError(t, grantEncrypt(kms.WithGrantTokens(ctx, og.GrantToken, g.GrantToken), b.KeyRing, grantAppARN, k.KeyID, nil))
	// b has read the key again: now the grant works without the token too.
	require.NoError(t, grantEncrypt(ctx, b.KeyRing, grantAppARN, k.KeyID, nil))

	t.Run("a token does not widen the grant", func(t *testing.T) {
		grantDenied(t, grantGenerateDataKey(withTok, b.KeyRing, grantAppARN, k.KeyID, nil), kms.OpGenerateDataKey, k.KeyID)
		grantDenied(t, grantDescribe(withTok, b.KeyRing, grantAppARN, k.KeyID), kms.OpDescribeKey, k.KeyID)
	})
	t.Run("malformed tokens", func(t *testing.T) {
		for _, bad := range []string{"nonsense", g.GrantToken[:20]} {
			err := grantEncrypt(kms.WithGrantTokens(ctx, g.GrantToken, bad), b.KeyRing, grantAppARN, k.KeyID, nil)
			requireOpErr(t, err, kms.ErrInvalidGrantToken, kms.OpEncrypt, k.KeyID)
			assert.Equal(t, "InvalidGrantTokenException", kms.ErrorCode(err))
		}
		// An empty token, like too many, is invalid input, as AWS KMS
		// validates the list before reading any token.
		err := grantEncrypt(kms.WithGrantTokens(ctx, g.GrantToken, ""), b.KeyRing, grantAppARN, k.KeyID, nil)
		requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpEncrypt, k.KeyID)
		toks := make([]string, kms.MaxGrantTokens+1)
		for i := range toks {
			toks[i] = g.GrantToken
		}
		err = grantEncrypt(kms.WithGrantTokens(ctx, toks...), b.KeyRing, grantAppARN, k.KeyID, nil)
		requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpEncrypt, k.KeyID)
		require.NoError(t, grantEncrypt(kms.WithGrantTokens(ctx, toks[1:]...), b.KeyRing, grantAppARN, k.KeyID, nil))
	})
	t.Run("retire through the other ring by token", func(t *testing.T) {
		g2 := grantCreate(t, a.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, RetiringPrincipal: grantRetirerARN, Operations: []kms.Op{kms.OpEncrypt}})
		require.NoError(t, b.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: g2.GrantToken}))
		grantDenied(t, grantEncrypt(ctx, b.KeyRing, grantChildARN, k.KeyID, nil), kms.OpEncrypt, k.KeyID)
		rec, err := ms.GetKey(ctx, k.KeyID)
		require.NoError(t, err)
		assert.False(t, slices.ContainsFunc(rec.Grants, func(gr kms.Grant) bool { return gr.GrantID == g2.GrantID }), "the retirement reached the Store")
		// Ring a may honour the grant until its copy of the key is older than
		// CacheTTL (as AWS KMS's own eventual consistency allows); then not.
		a.Clock.Advance(time.Hour + time.Second)
		grantDenied(t, grantEncrypt(ctx, a.KeyRing, grantChildARN, k.KeyID, nil), kms.OpEncrypt, k.KeyID)
	})
	t.Run("CreateGrant through a grant, by token", func(t *testing.T) {
		parent := "arn:aws:iam::111122223333:role/parent"
		pg := grantCreate(t, a.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: parent, Operations: []kms.Op{kms.OpCreateGrant, kms.OpDecrypt}})
		_, err := b.CreateGrant(grantAs(ctx, parent), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: []kms.Op{kms.OpDecrypt}})
		grantDenied(t, err, kms.OpCreateGrant, k.KeyID, "b has not seen the parent grant")
		cg, err := b.CreateGrant(kms.WithGrantTokens(grantAs(ctx, parent), pg.GrantToken), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: []kms.Op{kms.OpDecrypt}})
		require.NoError(t, err)
		require.NoError(t, grantDecrypt(kms.WithGrantTokens(ctx, cg.GrantToken), a.KeyRing, grantChildARN, blob, nil))
	})
	t.Run("the creating ring sees a grant made through the other", func(t *testing.T) {
		g3 := grantCreate(t, b.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: []kms.Op{kms.OpEncrypt}})
		require.NoError(t, grantEncrypt(kms.WithGrantTokens(ctx, g3.GrantToken), a.KeyRing, grantChildARN, k.KeyID, nil))
		rec, err := ms.GetKey(ctx, k.KeyID)
		require.NoError(t, err)
		n := 0
		for _, gr := range rec.Grants {
			if gr.GrantID == g.GrantID || gr.GrantID == g3.GrantID {
				n++
			}
		}
		assert.Equal(t, 2, n, "both rings' grants are in the Store")
	})
}

func TestGrantAudit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")

	// one runs f and checks that it produced exactly one event, as given.
	one := func(t *testing.T, f func() error, op kms.Op, as, grantID string, outcome kms.Outcome, code string) {
		t.Helper()
		r.Events.Reset()
		err := f()
		evs := r.Events.Events()
		require.Len(t, evs, 1, "exactly one event")
		ev := evs[0]
		assert.Equal(t, op, ev.Op)
		if code == "ValidationException" && op == kms.OpListGrants {
			// Input refused before the key is resolved names no key.
			assert.Empty(t, ev.KeyID)
		} else {
			assert.Equal(t, k.KeyID, ev.KeyID)
			assert.Equal(t, k.Arn, ev.KeyARN)
		}
		assert.Equal(t, grantID, ev.GrantID, "Event.GrantID")
		assert.Equal(t, outcome, ev.Outcome)
		assert.Equal(t, as, ev.Principal.ARN)
		assert.Equal(t, code, ev.ErrorCode)
		assert.NotEmpty(t, ev.RequestID)
		if outcome == kms.OutcomeAllowed {
			assert.NoError(t, err)
			assert.NoError(t, ev.Err)
		} else {
			assert.Error(t, err)
			assert.Equal(t, code, kms.ErrorCode(err))
			assert.Equal(t, err, ev.Err)
		}
	}
	in := kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, RetiringPrincipal: grantRetirerARN, Operations: []kms.Op{kms.OpEncrypt}, Name: "audited"}

	r.Events.Reset()
	g := grantCreate(t, r.KeyRing, grantAdminARN, in)
	evs := r.Events.Events()
	require.Len(t, evs, 1, "exactly one event")
	assert.Equal(t, kms.OpCreateGrant, evs[0].Op)
	assert.Equal(t, k.KeyID, evs[0].KeyID)
	assert.Equal(t, g.GrantID, evs[0].GrantID, "Event.GrantID names the new grant")
	assert.Equal(t, kms.OutcomeAllowed, evs[0].Outcome)
	assert.Equal(t, grantAdminARN, evs[0].Principal.ARN)

	t.Run("CreateGrant", func(t *testing.T) {
		one(t, func() error { _, err := r.CreateGrant(grantAs(ctx, grantAdminARN), in); return err },
			kms.OpCreateGrant, grantAdminARN, g.GrantID, kms.OutcomeAllowed, "")
		one(t, func() error { _, err := r.CreateGrant(grantAs(ctx, grantAppARN), in); return err },
			kms.OpCreateGrant, grantAppARN, "", kms.OutcomeDenied, "AccessDeniedException")
		bad := in
		bad.Operations = []kms.Op{kms.OpSign}
		one(t, func() error { _, err := r.CreateGrant(grantAs(ctx, grantAdminARN), bad); return err },
			kms.OpCreateGrant, grantAdminARN, "", kms.OutcomeFailed, "ValidationException")
	})
	t.Run("ListGrants", func(t *testing.T) {
		one(t, func() error {
			_, err := r.ListGrants(grantAs(ctx, grantAdminARN), kms.ListGrantsInput{KeyID: k.KeyID})
			return err
		},
			kms.OpListGrants, grantAdminARN, "", kms.OutcomeAllowed, "")
		one(t, func() error {
			_, err := r.ListGrants(grantAs(ctx, grantAppARN), kms.ListGrantsInput{KeyID: k.KeyID})
			return err
		},
			kms.OpListGrants, grantAppARN, "", kms.OutcomeDenied, "AccessDeniedException")
		one(t, func() error {
			_, err := r.ListGrants(grantAs(ctx, grantAdminARN), kms.ListGrantsInput{KeyID: k.KeyID, Marker: "bad"})
			return err
		}, kms.OpListGrants, grantAdminARN, "", kms.OutcomeFailed, "ValidationException")
	})
	t.Run("RetireGrant", func(t *testing.T) {
		one(t, func() error {
			return r.RetireGrant(grantAs(ctx, grantOtherARN), kms.RetireGrantInput{GrantToken: g.GrantToken})
		}, kms.OpRetireGrant, grantOtherARN, g.GrantID, kms.OutcomeDenied, "AccessDeniedException")
		one(t, func() error {
			return r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{GrantToken: g.GrantToken})
		}, kms.OpRetireGrant, grantRetirerARN, g.GrantID, kms.OutcomeAllowed, "")
		one(t, func() error {
			return r.RetireGrant(grantAs(ctx, grantRetirerARN), kms.RetireGrantInput{KeyID: k.KeyID, GrantID: g.GrantID})
		}, kms.OpRetireGrant, grantRetirerARN, g.GrantID, kms.OutcomeFailed, "NotFoundException")
	})
	t.Run("RevokeGrant", func(t *testing.T) {
		g2 := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
		one(t, func() error { return r.RevokeGrant(grantAs(ctx, grantAppARN), k.KeyID, g2.GrantID) },
			kms.OpRevokeGrant, grantAppARN, g2.GrantID, kms.OutcomeDenied, "AccessDeniedException")
		one(t, func() error { return r.RevokeGrant(grantAs(ctx, grantAdminARN), k.Arn, g2.GrantID) },
			kms.OpRevokeGrant, grantAdminARN, g2.GrantID, kms.OutcomeAllowed, "")
		one(t, func() error { return r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g2.GrantID) },
			kms.OpRevokeGrant, grantAdminARN, g2.GrantID, kms.OutcomeFailed, "NotFoundException")
	})
	t.Run("the grant in use", func(t *testing.T) {
		g3 := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
		r.Events.Reset()
		require.NoError(t, grantEncrypt(kms.WithGrantTokens(ctx, g3.GrantToken), r.KeyRing, grantAppARN, k.KeyID, nil))
		evs := r.Events.Events()
		require.Len(t, evs, 1)
		assert.Equal(t, kms.OpEncrypt, evs[0].Op)
		assert.Equal(t, kms.OutcomeAllowed, evs[0].Outcome)
		assert.Equal(t, grantAppARN, evs[0].Principal.ARN)
	})
}

func TestGrantLimits(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	var first *kms.CreateGrantOutput
	for i := range kms.MaxGrantsPerGrantee {
		in := kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}}
		if i == 0 {
			in.Name = "first"
		}
		g := grantCreate(t, r.KeyRing, grantAdminARN, in)
		if i == 0 {
			first = g
		}
	}
	_, err := r.CreateGrant(grantAs(ctx, grantAdminARN), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpDecrypt}})
	requireOpErr(t, err, kms.ErrLimitExceeded, kms.OpCreateGrant, k.KeyID)
	assert.Equal(t, "LimitExceededException", kms.ErrorCode(err))
	assert.Len(t, grantIDs(t, r.KeyRing, k.KeyID), kms.MaxGrantsPerGrantee)

	// A retry of an existing grant creates nothing, so it is not refused.
	again := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}, Name: "first"})
	assert.Equal(t, first.GrantID, again.GrantID)
	// The limit is per grantee and per key.
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantOtherARN, Operations: []kms.Op{kms.OpEncrypt}})
	k2 := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k2.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
	// Room again once one is retired.
	require.NoError(t, r.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, first.GrantID))
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpDecrypt}})
	_, err = r.CreateGrant(grantAs(ctx, grantAdminARN), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpDecrypt}})
	requireOpErr(t, err, kms.ErrLimitExceeded, kms.OpCreateGrant, k.KeyID)
	// The grants still work.
	require.NoError(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k.KeyID, nil))
}

// TestGrantReEncrypt checks that ReEncryptFrom is decided on the source key
// with the source context, and ReEncryptTo on the destination key with the
// destination context.
func TestGrantReEncrypt(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	src := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	dst := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: src.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpReEncryptFrom},
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"side": "src"}}})
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: dst.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpReEncryptTo},
		Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"side": "dst"}}})
	srcEC, dstEC := kms.EncryptionContext{"side": "src"}, kms.EncryptionContext{"side": "dst"}
	reEncrypt := func(blob []byte, from kms.EncryptionContext, to string, toEC kms.EncryptionContext) error {
		_, err := r.ReEncrypt(grantAs(ctx, grantAppARN), kms.ReEncryptInput{
			CiphertextBlob: blob, SourceEncryptionContext: from, DestinationKeyID: to, DestinationEncryptionContext: toEC,
		})
		return err
	}
	blob := grantBlob(t, r.KeyRing, src.KeyID, srcEC)
	require.NoError(t, reEncrypt(blob, srcEC, dst.KeyID, dstEC))

	// The destination context does not satisfy the source grant, nor the
	// other way round.
	blobDst := grantBlob(t, r.KeyRing, src.KeyID, dstEC)
	grantDenied(t, reEncrypt(blobDst, dstEC, dst.KeyID, dstEC), kms.OpReEncrypt, anyKeyID, "source context fails the ReEncryptFrom grant")
	grantDenied(t, reEncrypt(blob, srcEC, dst.KeyID, srcEC), kms.OpReEncrypt, anyKeyID, "destination context fails the ReEncryptTo grant")
	// The grants name one side each.
	grantDenied(t, reEncrypt(blob, srcEC, src.KeyID, srcEC), kms.OpReEncrypt, anyKeyID, "no ReEncryptTo on the source key")
	grantDenied(t, grantDecrypt(ctx, r.KeyRing, grantAppARN, blob, srcEC), kms.OpDecrypt, src.KeyID, "ReEncryptFrom is not Decrypt")
}

// TestGrantToAccount checks grants whose grantee is an account (its ID or
// its root ARN): under KeyPolicies they stand for every principal of the
// account, and for no other account's.
func TestGrantToAccount(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, grantee := range []string{grantAccount, grantRootARN} {
		t.Run(grantee, func(t *testing.T) {
			r := grantRing(t)
			k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
			grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantee, Operations: []kms.Op{kms.OpEncrypt}})
			for _, as := range []string{grantAppARN, grantOtherARN, grantRootARN} {
				require.NoError(t, grantEncrypt(ctx, r.KeyRing, as, k.KeyID, nil), as)
			}
			foreign := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::444455556666:role/app", Account: "444455556666"})
			_, err := r.Encrypt(foreign, kms.EncryptInput{KeyID: k.Arn, Plaintext: []byte("p")})
			grantDenied(t, err, kms.OpEncrypt, k.KeyID)
		})
	}
}

// TestGrantCrossAccount checks a grant to a principal of another account.
func TestGrantCrossAccount(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	foreignARN := "arn:aws:iam::444455556666:role/partner"
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: foreignARN, Operations: []kms.Op{kms.OpEncrypt}})
	foreign := kms.WithPrincipal(ctx, kms.Principal{ARN: foreignARN, Account: "444455556666"})
	_, err := r.Encrypt(foreign, kms.EncryptInput{KeyID: k.Arn, Plaintext: []byte("p")})
	require.NoError(t, err)
	// Another role of that account is not the grantee.
	_, err = r.Encrypt(kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::444455556666:role/other", Account: "444455556666"}), kms.EncryptInput{KeyID: k.Arn, Plaintext: []byte("p")})
	grantDenied(t, err, kms.OpEncrypt, k.KeyID)
}

// TestCreateGrantThroughGrantExplicitDeny checks that an explicit Deny of
// kms:CreateGrant in the key policy beats a grant that allows CreateGrant.
func TestCreateGrantThroughGrantExplicitDeny(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, grantPolicy(`{
      "Effect": "Deny",
      "Principal": {"AWS": "`+grantAppARN+`"},
      "Action": "kms:CreateGrant",
      "Resource": "*"
    }`))
	grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpCreateGrant, kms.OpEncrypt}})
	require.NoError(t, grantEncrypt(ctx, r.KeyRing, grantAppARN, k.KeyID, nil))
	_, err := r.CreateGrant(grantAs(ctx, grantAppARN), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantChildARN, Operations: []kms.Op{kms.OpEncrypt}})
	grantDenied(t, err, kms.OpCreateGrant, k.KeyID)
	assert.Len(t, grantIDs(t, r.KeyRing, k.KeyID), 1)
}

// TestCreateGrantConcurrentRetries runs the same named CreateGrant at once
// through two rings that share a Store: one grant results, and every call
// returns its ID. Unnamed calls all make grants.
func TestCreateGrantConcurrentRetries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ms := kms.NewMemoryStore()
	rk := newRootKey(t)
	cfg := kms.Config{Store: ms, RootKey: rk, Policy: kms.KeyPolicies{}, CacheTTL: time.Hour}
	rings := []*kmstest.Ring{kmstest.New(t, cfg), kmstest.New(t, cfg)}
	k := grantKey(t, rings[0].KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	require.NoError(t, grantDescribe(ctx, rings[1].KeyRing, grantAdminARN, k.KeyID)) // ring 1 caches the key
	const n = 16
	named := kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}, Name: "once"}
	unnamed := kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantOtherARN, Operations: []kms.Op{kms.OpEncrypt}}
	ids := make([]string, 2*n)
	errs := make([]error, 2*n)
	done := make(chan struct{})
	for i := range 2 * n {
		go func() {
			defer func() { done <- struct{}{} }()
			in := named
			if i%2 == 1 {
				in = unnamed
			}
			out, err := rings[i%4/2].CreateGrant(grantAs(ctx, grantAdminARN), in)
			errs[i] = err
			if err == nil {
				ids[i] = out.GrantID
			}
		}()
	}
	for range 2 * n {
		<-done
	}
	unnamedIDs := map[string]bool{}
	for i := range 2 * n {
		require.NoError(t, errs[i])
		if i%2 == 0 {
			assert.Equal(t, ids[0], ids[i], "every named call returns the one grant")
		} else {
			unnamedIDs[ids[i]] = true
		}
	}
	assert.Len(t, unnamedIDs, n)
	rec, err := ms.GetKey(ctx, k.KeyID)
	require.NoError(t, err)
	assert.Len(t, rec.Grants, 1+n, "one named grant and every unnamed one")
}

// TestRevokeGrantThroughStaleRing revokes, through a ring whose copy of the
// key predates the grant, a grant made through another ring that shares
// the Store. RevokeGrant is how an administrator stops a grant; answering
// NotFound for a grant that exists (and works through the other ring)
// misleads the caller into thinking there is nothing to revoke.
func TestRevokeGrantThroughStaleRing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ms := kms.NewMemoryStore()
	rk := newRootKey(t)
	cfg := kms.Config{Store: ms, RootKey: rk, Policy: kms.KeyPolicies{}, CacheTTL: time.Hour}
	a, b := kmstest.New(t, cfg), kmstest.New(t, cfg)
	k := grantKey(t, a.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	require.NoError(t, grantDescribe(ctx, b.KeyRing, grantAdminARN, k.KeyID)) // b caches the key
	g := grantCreate(t, a.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
	// b's copy predates the grant: it reads the key again rather than
	// answer NotFound.
	require.NoError(t, b.RevokeGrant(grantAs(ctx, grantAdminARN), k.KeyID, g.GrantID))
	rec, err := ms.GetKey(ctx, k.KeyID)
	require.NoError(t, err)
	assert.Empty(t, rec.Grants)
}

// TestRevokeGrantDeniedBeforeLookup checks that a caller without
// kms:RevokeGrant is denied whether or not the grant it names exists, as
// for any operation that the key policy governs: the answer must not tell
// it which grant IDs exist on the key.
func TestRevokeGrantDeniedBeforeLookup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := grantRing(t)
	k := grantKey(t, r.KeyRing, kms.SymmetricDefault, kms.EncryptDecrypt, "")
	g := grantCreate(t, r.KeyRing, grantAdminARN, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: grantAppARN, Operations: []kms.Op{kms.OpEncrypt}})
	grantDenied(t, r.RevokeGrant(grantAs(ctx, grantOtherARN), k.KeyID, g.GrantID), kms.OpRevokeGrant, k.KeyID, "an existing grant")
	// Whether a grant exists is no answer to a caller who may not revoke.
	err := r.RevokeGrant(grantAs(ctx, grantOtherARN), k.KeyID, strings.Repeat("0", 64))
	grantDenied(t, err, kms.OpRevokeGrant, k.KeyID, "a grant that does not exist")
}

// TestGrantTokensCheckedUnderAllowAll: a malformed grant token is an error
// whatever the Policy.
func TestGrantTokensCheckedUnderAllowAll(t *testing.T) {
	t.Parallel()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	_, err := r.Encrypt(kms.WithGrantTokens(t.Context(), "nonsense"), kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
	require.ErrorIs(t, err, kms.ErrInvalidGrantToken)
}
