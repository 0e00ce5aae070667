package kms_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

const day = 24 * time.Hour

// TestRotationFiveYears: automatic rotation with a 365-day period over
// five simulated years, RunDue called every day. Five automatic rotations
// happen on their dates, ListKeyRotations shows them with an on-demand
// rotation in between that does not move the schedule, everything sealed
// along the way still opens, and once the minimum decryption version is
// raised, older data fails clearly while rewrapped data opens.
func TestRotationFiveYears(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	key := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	start := r.Clock.Now()
	require.NoError(t, r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: key, RotationPeriodInDays: 365}))
	env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(key)}})
	require.NoError(t, err)

	type sealed struct {
		pt, blob, msg []byte
		day           int
	}
	var made []sealed
	var rotations []kms.DueRotation
	for d := 1; d <= 5*365+1; d++ {
		r.Clock.Advance(day)
		if d == 500 {
			v, err := r.RotateKeyOnDemand(ctx, key)
			require.NoError(t, err)
			require.Equal(t, uint32(3), v, "the on-demand rotation follows the first automatic one")
		}
		out, err := r.RunDue(ctx)
		require.NoError(t, err)
		require.Empty(t, out.Failed)
		rotations = append(rotations, out.Rotated...)
		if d%73 == 0 { // a few times a year
			pt := []byte(fmt.Sprintf("day %d", d))
			enc, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: key, Plaintext: pt})
			require.NoError(t, err)
			msg, err := env.Seal(ctx, pt, kms.EncryptionContext{"day": fmt.Sprint(d)})
			require.NoError(t, err)
			made = append(made, sealed{pt, enc.CiphertextBlob, msg, d})
		}
	}
	require.Len(t, rotations, 5, "five automatic rotations in five years")
	for i, rot := range rotations {
		assert.Equal(t, start.Add(time.Duration(365*(i+1))*day), rot.Date, "rotation %d on its date", i+1)
	}

	page, err := r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: key})
	require.NoError(t, err)
	require.Len(t, page.Rotations, 6)
	var auto int
	for i, rot := range page.Rotations {
		assert.Equal(t, uint32(i+2), rot.KeyVersion)
		if rot.RotationType == kms.RotationAutomatic {
			assert.Equal(t, start.Add(time.Duration(365*(auto+1))*day), rot.RotationDate)
			auto++
		} else {
			assert.Equal(t, start.Add(500*day), rot.RotationDate)
		}
	}
	assert.Equal(t, 5, auto)
	status, err := r.GetKeyRotationStatus(ctx, key)
	require.NoError(t, err)
	assert.True(t, status.KeyRotationEnabled)
	assert.Equal(t, start.Add(6*365*day), status.NextRotationDate)
	assert.Equal(t, start.Add(500*day), status.OnDemandRotationStartDate)

	for _, m := range made {
		dec, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: m.blob})
		require.NoError(t, err, "blob of day %d", m.day)
		require.True(t, bytes.Equal(m.pt, dec.Plaintext))
		got, err := env.Open(ctx, m.msg, nil)
		require.NoError(t, err, "message of day %d", m.day)
		require.True(t, bytes.Equal(m.pt, got))
	}

	// Retire every version but the primary (7): rewrap first, then raise
	// the minimum decryption version.
	old := made[0]
	reBlob, err := r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: old.blob, DestinationKeyID: key})
	require.NoError(t, err)
	reMsg, err := env.Rewrap(ctx, old.msg, nil)
	require.NoError(t, err)
	require.NoError(t, r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: key, MinDecryptionVersion: 7}))

	_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: old.blob})
	require.ErrorIs(t, err, kms.ErrKeyVersionRetired)
	assert.Contains(t, err.Error(), "version 1 is below 7")
	_, err = env.Open(ctx, old.msg, nil)
	require.ErrorIs(t, err, kms.ErrKeyVersionRetired, "a message whose data key is under a retired version")

	dec, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: reBlob.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, uint32(7), dec.KeyVersion)
	require.True(t, bytes.Equal(old.pt, dec.Plaintext))
	got, err := env.Open(ctx, reMsg, nil)
	require.NoError(t, err)
	require.True(t, bytes.Equal(old.pt, got))
}

