package kms_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// This file tests the version controls (ListKeyVersions, DisableKeyVersion,
// EnableKeyVersion, DestroyKeyVersion, UpdateKeyVersionLimits), how they
// reach Decrypt, ReEncrypt, VerifyMac and GetPublicKey, the edges of the
// rotation API (EnableKeyRotation, DisableKeyRotation,
// GetKeyRotationStatus, ListKeyRotations) and the audit events of all of
// them.

// kvFixture is a SYMMETRIC_DEFAULT key rotated twice on demand, a day
// apart: versions 1, 2 and 3, 3 primary, with blobs[i] encrypted under
// version i+1 before each rotation.
type kvFixture struct {
	r       *kmstest.Ring
	key     *kms.KeyMetadata
	ec      kms.EncryptionContext
	pts     [][]byte
	blobs   [][]byte
	created []time.Time // created[i] is when version i+1 was made
}

func newKVFixture(t *testing.T) *kvFixture {
	t.Helper()
	ctx := t.Context()
	r := kmstest.New(t)
	fx := &kvFixture{r: r, key: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt), ec: kms.EncryptionContext{"purpose": "versions"}}
	fx.created = append(fx.created, r.Clock.Now())
	for v := uint32(1); v <= 3; v++ {
		pt := []byte(fmt.Sprintf("secret sealed under version %d", v))
		out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: fx.key.KeyID, Plaintext: pt, EncryptionContext: fx.ec})
		require.NoError(t, err)
		require.Equal(t, v, out.KeyVersion)
		fx.pts, fx.blobs = append(fx.pts, pt), append(fx.blobs, out.CiphertextBlob)
		if v < 3 {
			r.Clock.Advance(day)
			nv, err := r.RotateKeyOnDemand(ctx, fx.key.KeyID)
			require.NoError(t, err)
			require.Equal(t, v+1, nv)
			fx.created = append(fx.created, r.Clock.Now())
		}
	}
	r.Events.Reset()
	return fx
}

// requireOpens checks that the blob made by version v decrypts, under v.
func (fx *kvFixture) requireOpens(t *testing.T, v uint32) {
	t.Helper()
	out, err := fx.r.Decrypt(t.Context(), kms.DecryptInput{CiphertextBlob: fx.blobs[v-1], EncryptionContext: fx.ec})
	require.NoError(t, err, "blob of version %d", v)
	require.Equal(t, v, out.KeyVersion)
	require.True(t, bytes.Equal(fx.pts[v-1], out.Plaintext), "blob of version %d gives its plaintext", v)
}

// requireRefused checks that the blob made by version v fails to decrypt
// with want, in an error that names the key and the version.
func (fx *kvFixture) requireRefused(t *testing.T, v uint32, want error) *kms.Error {
	t.Helper()
	out, err := fx.r.Decrypt(t.Context(), kms.DecryptInput{CiphertextBlob: fx.blobs[v-1], EncryptionContext: fx.ec})
	require.Nil(t, out, "no plaintext")
	ke := requireOpErr(t, err, want, kms.OpDecrypt, fx.key.KeyID)
	require.ErrorIs(t, err, kms.ErrInvalidState, "every version refusal is an invalid state")
	assert.Equal(t, "KMSInvalidStateException", kms.ErrorCode(err))
	assert.Contains(t, err.Error(), fx.key.KeyID, "the error names the key")
	assert.Contains(t, err.Error(), fmt.Sprintf("version %d", v), "the error names the version")
	return ke
}

// versions lists the key's versions.
func (fx *kvFixture) versions(t *testing.T) *kms.ListKeyVersionsOutput {
	t.Helper()
	out, err := fx.r.ListKeyVersions(t.Context(), fx.key.KeyID)
	require.NoError(t, err)
	require.Equal(t, fx.key.Arn, out.KeyID)
	return out
}

// states returns the state of each version, oldest first.
func (fx *kvFixture) states(t *testing.T) []kms.VersionState {
	t.Helper()
	var s []kms.VersionState
	for _, v := range fx.versions(t).Versions {
		s = append(s, v.State)
	}
	return s
}

var (
	vEnabled   = kms.VersionEnabled
	vDisabled  = kms.VersionDisabled
	vDestroyed = kms.VersionDestroyed
)

