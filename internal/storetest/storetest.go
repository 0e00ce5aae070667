// Package storetest is the conformance suite every kms.Store runs: the
// memory store now, the SQL stores later. A store passes when it keeps
// records exactly, enforces revisions, copies what it returns, orders and
// pages its listings, and is safe for concurrent use.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
)

// Run runs the suite. newStore returns an empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) kms.Store) {
	t.Run("KeyRoundTrip", func(t *testing.T) { testKeyRoundTrip(t, newStore(t)) })
	t.Run("Revisions", func(t *testing.T) { testRevisions(t, newStore(t)) })
	t.Run("Copies", func(t *testing.T) { testCopies(t, newStore(t)) })
	t.Run("ListKeys", func(t *testing.T) { testListKeys(t, newStore(t)) })
	t.Run("Aliases", func(t *testing.T) { testAliases(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStore(t)) })
	t.Run("AuditState", func(t *testing.T) {
		s, ok := newStore(t).(kms.AuditStore)
		require.True(t, ok, "a Store must keep chained audit logs (kms.AuditStore)")
		testAuditState(t, s)
	})
	t.Run("Settings", func(t *testing.T) {
		s, ok := newStore(t).(kms.SettingsStore)
		require.True(t, ok, "a Store must keep settings (kms.SettingsStore)")
		testSettings(t, s)
	})
}

func record(id string) *kms.KeyRecord {
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	return &kms.KeyRecord{
		KeyID: id, CreatedAt: at, Description: "d", Spec: kms.SymmetricDefault, Usage: kms.EncryptDecrypt,
		Origin: kms.OriginAWSKMS, State: kms.KeyStateEnabled, Primary: 2,
		Versions: []kms.VersionRecord{
			{Version: 1, CreatedAt: at, Wrapped: []byte("wrapped-1")},
			{Version: 2, CreatedAt: at.Add(time.Hour), Wrapped: []byte("wrapped-2"), PublicKey: []byte("pub")},
			{Version: 3, CreatedAt: at.Add(2 * time.Hour), State: kms.VersionDestroyed, DestroyedAt: at.Add(3 * time.Hour)},
			{Version: 4, CreatedAt: at.Add(4 * time.Hour), Wrapped: []byte("wrapped-4"), State: kms.VersionDisabled},
		},
		Tags: []kms.Tag{{TagKey: "a", TagValue: "1"}},
		// Rotation and version limits must survive a round trip too.
		RotationPeriodDays: 90, NextRotation: at.Add(90 * 24 * time.Hour),
		Rotations: []kms.RotationRecord{
			{Version: 2, Date: at.Add(time.Hour), Type: kms.RotationOnDemand},
			{Version: 3, Date: at.Add(2 * time.Hour), Type: kms.RotationAutomatic},
			{Version: 4, Date: at.Add(4 * time.Hour), Type: kms.RotationAutomatic},
		},
		MinDecryptionVersion: 2, MinEncryptionVersion: 2,
		// So must the key policy and the grants.
		Policy: kms.DefaultKeyPolicy("111122223333"),
		Grants: []kms.Grant{
			{
				KeyID: id, GrantID: "g1", Name: "n", CreationDate: at, GranteePrincipal: "arn:aws:iam::111122223333:role/a",
				RetiringPrincipal: "111122223333", IssuingAccount: "111122223333",
				Operations:  []kms.Op{kms.OpEncrypt, kms.OpDecrypt},
				Constraints: &kms.GrantConstraints{EncryptionContextSubset: kms.EncryptionContext{"k": "v"}},
			},
			{KeyID: id, GrantID: "g2", CreationDate: at, GranteePrincipal: "arn:aws:iam::111122223333:role/b", Operations: []kms.Op{kms.OpDescribeKey}},
		},
	}
}

func testKeyRoundTrip(t *testing.T, s kms.Store) {
	ctx := context.Background()
	_, err := s.GetKey(ctx, "absent")
	require.ErrorIs(t, err, kms.ErrNotFound)

	want := record("k1")
	want.Import = &kms.ImportRecord{TokenID: []byte("tok"), Algorithm: kms.WrapRSAESOAEPSHA256, Spec: kms.WrappingRSA2048, ValidTo: want.CreatedAt, Wrapped: []byte("w")}
	require.NoError(t, s.PutKey(ctx, want))
	got, err := s.GetKey(ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), got.Revision)
	want.Revision = 1
	assert.Equal(t, want, got) // records hold only wrapped material
}

