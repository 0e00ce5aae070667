package kms_test

import (
	"context"
	"errors"
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

// This file tests aliases: CreateAlias, UpdateAlias, DeleteAlias and
// ListAliases. Helpers (requireOpErr, keyInState, mgmtEncrypt, ...) are in
// lifecycle_test.go.

// aliasTarget returns the key ID an alias resolves to through DescribeKey.
func aliasTarget(t testing.TB, ring *kms.KeyRing, alias string) string {
	t.Helper()
	return mustDescribe(t, ring, alias).KeyID
}

func TestAliasNames(t *testing.T) {
	t.Parallel()
	long := "alias/" + strings.Repeat("n", kms.MaxAliasNameLen-len("alias/"))
	require.Len(t, long, 256)
	cases := []struct {
		name  string
		alias string
		ok    bool
	}{
		{"simple", "alias/orders", true},
		{"every allowed character", "alias/AZaz09/_-", true},
		{"nested", "alias/team/app/key", true},
		{"single character", "alias/x", true},
		{"aws without slash is not reserved", "alias/aws", true},
		{"aws as a prefix of a word", "alias/awsome", true},
		{"256 characters", long, true},
		{"empty", "", false},
		{"prefix only", "alias/", false},
		{"no prefix", "orders", false},
		{"prefix in another case", "Alias/orders", false},
		{"prefix without slash", "aliasorders", false},
		{"reserved alias/aws/", "alias/aws/ebs", false},
		{"reserved alias/aws/ alone", "alias/aws/", false},
		{"257 characters", long + "n", false},
		{"space", "alias/my key", false},
		{"dot", "alias/my.key", false},
		{"colon", "alias/my:key", false},
		{"asterisk", "alias/key*", false},
		{"not ASCII", "alias/clé", false},
		{"newline", "alias/key\n", false},
		{"an alias ARN is not a name", "arn:aws:kms:us-east-1:111122223333:alias/orders", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
			other := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
			err := r.CreateAlias(ctx, tc.alias, k.KeyID)
			if !tc.ok {
				requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpCreateAlias, anyKeyID)
				assert.Equal(t, "ValidationException", kms.ErrorCode(err))
				list, err := r.ListAliases(ctx, kms.ListAliasesInput{})
				require.NoError(t, err)
				assert.Empty(t, list.Aliases, "nothing was created")
				// The other alias operations refuse the name as well.
				requireOpErr(t, r.UpdateAlias(ctx, tc.alias, other.KeyID), kms.ErrInvalidArgument, kms.OpUpdateAlias, anyKeyID)
				requireOpErr(t, r.DeleteAlias(ctx, tc.alias), kms.ErrInvalidArgument, kms.OpDeleteAlias, anyKeyID)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, k.KeyID, aliasTarget(t, r.KeyRing, tc.alias))
			assert.Equal(t, k.KeyID, aliasTarget(t, r.KeyRing, r.AliasARN(tc.alias)))
			require.NoError(t, r.UpdateAlias(ctx, tc.alias, other.KeyID))
			assert.Equal(t, other.KeyID, aliasTarget(t, r.KeyRing, tc.alias))
			require.NoError(t, r.DeleteAlias(ctx, tc.alias))
		})
	}
}

