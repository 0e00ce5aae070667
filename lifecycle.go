package kms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pocketkms/kms/internal/keys"
)

// Limits of the key management operations, as AWS KMS sets them.
const (
	MaxDescriptionLen    = 8192
	MaxTagsPerKey        = 50
	MaxTagKeyLen         = 128
	MaxTagValueLen       = 256
	MaxAliasNameLen      = 256
	MinPendingWindow     = 7
	MaxPendingWindow     = 30
	DefaultPendingWindow = 30
)

// CreateKeyInput describes a key to create. The zero value creates a
// SYMMETRIC_DEFAULT key for ENCRYPT_DECRYPT.
type CreateKeyInput struct {
	Description string
	// KeySpec defaults to SYMMETRIC_DEFAULT.
	KeySpec KeySpec
	// KeyUsage defaults to ENCRYPT_DECRYPT, as in AWS KMS; HMAC keys need
	// GENERATE_VERIFY_MAC, and ECC keys SIGN_VERIFY or KEY_AGREEMENT.
	KeyUsage KeyUsage
	// Origin defaults to AWS_KMS. EXTERNAL creates a key in PendingImport,
	// with no material until ImportKeyMaterial.
	Origin Origin
	Tags   []Tag
	// Policy is the key policy document (see KeyPolicies); "" means
	// DefaultKeyPolicy for the ring's account.
	Policy string
	// BypassPolicyLockoutSafetyCheck skips the check that, under
	// KeyPolicies, Policy lets the caller call PutKeyPolicy on the key.
	BypassPolicyLockoutSafetyCheck bool
}

// CreateKey creates a customer master key with version 1 of its material
// (or, for EXTERNAL origin, none yet) and returns its metadata.
func (r *KeyRing) CreateKey(ctx context.Context, in CreateKeyInput) (*KeyMetadata, error) {
	c := r.begin(ctx, OpCreateKey)
	m, err := r.createKey(ctx, &c, in)
	if err := c.end(err); err != nil {
		return nil, err
	}
	return m, nil
}

