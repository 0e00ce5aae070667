package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// checkAliasName validates an alias name: "alias/" and then 1 or more of
// a-z A-Z 0-9 / _ -, at most 256 characters in all, not under "alias/aws/",
// which AWS reserves.
func checkAliasName(name string) error {
	rest, ok := strings.CutPrefix(name, "alias/")
	if !ok || rest == "" || len(name) > MaxAliasNameLen || strings.HasPrefix(rest, "aws/") {
		return fmt.Errorf("%w: alias names are alias/ and 1 to 250 characters, not under alias/aws/", ErrInvalidArgument)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-') {
			return fmt.Errorf("%w: alias names may hold only a-z A-Z 0-9 / _ -", ErrInvalidArgument)
		}
	}
	return nil
}

// aliasTargetEntry resolves the target of CreateAlias and UpdateAlias,
// which must be named by key ID or key ARN, not by another alias.
func (r *KeyRing) aliasTargetEntry(ctx context.Context, c *call, target string) (*keyEntry, error) {
	if strings.HasPrefix(target, "alias/") || strings.Contains(target, ":alias/") {
		return nil, fmt.Errorf("%w: an alias must point to a key ID or key ARN", ErrInvalidArgument)
	}
	e, err := r.resolve(ctx, c, target)
	if err != nil {
		return nil, err
	}
	c.key(e)
	if err := refuseStates(e.rec, KeyStatePendingDeletion); err != nil {
		return nil, err
	}
	return e, nil
}