func TestCreateAlias(t *testing.T) {
	t.Parallel()
	type env struct {
		r     *kmstest.Ring
		key   *kms.KeyMetadata // aliased alias/taken
		other *kms.KeyMetadata
	}
	cases := []struct {
		name   string
		alias  string
		target func(e env) string
		want   error // nil: succeeds and points to wantTo
		keyID  func(e env) string
		wantTo func(e env) *kms.KeyMetadata
	}{
		{
			name: "by key ID", alias: "alias/new",
			target: func(e env) string { return e.other.KeyID },
			wantTo: func(e env) *kms.KeyMetadata { return e.other },
		},
		{
			name: "by key ARN", alias: "alias/new",
			target: func(e env) string { return e.other.Arn },
			wantTo: func(e env) *kms.KeyMetadata { return e.other },
		},
		{
			name: "second alias of a key", alias: "alias/second",
			target: func(e env) string { return e.key.KeyID },
			wantTo: func(e env) *kms.KeyMetadata { return e.key },
		},
		{
			name: "name taken, same key", alias: "alias/taken",
			target: func(e env) string { return e.key.KeyID },
			want:   kms.ErrAlreadyExists, keyID: func(e env) string { return e.key.KeyID },
		},
		{
			name: "name taken, other key", alias: "alias/taken",
			target: func(e env) string { return e.other.KeyID },
			want:   kms.ErrAlreadyExists, keyID: func(e env) string { return e.other.KeyID },
		},
		{
			name: "target named by alias", alias: "alias/new",
			target: func(e env) string { return "alias/taken" },
			want:   kms.ErrInvalidArgument, keyID: func(e env) string { return anyKeyID },
		},
		{
			name: "target named by alias ARN", alias: "alias/new",
			target: func(e env) string { return e.r.AliasARN("alias/taken") },
			want:   kms.ErrInvalidArgument, keyID: func(e env) string { return anyKeyID },
		},
		{
			// "alias/taken" is no key ID, so this key ARN names no key.
			name: "target is a key ARN holding an alias name", alias: "alias/new",
			target: func(e env) string { return e.r.KeyARN("alias/taken") },
			want:   kms.ErrNotFound, keyID: func(e env) string { return anyKeyID },
		},
		{
			name: "unknown target", alias: "alias/new",
			target: func(e env) string { return "0e2b9c4d-5a6f-4b7c-8d9e-0f1a2b3c4d5e" },
			want:   kms.ErrNotFound, keyID: func(e env) string { return "0e2b9c4d-5a6f-4b7c-8d9e-0f1a2b3c4d5e" },
		},
		{
			name: "target in another account", alias: "alias/new",
			target: func(e env) string { return "arn:aws:kms:us-east-1:999988887777:key/" + e.other.KeyID },
			want:   kms.ErrNotFound, keyID: func(e env) string { return "arn:aws:kms:us-east-1:999988887777:key/" + e.other.KeyID },
		},
		{
			name: "empty target", alias: "alias/new",
			target: func(e env) string { return "" },
			want:   kms.ErrInvalidArgument, keyID: func(e env) string { return anyKeyID },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			e := env{r: r, key: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt), other: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)}
			require.NoError(t, r.CreateAlias(ctx, "alias/taken", e.key.KeyID))
			r.Clock.Advance(time.Minute)
			before, err := r.ListAliases(ctx, kms.ListAliasesInput{})
			require.NoError(t, err)
			r.Events.Reset()

			err = r.CreateAlias(ctx, tc.alias, tc.target(e))
			evs := r.Events.ByOp(kms.OpCreateAlias)
			require.Len(t, evs, 1)
			if tc.want != nil {
				requireOpErr(t, err, tc.want, kms.OpCreateAlias, tc.keyID(e))
				assert.Equal(t, kms.ErrorCode(err), evs[0].ErrorCode)
				after, err := r.ListAliases(ctx, kms.ListAliasesInput{})
				require.NoError(t, err)
				assert.Equal(t, before, after, "no alias created or moved")
				assert.Equal(t, e.key.KeyID, aliasTarget(t, r.KeyRing, "alias/taken"))
				return
			}
			require.NoError(t, err)
			to := tc.wantTo(e)
			assert.Equal(t, kms.OutcomeAllowed, evs[0].Outcome)
			assert.Equal(t, to.KeyID, evs[0].KeyID)
			assert.Equal(t, to.KeyID, aliasTarget(t, r.KeyRing, tc.alias))
			list, err := r.ListAliases(ctx, kms.ListAliasesInput{KeyID: to.KeyID})
			require.NoError(t, err)
			i := slices.IndexFunc(list.Aliases, func(a kms.AliasListEntry) bool { return a.AliasName == tc.alias })
			require.GreaterOrEqual(t, i, 0)
			got := list.Aliases[i]
			assert.Equal(t, kms.AliasListEntry{
				AliasName: tc.alias, AliasArn: "arn:aws:kms:us-east-1:111122223333:" + tc.alias,
				TargetKeyID:  to.KeyID, // an ID, even when the target was named by ARN
				CreationDate: kmstest.Epoch.Add(time.Minute), LastUpdatedDate: kmstest.Epoch.Add(time.Minute),
			}, got)
			blob := mgmtEncrypt(t, r.KeyRing, tc.alias, "via alias", nil)
			assert.Equal(t, to.Arn, blob.KeyID)
		})
	}
}