// TestDeletionOverTime: a key scheduled for deletion in 7 days refuses use
// at once, RunDue destroys it after 7 days and not before, its aliases go
// and data under it fails with ErrKeyDeleted; a key whose deletion is
// cancelled on day 6 keeps everything.
func TestDeletionOverTime(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	doomed := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	kept := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	require.NoError(t, r.CreateAlias(ctx, "alias/doomed", doomed))
	blobs := map[string][]byte{}
	for _, k := range []string{doomed, kept} {
		enc, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k, Plaintext: []byte("data")})
		require.NoError(t, err)
		blobs[k] = enc.CiphertextBlob
		md, err := r.ScheduleKeyDeletion(ctx, k, 7)
		require.NoError(t, err)
		assert.Equal(t, r.Clock.Now().Add(7*day), md.DeletionDate)
		_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blobs[k]})
		require.ErrorIs(t, err, kms.ErrPendingDeletion, "refuses use at once")
	}

	for d := 1; d <= 6; d++ {
		r.Clock.Advance(day)
		out, err := r.RunDue(ctx)
		require.NoError(t, err)
		require.Empty(t, out.Deleted, "nothing is destroyed before the date (day %d)", d)
	}
	require.NoError(t, r.CancelKeyDeletion(ctx, kept))
	r.Clock.Advance(day - time.Second)
	out, err := r.RunDue(ctx)
	require.NoError(t, err)
	require.Empty(t, out.Deleted, "one second before the date")
	r.Clock.Advance(time.Second)
	r.Events.Reset()
	out, err = r.RunDue(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{doomed}, out.Deleted)
	require.Len(t, r.Events.ByOp(kms.OpDeleteKey), 1)
	out, err = r.RunDue(ctx)
	require.NoError(t, err)
	require.Empty(t, out.Deleted, "RunDue again does nothing")

	_, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blobs[doomed]})
	require.ErrorIs(t, err, kms.ErrKeyDeleted)
	require.ErrorIs(t, err, kms.ErrNotFound)
	assert.Equal(t, "NotFoundException", kms.ErrorCode(err))
	assert.Contains(t, err.Error(), "deleted on")
	_, err = r.DescribeKey(ctx, doomed)
	require.ErrorIs(t, err, kms.ErrKeyDeleted)
	require.ErrorIs(t, r.CancelKeyDeletion(ctx, doomed), kms.ErrKeyDeleted)
	_, err = r.DescribeKey(ctx, "alias/doomed")
	require.ErrorIs(t, err, kms.ErrNotFound, "the key's aliases are deleted with it")
	list, err := r.ListKeys(ctx, kms.ListKeysInput{})
	require.NoError(t, err)
	require.Len(t, list.Keys, 1)
	assert.Equal(t, kept, list.Keys[0].KeyID)

	// The cancelled key comes back Disabled, with its material.
	md, err := r.DescribeKey(ctx, kept)
	require.NoError(t, err)
	assert.Equal(t, kms.KeyStateDisabled, md.KeyState)
	require.NoError(t, r.EnableKey(ctx, kept))
	dec, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blobs[kept]})
	require.NoError(t, err)
	require.True(t, bytes.Equal([]byte("data"), dec.Plaintext))
}

// TestRunDueDisabledKey: a disabled key does not rotate; once enabled
// again and overdue, the next RunDue rotates it, once.
func TestRunDueDisabledKey(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	key := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	require.NoError(t, r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: key, RotationPeriodInDays: 90}))
	require.NoError(t, r.DisableKey(ctx, key))
	r.Clock.Advance(400 * day)
	out, err := r.RunDue(ctx)
	require.NoError(t, err)
	require.Empty(t, out.Rotated)
	require.NoError(t, r.EnableKey(ctx, key))
	out, err = r.RunDue(ctx)
	require.NoError(t, err)
	require.Len(t, out.Rotated, 1, "an overdue key rotates once, not once per missed period")
	status, err := r.GetKeyRotationStatus(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, r.Clock.Now().Add(90*day), status.NextRotationDate)
	out, err = r.RunDue(ctx)
	require.NoError(t, err)
	require.Empty(t, out.Rotated)
}

