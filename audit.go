package kms

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Auditor receives exactly one Event for every KeyRing operation, whether
// allowed, denied or failed. It may be called concurrently. Its context is
// never cancelled, so records survive a caller's cancellation.
//
// When Config.AuditRequired is set, an error from Audit fails the operation
// with [ErrAuditFailed] before any result is released (fail closed);
// otherwise the error is dropped. The event is written once the operation
// has run, so a key management operation whose audit fails has still taken
// effect (a created key exists, a disabled key is disabled); only its
// result is withheld. Callers must treat ErrAuditFailed as "done, but
// unrecorded" and reconcile, as with a lost response.
type Auditor interface {
	Audit(ctx context.Context, e Event) error
}

// AuditorFunc adapts a function to an Auditor.
type AuditorFunc func(ctx context.Context, e Event) error

// Audit calls f(ctx, e).
func (f AuditorFunc) Audit(ctx context.Context, e Event) error { return f(ctx, e) }

var _ Auditor = AuditorFunc(nil)

// Outcome is how an operation ended.
type Outcome string

// The outcomes.
const (
	OutcomeAllowed Outcome = "allowed" // the operation ran and succeeded
	OutcomeDenied  Outcome = "denied"  // the Policy refused it
	OutcomeFailed  Outcome = "failed"  // it failed for any other reason
)

// Event records one operation. It never carries plaintext or key material.
// It does carry the encryption context, which is not secret by contract.
type Event struct {
	Time      time.Time
	RequestID string
	Principal Principal
	Op        Op
	// KeyID, KeyARN and KeyVersion name the key and version used, when the
	// operation resolved one; for ReEncrypt, the destination key.
	KeyID      string
	KeyARN     string
	KeyVersion uint32
	// SourceKeyID and SourceKeyVersion name the source key of ReEncrypt.
	SourceKeyID      string
	SourceKeyVersion uint32
	// GrantID names the grant that CreateGrant made or RetireGrant and
	// RevokeGrant removed.
	GrantID string
	// EncryptionContext is the context of a symmetric operation (for
	// ReEncrypt, the destination context). Auditors must not modify it.
	EncryptionContext EncryptionContext
	Outcome           Outcome
	// ErrorCode is the AWS KMS exception name of Err, "" on success.
	ErrorCode string
	// Err is nil on success.
	Err error
}

// nopAuditor discards events; it is the default.
type nopAuditor struct{}

func (nopAuditor) Audit(context.Context, Event) error { return nil }

// Recorder is an Auditor that keeps every event in memory, for tests. It is
// safe for concurrent use; its zero value is ready.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

var _ Auditor = (*Recorder)(nil)

// Audit records e.
func (r *Recorder) Audit(_ context.Context, e Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

// Events returns a copy of the recorded events, oldest first.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Filter returns the recorded events for which keep returns true.
func (r *Recorder) Filter(keep func(Event) bool) []Event {
	var out []Event
	for _, e := range r.Events() {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// ByOp returns the recorded events of operation op.
func (r *Recorder) ByOp(op Op) []Event {
	return r.Filter(func(e Event) bool { return e.Op == op })
}

// Last returns the most recent event and whether there is one.
func (r *Recorder) Last() (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return Event{}, false
	}
	return r.events[len(r.events)-1], true
}

// Reset forgets every recorded event.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}