// TestCreateAliasTargetState creates an alias for a key in each state.
func TestCreateAliasTargetState(t *testing.T) {
	t.Parallel()
	for _, st := range allKeyStates {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			fx := keyInState(t, r, st)
			err := r.CreateAlias(ctx, "alias/s", fx.key.KeyID)
			if st == kms.KeyStatePendingDeletion {
				requireOpErr(t, err, kms.ErrPendingDeletion, kms.OpCreateAlias, fx.key.KeyID)
				assert.ErrorIs(t, err, kms.ErrInvalidState)
				assert.Equal(t, "KMSInvalidStateException", kms.ErrorCode(err))
				_, err = r.DescribeKey(ctx, "alias/s")
				requireOpErr(t, err, kms.ErrNotFound, kms.OpDescribeKey, "alias/s")
				return
			}
			require.NoError(t, err)
			m := mustDescribe(t, r.KeyRing, "alias/s")
			assert.Equal(t, fx.key, m)
		})
	}
}

func TestUpdateAlias(t *testing.T) {
	t.Parallel()
	type env struct {
		r                *kmstest.Ring
		cur, sym         *kms.KeyMetadata // symmetric; alias/app points to cur
		hmac, rsa, agree *kms.KeyMetadata
		pending          *kms.KeyMetadata // symmetric, pending deletion
	}
	cases := []struct {
		name   string
		alias  string
		target func(e env) string
		want   error
		keyID  func(e env) string
		wantTo func(e env) *kms.KeyMetadata
	}{
		{
			name: "to a key of the same usage and type", alias: "alias/app",
			target: func(e env) string { return e.sym.KeyID },
			wantTo: func(e env) *kms.KeyMetadata { return e.sym },
		},
		{
			name: "by key ARN", alias: "alias/app",
			target: func(e env) string { return e.sym.Arn },
			wantTo: func(e env) *kms.KeyMetadata { return e.sym },
		},
		{
			name: "to the same key", alias: "alias/app",
			target: func(e env) string { return e.cur.KeyID },
			wantTo: func(e env) *kms.KeyMetadata { return e.cur },
		},
		{
			name: "to a key of another usage", alias: "alias/app",
			target: func(e env) string { return e.hmac.KeyID },
			want:   kms.ErrInvalidArgument, keyID: func(e env) string { return e.hmac.KeyID },
		},
		{
			name: "to an asymmetric key of the same usage", alias: "alias/app",
			target: func(e env) string { return e.rsa.KeyID },
			want:   kms.ErrInvalidArgument, keyID: func(e env) string { return e.rsa.KeyID },
		},
		{
			name: "to a key agreement key", alias: "alias/app",
			target: func(e env) string { return e.agree.KeyID },
			want:   kms.ErrInvalidArgument, keyID: func(e env) string { return e.agree.KeyID },
		},
		{
			name: "to a key pending deletion", alias: "alias/app",
			target: func(e env) string { return e.pending.KeyID },
			want:   kms.ErrPendingDeletion, keyID: func(e env) string { return e.pending.KeyID },
		},
		{
			name: "target named by alias", alias: "alias/app",
			target: func(e env) string { return "alias/other" },
			want:   kms.ErrInvalidArgument, keyID: func(e env) string { return anyKeyID },
		},
		{
			name: "target named by alias ARN", alias: "alias/app",
			target: func(e env) string { return e.r.AliasARN("alias/other") },
			want:   kms.ErrInvalidArgument, keyID: func(e env) string { return anyKeyID },
		},
		{
			name: "unknown target", alias: "alias/app",
			target: func(e env) string { return "alias-less-unknown-id" },
			want:   kms.ErrNotFound, keyID: func(e env) string { return "alias-less-unknown-id" },
		},
		{
			name: "unknown alias", alias: "alias/none",
			target: func(e env) string { return e.sym.KeyID },
			want:   kms.ErrNotFound, keyID: func(e env) string { return "alias/none" },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			e := env{
				r:   r,
				cur: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt), sym: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt),
				hmac: r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac), agree: r.CreateKey(kms.ECCNISTP256, kms.KeyAgreement),
			}
			if tc.name == "to an asymmetric key of the same usage" {
				e.rsa = r.CreateKey(kms.RSA2048, kms.EncryptDecrypt)
			}
			e.pending = keyInState(t, r, kms.KeyStatePendingDeletion).key
			require.NoError(t, r.CreateAlias(ctx, "alias/app", e.cur.KeyID))
			require.NoError(t, r.CreateAlias(ctx, "alias/other", e.sym.KeyID))
			old := mgmtEncrypt(t, r.KeyRing, "alias/app", "old", nil).CiphertextBlob
			r.Clock.Advance(time.Hour)
			r.Events.Reset()

			err := r.UpdateAlias(ctx, tc.alias, tc.target(e))
			evs := r.Events.ByOp(kms.OpUpdateAlias)
			require.Len(t, evs, 1)
			if tc.want != nil {
				requireOpErr(t, err, tc.want, kms.OpUpdateAlias, tc.keyID(e))
				assert.Equal(t, kms.ErrorCode(err), evs[0].ErrorCode)
				assert.Equal(t, e.cur.KeyID, aliasTarget(t, r.KeyRing, "alias/app"), "the alias did not move")
				if tc.alias == "alias/none" {
					_, err := r.DescribeKey(ctx, "alias/none")
					requireOpErr(t, err, kms.ErrNotFound, kms.OpDescribeKey, "alias/none")
				}
				return
			}
			require.NoError(t, err)
			to := tc.wantTo(e)
			assert.Equal(t, to.KeyID, evs[0].KeyID)
			assert.Equal(t, to.KeyID, aliasTarget(t, r.KeyRing, "alias/app"))
			assert.Equal(t, to.KeyID, aliasTarget(t, r.KeyRing, r.AliasARN("alias/app")))
			list, err := r.ListAliases(ctx, kms.ListAliasesInput{KeyID: to.KeyID})
			require.NoError(t, err)
			i := slices.IndexFunc(list.Aliases, func(a kms.AliasListEntry) bool { return a.AliasName == "alias/app" })
			require.GreaterOrEqual(t, i, 0)
			assert.Equal(t, kmstest.Epoch, list.Aliases[i].CreationDate, "CreationDate is kept")
			assert.Equal(t, kmstest.Epoch.Add(time.Hour), list.Aliases[i].LastUpdatedDate)
			// New encryptions go to the new key; the old blob still
			// decrypts, as it names its key.
			out := mgmtEncrypt(t, r.KeyRing, "alias/app", "new", nil)
			assert.Equal(t, to.Arn, out.KeyID)
			mgmtDecrypts(t, r.KeyRing, old, nil, "old", 1)
		})
	}
	t.Run("away from a key pending deletion", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := kmstest.New(t)
		k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		next := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		require.NoError(t, r.CreateAlias(ctx, "alias/app", k.KeyID))
		_, err := r.ScheduleKeyDeletion(ctx, k.KeyID, 7)
		require.NoError(t, err)
		_, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/app", Plaintext: []byte("x")})
		requireOpErr(t, err, kms.ErrPendingDeletion, kms.OpEncrypt, k.KeyID)
		require.NoError(t, r.UpdateAlias(ctx, "alias/app", next.KeyID))
		mgmtEncrypt(t, r.KeyRing, "alias/app", "x", nil)
	})
}

