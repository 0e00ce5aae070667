package kms

import (
	"context"
	"fmt"
	"time"
)

// Version controls, after Vault Transit: list a key's versions, disable,
// re-enable or destroy one of them, and set the lowest versions a key
// still decrypts with and hands out for encryption. They go beyond AWS
// KMS, whose backing keys cannot be managed one by one.

// KeyVersion describes one version of a key's material.
type KeyVersion struct {
	Version     uint32
	CreatedAt   time.Time
	State       VersionState
	DestroyedAt time.Time // set when State is Destroyed
	Primary     bool
}

// ListKeyVersionsOutput is the output of ListKeyVersions.
type ListKeyVersionsOutput struct {
	KeyID                string // the key ARN
	Versions             []KeyVersion
	MinDecryptionVersion uint32
	MinEncryptionVersion uint32
}

// ListKeyVersions lists every version of a key, oldest first, with its
// state, and the key's version limits. It works in every key state.
func (r *KeyRing) ListKeyVersions(ctx context.Context, keyID string) (*ListKeyVersionsOutput, error) {
	c := r.begin(ctx, OpListKeyVersions)
	out, err := func() (*ListKeyVersionsOutput, error) {
		e, err := r.resolve(ctx, &c, keyID)
		if err != nil {
			return nil, err
		}
		c.key(e)
		if err := c.authorize(OpListKeyVersions, e, nil, ""); err != nil {
			return nil, err
		}
		out := &ListKeyVersionsOutput{
			KeyID: e.arn, MinDecryptionVersion: e.rec.MinDecryptionVersion, MinEncryptionVersion: e.rec.MinEncryptionVersion,
			Versions: make([]KeyVersion, len(e.rec.Versions)),
		}
		for i, v := range e.rec.Versions {
			out.Versions[i] = KeyVersion{
				Version: v.Version, CreatedAt: v.CreatedAt, State: versionState(v),
				DestroyedAt: v.DestroyedAt, Primary: v.Version == e.rec.Primary,
			}
		}
		return out, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

func versionState(v VersionRecord) VersionState {
	if v.State == "" {
		return VersionEnabled
	}
	return v.State
}

// DisableKeyVersion disables one version of a key: data it made no longer
// decrypts, verifies or derives until EnableKeyVersion. Where the version
// is known (ciphertext blobs, envelope messages with KeyRing recipients,
// calls given a KeyVersion) the error is ErrKeyVersionDisabled, naming the
// version; where versions are tried in turn, the data is just not valid
// under the key's usable versions. The primary version cannot be disabled;
// rotate first.
func (r *KeyRing) DisableKeyVersion(ctx context.Context, keyID string, version uint32) error {
	return r.setVersion(ctx, OpDisableKeyVersion, keyID, version, func(v *VersionRecord) error {
		if v.State == VersionDestroyed {
			return fmt.Errorf("%w: version %d", ErrKeyVersionDestroyed, v.Version)
		}
		v.State = VersionDisabled
		return nil
	})
}

// EnableKeyVersion enables a disabled version again. A destroyed version
// cannot come back.
func (r *KeyRing) EnableKeyVersion(ctx context.Context, keyID string, version uint32) error {
	return r.setVersion(ctx, OpEnableKeyVersion, keyID, version, func(v *VersionRecord) error {
		if v.State == VersionDestroyed {
			return fmt.Errorf("%w: version %d", ErrKeyVersionDestroyed, v.Version)
		}
		v.State = VersionEnabled
		return nil
	})
}

// DestroyKeyVersion destroys one version's material, irreversibly: data
// it made can never be decrypted again (ErrKeyVersionDestroyed, naming the
// key and the version), while the key's other versions keep working. Use
// it to revoke a compromised version. The primary version cannot be
// destroyed; rotate first.
func (r *KeyRing) DestroyKeyVersion(ctx context.Context, keyID string, version uint32) error {
	return r.setVersion(ctx, OpDestroyKeyVersion, keyID, version, func(v *VersionRecord) error {
		if v.State == VersionDestroyed {
			return nil
		}
		clear(v.Wrapped)
		v.State, v.DestroyedAt = VersionDestroyed, r.now()
		v.Wrapped, v.PublicKey = nil, nil
		return nil
	})
}

// setVersion changes one non-primary version of a key under the write lock.
func (r *KeyRing) setVersion(ctx context.Context, op Op, keyID string, version uint32, change func(v *VersionRecord) error) error {
	c := r.begin(ctx, op)
	c.ev.KeyVersion = version
	_, err := r.manageIn(ctx, &c, keyID, func(rec *KeyRecord) error {
		if err := refuseStates(rec, KeyStatePendingDeletion); err != nil {
			return err
		}
		for i := range rec.Versions {
			if rec.Versions[i].Version != version {
				continue
			}
			if version == rec.Primary {
				return fmt.Errorf("%w: version %d is the primary version; rotate the key first", ErrInvalidArgument, version)
			}
			return change(&rec.Versions[i])
		}
		return fmt.Errorf("%w: key has no version %d", ErrInvalidArgument, version)
	})
	return c.end(err)
}

// UpdateKeyVersionLimitsInput is the input of UpdateKeyVersionLimits.
type UpdateKeyVersionLimitsInput struct {
	KeyID string
	// MinDecryptionVersion is the oldest version that still decrypts,
	// verifies and derives; data made by older versions fails with
	// ErrKeyVersionRetired. 0 removes the limit.
	MinDecryptionVersion uint32
	// MinEncryptionVersion is the oldest version GetPublicKey hands out for
	// encryption; it must be 0 or at least MinDecryptionVersion. Encrypt,
	// GenerateDataKey, Sign and GenerateMac always use the primary version.
	MinEncryptionVersion uint32
}

// UpdateKeyVersionLimits sets a key's minimum decryption and encryption
// versions (Vault Transit's min_decryption_version and
// min_encryption_version). Neither may exceed the primary version.
// Raising the minimum decryption version retires older data at once; it
// can be lowered again, unlike DestroyKeyVersion. Rewrap data first
// (ReEncrypt, Envelope.Rewrap) to keep it.
func (r *KeyRing) UpdateKeyVersionLimits(ctx context.Context, in UpdateKeyVersionLimitsInput) error {
	_, err := r.manage(ctx, OpUpdateKeyVersionLimits, in.KeyID, func(rec *KeyRecord) error {
		if err := refuseStates(rec, KeyStatePendingDeletion, KeyStatePendingImport); err != nil {
			return err
		}
		switch {
		case in.MinDecryptionVersion > rec.Primary || in.MinEncryptionVersion > rec.Primary:
			return fmt.Errorf("%w: a minimum version cannot exceed the primary version %d", ErrInvalidArgument, rec.Primary)
		case in.MinEncryptionVersion != 0 && in.MinEncryptionVersion < in.MinDecryptionVersion:
			return fmt.Errorf("%w: MinEncryptionVersion must be 0 or at least MinDecryptionVersion", ErrInvalidArgument)
		}
		rec.MinDecryptionVersion, rec.MinEncryptionVersion = in.MinDecryptionVersion, in.MinEncryptionVersion
		return nil
	})
	return err
}
