package kms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pocketkms/kms/internal/keys"
)

// Everything that happens with time — automatic rotations and the
// destruction of keys whose deletion date has passed — happens in RunDue,
// on Config.Clock, so that tests can move through years in a moment.

// RunDueOutput reports what one RunDue did.
type RunDueOutput struct {
	// Rotated lists the automatic rotations performed.
	Rotated []DueRotation
	// Deleted lists the keys whose material was destroyed.
	Deleted []string
	// Failed lists the keys whose due work failed; RunDue went on with the
	// others, and the next RunDue tries them again.
	Failed []DueFailure
}

// DueRotation is one automatic rotation RunDue performed.
type DueRotation struct {
	KeyID      string
	KeyVersion uint32
	Date       time.Time
}

// DueFailure is a key whose due work failed.
type DueFailure struct {
	KeyID string
	Err   error
}

// errNotDue: another writer did the work first.
var errNotDue = errors.New("not due")

// RunDue performs every rotation and every deletion that is due at
// Config.Clock's time: keys with automatic rotation whose next rotation
// date has passed get a new primary version (Enabled keys only; a disabled
// key rotates once it is enabled again, if it is overdue), and keys whose
// deletion date has passed lose their material for good. It is idempotent:
// calling it again does nothing until more work is due; rings sharing a
// Store may call it at once, and each due change is made exactly once
// (the Store's compare-and-swap decides). Each change is audited
// (OpRotateKey, OpDeleteKey); no Policy is asked, as these are the ring's
// own work.
//
// The error is for the Store failing to list keys or ctx ending; the work
// of single keys that fails is reported in RunDueOutput.Failed.
func (r *KeyRing) RunDue(ctx context.Context) (*RunDueOutput, error) {
	out := &RunDueOutput{}
	after := ""
	for {
		ids, err := r.cfg.Store.ListKeys(ctx, after, 1000)
		if err != nil {
			return out, &Error{Op: OpRunDue, Err: storeErr(err)}
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return out, &Error{Op: OpRunDue, Err: err}
			}
			r.runDueKey(ctx, id, out)
		}
		if len(ids) < 1000 {
			return out, nil
		}
		after = ids[len(ids)-1]
	}
}

// runDueKey does what is due for one key. It decides on the record alone
// (the cached one, if fresh, else the Store's), so that a RunDue over many
// keys unwraps only the material of keys that have work to do.
func (r *KeyRing) runDueKey(ctx context.Context, id string, out *RunDueOutput) {
	var rec *KeyRecord
	if v, ok := r.keys.Load(id); ok && !r.stale(v.(*keyEntry).checked.Load()) {
		rec = v.(*keyEntry).rec
	} else {
		var err error
		if rec, err = r.cfg.Store.GetKey(ctx, id); err != nil {
			if !errors.Is(err, ErrNotFound) {
				out.Failed = append(out.Failed, DueFailure{KeyID: id, Err: storeErr(err)})
			}
			return
		}
	}
	now := r.now()
	var err error
	switch {
	case rec.State == KeyStateDeleted:
		// Aliases left behind when a deletion's alias cleanup failed, or
		// made meanwhile by a ring with a stale view.
		err = r.deleteAliasesOf(ctx, id)
	case rec.State == KeyStatePendingDeletion && !now.Before(rec.DeletionDate):
		err = r.destroyKey(ctx, rec)
		if err == nil {
			out.Deleted = append(out.Deleted, id)
		}
	case rec.RotationPeriodDays > 0 && r.state(rec) == KeyStateEnabled && !now.Before(rec.NextRotation):
		var rot DueRotation
		rot, err = r.rotateDue(ctx, rec)
		if err == nil {
			out.Rotated = append(out.Rotated, rot)
		}
	}
	if err != nil && !errors.Is(err, errNotDue) {
		out.Failed = append(out.Failed, DueFailure{KeyID: id, Err: err})
	}
}