// CreateAlias creates an alias for a key. Aliases name keys wherever a key
// ID is accepted.
func (r *KeyRing) CreateAlias(ctx context.Context, aliasName, targetKeyID string) error {
	c := r.begin(ctx, OpCreateAlias)
	err := func() error {
		if err := checkAliasName(aliasName); err != nil {
			return err
		}
		e, err := r.aliasTargetEntry(ctx, &c, targetKeyID)
		if err != nil {
			return err
		}
		c.alias = aliasName
		if err := c.authorize(OpCreateAlias, e, nil, ""); err != nil {
			return err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		now := r.now()
		a := AliasRecord{Name: aliasName, TargetKeyID: e.rec.KeyID, CreatedAt: now, UpdatedAt: now}
		if err := r.cfg.Store.PutAlias(ctx, a, true); err != nil {
			return storeErr(err)
		}
		r.setAlias(aliasName, e.rec.KeyID)
		return nil
	}()
	return c.end(err)
}

// UpdateAlias points an existing alias to another key, which must have the
// same key usage and be of the same kind (symmetric or not) as the current
// target, as AWS KMS requires. As in AWS, the Policy is asked twice, with
// RequestAlias set: for the key the alias names now, then for the new one.
func (r *KeyRing) UpdateAlias(ctx context.Context, aliasName, targetKeyID string) error {
	c := r.begin(ctx, OpUpdateAlias)
	err := func() error {
		if err := checkAliasName(aliasName); err != nil {
			return err
		}
		cur, err := r.cfg.Store.GetAlias(ctx, aliasName)
		if err != nil {
			return &Error{Op: OpUpdateAlias, KeyID: aliasName, Err: storeErr(err)}
		}
		old, err := r.load(ctx, cur.TargetKeyID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		e, err := r.aliasTargetEntry(ctx, &c, targetKeyID)
		if err != nil {
			return err
		}
		if old != nil && (old.rec.Usage != e.rec.Usage || (old.rec.Spec == SymmetricDefault) != (e.rec.Spec == SymmetricDefault)) {
			return fmt.Errorf("%w: the new target must have the key usage and type of the current one", ErrInvalidArgument)
		}
		c.alias = aliasName
		if old != nil {
			if err := c.authorize(OpUpdateAlias, old, nil, ""); err != nil {
				return err
			}
		}
		if err := c.authorize(OpUpdateAlias, e, nil, ""); err != nil {
			return err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		now, err := r.cfg.Store.GetAlias(ctx, aliasName)
		if err != nil {
			return storeErr(err)
		}
		if now.TargetKeyID != cur.TargetKeyID {
			return fmt.Errorf("%w: the alias changed during the update", ErrConflict)
		}
		now.TargetKeyID, now.UpdatedAt = e.rec.KeyID, r.now()
		if err := r.cfg.Store.PutAlias(ctx, now, false); err != nil {
			return storeErr(err)
		}
		r.setAlias(aliasName, e.rec.KeyID)
		return nil
	}()
	return c.end(err)
}

// DeleteAlias deletes an alias. The key it named is not affected. An alias
// whose key no longer exists can be deleted too; the Policy then sees the
// alias alone.
func (r *KeyRing) DeleteAlias(ctx context.Context, aliasName string) error {
	c := r.begin(ctx, OpDeleteAlias)
	err := func() error {
		if err := checkAliasName(aliasName); err != nil {
			return err
		}
		c.name, c.alias = aliasName, aliasName
		// Authorize against the alias as stored, not a cached copy: another
		// ring may have pointed it elsewhere.
		cur, err := r.cfg.Store.GetAlias(ctx, aliasName)
		if err != nil {
			return storeErr(err)
		}
		target := cur.TargetKeyID
		e, err := r.load(ctx, target)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if e != nil {
			c.key(e)
		}
		if err := c.authorize(OpDeleteAlias, e, nil, ""); err != nil {
			return err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if now, err := r.cfg.Store.GetAlias(ctx, aliasName); err != nil {
			return storeErr(err)
		} else if now.TargetKeyID != target {
			return fmt.Errorf("%w: the alias was pointed at another key meanwhile", ErrConflict)
		}
		if err := r.cfg.Store.DeleteAlias(ctx, aliasName); err != nil {
			return storeErr(err)
		}
		r.setAlias(aliasName, "")
		return nil
	}()
	return c.end(err)
}

// ListAliasesInput pages through aliases, of one key or of all.
type ListAliasesInput struct {
	// KeyID, if set, lists only the aliases of that key.
	KeyID string
	// Limit is 1 to 100; 0 means 50.
	Limit int
	// Marker is NextMarker from the previous page.
	Marker string
}

// AliasListEntry describes one alias.
type AliasListEntry struct {
	AliasName       string
	AliasArn        string
	TargetKeyID     string
	CreationDate    time.Time
	LastUpdatedDate time.Time
}

// ListAliasesOutput is one page of aliases, in name order.
type ListAliasesOutput struct {
	Aliases    []AliasListEntry
	NextMarker string
	Truncated  bool
}

// ListAliases lists aliases.
func (r *KeyRing) ListAliases(ctx context.Context, in ListAliasesInput) (*ListAliasesOutput, error) {
	c := r.begin(ctx, OpListAliases)
	out, err := func() (*ListAliasesOutput, error) {
		limit, err := pageLimit(in.Limit, 50, 100)
		if err != nil {
			return nil, err
		}
		if len(in.Marker) > 1024 || !printable(in.Marker) && in.Marker != "" {
			return nil, fmt.Errorf("%w: Marker is not valid", ErrInvalidArgument)
		}
		var e *keyEntry
		if in.KeyID != "" {
			if e, err = r.resolve(ctx, &c, in.KeyID); err != nil {
				return nil, err
			}
			c.key(e)
		}
		if err := c.authorize(OpListAliases, e, nil, ""); err != nil {
			return nil, err
		}
		id := ""
		if e != nil {
			id = e.rec.KeyID
		}
		as, err := r.cfg.Store.ListAliases(ctx, id, in.Marker, limit+1)
		if err != nil {
			return nil, storeErr(err)
		}
		out := &ListAliasesOutput{}
		if len(as) > limit {
			as, out.Truncated = as[:limit], true
			out.NextMarker = as[limit-1].Name
		}
		out.Aliases = make([]AliasListEntry, len(as))
		for i, a := range as {
			out.Aliases[i] = AliasListEntry{
				AliasName: a.Name, AliasArn: r.AliasARN(a.Name), TargetKeyID: a.TargetKeyID,
				CreationDate: a.CreatedAt, LastUpdatedDate: a.UpdatedAt,
			}
		}
		return out, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}
