// Package kmstest makes a KeyRing the in-process KMS of unit tests: a ring
// on a fake clock with an event recorder, and helpers that create and
// import keys in one call.
package kmstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pocketkms/kms"
)

// Clock is a fake clock for tests. Its zero value reads 2025-01-01T00:00:00Z.
// It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Epoch is the time a new fake Clock starts at.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a fake clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = Epoch
	}
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = Epoch
	}
	c.now = c.now.Add(d)
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Ring is a KeyRing for one test, with its fake clock and event recorder.
type Ring struct {
	*kms.KeyRing
	Clock  *Clock
	Events *kms.Recorder
	t      testing.TB
}

// New returns a ring in memory on a fake clock, recording every event.
// The Config's Clock is replaced; events reach the recorder first, then the
// Config's Auditor if it has one. Its other fields are kept.
func New(t testing.TB, cfg ...kms.Config) *Ring {
	t.Helper()
	var c kms.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	clock := &Clock{now: Epoch}
	rec := &kms.Recorder{}
	c.Clock = clock
	if c.Auditor != nil {
		c.Auditor = kms.MultiAuditor{rec, c.Auditor}
	} else {
		c.Auditor = rec
	}
	ring, err := kms.NewKeyRing(c)
	if err != nil {
		t.Fatalf("kmstest: NewKeyRing: %v", err)
	}
	return &Ring{KeyRing: ring, Clock: clock, Events: rec, t: t}
}

// CreateKey creates a key and fails the test on error.
func (r *Ring) CreateKey(spec kms.KeySpec, usage kms.KeyUsage) *kms.KeyMetadata {
	r.t.Helper()
	m, err := r.KeyRing.CreateKey(context.Background(), kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	if err != nil {
		r.t.Fatalf("kmstest: CreateKey %s %s: %v", spec, usage, err)
	}
	return m
}

// ImportKey creates a key of origin EXTERNAL and imports material into it
// through GetParametersForImport and ImportKeyMaterial, as a client would:
// raw bytes for symmetric and HMAC keys, PKCS#8 DER (or PKIX DER, for a
// verify-only key) for asymmetric keys. It fails the test on error.
func (r *Ring) ImportKey(spec kms.KeySpec, usage kms.KeyUsage, material []byte) *kms.KeyMetadata {
	r.t.Helper()
	ctx := context.Background()
	m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Origin: kms.OriginExternal})
	if err != nil {
		r.t.Fatalf("kmstest: CreateKey: %v", err)
	}
	if err := ImportMaterial(ctx, r.KeyRing, m.KeyID, material); err != nil {
		r.t.Fatalf("kmstest: import: %v", err)
	}
	m, err = r.KeyRing.DescribeKey(ctx, m.KeyID)
	if err != nil {
		r.t.Fatalf("kmstest: DescribeKey: %v", err)
	}
	return m
}

// ImportMaterial imports material into an EXTERNAL key with an RSA-2048
// wrapping key and RSA_AES_KEY_WRAP_SHA_256, as a client would.
func ImportMaterial(ctx context.Context, ring *kms.KeyRing, keyID string, material []byte) error {
	p, err := ring.GetParametersForImport(ctx, kms.GetParametersForImportInput{
		KeyID: keyID, WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, WrappingKeySpec: kms.WrappingRSA2048,
	})
	if err != nil {
		return err
	}
	enc, err := WrapForImport(p.PublicKey, kms.WrapRSAAESKeyWrapSHA256, material)
	if err != nil {
		return err
	}
	return ring.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: enc})
}

// WrapForImport encrypts material to an import wrapping public key (DER
// SubjectPublicKeyInfo) with alg, as the AWS KMS documentation tells
// clients to: kms.WrapKeyMaterial with crypto/rand.
func WrapForImport(publicKeyDER []byte, alg kms.WrappingAlgorithm, material []byte) ([]byte, error) {
	return kms.WrapKeyMaterial(publicKeyDER, alg, material, nil)
}