func TestKeyVersionControls(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(t *testing.T, fx *kvFixture)
	}{
		{"fixture: three enabled versions, 3 primary", func(t *testing.T, fx *kvFixture) {
			out := fx.versions(t)
			require.Len(t, out.Versions, 3)
			for i, v := range out.Versions {
				assert.Equal(t, uint32(i+1), v.Version)
				assert.Equal(t, vEnabled, v.State)
				assert.Equal(t, fx.created[i], v.CreatedAt, "version %d's creation date", i+1)
				assert.True(t, v.DestroyedAt.IsZero())
				assert.Equal(t, i == 2, v.Primary, "version %d primary", i+1)
			}
			assert.Zero(t, out.MinDecryptionVersion)
			assert.Zero(t, out.MinEncryptionVersion)
			for v := uint32(1); v <= 3; v++ {
				fx.requireOpens(t, v)
			}
		}},
		{"disable then enable a version", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			require.NoError(t, fx.r.DisableKeyVersion(ctx, fx.key.Arn, 1), "the key may be named by ARN")
			ke := fx.requireRefused(t, 1, kms.ErrKeyVersionDisabled)
			assert.NotErrorIs(t, ke, kms.ErrKeyVersionDestroyed)
			assert.NotErrorIs(t, ke, kms.ErrKeyVersionRetired)
			assert.NotErrorIs(t, ke, kms.ErrDisabled, "the version, not the key, is disabled")
			fx.requireOpens(t, 2)
			fx.requireOpens(t, 3)
			assert.Equal(t, []kms.VersionState{vDisabled, vEnabled, vEnabled}, fx.states(t))
			md := mustDescribe(t, fx.r.KeyRing, fx.key.KeyID)
			assert.Equal(t, kms.KeyStateEnabled, md.KeyState, "the key stays enabled")

			require.NoError(t, fx.r.DisableKeyVersion(ctx, fx.key.KeyID, 1), "disabling twice is allowed")
			fx.requireRefused(t, 1, kms.ErrKeyVersionDisabled)

			require.NoError(t, fx.r.EnableKeyVersion(ctx, fx.key.KeyID, 1))
			fx.requireOpens(t, 1)
			assert.Equal(t, []kms.VersionState{vEnabled, vEnabled, vEnabled}, fx.states(t))
			require.NoError(t, fx.r.EnableKeyVersion(ctx, fx.key.KeyID, 1), "enabling an enabled version does nothing")
			fx.requireOpens(t, 1)
		}},
		{"destroy a version", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			fx.r.Clock.Advance(time.Hour)
			destroyedAt := fx.r.Clock.Now()
			require.NoError(t, fx.r.DestroyKeyVersion(ctx, fx.key.KeyID, 2))
			fx.requireRefused(t, 2, kms.ErrKeyVersionDestroyed)
			_, err := fx.r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: fx.blobs[1], EncryptionContext: fx.ec})
			assert.Contains(t, err.Error(), "destroyed on "+destroyedAt.Format(time.DateOnly))

			err = fx.r.EnableKeyVersion(ctx, fx.key.KeyID, 2)
			requireOpErr(t, err, kms.ErrKeyVersionDestroyed, kms.OpEnableKeyVersion, fx.key.KeyID)
			assert.Contains(t, err.Error(), "version 2")
			err = fx.r.DisableKeyVersion(ctx, fx.key.KeyID, 2)
			requireOpErr(t, err, kms.ErrKeyVersionDestroyed, kms.OpDisableKeyVersion, fx.key.KeyID)
			assert.Contains(t, err.Error(), "version 2")

			fx.r.Clock.Advance(time.Hour)
			require.NoError(t, fx.r.DestroyKeyVersion(ctx, fx.key.KeyID, 2), "destroying again is a no-op")
			fx.requireRefused(t, 2, kms.ErrKeyVersionDestroyed)
			fx.requireOpens(t, 1)
			fx.requireOpens(t, 3)

			_, err = fx.r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: fx.blobs[1], SourceEncryptionContext: fx.ec, DestinationKeyID: fx.key.KeyID})
			crRequireErr(t, err, kms.OpReEncrypt, kms.ErrKeyVersionDestroyed)

			out := fx.versions(t)
			require.Len(t, out.Versions, 3)
			assert.Equal(t, []kms.VersionState{vEnabled, vDestroyed, vEnabled}, fx.states(t))
			for i, v := range out.Versions {
				assert.Equal(t, uint32(i+1), v.Version)
				assert.Equal(t, fx.created[i], v.CreatedAt)
				assert.Equal(t, i == 2, v.Primary, "only version 3 is primary")
				if i == 1 {
					assert.Equal(t, destroyedAt, v.DestroyedAt, "the first destruction's date stays")
				} else {
					assert.True(t, v.DestroyedAt.IsZero(), "version %d not destroyed", i+1)
				}
			}
			md := mustDescribe(t, fx.r.KeyRing, fx.key.KeyID)
			assert.Equal(t, 3, md.Versions, "a destroyed version is still counted")
			assert.Equal(t, uint32(3), md.PrimaryVersion)
		}},
		{"destroy a disabled version", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			require.NoError(t, fx.r.DisableKeyVersion(ctx, fx.key.KeyID, 1))
			require.NoError(t, fx.r.DestroyKeyVersion(ctx, fx.key.KeyID, 1))
			fx.requireRefused(t, 1, kms.ErrKeyVersionDestroyed)
			assert.Equal(t, []kms.VersionState{vDestroyed, vEnabled, vEnabled}, fx.states(t))
		}},
		{"minimum decryption version", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			require.NoError(t, fx.r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: fx.key.KeyID, MinDecryptionVersion: 3}))
			ke := fx.requireRefused(t, 1, kms.ErrKeyVersionRetired)
			assert.Contains(t, ke.Error(), "version 1 is below 3")
			fx.requireRefused(t, 2, kms.ErrKeyVersionRetired)
			fx.requireOpens(t, 3)
			out := fx.versions(t)
			assert.Equal(t, uint32(3), out.MinDecryptionVersion)
			assert.Zero(t, out.MinEncryptionVersion)
			assert.Equal(t, []kms.VersionState{vEnabled, vEnabled, vEnabled}, fx.states(t), "retiring is not disabling")

			re, err := fx.r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: fx.blobs[0], SourceEncryptionContext: fx.ec, DestinationKeyID: fx.key.KeyID})
			require.Nil(t, re)
			crRequireErr(t, err, kms.OpReEncrypt, kms.ErrKeyVersionRetired)
			assert.Contains(t, err.Error(), "version 1")

			require.NoError(t, fx.r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: fx.key.KeyID}), "the limit can be lowered again")
			fx.requireOpens(t, 1)
			fx.requireOpens(t, 2)
			assert.Zero(t, fx.versions(t).MinDecryptionVersion)
		}},
		{"limits out of range", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			for _, c := range []struct {
				name     string
				dec, enc uint32
				ok       bool
			}{
				{"decryption above the primary", 4, 0, false},
				{"encryption above the primary", 0, 4, false},
				{"encryption below decryption", 3, 2, false},
				{"far above", 1 << 31, 0, false},
				{"decryption at the primary", 3, 0, true},
				{"both at the primary", 3, 3, true},
				{"encryption only", 0, 2, true},
				{"encryption above decryption", 1, 2, true},
				{"none", 0, 0, true},
			} {
				before := fx.versions(t)
				err := fx.r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: fx.key.KeyID, MinDecryptionVersion: c.dec, MinEncryptionVersion: c.enc})
				after := fx.versions(t)
				if c.ok {
					require.NoError(t, err, c.name)
					assert.Equal(t, c.dec, after.MinDecryptionVersion, c.name)
					assert.Equal(t, c.enc, after.MinEncryptionVersion, c.name)
					continue
				}
				requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpUpdateKeyVersionLimits, fx.key.KeyID)
				assert.Equal(t, "ValidationException", kms.ErrorCode(err), c.name)
				assert.Equal(t, before.MinDecryptionVersion, after.MinDecryptionVersion, "%s: limits unchanged", c.name)
				assert.Equal(t, before.MinEncryptionVersion, after.MinEncryptionVersion, "%s: limits unchanged", c.name)
			}
		}},
		{"primary, absent and zero versions are refused", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			ops := []struct {
				op kms.Op
				do func(v uint32) error
			}{
				{kms.OpDisableKeyVersion, func(v uint32) error { return fx.r.DisableKeyVersion(ctx, fx.key.KeyID, v) }},
				{kms.OpEnableKeyVersion, func(v uint32) error { return fx.r.EnableKeyVersion(ctx, fx.key.KeyID, v) }},
				{kms.OpDestroyKeyVersion, func(v uint32) error { return fx.r.DestroyKeyVersion(ctx, fx.key.KeyID, v) }},
			}
			for _, o := range ops {
				for _, v := range []uint32{9, 0, 4} {
					err := o.do(v)
					requireOpErr(t, err, kms.ErrInvalidArgument, o.op, fx.key.KeyID)
					assert.Contains(t, err.Error(), fmt.Sprintf("no version %d", v), "%s %d", o.op, v)
				}
				if o.op == kms.OpEnableKeyVersion {
					continue // enabling the (enabled) primary is not asked
				}
				err := o.do(3)
				requireOpErr(t, err, kms.ErrInvalidArgument, o.op, fx.key.KeyID)
				assert.Contains(t, err.Error(), "primary", "%s of the primary", o.op)
			}
			assert.Equal(t, []kms.VersionState{vEnabled, vEnabled, vEnabled}, fx.states(t))
			fx.requireOpens(t, 3)
			out, err := fx.r.Encrypt(ctx, kms.EncryptInput{KeyID: fx.key.KeyID, Plaintext: []byte("still works")})
			require.NoError(t, err)
			assert.Equal(t, uint32(3), out.KeyVersion)
		}},
		{"rewrapped data opens after the minimum is raised", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			v, err := fx.r.RotateKeyOnDemand(ctx, fx.key.KeyID)
			require.NoError(t, err)
			require.Equal(t, uint32(4), v)
			re, err := fx.r.ReEncrypt(ctx, kms.ReEncryptInput{
				CiphertextBlob: fx.blobs[2], SourceEncryptionContext: fx.ec,
				DestinationKeyID: fx.key.KeyID, DestinationEncryptionContext: fx.ec,
			})
			require.NoError(t, err)
			assert.Equal(t, uint32(3), re.SourceKeyVersion)
			assert.Equal(t, uint32(4), re.KeyVersion)
			assert.Equal(t, fx.key.Arn, re.KeyID)

			require.NoError(t, fx.r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: fx.key.KeyID, MinDecryptionVersion: 4}))
			fx.requireRefused(t, 3, kms.ErrKeyVersionRetired)
			dec, err := fx.r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: fx.ec})
			require.NoError(t, err)
			assert.Equal(t, uint32(4), dec.KeyVersion)
			require.True(t, bytes.Equal(fx.pts[2], dec.Plaintext), "the rewrapped blob gives the original plaintext")
		}},
		{"version controls on a disabled key", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			require.NoError(t, fx.r.DisableKey(ctx, fx.key.KeyID))
			require.NoError(t, fx.r.DisableKeyVersion(ctx, fx.key.KeyID, 1))
			require.NoError(t, fx.r.EnableKeyVersion(ctx, fx.key.KeyID, 1))
			require.NoError(t, fx.r.DestroyKeyVersion(ctx, fx.key.KeyID, 2))
			require.NoError(t, fx.r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: fx.key.KeyID, MinDecryptionVersion: 1}))
			_, err := fx.r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: fx.blobs[0], EncryptionContext: fx.ec})
			requireOpErr(t, err, kms.ErrDisabled, kms.OpDecrypt, fx.key.KeyID)
			require.NoError(t, fx.r.EnableKey(ctx, fx.key.KeyID))
			fx.requireOpens(t, 1)
			fx.requireRefused(t, 2, kms.ErrKeyVersionDestroyed)
		}},
		{"version controls on a key pending deletion", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			require.NoError(t, fx.r.DisableKeyVersion(ctx, fx.key.KeyID, 2))
			_, err := fx.r.ScheduleKeyDeletion(ctx, fx.key.KeyID, 7)
			require.NoError(t, err)
			for name, do := range map[string]func() error{
				"disable": func() error { return fx.r.DisableKeyVersion(ctx, fx.key.KeyID, 1) },
				"enable":  func() error { return fx.r.EnableKeyVersion(ctx, fx.key.KeyID, 2) },
				"destroy": func() error { return fx.r.DestroyKeyVersion(ctx, fx.key.KeyID, 1) },
				"limits": func() error {
					return fx.r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: fx.key.KeyID, MinDecryptionVersion: 2})
				},
			} {
				err := do()
				require.ErrorIs(t, err, kms.ErrPendingDeletion, name)
				assert.Equal(t, "KMSInvalidStateException", kms.ErrorCode(err), name)
			}
			out := fx.versions(t) // listing works in every state
			assert.Equal(t, []kms.VersionState{vEnabled, vDisabled, vEnabled}, fx.states(t), "nothing changed")
			assert.Zero(t, out.MinDecryptionVersion)

			require.NoError(t, fx.r.CancelKeyDeletion(ctx, fx.key.KeyID))
			require.NoError(t, fx.r.EnableKey(ctx, fx.key.KeyID))
			fx.requireOpens(t, 1)
			fx.requireRefused(t, 2, kms.ErrKeyVersionDisabled)
		}},
		{"a deleted key has no versions to control", func(t *testing.T, fx *kvFixture) {
			ctx := t.Context()
			_, err := fx.r.ScheduleKeyDeletion(ctx, fx.key.KeyID, 7)
			require.NoError(t, err)
			fx.r.Clock.Advance(7 * day)
			due, err := fx.r.RunDue(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{fx.key.KeyID}, due.Deleted)
			_, err = fx.r.ListKeyVersions(ctx, fx.key.KeyID)
			requireOpErr(t, err, kms.ErrKeyDeleted, kms.OpListKeyVersions, fx.key.KeyID)
			err = fx.r.DisableKeyVersion(ctx, fx.key.KeyID, 1)
			requireOpErr(t, err, kms.ErrKeyDeleted, kms.OpDisableKeyVersion, fx.key.KeyID)
			require.ErrorIs(t, err, kms.ErrNotFound)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newKVFixture(t))
		})
	}
}

