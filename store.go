package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pocketkms/kms/internal/keys"
)

// Store keeps key records and aliases. The KeyRing is its only writer
// through one ring; several rings may share a store (see the Persistence
// docs), so every key update is a compare-and-swap on [KeyRecord.Revision].
//
// A Store never sees plaintext key material: versions hold material wrapped
// under the [RootKey]. Implementations must be safe for concurrent use and
// must return copies, so that callers may not modify stored records.
type Store interface {
	// GetKey returns the record of a key, or an error wrapping ErrNotFound.
	GetKey(ctx context.Context, keyID string) (*KeyRecord, error)
	// PutKey creates or updates a record atomically. r.Revision is the
	// revision the caller read (0 to create); if the stored revision differs
	// PutKey fails with an error wrapping ErrConflict (or ErrAlreadyExists on
	// create). On success the stored revision is r.Revision+1.
	PutKey(ctx context.Context, r *KeyRecord) error
	// ListKeys returns up to limit key IDs greater than after, in order.
	ListKeys(ctx context.Context, after string, limit int) ([]string, error)
	// PutAlias creates an alias (create true, failing with ErrAlreadyExists if
	// the name is taken) or points an existing one elsewhere (create false,
	// failing with ErrNotFound if it does not exist).
	PutAlias(ctx context.Context, a AliasRecord, create bool) error
	// GetAlias returns the alias with the given name, or ErrNotFound.
	GetAlias(ctx context.Context, name string) (AliasRecord, error)
	// DeleteAlias removes an alias, or fails with ErrNotFound.
	DeleteAlias(ctx context.Context, name string) error
	// ListAliases returns up to limit aliases whose names are greater than
	// after, in order; if keyID is not empty, only those pointing to it.
	ListAliases(ctx context.Context, keyID, after string, limit int) ([]AliasRecord, error)
}

// KeyRecord is what a Store keeps of a key: its metadata and every version,
// each with its material wrapped under the RootKey.
type KeyRecord struct {
	KeyID       string
	Revision    uint64
	CreatedAt   time.Time
	Description string
	Spec        KeySpec
	Usage       KeyUsage
	Origin      Origin
	State       KeyState
	// DeletionDate and PendingWindowDays are set while PendingDeletion.
	DeletionDate      time.Time
	PendingWindowDays int
	// ExpirationModel and ValidTo are set on imported keys.
	ExpirationModel ExpirationModel
	ValidTo         time.Time
	Primary         uint32
	Versions        []VersionRecord
	Tags            []Tag
	// Import holds the parameters of the last GetParametersForImport.
	Import *ImportRecord

	// RotationPeriodDays is the automatic rotation period; 0 when automatic
	// rotation is off. NextRotation is when RunDue rotates the key next.
	RotationPeriodDays int
	NextRotation       time.Time
	// Rotations is the history of rotations, oldest first.
	Rotations []RotationRecord
	// MinDecryptionVersion and MinEncryptionVersion are the version limits
	// (0: none). Versions below MinDecryptionVersion decrypt, verify and
	// derive nothing; MinEncryptionVersion bounds the versions handed out
	// for encryption (GetPublicKey of an encryption key).
	MinDecryptionVersion uint32
	MinEncryptionVersion uint32

	// Policy is the key policy document (JSON). Every key has one: CreateKey
	// stores DefaultKeyPolicy when given none.
	Policy string
	// Grants are the key's grants, in the order they were created.
	Grants []Grant
}

// RotationRecord is one rotation of a key.
type RotationRecord struct {
	Version uint32 // the version the rotation made
	Date    time.Time
	Type    RotationType
}

