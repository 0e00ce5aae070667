package sqlstore

import (
	"maps"
	"time"

	"github.com/pocketkms/kms"
)

// recordFormat is the version of the stored record document.
const recordFormat = 1

// keyDoc is the JSON document of a key record (docs/FORMAT.md §6). It is
// the store's own format, apart from kms.KeyRecord, so that renaming a Go
// field never changes stored data. The revision lives in its own column.
type keyDoc struct {
	Format               int           `json:"format"`
	KeyID                string        `json:"key_id"`
	CreatedAt            time.Time     `json:"created_at"`
	Description          string        `json:"description,omitempty"`
	Spec                 string        `json:"spec"`
	Usage                string        `json:"usage"`
	Origin               string        `json:"origin"`
	State                string        `json:"state"`
	DeletionDate         time.Time     `json:"deletion_date"`
	PendingWindowDays    int           `json:"pending_window_days,omitempty"`
	ExpirationModel      string        `json:"expiration_model,omitempty"`
	ValidTo              time.Time     `json:"valid_to"`
	Primary              uint32        `json:"primary"`
	Versions             []versionDoc  `json:"versions"`
	Tags                 []tagDoc      `json:"tags,omitempty"`
	Import               *importDoc    `json:"import,omitempty"`
	RotationPeriodDays   int           `json:"rotation_period_days,omitempty"`
	NextRotation         time.Time     `json:"next_rotation"`
	Rotations            []rotationDoc `json:"rotations,omitempty"`
	MinDecryptionVersion uint32        `json:"min_decryption_version,omitempty"`
	MinEncryptionVersion uint32        `json:"min_encryption_version,omitempty"`
	Policy               string        `json:"policy"`
	Grants               []grantDoc    `json:"grants,omitempty"`
}

type versionDoc struct {
	Version   uint32    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	// Wrapped is the material wrapped by the RootKey (base64 in JSON).
	Wrapped     []byte    `json:"wrapped,omitempty"`
	PublicKey   []byte    `json:"public_key,omitempty"`
	VerifyOnly  bool      `json:"verify_only,omitempty"`
	State       string    `json:"state,omitempty"`
	DestroyedAt time.Time `json:"destroyed_at"`
}

type tagDoc struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type importDoc struct {
	TokenID   []byte    `json:"token_id"`
	Algorithm string    `json:"algorithm"`
	Spec      string    `json:"spec"`
	ValidTo   time.Time `json:"valid_to"`
	Wrapped   []byte    `json:"wrapped"`
}

type rotationDoc struct {
	Version uint32    `json:"version"`
	Date    time.Time `json:"date"`
	Type    string    `json:"type"`
}

type grantDoc struct {
	KeyID             string            `json:"key_id"`
	GrantID           string            `json:"grant_id"`
	Name              string            `json:"name,omitempty"`
	CreationDate      time.Time         `json:"creation_date"`
	GranteePrincipal  string            `json:"grantee_principal"`
	RetiringPrincipal string            `json:"retiring_principal,omitempty"`
	IssuingAccount    string            `json:"issuing_account,omitempty"`
	Operations        []string          `json:"operations"`
	Equals            map[string]string `json:"encryption_context_equals,omitempty"`
	Subset            map[string]string `json:"encryption_context_subset,omitempty"`
	// Constrained tells an empty constraint map from none.
	Constrained bool `json:"constrained,omitempty"`
	EqualsSet   bool `json:"equals_set,omitempty"`
	SubsetSet   bool `json:"subset_set,omitempty"`
}

