package kms_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// owners is a Policy for two tenants: a principal may use only the keys
// tagged into its own account, here listed by key ID.
func ownersPolicy(owner map[string]string) kms.Policy {
	return kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
		if req.KeyID == "" || owner[req.KeyID] == req.Principal.Account {
			return nil
		}
		return errors.New("not the key's owner")
	})
}

// TestAliasTakeover: a tenant may not point another tenant's alias at its
// own key (UpdateAlias asks about the alias's current key as well).
func TestAliasTakeover(t *testing.T) {
	owner := map[string]string{}
	r := kmstest.New(t, kms.Config{Policy: ownersPolicy(owner)})
	admin := context.Background()
	ka := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	kb := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	owner[ka.KeyID], owner[kb.KeyID] = "A", "B"
	tenantA := kms.WithPrincipal(admin, kms.Principal{ARN: "arn:aws:iam::A:role/a", Account: "A"})
	tenantB := kms.WithPrincipal(admin, kms.Principal{ARN: "arn:aws:iam::B:role/b", Account: "B"})
	require.NoError(t, r.CreateAlias(tenantB, "alias/tenantB", kb.KeyID))

	err := r.UpdateAlias(tenantA, "alias/tenantB", ka.KeyID)
	require.ErrorIs(t, err, kms.ErrAccessDenied)
	m, err := r.DescribeKey(tenantB, "alias/tenantB")
	require.NoError(t, err)
	assert.Equal(t, kb.KeyID, m.KeyID, "the alias still names B's key")
	require.NoError(t, r.UpdateAlias(tenantB, "alias/tenantB", kb.KeyID))
}

// TestImportTokenNotShared: the returned token is the caller's to modify.
func TestImportTokenNotShared(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Origin: kms.OriginExternal})
	require.NoError(t, err)
	p, err := r.GetParametersForImport(ctx, kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: kms.WrappingRSA2048})
	require.NoError(t, err)
	enc, err := kmstest.WrapForImport(p.PublicKey, kms.WrapRSAESOAEPSHA256, make([]byte, 32))
	require.NoError(t, err)
	p.ImportToken[0] ^= 1
	err = r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: k.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: enc})
	require.ErrorIs(t, err, kms.ErrInvalidImportToken)
	p.ImportToken[0] ^= 1
	require.NoError(t, r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: k.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: enc}))
}

// evilStore returns records it was not asked for, or that break the
// KeyRing's invariants.
type evilStore struct {
	*kms.MemoryStore
	edit func(*kms.KeyRecord)
}

func (s *evilStore) GetKey(ctx context.Context, id string) (*kms.KeyRecord, error) {
	r, err := s.MemoryStore.GetKey(ctx, id)
	if err == nil && s.edit != nil {
		s.edit(r)
	}
	return r, err
}

// TestInvalidStoreRecords: a corrupt or malicious Store gets ErrInternal,
// never a panic, and never another key's material.
func TestInvalidStoreRecords(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(*kms.KeyRecord){
		"primary names no version":       func(r *kms.KeyRecord) { r.Primary = 7 },
		"usage not allowed for the spec": func(r *kms.KeyRecord) { r.Usage = kms.EncryptDecrypt },
		"unknown spec":                   func(r *kms.KeyRecord) { r.Spec = "AES_512" },
		"unknown state":                  func(r *kms.KeyRecord) { r.State = "Sleeping" },
		"versions out of order":          func(r *kms.KeyRecord) { r.Versions = append(r.Versions, r.Versions[0]) },
		"enabled without versions":       func(r *kms.KeyRecord) { r.Versions, r.Primary = nil, 0 },
		"another key's record":           func(r *kms.KeyRecord) { r.KeyID = "00000000-0000-4000-8000-000000000000" },
		"material of another version":    func(r *kms.KeyRecord) { r.Versions[0].Version = 2; r.Primary = 2 },
		"deleted key with material":      func(r *kms.KeyRecord) { r.State = kms.KeyStateDeleted },
		"deleted key, huge version": func(r *kms.KeyRecord) {
			r.State, r.Versions[0].Version, r.Versions[0].Wrapped = kms.KeyStateDeleted, 1<<31, nil
		},
		"unknown version state":    func(r *kms.KeyRecord) { r.Versions[0].State = "Sleeping" },
		"primary version disabled": func(r *kms.KeyRecord) { r.Versions[0].State = kms.VersionDisabled },
		"minimum above primary":    func(r *kms.KeyRecord) { r.MinDecryptionVersion = 2 },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			rk := newRootKey(t)
			st := &evilStore{MemoryStore: kms.NewMemoryStore()}
			a := kmstest.New(t, kms.Config{Store: st, RootKey: rk})
			k := a.CreateKey(kms.HMAC256, kms.GenerateVerifyMac)
			st.edit = edit
			b := kmstest.New(t, kms.Config{Store: st, RootKey: rk})
			_, err := b.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
			require.ErrorIs(t, err, kms.ErrInternal)
			assert.Equal(t, "KMSInternalException", kms.ErrorCode(err))
		})
	}
}

