package kms

import "context"

// Policy decides whether an operation may proceed. It is called once per
// operation (twice for ReEncrypt: ReEncryptFrom on the source key and
// ReEncryptTo on the destination), after the key is resolved and its state
// checked, before any key material is used. It may be called concurrently
// and is never called with KeyRing locks held.
//
// A nil error allows the operation. Any error denies it: the KeyRing returns
// an error matching [ErrAccessDenied] (and the Policy's error) and audits a
// denial. Error text must not contain secrets.
type Policy interface {
	Authorize(ctx context.Context, req Request) error
}

// PolicyFunc adapts a function to a Policy.
type PolicyFunc func(ctx context.Context, req Request) error

// Authorize calls f(ctx, req).
func (f PolicyFunc) Authorize(ctx context.Context, req Request) error { return f(ctx, req) }

var _ Policy = PolicyFunc(nil)

// AllowAll is the Policy that allows every operation, the default when
// Config.Policy is nil. It suits tests and single-tenant services in which
// every caller of the process may use every key.
type AllowAll struct{}

// Authorize returns nil.
func (AllowAll) Authorize(context.Context, Request) error { return nil }

// Request describes an operation for a Policy. It never holds key material
// or plaintext.
type Request struct {
	Op Op
	// Principal is the caller, from WithPrincipal; zero if none.
	Principal Principal
	// KeyID and KeyARN name the resolved key; empty for operations on no key
	// (CreateKey, ListKeys, ListAliases, GenerateRandom).
	KeyID  string
	KeyARN string
	// RequestAlias is the alias the caller named the key by, if any; for
	// CreateAlias, UpdateAlias and DeleteAlias, the alias being changed.
	// UpdateAlias asks twice: for the alias's current key, then the new one.
	RequestAlias string
	// KeySpec, KeyUsage and KeyOrigin describe the key; for CreateKey, the
	// key about to be created.
	KeySpec   KeySpec
	KeyUsage  KeyUsage
	KeyOrigin Origin
	// EncryptionContext is the context of a symmetric operation. A Policy
	// must not modify it.
	EncryptionContext EncryptionContext
	// Algorithm is the encryption, signing, MAC or key agreement algorithm
	// of the operation, if it has one.
	Algorithm string
}