// VersionRecord is one version of a key's material.
type VersionRecord struct {
	Version   uint32
	CreatedAt time.Time
	// Wrapped is the version's material (raw bytes for symmetric and HMAC
	// keys, PKCS#8 or, for verify-only keys, PKIX DER) wrapped by the RootKey
	// with associated data binding the key ID and version.
	Wrapped []byte
	// PublicKey is the DER SubjectPublicKeyInfo of an asymmetric version.
	PublicKey []byte
	// VerifyOnly marks a version imported as a public key alone.
	VerifyOnly bool
	// State is the version's own state: Enabled (also the zero value),
	// Disabled or Destroyed. A destroyed version has no material left.
	State       VersionState
	DestroyedAt time.Time

	// parsed is the material the ring has just wrapped, so that it is not
	// unwrapped again; never stored (clone drops it).
	parsed *keys.Key
}

// ImportRecord holds the wrapping key of a pending import.
type ImportRecord struct {
	TokenID   []byte
	Algorithm WrappingAlgorithm
	Spec      WrappingKeySpec
	ValidTo   time.Time
	// Wrapped is the PKCS#8 private wrapping key, wrapped by the RootKey.
	Wrapped []byte
}

// AliasRecord is an alias as a Store keeps it.
type AliasRecord struct {
	Name        string // alias/<name>
	TargetKeyID string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// clone returns a deep copy of r.
func (r *KeyRecord) clone() *KeyRecord {
	c := *r
	c.Versions = slices.Clone(r.Versions)
	for i := range c.Versions {
		c.Versions[i].parsed = nil
		c.Versions[i].Wrapped = bytes.Clone(c.Versions[i].Wrapped)
		c.Versions[i].PublicKey = bytes.Clone(c.Versions[i].PublicKey)
	}
	c.Tags = slices.Clone(r.Tags)
	c.Rotations = slices.Clone(r.Rotations)
	c.Grants = slices.Clone(r.Grants)
	for i := range c.Grants {
		c.Grants[i] = c.Grants[i].clone()
	}
	if r.Import != nil {
		imp := *r.Import
		imp.TokenID = bytes.Clone(imp.TokenID)
		imp.Wrapped = bytes.Clone(imp.Wrapped)
		c.Import = &imp
	}
	return &c
}

// MemoryStore is a Store in memory, the default when Config.Store is nil.
// It is safe for concurrent use. Its zero value is ready.
type MemoryStore struct {
	mu       sync.RWMutex
	keys     map[string]*KeyRecord
	aliases  map[string]AliasRecord
	audit    map[string]*AuditState
	settings map[string]string
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

var (
	_ Store         = (*MemoryStore)(nil)
	_ AuditStore    = (*MemoryStore)(nil)
	_ SettingsStore = (*MemoryStore)(nil)
)

// GetKey implements Store.
func (s *MemoryStore) GetKey(_ context.Context, keyID string) (*KeyRecord, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.keys[keyID]
	if !ok {
		return nil, ErrNotFound
	}
	return r.clone(), nil
}

// PutKey implements Store.
func (s *MemoryStore) PutKey(_ context.Context, r *KeyRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = make(map[string]*KeyRecord)
	}
	cur, ok := s.keys[r.KeyID]
	switch {
	case !ok && r.Revision != 0:
		return ErrConflict
	case ok && r.Revision == 0:
		return ErrAlreadyExists
	case ok && cur.Revision != r.Revision:
		return ErrConflict
	}
	c := r.clone()
	c.Revision++
	s.keys[r.KeyID] = c
	return nil
}

// ListKeys implements Store.
func (s *MemoryStore) ListKeys(_ context.Context, after string, limit int) ([]string, error) {
	s.mu.RLock()
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		if id > after {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	slices.Sort(ids)
	if len(ids) > max(limit, 0) {
		limit = max(limit, 0)
		ids = ids[:limit]
	}
	return ids, nil
}

// PutAlias implements Store.
func (s *MemoryStore) PutAlias(_ context.Context, a AliasRecord, create bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aliases == nil {
		s.aliases = make(map[string]AliasRecord)
	}
	_, ok := s.aliases[a.Name]
	if create && ok {
		return ErrAlreadyExists
	}
	if !create && !ok {
		return ErrNotFound
	}
	s.aliases[a.Name] = a
	return nil
}

// GetAlias implements Store.
func (s *MemoryStore) GetAlias(_ context.Context, name string) (AliasRecord, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.aliases[name]
	if !ok {
		return AliasRecord{}, ErrNotFound
	}
	return a, nil
}

// DeleteAlias implements Store.
func (s *MemoryStore) DeleteAlias(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.aliases[name]; !ok {
		return ErrNotFound
	}
	delete(s.aliases, name)
	return nil
}

// ListAliases implements Store.
func (s *MemoryStore) ListAliases(_ context.Context, keyID, after string, limit int) ([]AliasRecord, error) {
	s.mu.RLock()
	out := make([]AliasRecord, 0, len(s.aliases))
	for _, a := range s.aliases {
		if a.Name > after && (keyID == "" || a.TargetKeyID == keyID) {
			out = append(out, a)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b AliasRecord) int { return strings.Compare(a.Name, b.Name) })
	if len(out) > max(limit, 0) {
		limit = max(limit, 0)
		out = out[:limit]
	}
	return out, nil
}

// RootKey wraps and unwraps key material before it reaches a Store. The
// associated data binds a wrapped value to the key and version it belongs
// to; Unwrap must fail if it differs. Implementations must be safe for
// concurrent use. NewAESRootKey, RootKeyFromFile, RootKeyFromEnv and
// NewPassphraseRootKey hold the key in the process; NewTinkRootKey takes any
// Tink AEAD, including Tink's KMS-backed ones, so the root key can stay in
// AWS KMS, GCP KMS or Vault. RootKeys and RewrapRootKey rotate it.
type RootKey interface {
	Wrap(ctx context.Context, plaintext, associatedData []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped, associatedData []byte) ([]byte, error)
}

// aesRootKey is a RootKey that seals with AES-256-GCM and a random nonce.
type aesRootKey struct {
	aead cipher.AEAD
	rand io.Reader
}

// rootKeyFormat is the first byte of every value an aesRootKey wraps.
const rootKeyFormat = 0x01

// NewAESRootKey returns a RootKey that wraps with AES-256-GCM under a
// 256-bit key, with random 96-bit nonces drawn from rand (nil means
// crypto/rand). The key bytes are copied. Wrapped values are
// 0x01 || nonce || ciphertext || tag.
//
// Warning: whoever holds the 32 bytes can unwrap every key in the Store.
// Keep them out of the Store's database and out of source code.
func NewAESRootKey(key []byte, rand io.Reader) (RootKey, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: root key must be 32 bytes", ErrInvalidArgument)
	}
	block, err := aes.NewCipher(bytes.Clone(key))
	if err != nil {
		return nil, fmt.Errorf("%w: root key", ErrInvalidArgument)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: root key", ErrInvalidArgument)
	}
	if rand == nil {
		rand = cryptoRand{}
	}
	return &aesRootKey{aead: aead, rand: rand}, nil
}

func (k *aesRootKey) Wrap(_ context.Context, plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = rootKeyFormat
	if _, err := io.ReadFull(k.rand, out[1:]); err != nil {
		return nil, errors.New("kms: reading random nonce failed")
	}
	return k.aead.Seal(out, out[1:], plaintext, ad), nil
}

var errUnwrap = errors.New("kms: root key could not unwrap key material")

func (k *aesRootKey) Unwrap(_ context.Context, wrapped, ad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(wrapped) < 1+n+k.aead.Overhead() || wrapped[0] != rootKeyFormat {
		return nil, errUnwrap
	}
	pt, err := k.aead.Open(nil, wrapped[1:1+n], wrapped[1+n:], ad)
	if err != nil {
		return nil, errUnwrap
	}
	return pt, nil
}

// Format prints no key material.
func (k *aesRootKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, "kms.RootKey(AES-256-GCM)") }