func TestDeleteAlias(t *testing.T) {
	t.Parallel()
	t.Run("then the alias names nothing", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := kmstest.New(t)
		k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		require.NoError(t, r.CreateAlias(ctx, "alias/gone", k.KeyID))
		require.NoError(t, r.CreateAlias(ctx, "alias/kept", k.KeyID))
		blob := mgmtEncrypt(t, r.KeyRing, "alias/gone", "p", nil).CiphertextBlob
		r.Events.Reset()

		require.NoError(t, r.DeleteAlias(ctx, "alias/gone"))
		evs := r.Events.Events()
		require.Len(t, evs, 1)
		assert.Equal(t, kms.OpDeleteAlias, evs[0].Op)
		assert.Equal(t, k.KeyID, evs[0].KeyID)
		assert.Equal(t, k.Arn, evs[0].KeyARN)
		assert.Equal(t, kms.OutcomeAllowed, evs[0].Outcome)

		uses := []struct {
			op  kms.Op
			run func(name string) error
		}{
			{kms.OpDescribeKey, func(n string) error { _, err := r.DescribeKey(ctx, n); return err }},
			{kms.OpEncrypt, func(n string) error {
				_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: n, Plaintext: []byte("x")})
				return err
			}},
			{kms.OpDecrypt, func(n string) error {
				_, err := r.Decrypt(ctx, kms.DecryptInput{KeyID: n, CiphertextBlob: blob})
				return err
			}},
			{kms.OpDisableKey, func(n string) error { return r.DisableKey(ctx, n) }},
			{kms.OpTagResource, func(n string) error { return r.TagResource(ctx, n, []kms.Tag{tag("a", "b")}) }},
			{kms.OpRotateKeyOnDemand, func(n string) error { _, err := r.RotateKeyOnDemand(ctx, n); return err }},
			{kms.OpListAliases, func(n string) error {
				_, err := r.ListAliases(ctx, kms.ListAliasesInput{KeyID: n})
				return err
			}},
			{kms.OpDeleteAlias, func(n string) error { return r.DeleteAlias(ctx, n) }},
			{kms.OpUpdateAlias, func(n string) error { return r.UpdateAlias(ctx, "alias/gone", k.KeyID) }},
		}
		for _, u := range uses {
			for _, name := range []string{"alias/gone", r.AliasARN("alias/gone")} {
				if (u.op == kms.OpDeleteAlias || u.op == kms.OpUpdateAlias) && name != "alias/gone" {
					continue
				}
				requireOpErr(t, u.run(name), kms.ErrNotFound, u.op, name)
			}
		}
		// The key and its other alias are unaffected.
		m := mustDescribe(t, r.KeyRing, "alias/kept")
		assert.Equal(t, kms.KeyStateEnabled, m.KeyState)
		mgmtDecrypts(t, r.KeyRing, blob, nil, "p", 1)
		list, err := r.ListAliases(ctx, kms.ListAliasesInput{KeyID: k.KeyID})
		require.NoError(t, err)
		require.Len(t, list.Aliases, 1)
		assert.Equal(t, "alias/kept", list.Aliases[0].AliasName)
		// The name can be used again, for another key.
		other := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		require.NoError(t, r.CreateAlias(ctx, "alias/gone", other.KeyID))
		assert.Equal(t, other.KeyID, aliasTarget(t, r.KeyRing, "alias/gone"))
	})
	cases := []struct {
		name  string
		alias string
		want  error
		keyID string
	}{
		{"unknown", "alias/never", kms.ErrNotFound, "alias/never"},
		{"reserved", "alias/aws/s3", kms.ErrInvalidArgument, anyKeyID},
		{"not an alias name", "orders", kms.ErrInvalidArgument, anyKeyID},
		{"empty", "", kms.ErrInvalidArgument, anyKeyID},
		{"alias ARN is not accepted", "arn:aws:kms:us-east-1:111122223333:alias/app", kms.ErrInvalidArgument, anyKeyID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
			require.NoError(t, r.CreateAlias(ctx, "alias/app", k.KeyID))
			requireOpErr(t, r.DeleteAlias(ctx, tc.alias), tc.want, kms.OpDeleteAlias, tc.keyID)
			assert.Equal(t, k.KeyID, aliasTarget(t, r.KeyRing, "alias/app"))
		})
	}
	for _, st := range []kms.KeyState{kms.KeyStateDisabled, kms.KeyStatePendingDeletion, kms.KeyStatePendingImport} {
		t.Run("alias of a key "+string(st), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			fx := keyInState(t, r, kms.KeyStateEnabled)
			if st == kms.KeyStatePendingImport {
				fx = keyInState(t, r, st)
			}
			require.NoError(t, r.CreateAlias(ctx, "alias/x", fx.key.KeyID))
			switch st {
			case kms.KeyStateDisabled:
				require.NoError(t, r.DisableKey(ctx, fx.key.KeyID))
			case kms.KeyStatePendingDeletion:
				_, err := r.ScheduleKeyDeletion(ctx, fx.key.KeyID, 7)
				require.NoError(t, err)
			}
			require.NoError(t, r.DeleteAlias(ctx, "alias/x"))
			_, err := r.DescribeKey(ctx, "alias/x")
			requireOpErr(t, err, kms.ErrNotFound, kms.OpDescribeKey, "alias/x")
		})
	}
}