// rotateDue performs a key's due automatic rotation. The next rotation is
// one period after the date that was due, so that a late RunDue does not
// move the schedule, or one period from now if that too has passed.
func (r *KeyRing) rotateDue(ctx context.Context, rec *KeyRecord) (DueRotation, error) {
	c := r.begin(ctx, OpRotateKey)
	c.ev.KeyID, c.ev.KeyARN = rec.KeyID, r.KeyARN(rec.KeyID)
	raw, err := keys.Generate(specs[rec.Spec].typ, r.cfg.Rand)
	if err != nil {
		return DueRotation{}, c.end(fmt.Errorf("%w: generating key material failed", ErrInternal))
	}
	defer clear(raw)
	var rot DueRotation
	_, err = r.update(ctx, rec.KeyID, func(rec *KeyRecord) error {
		now := r.now()
		if rec.RotationPeriodDays == 0 || r.state(rec) != KeyStateEnabled || now.Before(rec.NextRotation) {
			return errNotDue // rotated, disabled or changed by another writer meanwhile
		}
		v, err := r.addRotatedVersion(ctx, rec, raw, RotationAutomatic)
		if err != nil {
			return err
		}
		period := time.Duration(rec.RotationPeriodDays) * day
		rec.NextRotation = rec.NextRotation.Add(period)
		if !rec.NextRotation.After(now) {
			rec.NextRotation = now.Add(period)
		}
		rot = DueRotation{KeyID: rec.KeyID, KeyVersion: v, Date: now}
		return nil
	})
	if errors.Is(err, errNotDue) || errors.Is(err, ErrKeyDeleted) {
		return rot, errNotDue // nothing happened (another ring deleted the key): no event
	}
	c.ev.KeyVersion = rot.KeyVersion
	return rot, c.end(err)
}

// destroyKey destroys the material of a key whose deletion date has
// passed and deletes its aliases, as AWS KMS does. The record stays as a
// tombstone (KeyStateDeleted), so that data under the key fails with
// ErrKeyDeleted and its ID is never reused.
func (r *KeyRing) destroyKey(ctx context.Context, cur *KeyRecord) error {
	c := r.begin(ctx, OpDeleteKey)
	c.ev.KeyID, c.ev.KeyARN = cur.KeyID, r.KeyARN(cur.KeyID)
	_, err := r.update(ctx, cur.KeyID, func(rec *KeyRecord) error {
		now := r.now()
		if rec.State != KeyStatePendingDeletion || now.Before(rec.DeletionDate) {
			return errNotDue // cancelled or destroyed by another writer meanwhile
		}
		for i := range rec.Versions {
			v := &rec.Versions[i]
			clear(v.Wrapped)
			v.Wrapped, v.PublicKey = nil, nil
			if v.State != VersionDestroyed {
				v.State, v.DestroyedAt = VersionDestroyed, now
			}
		}
		rec.State, rec.Import, rec.Grants = KeyStateDeleted, nil, nil // grants go with the key
		rec.RotationPeriodDays, rec.NextRotation = 0, time.Time{}
		return nil
	})
	if errors.Is(err, errNotDue) || errors.Is(err, ErrKeyDeleted) {
		return errNotDue // cancelled, or destroyed by another ring: no event
	}
	if err := c.end(err); err != nil {
		return err
	}
	// The key is deleted, and audited as such. Its aliases go with it; if
	// removing them fails now, the sweep of the next RunDue removes them.
	_ = r.deleteAliasesOf(ctx, cur.KeyID)
	return nil
}

// deleteAliasesOf deletes every alias pointing to a key.
func (r *KeyRing) deleteAliasesOf(ctx context.Context, keyID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		as, err := r.cfg.Store.ListAliases(ctx, keyID, "", 100)
		if err != nil {
			return storeErr(err)
		}
		for _, a := range as {
			if err := r.cfg.Store.DeleteAlias(ctx, a.Name); err != nil && !errors.Is(err, ErrNotFound) {
				return storeErr(err)
			}
			r.setAlias(a.Name, "")
		}
		if len(as) < 100 {
			return nil
		}
	}
}

// RunDueEvery calls RunDue every interval until ctx ends, then returns
// ctx's error; report, if not nil, sees each run's result. Run it on its
// own goroutine:
//
//	go ring.RunDueEvery(ctx, time.Minute, nil)
//
// The interval is wall-clock time; what is due is decided on
// Config.Clock. Several rings sharing a Store may all run it.
func (r *KeyRing) RunDueEvery(ctx context.Context, interval time.Duration, report func(*RunDueOutput, error)) error {
	if interval <= 0 {
		return &Error{Op: OpRunDue, Err: fmt.Errorf("%w: interval must be positive", ErrInvalidArgument)}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		out, err := r.RunDue(ctx)
		if report != nil && ctx.Err() == nil {
			report(out, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