func testRevisions(t *testing.T, s kms.Store) {
	ctx := context.Background()
	r := record("k1")
	require.NoError(t, s.PutKey(ctx, r))
	require.ErrorIs(t, s.PutKey(ctx, record("k1")), kms.ErrAlreadyExists, "create over an existing key")

	stale := record("k1") // revision 0 read before the create: a lost update
	stale.Revision = 5
	require.ErrorIs(t, s.PutKey(ctx, stale), kms.ErrConflict)

	cur, err := s.GetKey(ctx, "k1")
	require.NoError(t, err)
	cur.Description = "second"
	require.NoError(t, s.PutKey(ctx, cur))
	cur.Description = "third, from a stale read"
	require.ErrorIs(t, s.PutKey(ctx, cur), kms.ErrConflict)

	got, err := s.GetKey(ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, "second", got.Description)
	assert.Equal(t, uint64(2), got.Revision)

	orphan := record("k2")
	orphan.Revision = 1
	require.ErrorIs(t, s.PutKey(ctx, orphan), kms.ErrConflict, "update of a key that does not exist")
}

func testCopies(t *testing.T, s kms.Store) {
	ctx := context.Background()
	r := record("k1")
	require.NoError(t, s.PutKey(ctx, r))
	r.Versions[0].Wrapped[0] = 'X' // the caller's record is not the stored one
	r.Tags[0].TagValue = "changed"
	got, err := s.GetKey(ctx, "k1")
	require.NoError(t, err)
	assert.True(t, bytes.Equal([]byte("wrapped-1"), got.Versions[0].Wrapped))
	assert.Equal(t, "1", got.Tags[0].TagValue)
	got.Versions[1].Wrapped[0] = 'Y' // nor is what it returns
	again, err := s.GetKey(ctx, "k1")
	require.NoError(t, err)
	assert.True(t, bytes.Equal([]byte("wrapped-2"), again.Versions[1].Wrapped))
}

func testListKeys(t *testing.T, s kms.Store) {
	ctx := context.Background()
	ids, err := s.ListKeys(ctx, "", 10)
	require.NoError(t, err)
	assert.Empty(t, ids)
	for _, id := range []string{"c", "a", "e", "b", "d"} {
		require.NoError(t, s.PutKey(ctx, record(id)))
	}
	ids, err = s.ListKeys(ctx, "", 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c", "d", "e"}, ids)
	ids, err = s.ListKeys(ctx, "b", 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"c", "d"}, ids)
	ids, err = s.ListKeys(ctx, "e", 2)
	require.NoError(t, err)
	assert.Empty(t, ids)
	ids, err = s.ListKeys(ctx, "", -1)
	require.NoError(t, err, "a negative limit lists nothing")
	assert.Empty(t, ids)
	as, err := s.ListAliases(ctx, "", "", -1)
	require.NoError(t, err)
	assert.Empty(t, as)
}

func testAliases(t *testing.T, s kms.Store) {
	ctx := context.Background()
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	_, err := s.GetAlias(ctx, "alias/x")
	require.ErrorIs(t, err, kms.ErrNotFound)
	require.ErrorIs(t, s.PutAlias(ctx, kms.AliasRecord{Name: "alias/x", TargetKeyID: "k1"}, false), kms.ErrNotFound, "update of an absent alias")
	for i, n := range []string{"alias/c", "alias/a", "alias/b"} {
		require.NoError(t, s.PutAlias(ctx, kms.AliasRecord{Name: n, TargetKeyID: fmt.Sprint("k", i%2), CreatedAt: at, UpdatedAt: at}, true))
	}
	require.ErrorIs(t, s.PutAlias(ctx, kms.AliasRecord{Name: "alias/a", TargetKeyID: "k9"}, true), kms.ErrAlreadyExists)
	a, err := s.GetAlias(ctx, "alias/a")
	require.NoError(t, err)
	assert.Equal(t, kms.AliasRecord{Name: "alias/a", TargetKeyID: "k1", CreatedAt: at, UpdatedAt: at}, a)

	all, err := s.ListAliases(ctx, "", "", 10)
	require.NoError(t, err)
	require.Len(t, all, 3)
	assert.Equal(t, []string{"alias/a", "alias/b", "alias/c"}, []string{all[0].Name, all[1].Name, all[2].Name})
	page, err := s.ListAliases(ctx, "", "alias/a", 1)
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, "alias/b", page[0].Name)
	k0, err := s.ListAliases(ctx, "k0", "", 10)
	require.NoError(t, err)
	require.Len(t, k0, 2)
	assert.Equal(t, []string{"alias/b", "alias/c"}, []string{k0[0].Name, k0[1].Name})

	a.TargetKeyID = "k7"
	require.NoError(t, s.PutAlias(ctx, a, false))
	a, err = s.GetAlias(ctx, "alias/a")
	require.NoError(t, err)
	assert.Equal(t, "k7", a.TargetKeyID)
	require.NoError(t, s.DeleteAlias(ctx, "alias/a"))
	require.ErrorIs(t, s.DeleteAlias(ctx, "alias/a"), kms.ErrNotFound)
}