// TestRunDueSharedStore: rings sharing one Store all run RunDue at once;
// each due rotation and deletion happens exactly once.
func TestRunDueSharedStore(t *testing.T) {
	ctx := context.Background()
	store := kms.NewMemoryStore()
	root, err := kms.NewAESRootKey(bytes.Repeat([]byte{7}, 32), nil)
	require.NoError(t, err)
	clock := kmstest.NewClock(kmstest.Epoch)
	rings := make([]*kms.KeyRing, 4)
	for i := range rings {
		rings[i], err = kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Clock: clock})
		require.NoError(t, err)
	}
	var ids []string
	for range 10 {
		md, err := rings[0].CreateKey(ctx, kms.CreateKeyInput{})
		require.NoError(t, err)
		require.NoError(t, rings[0].EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: md.KeyID, RotationPeriodInDays: 90}))
		ids = append(ids, md.KeyID)
	}
	_, err = rings[0].ScheduleKeyDeletion(ctx, ids[0], 7)
	require.NoError(t, err)
	clock.Advance(91 * day)

	var mu sync.Mutex
	rotated, deleted := map[string]int{}, map[string]int{}
	var wg sync.WaitGroup
	for _, ring := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := ring.RunDue(ctx)
			assert.NoError(t, err)
			assert.Empty(t, out.Failed)
			mu.Lock()
			defer mu.Unlock()
			for _, rot := range out.Rotated {
				rotated[rot.KeyID]++
			}
			for _, id := range out.Deleted {
				deleted[id]++
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, map[string]int{ids[0]: 1}, deleted)
	require.Len(t, rotated, 9)
	for id, n := range rotated {
		assert.Equal(t, 1, n, "key %s rotated %d times", id, n)
		md, err := rings[3].DescribeKey(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, 2, md.Versions, "key %s: a gap-free version sequence", id)
	}
}

// TestRunDueEvery: the background runner calls RunDue on its interval and
// stops with its context.
func TestRunDueEvery(t *testing.T) {
	r := kmstest.New(t)
	key := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	require.NoError(t, r.EnableKeyRotation(context.Background(), kms.EnableKeyRotationInput{KeyID: key}))
	r.Clock.Advance(366 * day)
	ctx, cancel := context.WithCancel(context.Background())
	runs := make(chan *kms.RunDueOutput, 100)
	done := make(chan error, 1)
	go func() {
		done <- r.RunDueEvery(ctx, time.Millisecond, func(out *kms.RunDueOutput, err error) {
			assert.NoError(t, err)
			runs <- out
		})
	}()
	first := <-runs
	require.Len(t, first.Rotated, 1)
	second := <-runs
	require.Empty(t, second.Rotated)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("RunDueEvery did not stop with its context")
	}
	require.Error(t, r.RunDueEvery(context.Background(), 0, nil))
}