// TestKeyVersionMac: a disabled version of an HMAC key no longer verifies
// its tags, pinned or not; enabling it restores them.
func TestKeyVersionMac(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	k := r.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
	msg := []byte("tagged by version 1")
	m1, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: msg, MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)
	require.Equal(t, uint32(1), m1.KeyVersion)
	v, err := r.RotateKeyOnDemand(ctx, k.KeyID)
	require.NoError(t, err)
	require.Equal(t, uint32(2), v)
	m2, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: msg, MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)
	require.Equal(t, uint32(2), m2.KeyVersion)

	type check struct {
		name    string
		mac     []byte
		pin     uint32
		wantVer uint32
		wantErr error
	}
	verify := func(t *testing.T, checks []check) {
		t.Helper()
		for _, c := range checks {
			out, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: c.mac, MacAlgorithm: kms.HMACSHA256, KeyVersion: c.pin})
			if c.wantErr != nil {
				require.Nil(t, out, c.name)
				requireOpErr(t, err, c.wantErr, kms.OpVerifyMac, k.KeyID)
				continue
			}
			require.NoError(t, err, c.name)
			assert.True(t, out.MacValid, c.name)
			assert.Equal(t, c.wantVer, out.KeyVersion, c.name)
		}
	}

	require.NoError(t, r.DisableKeyVersion(ctx, k.KeyID, 1))
	verify(t, []check{
		{"v1 tag, v1 pinned", m1.Mac, 1, 0, kms.ErrKeyVersionDisabled},
		// Unpinned, the disabled version is skipped: the tag matches no
		// usable version, which VerifyMac reports as an invalid MAC.
		{"v1 tag, unpinned", m1.Mac, 0, 0, kms.ErrInvalidMac},
		{"v1 tag, v2 pinned", m1.Mac, 2, 0, kms.ErrInvalidMac},
		{"v2 tag, unpinned", m2.Mac, 0, 2, nil},
		{"v2 tag, v2 pinned", m2.Mac, 2, 2, nil},
	})
	_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: m1.Mac, MacAlgorithm: kms.HMACSHA256, KeyVersion: 1})
	assert.Equal(t, "KMSInvalidStateException", kms.ErrorCode(err))
	assert.Contains(t, err.Error(), "version 1")
	_, err = r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: k.KeyID, Message: msg, Mac: m1.Mac, MacAlgorithm: kms.HMACSHA256})
	assert.Equal(t, "KMSInvalidMacException", kms.ErrorCode(err))

	require.NoError(t, r.EnableKeyVersion(ctx, k.KeyID, 1))
	verify(t, []check{
		{"v1 tag, v1 pinned, enabled again", m1.Mac, 1, 1, nil},
		{"v1 tag, unpinned, enabled again", m1.Mac, 0, 1, nil},
	})

	require.NoError(t, r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.KeyID, MinDecryptionVersion: 2}))
	verify(t, []check{
		{"v1 tag, v1 pinned, retired", m1.Mac, 1, 0, kms.ErrKeyVersionRetired},
		{"v1 tag, unpinned, retired", m1.Mac, 0, 0, kms.ErrInvalidMac},
		{"v2 tag, unpinned, v1 retired", m2.Mac, 0, 2, nil},
	})
	require.NoError(t, r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.KeyID}))

	require.NoError(t, r.DestroyKeyVersion(ctx, k.KeyID, 1))
	verify(t, []check{
		{"v1 tag, v1 pinned, destroyed", m1.Mac, 1, 0, kms.ErrKeyVersionDestroyed},
		{"v1 tag, unpinned, destroyed", m1.Mac, 0, 0, kms.ErrInvalidMac},
		{"v2 tag, unpinned, v1 destroyed", m2.Mac, 0, 2, nil},
	})
}