func (r *KeyRing) createKey(ctx context.Context, c *call, in CreateKeyInput) (*KeyMetadata, error) {
	if in.KeySpec == "" {
		in.KeySpec = SymmetricDefault
	}
	if in.KeyUsage == "" {
		in.KeyUsage = EncryptDecrypt
	}
	if in.Origin == "" {
		in.Origin = OriginAWSKMS
	}
	info, ok := specs[in.KeySpec]
	if !ok {
		return nil, fmt.Errorf("%w: unknown KeySpec %q", ErrInvalidArgument, in.KeySpec)
	}
	if !slices.Contains(info.usages, in.KeyUsage) {
		return nil, fmt.Errorf("%w: KeySpec %s does not allow KeyUsage %q", ErrInvalidArgument, in.KeySpec, in.KeyUsage)
	}
	if in.Origin != OriginAWSKMS && in.Origin != OriginExternal {
		return nil, fmt.Errorf("%w: unknown Origin %q", ErrInvalidArgument, in.Origin)
	}
	if err := checkDescription(in.Description); err != nil {
		return nil, err
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	policy := in.Policy
	if policy == "" {
		policy = DefaultKeyPolicy(r.cfg.Account)
	}
	pol, err := parsePolicy(policy)
	if err != nil {
		return nil, err
	}
	if err := c.ask(Request{Op: OpCreateKey, KeySpec: in.KeySpec, KeyUsage: in.KeyUsage, KeyOrigin: in.Origin,
		BypassPolicyLockoutSafetyCheck: in.BypassPolicyLockoutSafetyCheck}, nil); err != nil {
		return nil, err
	}
	id, err := r.newKeyID()
	if err != nil {
		return nil, err
	}
	if in.Policy != "" && !in.BypassPolicyLockoutSafetyCheck {
		// As in AWS KMS, only a policy the caller gives is checked.
		rec := &KeyRecord{KeyID: id, Spec: in.KeySpec, Usage: in.KeyUsage, Origin: in.Origin, Tags: tags}
		if err := r.checkLockout(c, pol, rec, &keyEntry{rec: rec, arn: r.KeyARN(id)}); err != nil {
			return nil, err
		}
	}
	rec := &KeyRecord{
		KeyID: id, CreatedAt: r.now(), Description: in.Description,
		Spec: in.KeySpec, Usage: in.KeyUsage, Origin: in.Origin, Tags: tags, Policy: policy,
	}
	if in.Origin == OriginExternal {
		rec.State = KeyStatePendingImport
	} else {
		raw, err := keys.Generate(info.typ, r.cfg.Rand)
		if err != nil {
			return nil, fmt.Errorf("%w: generating key material failed", ErrInternal)
		}
		vr, err := r.wrapVersion(ctx, rec, 1, raw)
		clear(raw)
		if err != nil {
			return nil, err
		}
		rec.State, rec.Primary, rec.Versions = KeyStateEnabled, 1, []VersionRecord{vr}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cfg.Store.PutKey(ctx, rec); err != nil {
		return nil, storeErr(err)
	}
	rec.Revision = 1
	e, err := r.build(ctx, rec, nil)
	if err != nil {
		return nil, err
	}
	r.publish(e)
	c.key(e)
	c.ev.KeyVersion = rec.Primary
	return r.metadata(e), nil
}

// metadata describes an entry.
func (r *KeyRing) metadata(e *keyEntry) *KeyMetadata {
	rec := e.rec
	m := &KeyMetadata{
		AWSAccountID: r.cfg.Account, KeyID: rec.KeyID, Arn: e.arn,
		CreationDate: rec.CreatedAt, Enabled: r.state(rec) == KeyStateEnabled,
		Description: rec.Description, KeyUsage: rec.Usage, KeyState: r.state(rec),
		Origin: rec.Origin, KeyManager: "CUSTOMER", KeySpec: rec.Spec,
		PrimaryVersion: rec.Primary, Versions: len(rec.Versions),
	}
	if rec.State == KeyStatePendingDeletion {
		m.DeletionDate, m.PendingDeletionWindowInDays = rec.DeletionDate, rec.PendingWindowDays
	}
	if rec.Origin == OriginExternal {
		m.ExpirationModel, m.ValidTo = rec.ExpirationModel, rec.ValidTo
	}
	if k := e.primary(); k != nil {
		m.VerifyOnly = k.VerifyOnly
	}
	e.info.algorithms(m, rec.Usage)
	return m
}

// DescribeKey returns a key's metadata. It works in every key state.
func (r *KeyRing) DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	c := r.begin(ctx, OpDescribeKey)
	var m *KeyMetadata
	e, err := r.resolve(ctx, &c, keyID)
	if err == nil {
		c.key(e)
		if err = c.authorize(OpDescribeKey, e, nil, ""); err == nil {
			m = r.metadata(e)
		}
	}
	if err := c.end(err); err != nil {
		return nil, err
	}
	return m, nil
}

// manage runs a key management operation: resolve, authorize, then mutate
// the record under the write lock.
func (r *KeyRing) manage(ctx context.Context, op Op, keyID string, mutate func(rec *KeyRecord) error) (*keyEntry, error) {
	c := r.begin(ctx, op)
	next, err := r.manageIn(ctx, &c, keyID, mutate)
	if err := c.end(err); err != nil {
		return nil, err
	}
	return next, nil
}

func (r *KeyRing) manageIn(ctx context.Context, c *call, keyID string, mutate func(rec *KeyRecord) error) (*keyEntry, error) {
	e, err := r.resolve(ctx, c, keyID)
	if err != nil {
		return nil, err
	}
	c.key(e)
	if err := c.authorize(c.ev.Op, e, nil, ""); err != nil {
		return nil, err
	}
	return r.update(ctx, e.rec.KeyID, mutate)
}

// refuseEffective is refuseStates on the key's effective state (an Enabled
// key whose imported material expired is PendingImport).
func (r *KeyRing) refuseEffective(rec *KeyRecord, states ...KeyState) error {
	return refuseState(r.state(rec), states...)
}

// refuseStates fails with the state's error when the record is in one of states.
func refuseStates(rec *KeyRecord, states ...KeyState) error {
	return refuseState(rec.State, states...)
}

func refuseState(state KeyState, states ...KeyState) error {
	if !slices.Contains(states, state) {
		return nil
	}
	switch state {
	case KeyStatePendingDeletion:
		return ErrPendingDeletion
	case KeyStatePendingImport:
		return ErrPendingImport
	case KeyStateDisabled:
		return ErrDisabled
	}
	return ErrInvalidState
}

// EnableKey sets a Disabled key to Enabled. Enabling an enabled key does
// nothing. Keys pending deletion or import cannot be enabled.
func (r *KeyRing) EnableKey(ctx context.Context, keyID string) error {
	_, err := r.manage(ctx, OpEnableKey, keyID, func(rec *KeyRecord) error {
		if err := r.refuseEffective(rec, KeyStatePendingDeletion, KeyStatePendingImport); err != nil {
			return err
		}
		rec.State = KeyStateEnabled
		return nil
	})
	return err
}

// DisableKey sets an Enabled key to Disabled: it then refuses every
// cryptographic operation until enabled again.
func (r *KeyRing) DisableKey(ctx context.Context, keyID string) error {
	_, err := r.manage(ctx, OpDisableKey, keyID, func(rec *KeyRecord) error {
		if err := r.refuseEffective(rec, KeyStatePendingDeletion, KeyStatePendingImport); err != nil {
			return err
		}
		rec.State = KeyStateDisabled
		return nil
	})
	return err
}

// ScheduleKeyDeletion puts a key in PendingDeletion for pendingWindowInDays
// (7 to 30; 0 means 30) and returns its metadata with the DeletionDate. The
// key refuses all use at once; CancelKeyDeletion undoes this before the
// date. (The Rotation issue's RunDue destroys the material once it passes.)
func (r *KeyRing) ScheduleKeyDeletion(ctx context.Context, keyID string, pendingWindowInDays int) (*KeyMetadata, error) {
	if pendingWindowInDays == 0 {
		pendingWindowInDays = DefaultPendingWindow
	}
	e, err := r.manage(ctx, OpScheduleKeyDeletion, keyID, func(rec *KeyRecord) error {
		if pendingWindowInDays < MinPendingWindow || pendingWindowInDays > MaxPendingWindow {
			return fmt.Errorf("%w: PendingWindowInDays must be 7 to 30", ErrInvalidArgument)
		}
		if err := refuseStates(rec, KeyStatePendingDeletion); err != nil {
			return err
		}
		rec.State = KeyStatePendingDeletion
		rec.PendingWindowDays = pendingWindowInDays
		rec.DeletionDate = r.now().Add(time.Duration(pendingWindowInDays) * 24 * time.Hour)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r.metadata(e), nil
}

// CancelKeyDeletion takes a key out of PendingDeletion. As in AWS KMS the
// key comes back Disabled (or PendingImport, if it never had material).
func (r *KeyRing) CancelKeyDeletion(ctx context.Context, keyID string) error {
	_, err := r.manage(ctx, OpCancelKeyDeletion, keyID, func(rec *KeyRecord) error {
		if rec.State != KeyStatePendingDeletion {
			return fmt.Errorf("%w: key is not pending deletion", ErrInvalidState)
		}
		rec.State = KeyStateDisabled
		if len(rec.Versions) == 0 {
			rec.State = KeyStatePendingImport
		}
		rec.DeletionDate, rec.PendingWindowDays = time.Time{}, 0
		return nil
	})
	return err
}

func checkDescription(d string) error {
	if utf8.RuneCountInString(d) > MaxDescriptionLen || !utf8.ValidString(d) {
		return fmt.Errorf("%w: Description must be valid UTF-8 of at most %d characters", ErrInvalidArgument, MaxDescriptionLen)
	}
	return nil
}

// UpdateKeyDescription replaces a key's description.
func (r *KeyRing) UpdateKeyDescription(ctx context.Context, keyID, description string) error {
	_, err := r.manage(ctx, OpUpdateKeyDescription, keyID, func(rec *KeyRecord) error {
		if err := checkDescription(description); err != nil {
			return err
		}
		if err := refuseStates(rec, KeyStatePendingDeletion); err != nil {
			return err
		}
		rec.Description = description
		return nil
	})
	return err
}

// mergeTags returns cur with add applied: new keys appended, existing keys
// given the new value, sorted by key.
func mergeTags(cur, add []Tag) ([]Tag, error) {
	out := slices.Clone(cur)
	for _, t := range add {
		if t.TagKey == "" || utf8.RuneCountInString(t.TagKey) > MaxTagKeyLen || !utf8.ValidString(t.TagKey) ||
			utf8.RuneCountInString(t.TagValue) > MaxTagValueLen || !utf8.ValidString(t.TagValue) {
			return nil, fmt.Errorf("%w: tag keys must be 1 to 128 characters and values at most 256", ErrInvalidArgument)
		}
		if strings.HasPrefix(strings.ToLower(t.TagKey), "aws:") {
			return nil, fmt.Errorf("%w: tag keys beginning with aws: are reserved", ErrInvalidArgument)
		}
		if i := slices.IndexFunc(out, func(o Tag) bool { return o.TagKey == t.TagKey }); i >= 0 {
			out[i].TagValue = t.TagValue
		} else {
			out = append(out, t)
		}
	}
	if len(out) > MaxTagsPerKey {
		return nil, fmt.Errorf("%w: a key has at most %d tags", ErrLimitExceeded, MaxTagsPerKey)
	}
	slices.SortFunc(out, func(a, b Tag) int { return strings.Compare(a.TagKey, b.TagKey) })
	return out, nil
}

// TagResource adds tags to a key or replaces the values of existing ones.
func (r *KeyRing) TagResource(ctx context.Context, keyID string, tags []Tag) error {
	_, err := r.manage(ctx, OpTagResource, keyID, func(rec *KeyRecord) error {
		if err := refuseStates(rec, KeyStatePendingDeletion); err != nil {
			return err
		}
		merged, err := mergeTags(rec.Tags, tags)
		if err != nil {
			return err
		}
		rec.Tags = merged
		return nil
	})
	return err
}

// UntagResource removes the tags with the given keys; absent keys are ignored.
func (r *KeyRing) UntagResource(ctx context.Context, keyID string, tagKeys []string) error {
	_, err := r.manage(ctx, OpUntagResource, keyID, func(rec *KeyRecord) error {
		if err := refuseStates(rec, KeyStatePendingDeletion); err != nil {
			return err
		}
		rec.Tags = slices.DeleteFunc(rec.Tags, func(t Tag) bool { return slices.Contains(tagKeys, t.TagKey) })
		return nil
	})
	return err
}

// ListResourceTagsInput pages through a key's tags.
type ListResourceTagsInput struct {
	KeyID string
	// Limit is 1 to 50; 0 means 50.
	Limit int
	// Marker is NextMarker from the previous page.
	Marker string
}

// ListResourceTagsOutput is one page of tags, sorted by key.
type ListResourceTagsOutput struct {
	Tags       []Tag
	NextMarker string
	Truncated  bool
}

// ListResourceTags lists a key's tags.
func (r *KeyRing) ListResourceTags(ctx context.Context, in ListResourceTagsInput) (*ListResourceTagsOutput, error) {
	c := r.begin(ctx, OpListResourceTags)
	out, err := func() (*ListResourceTagsOutput, error) {
		limit, err := pageLimit(in.Limit, 50, 50)
		if err != nil {
			return nil, err
		}
		e, err := r.resolve(ctx, &c, in.KeyID)
		if err != nil {
			return nil, err
		}
		c.key(e)
		if err := c.authorize(OpListResourceTags, e, nil, ""); err != nil {
			return nil, err
		}
		tags := e.rec.Tags
		if in.Marker != "" {
			i, _ := slices.BinarySearchFunc(tags, in.Marker, func(t Tag, m string) int { return strings.Compare(t.TagKey, m) })
			for i < len(tags) && tags[i].TagKey <= in.Marker {
				i++
			}
			tags = tags[i:]
		}
		out := &ListResourceTagsOutput{}
		if len(tags) > limit {
			tags, out.Truncated = tags[:limit], true
			out.NextMarker = tags[limit-1].TagKey
		}
		out.Tags = slices.Clone(tags)
		return out, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

func pageLimit(limit, def, max int) (int, error) {
	if limit == 0 {
		return def, nil
	}
	if limit < 1 || limit > max {
		return 0, fmt.Errorf("%w: Limit must be 1 to %d", ErrInvalidArgument, max)
	}
	return limit, nil
}

// ListKeysInput pages through the ring's keys.
type ListKeysInput struct {
	// Limit is 1 to 1,000; 0 means 100.
	Limit int
	// Marker is NextMarker from the previous page.
	Marker string
}

// KeyListEntry names one key.
type KeyListEntry struct {
	KeyID  string
	KeyArn string
}

// ListKeysOutput is one page of keys, in key ID order.
type ListKeysOutput struct {
	Keys       []KeyListEntry
	NextMarker string
	Truncated  bool
}

// ListKeys lists the keys in every state but deleted.
func (r *KeyRing) ListKeys(ctx context.Context, in ListKeysInput) (*ListKeysOutput, error) {
	c := r.begin(ctx, OpListKeys)
	out, err := func() (*ListKeysOutput, error) {
		limit, err := pageLimit(in.Limit, 100, 1000)
		if err != nil {
			return nil, err
		}
		if len(in.Marker) > 1024 || !printable(in.Marker) && in.Marker != "" {
			return nil, fmt.Errorf("%w: Marker is not valid", ErrInvalidArgument)
		}
		if err := c.authorize(OpListKeys, nil, nil, ""); err != nil {
			return nil, err
		}
		ids, err := r.liveKeys(ctx, in.Marker, limit+1)
		if err != nil {
			return nil, err
		}
		out := &ListKeysOutput{}
		if len(ids) > limit {
			ids, out.Truncated = ids[:limit], true
			out.NextMarker = ids[limit-1]
		}
		out.Keys = make([]KeyListEntry, len(ids))
		for i, id := range ids {
			out.Keys[i] = KeyListEntry{KeyID: id, KeyArn: r.KeyARN(id)}
		}
		return out, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

// liveKeys returns up to limit IDs of keys that are not deleted, greater
// than after, in order.
func (r *KeyRing) liveKeys(ctx context.Context, after string, limit int) ([]string, error) {
	var live []string
	for {
		ids, err := r.cfg.Store.ListKeys(ctx, after, limit)
		if err != nil {
			return nil, storeErr(err)
		}
		for _, id := range ids {
			deleted, err := r.deleted(ctx, id)
			if err != nil {
				return nil, err
			}
			if !deleted {
				live = append(live, id)
			}
			if len(live) == limit {
				return live, nil
			}
		}
		if len(ids) < limit {
			return live, nil
		}
		after = ids[len(ids)-1]
	}
}

// deleted reports whether a key is a tombstone, from the cache when the
// ring has the key (tombstones never come back), else from the Store.
func (r *KeyRing) deleted(ctx context.Context, id string) (bool, error) {
	if v, ok := r.keys.Load(id); ok && v.(*keyEntry).rec.State == KeyStateDeleted {
		return true, nil
	}
	rec, err := r.cfg.Store.GetKey(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return true, nil // gone since it was listed
	} else if err != nil {
		return false, storeErr(err)
	}
	return rec.State == KeyStateDeleted, nil
}