// TestForeignErrorsAreWrapped: whatever a Policy returns, the caller gets
// this operation's *Error, and its code is this ring's.
func TestForeignErrorsAreWrapped(t *testing.T) {
	for _, foreign := range []error{
		&kms.Error{Op: kms.OpDescribeKey, KeyID: "elsewhere", Err: kms.ErrDisabled},
		&kms.Error{Op: kms.OpDescribeKey, KeyID: "elsewhere", Err: kms.ErrAccessDenied},
	} {
		checkForeignPolicyError(t, foreign)
	}
}

func checkForeignPolicyError(t *testing.T, foreign error) {
	t.Helper()
	r := kmstest.New(t, kms.Config{Policy: kms.PolicyFunc(func(context.Context, kms.Request) error { return foreign })})
	_, err := r.GenerateRandom(context.Background(), 16)
	var ke *kms.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kms.OpGenerateRandom, ke.Op)
	require.ErrorIs(t, err, kms.ErrAccessDenied)
	assert.Equal(t, "AccessDeniedException", kms.ErrorCode(err))
}

// TestExpiredImportRefusesEnableDisable: expired material makes the key
// PendingImport for every purpose, DisableKey and EnableKey included.
func TestExpiredImportRefusesEnableDisable(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Origin: kms.OriginExternal})
	require.NoError(t, err)
	p, err := r.GetParametersForImport(ctx, kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: kms.WrappingRSA2048})
	require.NoError(t, err)
	enc, err := kmstest.WrapForImport(p.PublicKey, kms.WrapRSAESOAEPSHA256, make([]byte, 32))
	require.NoError(t, err)
	require.NoError(t, r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{
		KeyID: k.KeyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: enc,
		ExpirationModel: kms.KeyMaterialExpires, ValidTo: r.Clock.Now().Add(time.Hour),
	}))
	r.Clock.Advance(time.Hour)
	require.ErrorIs(t, r.DisableKey(ctx, k.KeyID), kms.ErrPendingImport)
	require.ErrorIs(t, r.EnableKey(ctx, k.KeyID), kms.ErrPendingImport)
}

// TestDeleteAliasOfMissingKey: an alias whose key has gone can be deleted.
func TestDeleteAliasOfMissingKey(t *testing.T) {
	ctx := context.Background()
	st := kms.NewMemoryStore()
	require.NoError(t, st.PutAlias(ctx, kms.AliasRecord{Name: "alias/orphan", TargetKeyID: "00000000-0000-4000-8000-000000000000"}, true))
	r := kmstest.New(t, kms.Config{Store: st, RootKey: newRootKey(t)})
	require.NoError(t, r.DeleteAlias(ctx, "alias/orphan"))
	_, err := st.GetAlias(ctx, "alias/orphan")
	require.ErrorIs(t, err, kms.ErrNotFound)
}

// TestRotationLimit: a key refuses a version past MaxKeyVersions rather
// than writing a record no ring could load.
func TestRotationLimit(t *testing.T) {
	ctx := context.Background()
	rk := newRootKey(t)
	st := kms.NewMemoryStore()
	id := "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"
	v := uint32(kms.MaxKeyVersions)
	ad := append([]byte("pocketkms/v1/material\x00"+id+"\x00"), binary.BigEndian.AppendUint32(nil, v)...)
	w, err := rk.Wrap(ctx, make([]byte, 32), ad)
	require.NoError(t, err)
	require.NoError(t, st.PutKey(ctx, &kms.KeyRecord{
		KeyID: id, Spec: kms.SymmetricDefault, Usage: kms.EncryptDecrypt, Origin: kms.OriginAWSKMS,
		State: kms.KeyStateEnabled, Primary: v, Versions: []kms.VersionRecord{{Version: v, Wrapped: w}},
	}))
	r := kmstest.New(t, kms.Config{Store: st, RootKey: rk})
	_, err = r.RotateKeyOnDemand(ctx, id)
	require.ErrorIs(t, err, kms.ErrLimitExceeded)
	_, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: id, Plaintext: []byte("still works")})
	require.NoError(t, err)
}