// TestKeyVersionPublicKey: the minimum encryption version limits the
// public keys GetPublicKey hands out for encryption, and only for
// ENCRYPT_DECRYPT keys; the minimum decryption version and version states
// apply to every version asked for.
func TestKeyVersionPublicKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	k := r.CreateKey(kms.RSA2048, kms.EncryptDecrypt)
	pt := []byte("sealed to version 1's public key")
	ct1, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionAlgorithm: kms.RSAESOAEPSHA256})
	require.NoError(t, err)
	require.Equal(t, uint32(1), ct1.KeyVersion)
	v, err := r.RotateKeyOnDemand(ctx, k.KeyID)
	require.NoError(t, err)
	require.Equal(t, uint32(2), v)

	pub := func(v uint32) (*kms.GetPublicKeyOutput, error) {
		return r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID, KeyVersion: v})
	}
	p1, err := pub(1)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), p1.KeyVersion)
	p2, err := pub(2)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), p2.KeyVersion)
	require.False(t, bytes.Equal(p1.PublicKey, p2.PublicKey), "rotation makes a new key pair")
	p0, err := pub(0)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), p0.KeyVersion, "0 is the primary version")

	require.NoError(t, r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.KeyID, MinEncryptionVersion: 2}))
	out, err := pub(1)
	require.Nil(t, out)
	requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpGetPublicKey, k.KeyID)
	assert.Contains(t, err.Error(), "minimum encryption version 2")
	for _, v := range []uint32{0, 2} {
		out, err := pub(v)
		require.NoError(t, err, "version %d", v)
		assert.Equal(t, uint32(2), out.KeyVersion)
		require.True(t, bytes.Equal(p2.PublicKey, out.PublicKey))
	}
	dec, err := r.Decrypt(ctx, kms.DecryptInput{KeyID: k.KeyID, CiphertextBlob: ct1.CiphertextBlob, EncryptionAlgorithm: kms.RSAESOAEPSHA256})
	require.NoError(t, err, "the minimum encryption version does not stop decryption")
	assert.Equal(t, uint32(1), dec.KeyVersion)
	require.True(t, bytes.Equal(pt, dec.Plaintext))

	require.NoError(t, r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.KeyID, MinDecryptionVersion: 2}))
	_, err = pub(1)
	requireOpErr(t, err, kms.ErrKeyVersionRetired, kms.OpGetPublicKey, k.KeyID)
	_, err = r.Decrypt(ctx, kms.DecryptInput{KeyID: k.KeyID, CiphertextBlob: ct1.CiphertextBlob, EncryptionAlgorithm: kms.RSAESOAEPSHA256, KeyVersion: 1})
	requireOpErr(t, err, kms.ErrKeyVersionRetired, kms.OpDecrypt, k.KeyID)
	_, err = r.Decrypt(ctx, kms.DecryptInput{KeyID: k.KeyID, CiphertextBlob: ct1.CiphertextBlob, EncryptionAlgorithm: kms.RSAESOAEPSHA256})
	requireOpErr(t, err, kms.ErrInvalidCiphertext, kms.OpDecrypt, k.KeyID)

	require.NoError(t, r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.KeyID}))
	require.NoError(t, r.DisableKeyVersion(ctx, k.KeyID, 1))
	_, err = pub(1)
	requireOpErr(t, err, kms.ErrKeyVersionDisabled, kms.OpGetPublicKey, k.KeyID)

	t.Run("SIGN_VERIFY keys ignore the minimum encryption version", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		k := r.CreateKey(kms.ECCNISTP256, kms.SignVerify)
		_, err := r.RotateKeyOnDemand(t.Context(), k.KeyID)
		require.NoError(t, err)
		require.NoError(t, r.UpdateKeyVersionLimits(t.Context(), kms.UpdateKeyVersionLimitsInput{KeyID: k.KeyID, MinEncryptionVersion: 2}))
		out, err := r.GetPublicKey(t.Context(), kms.GetPublicKeyInput{KeyID: k.KeyID, KeyVersion: 1})
		require.NoError(t, err)
		assert.Equal(t, uint32(1), out.KeyVersion)
	})
}

