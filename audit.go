package kms

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Auditor receives exactly one Event for every KeyRing operation, whether
// allowed, denied or failed. It may be called concurrently. Its context is
// never cancelled, so records survive a caller's cancellation.
//
// RunDue is not an operation but a runner: it reports each automatic
// rotation (OpRotateKey) and each deletion (OpDeleteKey) it performs as an
// event of its own, and nothing when nothing is due. An Envelope is audited
// through the KeyRing operations it performs on its recipients' keys (one
// GenerateDataKey or Encrypt per KeyRing recipient when sealing, one
// Decrypt when opening); a message that fails before any key is used (it
// does not parse, say) and a data key served from the Envelope's cache
// cause no event.
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
	// OutcomeLost marks, in a chained log, the place of a record lost in a
	// crash (ChainConfig.Resume); no operation ends with it.
	OutcomeLost Outcome = "lost"
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

// LogValue presents the event to log/slog as a group of attributes. The
// encryption context is included (it is not secret by contract); the
// principal's tags are not.
func (e Event) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.Time("time", e.Time), slog.String("request_id", e.RequestID),
		slog.String("op", string(e.Op)), slog.String("outcome", string(e.Outcome)))
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("principal_arn", e.Principal.ARN)
	add("principal_account", e.Principal.Account)
	add("key_id", e.KeyID)
	add("key_arn", e.KeyARN)
	if e.KeyVersion != 0 {
		attrs = append(attrs, slog.Uint64("key_version", uint64(e.KeyVersion)))
	}
	add("source_key_id", e.SourceKeyID)
	if e.SourceKeyVersion != 0 {
		attrs = append(attrs, slog.Uint64("source_key_version", uint64(e.SourceKeyVersion)))
	}
	add("grant_id", e.GrantID)
	if len(e.EncryptionContext) > 0 {
		ec := make([]any, 0, len(e.EncryptionContext))
		for _, k := range sortedKeys(e.EncryptionContext) {
			ec = append(ec, slog.String(k, e.EncryptionContext[k]))
		}
		attrs = append(attrs, slog.Group("encryption_context", ec...))
	}
	add("error_code", e.ErrorCode)
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// SlogAuditor is an Auditor that writes each event to a log/slog Logger:
// at Info level when allowed, at Warn when denied or failed.
type SlogAuditor struct {
	Logger *slog.Logger
}

var _ Auditor = SlogAuditor{}

// Audit logs e as the attribute group "event" of the message "kms".
func (a SlogAuditor) Audit(ctx context.Context, e Event) error {
	level := slog.LevelInfo
	if e.Outcome != OutcomeAllowed {
		level = slog.LevelWarn
	}
	a.Logger.LogAttrs(ctx, level, "kms", slog.Any("event", e))
	return nil
}

// MultiAuditor is an Auditor that hands each event to every one of its
// auditors, in order, and returns their errors joined.
type MultiAuditor []Auditor

var _ Auditor = MultiAuditor(nil)

// Audit calls every auditor.
func (m MultiAuditor) Audit(ctx context.Context, e Event) error {
	var errs []error
	for _, a := range m {
		if err := a.Audit(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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

// ByKey returns the recorded events on the key with the given ID.
func (r *Recorder) ByKey(keyID string) []Event {
	return r.Filter(func(e Event) bool { return e.KeyID == keyID || e.SourceKeyID == keyID })
}

// ByOutcome returns the recorded events that ended with outcome o.
func (r *Recorder) ByOutcome(o Outcome) []Event {
	return r.Filter(func(e Event) bool { return e.Outcome == o })
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