func TestListAliases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	k1 := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	k2 := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
	bare := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	var all, of1, of2 []string
	for i := range 57 {
		name := fmt.Sprintf("alias/k1-%02d", i)
		target := k1
		if i%3 == 0 {
			name, target = fmt.Sprintf("alias/k2/%02d", i), k2
		}
		require.NoError(t, r.CreateAlias(ctx, name, target.KeyID))
		all = append(all, name)
		if target == k1 {
			of1 = append(of1, name)
		} else {
			of2 = append(of2, name)
		}
		r.Clock.Advance(time.Second)
	}
	slices.Sort(all)
	slices.Sort(of1)
	slices.Sort(of2)
	require.NoError(t, r.CreateAlias(ctx, "alias/k1-by-alias", k1.KeyID))
	require.NoError(t, r.DeleteAlias(ctx, "alias/k1-by-alias"))

	walk := func(t *testing.T, in kms.ListAliasesInput) []kms.AliasListEntry {
		t.Helper()
		eff := in.Limit
		if eff == 0 {
			eff = 50
		}
		var got []kms.AliasListEntry
		for page := 0; ; page++ {
			require.Less(t, page, 100, "the walk must end")
			out, err := r.ListAliases(ctx, in)
			require.NoError(t, err)
			require.LessOrEqual(t, len(out.Aliases), eff)
			got = append(got, out.Aliases...)
			if !out.Truncated {
				assert.Empty(t, out.NextMarker)
				return got
			}
			require.Len(t, out.Aliases, eff, "a truncated page is full")
			assert.Equal(t, out.Aliases[len(out.Aliases)-1].AliasName, out.NextMarker)
			in.Marker = out.NextMarker
		}
	}
	names := func(es []kms.AliasListEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.AliasName)
		}
		return out
	}

	filters := []struct {
		name  string
		keyID string
		want  []string
	}{
		{"all", "", all},
		{"of k1 by ID", k1.KeyID, of1},
		{"of k1 by ARN", k1.Arn, of1},
		{"of k2 by alias", of2[0], of2},
		{"of k2 by alias ARN", r.AliasARN(of2[0]), of2},
		{"of a key with none", bare.KeyID, nil},
	}
	for _, f := range filters {
		for _, limit := range []int{0, 1, 2, 5, 19, 50, 100} {
			t.Run(fmt.Sprintf("%s/Limit=%d", f.name, limit), func(t *testing.T) {
				t.Parallel()
				got := walk(t, kms.ListAliasesInput{KeyID: f.keyID, Limit: limit})
				assert.Equal(t, f.want, names(got), "every alias exactly once, in name order")
				for _, e := range got {
					assert.Equal(t, r.AliasARN(e.AliasName), e.AliasArn)
					assert.Equal(t, "arn:aws:kms:us-east-1:111122223333:"+e.AliasName, e.AliasArn)
					if strings.HasPrefix(e.AliasName, "alias/k2/") {
						assert.Equal(t, k2.KeyID, e.TargetKeyID)
					} else {
						assert.Equal(t, k1.KeyID, e.TargetKeyID)
					}
					assert.False(t, e.CreationDate.Before(kmstest.Epoch))
					assert.Equal(t, e.CreationDate, e.LastUpdatedDate)
				}
			})
		}
	}
	t.Run("default Limit is 50", func(t *testing.T) {
		t.Parallel()
		out, err := r.ListAliases(ctx, kms.ListAliasesInput{})
		require.NoError(t, err)
		assert.Len(t, out.Aliases, 50)
		assert.True(t, out.Truncated)
	})
	invalid := []struct {
		name  string
		in    kms.ListAliasesInput
		want  error
		keyID string
	}{
		{"Limit 101", kms.ListAliasesInput{Limit: 101}, kms.ErrInvalidArgument, ""},
		{"negative Limit", kms.ListAliasesInput{Limit: -5}, kms.ErrInvalidArgument, ""},
		{"Marker with space", kms.ListAliasesInput{Marker: "alias/a b"}, kms.ErrInvalidArgument, ""},
		{"Marker too long", kms.ListAliasesInput{Marker: strings.Repeat("m", 1025)}, kms.ErrInvalidArgument, ""},
		{"unknown key", kms.ListAliasesInput{KeyID: "1d2c3b4a-5f6e-4d7c-8b9a-0a1b2c3d4e5f"}, kms.ErrNotFound, "1d2c3b4a-5f6e-4d7c-8b9a-0a1b2c3d4e5f"},
		{"unknown alias", kms.ListAliasesInput{KeyID: "alias/k1-by-alias"}, kms.ErrNotFound, "alias/k1-by-alias"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := r.ListAliases(ctx, tc.in)
			assert.Nil(t, out)
			requireOpErr(t, err, tc.want, kms.OpListAliases, tc.keyID)
		})
	}
}