// TestRotationEnableRefused: EnableKeyRotation refuses bad periods, keys
// that do not rotate automatically and keys not Enabled, changes nothing
// and audits one failed event.
func TestRotationEnableRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		key    func(t *testing.T, r *kmstest.Ring) string
		period int
		want   error
		code   string
	}{
		{"period 89", kvSymmetric, 89, kms.ErrInvalidArgument, "ValidationException"},
		{"period 2561", kvSymmetric, 2561, kms.ErrInvalidArgument, "ValidationException"},
		{"negative period", kvSymmetric, -1, kms.ErrInvalidArgument, "ValidationException"},
		{"ECC_NIST_P256 SIGN_VERIFY", func(t *testing.T, r *kmstest.Ring) string {
			return r.CreateKey(kms.ECCNISTP256, kms.SignVerify).KeyID
		}, 0, kms.ErrUnsupported, "UnsupportedOperationException"},
		{"RSA_2048 ENCRYPT_DECRYPT", func(t *testing.T, r *kmstest.Ring) string {
			return r.CreateKey(kms.RSA2048, kms.EncryptDecrypt).KeyID
		}, 0, kms.ErrUnsupported, "UnsupportedOperationException"},
		{"imported SYMMETRIC_DEFAULT", func(t *testing.T, r *kmstest.Ring) string {
			return r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, randomBytes(t, 32)).KeyID
		}, 0, kms.ErrUnsupported, "UnsupportedOperationException"},
		{"imported HMAC_256", func(t *testing.T, r *kmstest.Ring) string {
			return r.ImportKey(kms.HMAC256, kms.GenerateVerifyMac, randomBytes(t, 32)).KeyID
		}, 0, kms.ErrUnsupported, "UnsupportedOperationException"},
		{"disabled", func(t *testing.T, r *kmstest.Ring) string {
			return keyInState(t, r, kms.KeyStateDisabled).key.KeyID
		}, 0, kms.ErrDisabled, "DisabledException"},
		{"pending deletion", func(t *testing.T, r *kmstest.Ring) string {
			return keyInState(t, r, kms.KeyStatePendingDeletion).key.KeyID
		}, 0, kms.ErrPendingDeletion, "KMSInvalidStateException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			id := tc.key(t, r)
			r.Events.Reset()
			err := r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: id, RotationPeriodInDays: tc.period})
			requireOpErr(t, err, tc.want, kms.OpEnableKeyRotation, id)
			assert.Equal(t, tc.code, kms.ErrorCode(err))
			evs := r.Events.Events()
			require.Len(t, evs, 1)
			assert.Equal(t, kms.OpEnableKeyRotation, evs[0].Op)
			assert.Equal(t, kms.OutcomeFailed, evs[0].Outcome)
			assert.Equal(t, tc.code, evs[0].ErrorCode)
			assert.Equal(t, id, evs[0].KeyID)

			st, err := r.GetKeyRotationStatus(ctx, id)
			require.NoError(t, err, "the status is readable in every state")
			assert.False(t, st.KeyRotationEnabled)
			assert.Zero(t, st.RotationPeriodInDays)
			assert.True(t, st.NextRotationDate.IsZero())
		})
	}
	t.Run("unknown key", func(t *testing.T) {
		t.Parallel()
		r := kmstest.New(t)
		err := r.EnableKeyRotation(t.Context(), kms.EnableKeyRotationInput{KeyID: "alias/none"})
		requireOpErr(t, err, kms.ErrNotFound, kms.OpEnableKeyRotation, "alias/none")
	})
}