// docOf converts a record to its document.
func docOf(r *kms.KeyRecord) *keyDoc {
	d := &keyDoc{
		Format: recordFormat, KeyID: r.KeyID, CreatedAt: r.CreatedAt, Description: r.Description,
		Spec: string(r.Spec), Usage: string(r.Usage), Origin: string(r.Origin), State: string(r.State),
		DeletionDate: r.DeletionDate, PendingWindowDays: r.PendingWindowDays,
		ExpirationModel: string(r.ExpirationModel), ValidTo: r.ValidTo, Primary: r.Primary,
		RotationPeriodDays: r.RotationPeriodDays, NextRotation: r.NextRotation,
		MinDecryptionVersion: r.MinDecryptionVersion, MinEncryptionVersion: r.MinEncryptionVersion,
		Policy: r.Policy, Versions: []versionDoc{},
	}
	for _, v := range r.Versions {
		d.Versions = append(d.Versions, versionDoc{
			Version: v.Version, CreatedAt: v.CreatedAt, Wrapped: v.Wrapped, PublicKey: v.PublicKey,
			VerifyOnly: v.VerifyOnly, State: string(v.State), DestroyedAt: v.DestroyedAt,
		})
	}
	for _, t := range r.Tags {
		d.Tags = append(d.Tags, tagDoc{Key: t.TagKey, Value: t.TagValue})
	}
	if im := r.Import; im != nil {
		d.Import = &importDoc{TokenID: im.TokenID, Algorithm: string(im.Algorithm), Spec: string(im.Spec), ValidTo: im.ValidTo, Wrapped: im.Wrapped}
	}
	for _, rot := range r.Rotations {
		d.Rotations = append(d.Rotations, rotationDoc{Version: rot.Version, Date: rot.Date, Type: string(rot.Type)})
	}
	for _, g := range r.Grants {
		gd := grantDoc{
			KeyID: g.KeyID, GrantID: g.GrantID, Name: g.Name, CreationDate: g.CreationDate,
			GranteePrincipal: g.GranteePrincipal, RetiringPrincipal: g.RetiringPrincipal,
			IssuingAccount: g.IssuingAccount, Operations: []string{},
		}
		for _, op := range g.Operations {
			gd.Operations = append(gd.Operations, string(op))
		}
		if c := g.Constraints; c != nil {
			gd.Constrained = true
			gd.Equals, gd.EqualsSet = c.EncryptionContextEquals, c.EncryptionContextEquals != nil
			gd.Subset, gd.SubsetSet = c.EncryptionContextSubset, c.EncryptionContextSubset != nil
		}
		d.Grants = append(d.Grants, gd)
	}
	return d
}

// record converts a document back to a record.
func (d *keyDoc) record() *kms.KeyRecord {
	r := &kms.KeyRecord{
		KeyID: d.KeyID, CreatedAt: d.CreatedAt, Description: d.Description,
		Spec: kms.KeySpec(d.Spec), Usage: kms.KeyUsage(d.Usage), Origin: kms.Origin(d.Origin), State: kms.KeyState(d.State),
		DeletionDate: d.DeletionDate, PendingWindowDays: d.PendingWindowDays,
		ExpirationModel: kms.ExpirationModel(d.ExpirationModel), ValidTo: d.ValidTo, Primary: d.Primary,
		RotationPeriodDays: d.RotationPeriodDays, NextRotation: d.NextRotation,
		MinDecryptionVersion: d.MinDecryptionVersion, MinEncryptionVersion: d.MinEncryptionVersion,
		Policy: d.Policy,
	}
	for _, v := range d.Versions {
		r.Versions = append(r.Versions, kms.VersionRecord{
			Version: v.Version, CreatedAt: v.CreatedAt, Wrapped: v.Wrapped, PublicKey: v.PublicKey,
			VerifyOnly: v.VerifyOnly, State: kms.VersionState(v.State), DestroyedAt: v.DestroyedAt,
		})
	}
	for _, t := range d.Tags {
		r.Tags = append(r.Tags, kms.Tag{TagKey: t.Key, TagValue: t.Value})
	}
	if im := d.Import; im != nil {
		r.Import = &kms.ImportRecord{TokenID: im.TokenID, Algorithm: kms.WrappingAlgorithm(im.Algorithm), Spec: kms.WrappingKeySpec(im.Spec), ValidTo: im.ValidTo, Wrapped: im.Wrapped}
	}
	for _, rot := range d.Rotations {
		r.Rotations = append(r.Rotations, kms.RotationRecord{Version: rot.Version, Date: rot.Date, Type: kms.RotationType(rot.Type)})
	}
	for _, gd := range d.Grants {
		g := kms.Grant{
			KeyID: gd.KeyID, GrantID: gd.GrantID, Name: gd.Name, CreationDate: gd.CreationDate,
			GranteePrincipal: gd.GranteePrincipal, RetiringPrincipal: gd.RetiringPrincipal,
			IssuingAccount: gd.IssuingAccount,
		}
		for _, op := range gd.Operations {
			g.Operations = append(g.Operations, kms.Op(op))
		}
		if gd.Constrained {
			g.Constraints = &kms.GrantConstraints{}
			if gd.EqualsSet {
				g.Constraints.EncryptionContextEquals = nonNil(gd.Equals)
			}
			if gd.SubsetSet {
				g.Constraints.EncryptionContextSubset = nonNil(gd.Subset)
			}
		}
		r.Grants = append(r.Grants, g)
	}
	return r
}

func nonNil(m map[string]string) kms.EncryptionContext {
	if m == nil {
		return kms.EncryptionContext{}
	}
	return maps.Clone(m)
}