// TestAliasStoreWriteFailure makes the Store fail alias writes: the alias
// operation fails and the alias keeps its previous target.
func TestAliasStoreWriteFailure(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r, fs, rk := newFaultyRing(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	next := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	require.NoError(t, r.CreateAlias(ctx, "alias/app", k.KeyID))

	fs.failPutAlias.Store(true)
	requireOpErr(t, r.CreateAlias(ctx, "alias/new", k.KeyID), errStoreDown, kms.OpCreateAlias, k.KeyID)
	requireOpErr(t, r.UpdateAlias(ctx, "alias/app", next.KeyID), errStoreDown, kms.OpUpdateAlias, next.KeyID)
	fs.failPutAlias.Store(false)

	_, err := r.DescribeKey(ctx, "alias/new")
	requireOpErr(t, err, kms.ErrNotFound, kms.OpDescribeKey, "alias/new")
	assert.Equal(t, k.KeyID, aliasTarget(t, r.KeyRing, "alias/app"))
	fresh := kmstest.New(t, kms.Config{Store: fs, RootKey: rk})
	assert.Equal(t, k.KeyID, aliasTarget(t, fresh.KeyRing, "alias/app"))
	out := mgmtEncrypt(t, r.KeyRing, "alias/app", "p", nil)
	assert.Equal(t, k.Arn, out.KeyID)
}

// TestAliasPolicy checks the alias a Policy sees and that a denied alias
// operation changes nothing.
func TestAliasPolicy(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	errNo := errors.New("alias changes need approval")
	pol := &policyLog{deny: func(req kms.Request) error {
		if req.Principal.ARN == "arn:aws:iam::111122223333:role/readonly" &&
			(req.Op == kms.OpCreateAlias || req.Op == kms.OpUpdateAlias || req.Op == kms.OpDeleteAlias) {
			return errNo
		}
		return nil
	}}
	r := kmstest.New(t, kms.Config{Policy: pol})
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	next := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	require.NoError(t, r.CreateAlias(ctx, "alias/app", k.KeyID))
	pol.take()

	ro := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/readonly", Account: "111122223333"})
	for _, c := range []struct {
		op    kms.Op
		keyID string
		run   func() error
	}{
		{kms.OpCreateAlias, k.KeyID, func() error { return r.CreateAlias(ro, "alias/mine", k.KeyID) }},
		{kms.OpUpdateAlias, next.KeyID, func() error { return r.UpdateAlias(ro, "alias/app", next.KeyID) }},
		{kms.OpDeleteAlias, k.KeyID, func() error { return r.DeleteAlias(ro, "alias/app") }},
	} {
		r.Events.Reset()
		err := c.run()
		requireOpErr(t, err, kms.ErrAccessDenied, c.op, c.keyID)
		assert.ErrorIs(t, err, errNo)
		ev, ok := r.Events.Last()
		require.True(t, ok)
		assert.Equal(t, kms.OutcomeDenied, ev.Outcome)
		assert.Equal(t, "AccessDeniedException", ev.ErrorCode)
	}
	assert.Equal(t, k.KeyID, aliasTarget(t, r.KeyRing, "alias/app"))
	_, err := r.DescribeKey(ctx, "alias/mine")
	requireOpErr(t, err, kms.ErrNotFound, kms.OpDescribeKey, "alias/mine")
	pol.take()

	// DeleteAlias names the key by its alias.
	require.NoError(t, r.DeleteAlias(ctx, "alias/app"))
	reqs := pol.take()
	require.Len(t, reqs, 1)
	assert.Equal(t, kms.OpDeleteAlias, reqs[0].Op)
	assert.Equal(t, k.KeyID, reqs[0].KeyID)
	assert.Equal(t, "alias/app", reqs[0].RequestAlias)
}

// TestAliasConcurrentCreate races CreateAlias for one name: exactly one
// caller wins, the others get ErrAlreadyExists.
func TestAliasConcurrentCreate(t *testing.T) {
	t.Parallel()
	r := kmstest.New(t)
	keys := make([]*kms.KeyMetadata, 8)
	for i := range keys {
		keys[i] = r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	}
	errs := make([]error, len(keys))
	done := make(chan struct{})
	for i, k := range keys {
		go func() {
			defer func() { done <- struct{}{} }()
			errs[i] = r.CreateAlias(context.Background(), "alias/race", k.KeyID)
		}()
	}
	for range keys {
		<-done
	}
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "two CreateAlias calls won")
			winner = i
			continue
		}
		requireOpErr(t, err, kms.ErrAlreadyExists, kms.OpCreateAlias, keys[i].KeyID)
	}
	require.GreaterOrEqual(t, winner, 0, "one CreateAlias call wins")
	assert.Equal(t, keys[winner].KeyID, aliasTarget(t, r.KeyRing, "alias/race"))
}