func kvSymmetric(t *testing.T, r *kmstest.Ring) string {
	return r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
}

// TestRotationEnableAndStatus: the periods EnableKeyRotation accepts, the
// status it leaves, and DisableKeyRotation clearing it.
func TestRotationEnableAndStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		spec   kms.KeySpec
		usage  kms.KeyUsage
		period int
		want   int
	}{
		{"default period", kms.SymmetricDefault, kms.EncryptDecrypt, 0, 365},
		{"shortest period", kms.SymmetricDefault, kms.EncryptDecrypt, 90, 90},
		{"longest period", kms.SymmetricDefault, kms.EncryptDecrypt, 2560, 2560},
		{"HMAC_256, default period", kms.HMAC256, kms.GenerateVerifyMac, 0, 365},
		{"HMAC_512, 100 days", kms.HMAC512, kms.GenerateVerifyMac, 100, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r := kmstest.New(t)
			k := r.CreateKey(tc.spec, tc.usage)
			st, err := r.GetKeyRotationStatus(ctx, k.KeyID)
			require.NoError(t, err)
			assert.Equal(t, &kms.GetKeyRotationStatusOutput{KeyID: k.Arn}, st, "a new key does not rotate")

			r.Clock.Advance(3 * day) // the schedule starts when rotation is enabled, not at creation
			enabledAt := r.Clock.Now()
			require.NoError(t, r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: k.KeyID, RotationPeriodInDays: tc.period}))
			st, err = r.GetKeyRotationStatus(ctx, k.KeyID)
			require.NoError(t, err)
			assert.Equal(t, k.Arn, st.KeyID)
			assert.True(t, st.KeyRotationEnabled)
			assert.Equal(t, tc.want, st.RotationPeriodInDays)
			assert.Equal(t, enabledAt.Add(time.Duration(tc.want)*day), st.NextRotationDate)
			assert.True(t, st.OnDemandRotationStartDate.IsZero())

			require.NoError(t, r.DisableKeyRotation(ctx, k.KeyID))
			st, err = r.GetKeyRotationStatus(ctx, k.KeyID)
			require.NoError(t, err)
			assert.Equal(t, &kms.GetKeyRotationStatusOutput{KeyID: k.Arn}, st, "disabling clears the status")
			require.NoError(t, r.DisableKeyRotation(ctx, k.KeyID), "disabling twice is allowed")

			r.Clock.Advance(time.Duration(tc.want+1) * day)
			due, err := r.RunDue(ctx)
			require.NoError(t, err)
			assert.Empty(t, due.Rotated, "no rotation once disabled")
			assert.Equal(t, uint32(1), mustDescribe(t, r.KeyRing, k.KeyID).PrimaryVersion)

			// Enabled again, the schedule starts afresh.
			require.NoError(t, r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: k.KeyID, RotationPeriodInDays: tc.period}))
			st, err = r.GetKeyRotationStatus(ctx, k.KeyID)
			require.NoError(t, err)
			assert.Equal(t, r.Clock.Now().Add(time.Duration(tc.want)*day), st.NextRotationDate)
		})
	}
	t.Run("DisableKeyRotation refuses what EnableKeyRotation refuses", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := kmstest.New(t)
		ecc := r.CreateKey(kms.ECCNISTP256, kms.SignVerify).KeyID
		requireOpErr(t, r.DisableKeyRotation(ctx, ecc), kms.ErrUnsupported, kms.OpDisableKeyRotation, ecc)
		imp := r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, randomBytes(t, 32)).KeyID
		requireOpErr(t, r.DisableKeyRotation(ctx, imp), kms.ErrUnsupported, kms.OpDisableKeyRotation, imp)
		dis := keyInState(t, r, kms.KeyStateDisabled).key.KeyID
		requireOpErr(t, r.DisableKeyRotation(ctx, dis), kms.ErrDisabled, kms.OpDisableKeyRotation, dis)
	})
}