// TestRotationUnderLoad: seal, open and rotate from many goroutines; no
// message or blob made during a rotation fails to open.
func TestRotationUnderLoad(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	key := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(key)}})
	require.NoError(t, err)
	require.NoError(t, r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: key, RotationPeriodInDays: 90}))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // rotations, on demand and due
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				_, err := r.RotateKeyOnDemand(ctx, key)
				assert.NoError(t, err)
			} else {
				r.Clock.Advance(91 * day)
				_, err := r.RunDue(ctx)
				assert.NoError(t, err)
			}
		}
	}()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				pt := []byte(fmt.Sprintf("worker %d message %d", w, i))
				ec := kms.EncryptionContext{"w": fmt.Sprint(w)}
				msg, err := env.Seal(ctx, pt, ec)
				if !assert.NoError(t, err) {
					return
				}
				got, err := env.Open(ctx, msg, ec)
				if assert.NoError(t, err) {
					assert.True(t, bytes.Equal(pt, got))
				}
				enc, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: key, Plaintext: pt})
				if !assert.NoError(t, err) {
					return
				}
				dec, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
				if assert.NoError(t, err) {
					assert.True(t, bytes.Equal(pt, dec.Plaintext))
				}
			}
		}()
	}
	// Stop the rotator once the workers are done.
	workers := make(chan struct{})
	go func() { wg.Wait(); close(workers) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := r.DescribeKey(ctx, key)
		require.NoError(t, err)
		if md.Versions > 20 {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			t.Fatalf("only %d versions after 30 s of rotating", md.Versions)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-workers
	md, err := r.DescribeKey(ctx, key)
	require.NoError(t, err)
	assert.Greater(t, md.Versions, 20, "rotations happened during the load")
}

// TestTombstoneNeverChanges: a ring whose cached view of a key is days
// old cannot bring a deleted key back: its write conflicts, and the
// reloaded record is a tombstone that update refuses. RunDue also sweeps
// away aliases left on a tombstone.
func TestTombstoneNeverChanges(t *testing.T) {
	ctx := context.Background()
	store := kms.NewMemoryStore()
	root, err := kms.NewAESRootKey(bytes.Repeat([]byte{9}, 32), nil)
	require.NoError(t, err)
	clock := kmstest.NewClock(kmstest.Epoch)
	a, err := kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Clock: clock})
	require.NoError(t, err)
	b, err := kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Clock: clock, CacheTTL: 60 * day})
	require.NoError(t, err)
	md, err := a.CreateKey(ctx, kms.CreateKeyInput{})
	require.NoError(t, err)
	require.NoError(t, a.DisableKey(ctx, md.KeyID))
	_, err = b.DescribeKey(ctx, md.KeyID) // b caches the key, Disabled
	require.NoError(t, err)

	_, err = a.ScheduleKeyDeletion(ctx, md.KeyID, 7)
	require.NoError(t, err)
	clock.Advance(8 * day)
	out, err := a.RunDue(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{md.KeyID}, out.Deleted)

	require.ErrorIs(t, b.EnableKey(ctx, md.KeyID), kms.ErrKeyDeleted, "a stale ring cannot revive a deleted key")
	rec, err := store.GetKey(ctx, md.KeyID)
	require.NoError(t, err)
	assert.Equal(t, kms.KeyStateDeleted, rec.State)

	// An alias left pointing at the tombstone goes at the next RunDue.
	require.NoError(t, store.PutAlias(ctx, kms.AliasRecord{Name: "alias/left", TargetKeyID: md.KeyID}, true))
	_, err = a.RunDue(ctx)
	require.NoError(t, err)
	_, err = store.GetAlias(ctx, "alias/left")
	require.ErrorIs(t, err, kms.ErrNotFound)
}

// countingRoot counts the RootKey's unwraps.
type countingRoot struct {
	kms.RootKey
	unwraps atomic.Int64
}

func (c *countingRoot) Unwrap(ctx context.Context, wrapped, ad []byte) ([]byte, error) {
	c.unwraps.Add(1)
	return c.RootKey.Unwrap(ctx, wrapped, ad)
}

// TestRunDueUnwrapsOnlyDueKeys: RunDue decides on the records, so a ring
// that has never used the keys unwraps no material when nothing is due,
// and only the due key's when one is.
func TestRunDueUnwrapsOnlyDueKeys(t *testing.T) {
	ctx := context.Background()
	store := kms.NewMemoryStore()
	inner, err := kms.NewAESRootKey(bytes.Repeat([]byte{5}, 32), nil)
	require.NoError(t, err)
	root := &countingRoot{RootKey: inner}
	clock := kmstest.NewClock(kmstest.Epoch)
	a, err := kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Clock: clock})
	require.NoError(t, err)
	var ids []string
	for range 5 {
		md, err := a.CreateKey(ctx, kms.CreateKeyInput{})
		require.NoError(t, err)
		ids = append(ids, md.KeyID)
	}
	require.NoError(t, a.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: ids[0], RotationPeriodInDays: 90}))

	b, err := kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Clock: clock})
	require.NoError(t, err)
	root.unwraps.Store(0)
	out, err := b.RunDue(ctx)
	require.NoError(t, err)
	require.Empty(t, out.Rotated)
	assert.Zero(t, root.unwraps.Load(), "nothing due: no material unwrapped")

	clock.Advance(91 * day)
	out, err = b.RunDue(ctx)
	require.NoError(t, err)
	require.Len(t, out.Rotated, 1)
	assert.Equal(t, int64(1), root.unwraps.Load(), "only the due key's one version")
}