// testConcurrent has writers race on one record: exactly one write per
// revision wins, the others see ErrConflict, and no update is lost.
func testConcurrent(t *testing.T, s kms.Store) {
	ctx := context.Background()
	require.NoError(t, s.PutKey(ctx, record("k1")))
	const writers, increments = 8, 20
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < increments; {
				r, err := s.GetKey(ctx, "k1")
				if !assert.NoError(t, err) {
					return
				}
				r.Tags = append(r.Tags, kms.Tag{TagKey: fmt.Sprint(r.Revision)})
				switch err := s.PutKey(ctx, r); {
				case err == nil:
					done++
				case errors.Is(err, kms.ErrConflict):
				default:
					assert.NoError(t, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r, err := s.GetKey(ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1+writers*increments), r.Revision)
	assert.Len(t, r.Tags, 1+writers*increments, "an update was lost")
}

// testAuditState checks the chained audit log's state: a round trip, and
// compare-and-swap on Revision per chain.
func testAuditState(t *testing.T, s kms.AuditStore) {
	ctx := context.Background()
	_, err := s.GetAuditState(ctx, "default")
	require.ErrorIs(t, err, kms.ErrNotFound)
	st := &kms.AuditState{Chain: "default", WrappedKey: []byte("wrapped")}
	require.NoError(t, s.PutAuditState(ctx, st))
	require.ErrorIs(t, s.PutAuditState(ctx, st), kms.ErrAlreadyExists)
	got, err := s.GetAuditState(ctx, "default")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), got.Revision)
	assert.Equal(t, []byte("wrapped"), got.WrappedKey)

	got.Seq, got.Head = 7, bytes.Repeat([]byte{7}, 32)
	require.NoError(t, s.PutAuditState(ctx, got))
	require.ErrorIs(t, s.PutAuditState(ctx, got), kms.ErrConflict, "a stale revision must conflict")
	again, err := s.GetAuditState(ctx, "default")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), again.Revision)
	assert.Equal(t, uint64(7), again.Seq)
	assert.Equal(t, bytes.Repeat([]byte{7}, 32), again.Head)
	again.Head[0] = 0
	fresh, err := s.GetAuditState(ctx, "default")
	require.NoError(t, err)
	assert.Equal(t, byte(7), fresh.Head[0], "the store must return copies")

	_, err = s.GetAuditState(ctx, "other")
	require.ErrorIs(t, err, kms.ErrNotFound, "chains are kept apart")
	require.NoError(t, s.PutAuditState(ctx, &kms.AuditState{Chain: "b-chain", WrappedKey: []byte("w2")}))
	names, err := s.ListAuditChains(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"b-chain", "default"}, names)
}

// testSettings checks settings: create-only with old "", compare-and-swap
// on the old value otherwise.
func testSettings(t *testing.T, s kms.SettingsStore) {
	ctx := context.Background()
	_, err := s.GetSetting(ctx, "a")
	require.ErrorIs(t, err, kms.ErrNotFound)
	require.NoError(t, s.PutSetting(ctx, "a", "1", ""))
	require.ErrorIs(t, s.PutSetting(ctx, "a", "2", ""), kms.ErrAlreadyExists)
	require.ErrorIs(t, s.PutSetting(ctx, "a", "2", "0"), kms.ErrConflict, "a stale old value")
	require.ErrorIs(t, s.PutSetting(ctx, "b", "2", "1"), kms.ErrConflict, "an update of an absent setting")
	require.NoError(t, s.PutSetting(ctx, "a", "2", "1"))
	v, err := s.GetSetting(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "2", v)
	_, err = s.GetSetting(ctx, "b")
	require.ErrorIs(t, err, kms.ErrNotFound)
}