// TestRotationPeriodChange: changing the period of a key that already
// rotates automatically moves the next rotation to one new period after
// the last rotation (or the key's creation), or to now if that has passed.
func TestRotationPeriodChange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	created := r.Clock.Now()
	next := func() time.Time {
		t.Helper()
		st, err := r.GetKeyRotationStatus(ctx, k.KeyID)
		require.NoError(t, err)
		require.True(t, st.KeyRotationEnabled)
		return st.NextRotationDate
	}
	setPeriod := func(days int) {
		t.Helper()
		require.NoError(t, r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: k.KeyID, RotationPeriodInDays: days}))
		st, err := r.GetKeyRotationStatus(ctx, k.KeyID)
		require.NoError(t, err)
		require.Equal(t, days, st.RotationPeriodInDays)
	}

	r.Clock.Advance(10 * day)
	setPeriod(365)
	assert.Equal(t, created.Add(375*day), next(), "first enabled: one period from now")

	r.Clock.Advance(10 * day)
	setPeriod(180)
	assert.Equal(t, created.Add(190*day), next(), "no rotation yet: one new period from when rotation was enabled")
	setPeriod(180)
	assert.Equal(t, created.Add(190*day), next(), "the same period again changes nothing")

	r.Clock.Advance(170 * day) // day 190
	due, err := r.RunDue(ctx)
	require.NoError(t, err)
	require.Len(t, due.Rotated, 1)
	rotatedAt := r.Clock.Now()
	assert.Equal(t, created.Add(190*day), rotatedAt)
	assert.Equal(t, rotatedAt.Add(180*day), next())

	r.Clock.Advance(5 * day)
	_, err = r.RotateKeyOnDemand(ctx, k.KeyID) // does not move the schedule
	require.NoError(t, err)
	assert.Equal(t, rotatedAt.Add(180*day), next())

	r.Clock.Advance(5 * day) // day 200
	setPeriod(90)
	assert.Equal(t, rotatedAt.Add(90*day), next(), "one new period after the last automatic rotation, not the on-demand one")
	setPeriod(400)
	assert.Equal(t, rotatedAt.Add(400*day), next(), "a longer period moves it later")

	r.Clock.Advance(100 * day) // day 300: 110 days after the last automatic rotation
	setPeriod(100)
	assert.Equal(t, r.Clock.Now(), next(), "a date already passed becomes now")
	due, err = r.RunDue(ctx)
	require.NoError(t, err)
	require.Len(t, due.Rotated, 1, "the overdue rotation happens at the next RunDue")
	assert.Equal(t, uint32(4), due.Rotated[0].KeyVersion)
	assert.Equal(t, r.Clock.Now().Add(100*day), next())
	due, err = r.RunDue(ctx)
	require.NoError(t, err)
	assert.Empty(t, due.Rotated)
}

// TestRotationListPaging: ListKeyRotations pages through five on-demand
// rotations two at a time, with dates from the fake clock.
func TestRotationListPaging(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)

	empty, err := r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: k.KeyID})
	require.NoError(t, err)
	assert.Empty(t, empty.Rotations)
	assert.False(t, empty.Truncated)
	assert.Empty(t, empty.NextMarker)

	var dates []time.Time
	for i := range 5 {
		r.Clock.Advance(time.Duration(i+1) * time.Hour)
		v, err := r.RotateKeyOnDemand(ctx, k.KeyID)
		require.NoError(t, err)
		require.Equal(t, uint32(i+2), v)
		dates = append(dates, r.Clock.Now())
	}

	var got []kms.KeyRotation
	var markers []string
	marker := ""
	for page := 0; ; page++ {
		require.Less(t, page, 5, "paging ends")
		out, err := r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: k.KeyID, Limit: 2, Marker: marker})
		require.NoError(t, err)
		got = append(got, out.Rotations...)
		if !out.Truncated {
			assert.Empty(t, out.NextMarker, "the last page has no marker")
			assert.Len(t, out.Rotations, 1)
			break
		}
		assert.Len(t, out.Rotations, 2)
		require.NotEmpty(t, out.NextMarker)
		markers = append(markers, out.NextMarker)
		marker = out.NextMarker
	}
	assert.Len(t, markers, 2, "three pages")
	require.Len(t, got, 5)
	for i, rot := range got {
		assert.Equal(t, k.Arn, rot.KeyID)
		assert.Equal(t, uint32(i+2), rot.KeyVersion)
		assert.Equal(t, kms.RotationOnDemand, rot.RotationType)
		assert.Equal(t, dates[i], rot.RotationDate)
	}

	all, err := r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: k.KeyID})
	require.NoError(t, err)
	assert.Equal(t, got, all.Rotations, "Limit 0 gives everything on one page")
	assert.False(t, all.Truncated)
	exact, err := r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: k.KeyID, Limit: 5})
	require.NoError(t, err)
	assert.Len(t, exact.Rotations, 5)
	assert.False(t, exact.Truncated, "a page that holds the rest is not truncated")

	st, err := r.GetKeyRotationStatus(ctx, k.KeyID)
	require.NoError(t, err)
	assert.Equal(t, dates[4], st.OnDemandRotationStartDate)
	assert.False(t, st.KeyRotationEnabled, "on-demand rotation does not enable automatic rotation")

	for _, in := range []kms.ListKeyRotationsInput{
		{KeyID: k.KeyID, Marker: "x"},
		{KeyID: k.KeyID, Marker: "-1"},
		{KeyID: k.KeyID, Limit: -1},
		{KeyID: k.KeyID, Limit: 1001},
	} {
		out, err := r.ListKeyRotations(ctx, in)
		require.Nil(t, out)
		requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpListKeyRotations, anyKeyID)
		assert.Equal(t, "ValidationException", kms.ErrorCode(err), "%+v", in)
	}
}