// TestDeleteAliasAuthorizesStoredTarget: DeleteAlias asks the Policy about
// the key the alias names in the Store, not a stale cached target.
func TestDeleteAliasAuthorizesStoredTarget(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := kms.NewMemoryStore()
	rk := newRootKey(t)
	var k1 string
	onlyK1 := kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
		if req.Op == kms.OpDeleteAlias && req.KeyID != k1 {
			return errors.New("may delete aliases of k1 only")
		}
		return nil
	})
	a := kmstest.New(t, kms.Config{Store: store, RootKey: rk, CacheTTL: time.Hour, Policy: onlyK1})
	b := kmstest.New(t, kms.Config{Store: store, RootKey: rk, CacheTTL: time.Hour})
	k1 = a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	k2 := a.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	require.NoError(t, a.CreateAlias(ctx, "alias/prod", k1))
	_, err := a.DescribeKey(ctx, "alias/prod") // a caches alias/prod → k1
	require.NoError(t, err)
	require.NoError(t, b.UpdateAlias(ctx, "alias/prod", k2))
	require.ErrorIs(t, a.DeleteAlias(ctx, "alias/prod"), kms.ErrAccessDenied)
	m, err := b.DescribeKey(ctx, "alias/prod")
	require.NoError(t, err)
	assert.Equal(t, k2, m.KeyID, "the alias is still there")
}