// TestKeyVersionAudit: each version and rotation operation emits exactly
// one event with its Op, on success, on failure and when the Policy
// denies it.
func TestKeyVersionAudit(t *testing.T) {
	t.Parallel()
	type keys struct{ sym, ecc string }
	cases := []struct {
		op      kms.Op
		ok      func(ctx context.Context, r *kmstest.Ring, k keys) error
		fail    func(ctx context.Context, r *kmstest.Ring, k keys) error
		failKey func(k keys) string // the key the failure event names; nil: none checked
		version uint32              // the version the events name
		want    error
	}{
		{
			op: kms.OpListKeyVersions,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				_, err := r.ListKeyVersions(ctx, k.sym)
				return err
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				_, err := r.ListKeyVersions(ctx, "alias/none")
				return err
			},
			want: kms.ErrNotFound,
		},
		{
			op: kms.OpDisableKeyVersion,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.DisableKeyVersion(ctx, k.sym, 1)
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.DisableKeyVersion(ctx, k.sym, 9)
			},
			failKey: func(k keys) string { return k.sym },
			want:    kms.ErrInvalidArgument,
		},
		{
			op: kms.OpEnableKeyVersion,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.EnableKeyVersion(ctx, k.sym, 1)
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.EnableKeyVersion(ctx, k.sym, 9)
			},
			failKey: func(k keys) string { return k.sym },
			want:    kms.ErrInvalidArgument,
		},
		{
			op: kms.OpDestroyKeyVersion,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.DestroyKeyVersion(ctx, k.sym, 1)
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.DestroyKeyVersion(ctx, k.sym, 2) // the primary
			},
			failKey: func(k keys) string { return k.sym },
			want:    kms.ErrInvalidArgument,
		},
		{
			op: kms.OpUpdateKeyVersionLimits,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.sym, MinDecryptionVersion: 2})
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.sym, MinDecryptionVersion: 3})
			},
			failKey: func(k keys) string { return k.sym },
			want:    kms.ErrInvalidArgument,
		},
		{
			op: kms.OpEnableKeyRotation,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: k.sym})
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: k.ecc})
			},
			failKey: func(k keys) string { return k.ecc },
			want:    kms.ErrUnsupported,
		},
		{
			op: kms.OpDisableKeyRotation,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.DisableKeyRotation(ctx, k.sym)
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				return r.DisableKeyRotation(ctx, k.ecc)
			},
			failKey: func(k keys) string { return k.ecc },
			want:    kms.ErrUnsupported,
		},
		{
			op: kms.OpGetKeyRotationStatus,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				_, err := r.GetKeyRotationStatus(ctx, k.sym)
				return err
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				_, err := r.GetKeyRotationStatus(ctx, "alias/none")
				return err
			},
			want: kms.ErrNotFound,
		},
		{
			op: kms.OpListKeyRotations,
			ok: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				_, err := r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: k.sym})
				return err
			},
			fail: func(ctx context.Context, r *kmstest.Ring, k keys) error {
				_, err := r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: k.sym, Marker: "x"})
				return err
			},
			want: kms.ErrInvalidArgument,
		},
	}
	setup := func(t *testing.T, cfg ...kms.Config) (*kmstest.Ring, keys) {
		r := kmstest.New(t, cfg...)
		k := keys{sym: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID, ecc: r.CreateKey(kms.ECCNISTP256, kms.SignVerify).KeyID}
		_, err := r.RotateKeyOnDemand(t.Context(), k.sym)
		require.NoError(t, err)
		r.Events.Reset()
		return r, k
	}
	for _, tc := range cases {
		t.Run(string(tc.op), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			r, k := setup(t)

			require.NoError(t, tc.ok(ctx, r, k))
			evs := r.Events.Events()
			require.Len(t, evs, 1, "one event on success")
			assert.Equal(t, tc.op, evs[0].Op)
			assert.Equal(t, kms.OutcomeAllowed, evs[0].Outcome)
			assert.Empty(t, evs[0].ErrorCode)
			assert.NoError(t, evs[0].Err)
			assert.Equal(t, k.sym, evs[0].KeyID)
			assert.Equal(t, r.KeyARN(k.sym), evs[0].KeyARN)
			assert.NotEmpty(t, evs[0].RequestID)

			r.Events.Reset()
			err := tc.fail(ctx, r, k)
			require.ErrorIs(t, err, tc.want)
			evs = r.Events.Events()
			require.Len(t, evs, 1, "one event on failure")
			assert.Equal(t, tc.op, evs[0].Op)
			assert.Equal(t, kms.OutcomeFailed, evs[0].Outcome)
			assert.Equal(t, kms.ErrorCode(err), evs[0].ErrorCode)
			assert.ErrorIs(t, evs[0].Err, tc.want)
			if tc.failKey != nil {
				assert.Equal(t, tc.failKey(k), evs[0].KeyID)
			}

			// Denied by the Policy: one event, and nothing changed.
			deny := kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
				if req.Op == tc.op {
					return kms.ErrAccessDenied
				}
				return nil
			})
			r, k = setup(t, kms.Config{Policy: deny})
			err = tc.ok(ctx, r, k)
			requireOpErr(t, err, kms.ErrAccessDenied, tc.op, anyKeyID)
			evs = r.Events.Events()
			require.Len(t, evs, 1, "one event when denied")
			assert.Equal(t, tc.op, evs[0].Op)
			assert.Equal(t, kms.OutcomeDenied, evs[0].Outcome)
			assert.Equal(t, "AccessDeniedException", evs[0].ErrorCode)
			assert.Equal(t, k.sym, evs[0].KeyID)
		})
	}

	t.Run("version events name the version", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r, k := setup(t)
		_, err := r.RotateKeyOnDemand(ctx, k.sym)
		require.NoError(t, err)
		r.Events.Reset()
		require.NoError(t, r.DisableKeyVersion(ctx, k.sym, 1))
		require.NoError(t, r.EnableKeyVersion(ctx, k.sym, 1))
		require.NoError(t, r.DestroyKeyVersion(ctx, k.sym, 2))
		require.NoError(t, r.DestroyKeyVersion(ctx, k.sym, 2)) // a no-op is audited too
		require.Error(t, r.DisableKeyVersion(ctx, k.sym, 3))
		var got []string
		for _, e := range r.Events.Events() {
			got = append(got, fmt.Sprintf("%s %d %s", e.Op, e.KeyVersion, e.Outcome))
		}
		assert.Equal(t, []string{
			"DisableKeyVersion 1 allowed",
			"EnableKeyVersion 1 allowed",
			"DestroyKeyVersion 2 allowed",
			"DestroyKeyVersion 2 allowed",
			"DisableKeyVersion 3 failed",
		}, got)
	})
}
