package kms

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// AuditState is what a Store keeps of a chained audit log: its MAC key,
// wrapped under the RootKey, and the head of the chain. The head lets the
// verifier notice records cut off the end of the log.
type AuditState struct {
	// Chain names the log; one Store may keep several.
	Chain    string
	Revision uint64
	// WrappedKey is the 256-bit MAC key wrapped by the RootKey with
	// associated data binding the chain's name.
	WrappedKey []byte
	// Seq is the sequence number of the last record written (0: none) and
	// Head the SHA-256 of that record's line.
	Seq  uint64
	Head []byte
}

func (s *AuditState) clone() *AuditState {
	c := *s
	c.WrappedKey = bytes.Clone(s.WrappedKey)
	c.Head = bytes.Clone(s.Head)
	return &c
}

// AuditStore is the part of a Store that keeps chained audit logs. The
// MemoryStore implements it; OpenChainedLog needs it.
type AuditStore interface {
	// GetAuditState returns a chain's state, or an error wrapping
	// ErrNotFound for a chain never opened.
	GetAuditState(ctx context.Context, chain string) (*AuditState, error)
	// PutAuditState creates (Revision 0) or updates a chain's state as a
	// compare-and-swap on Revision, like PutKey.
	PutAuditState(ctx context.Context, s *AuditState) error
	// ListAuditChains returns the names of every chain, in order.
	ListAuditChains(ctx context.Context) ([]string, error)
}

// ChainConfig configures a chained audit log.
type ChainConfig struct {
	// Store keeps the log's MAC key and head; RootKey wraps the key. Use the
	// KeyRing's own Store and RootKey: the key is then held by the ring, and
	// as safe as its keys.
	Store   AuditStore
	RootKey RootKey
	// Chain names the log in the Store; "" means "default". Give each
	// process that writes its own log its own name.
	Chain string
	// Rand makes the MAC key when the chain is new. Nil means crypto/rand.
	Rand io.Reader
	// Resume, for OpenChainedLog, is the log written so far, from its
	// start (the file the writer appends to). If it ends exactly one
	// record short of the Store's head (a crash between saving the head
	// and writing the line), OpenChainedLog writes a record that says the
	// record was lost, so that the chain verifies again, with the loss on
	// record (ChainReport.Lost). Nil: no check.
	Resume io.Reader
}

func (c *ChainConfig) defaults() error {
	if c.Store == nil || c.RootKey == nil {
		return fmt.Errorf("%w: a chained log needs a Store and a RootKey", ErrInvalidArgument)
	}
	if c.Chain == "" {
		c.Chain = "default"
	}
	if c.Rand == nil {
		c.Rand = cryptoRand{}
	}
	return nil
}

// chainKeyAD binds a wrapped chain key to its chain's name.
func chainKeyAD(chain string) []byte { return []byte("pocketkms/v1/audit-key\x00" + chain) }

// loadChainKey returns a chain's state and unwrapped MAC key, creating both
// when create is set and the chain is new.
func loadChainKey(ctx context.Context, cfg *ChainConfig, create bool) (*AuditState, []byte, error) {
	st, err := cfg.Store.GetAuditState(ctx, cfg.Chain)
	if errors.Is(err, ErrNotFound) && create {
		key := make([]byte, 32)
		if _, err := io.ReadFull(cfg.Rand, key); err != nil {
			return nil, nil, fmt.Errorf("%w: reading a random audit key failed", ErrInternal)
		}
		w, err := cfg.RootKey.Wrap(ctx, key, chainKeyAD(cfg.Chain))
		if err != nil {
			clear(key)
			return nil, nil, fmt.Errorf("%w: root key could not wrap the audit key: %w", ErrInternal, err)
		}
		st = &AuditState{Chain: cfg.Chain, WrappedKey: w}
		if err := cfg.Store.PutAuditState(ctx, st); err != nil {
			clear(key)
			return nil, nil, storeErr(err)
		}
		st.Revision = 1
		return st, key, nil
	}
	if err != nil {
		return nil, nil, storeErr(err)
	}
	key, err := cfg.RootKey.Unwrap(ctx, st.WrappedKey, chainKeyAD(cfg.Chain))
	if err != nil || len(key) != 32 {
		clear(key)
		return nil, nil, fmt.Errorf("%w: root key could not unwrap the audit key of chain %q", ErrInternal, cfg.Chain)
	}
	return st, key, nil
}

// ChainedLog is an Auditor that writes each event as one line of JSON to
// a writer, in a tamper-evident chain: every record carries its sequence
// number, the SHA-256 of the line before it and an HMAC-SHA-256 under a
// key that only the Store and RootKey hold. VerifyChainedLog reports the
// first record that was edited, deleted, reordered or forged, and a log
// cut off at the end. docs/FORMAT.md §6 specifies the records.
//
// The head of the chain is saved in the Store before each line is written,
// so a crash between the two leaves the log one record short of the head:
// the verifier reports it (as records cut off the end), never a forgery;
// opened again with ChainConfig.Resume, the log records the loss and goes
// on verifiably.
// Audit fails (and, with Config.AuditRequired, so does the operation) if
// either write fails; once a write has failed the log stays failed, because
// the chain can no longer be continued honestly. Close clears the key.
type ChainedLog struct {
	mu  sync.Mutex
	w   io.Writer
	cfg ChainConfig
	key []byte
	st  *AuditState
	buf []byte
	err error // the first write failure; sticky
}

var _ Auditor = (*ChainedLog)(nil)

// OpenChainedLog opens the chain named in cfg (creating its key on first
// use) and returns a ChainedLog that appends to w. w must continue the
// same log: the file the chain was written to, opened for appending.
func OpenChainedLog(ctx context.Context, w io.Writer, cfg ChainConfig) (*ChainedLog, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, key, err := loadChainKey(ctx, &cfg, true)
	if err != nil {
		return nil, err
	}
	l := &ChainedLog{w: w, cfg: cfg, key: key, st: st}
	if cfg.Resume != nil && st.Seq > 0 {
		if seq, last, _, _, err := scanChain(cfg.Resume, key); err == nil && seq+1 == st.Seq {
			// The head's record never reached the log: record its loss in
			// its place, chained to the last line there is.
			l.st = st.clone()
			l.st.Seq, l.st.Head = seq, last
			if err := l.write(ctx, &Event{Time: time.Now().UTC(), Outcome: OutcomeLost}, st.Revision); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// Close clears the log's key; later events fail. It does not close the
// writer.
func (l *ChainedLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.key)
	if l.err == nil {
		l.err = fmt.Errorf("kms: chained log %q is closed", l.cfg.Chain)
	}
	return nil
}

// Format prints the chain's name and position, never its key.
func (l *ChainedLog) Format(f fmt.State, _ rune) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(f, "kms.ChainedLog(%s, seq %d)", l.cfg.Chain, l.st.Seq)
}

// Audit appends e to the chain.
func (l *ChainedLog) Audit(ctx context.Context, e Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	return l.write(ctx, &e, l.st.Revision)
}

// write appends the record of e after l.st, saving the new head (with the
// given revision) first. The caller holds l.mu or owns l.
func (l *ChainedLog) write(ctx context.Context, e *Event, rev uint64) error {
	prev := l.st.Head
	if prev == nil {
		prev = make([]byte, sha256.Size)
	}
	line, err := appendChainRecord(l.buf[:0], l.key, l.st.Seq+1, prev, e)
	if err != nil {
		return err
	}
	l.buf = line
	sum := sha256.Sum256(line)
	next := l.st.clone()
	next.Seq, next.Head, next.Revision = l.st.Seq+1, sum[:], rev
	err = l.cfg.Store.PutAuditState(ctx, next)
	if errors.Is(err, ErrConflict) {
		// The state moved under us. If only its wrapped key changed (a
		// RewrapRootKey), the chain is ours still: take the new revision.
		if cur, gerr := l.cfg.Store.GetAuditState(ctx, l.cfg.Chain); gerr == nil && cur.Seq == l.st.Seq && bytes.Equal(cur.Head, l.st.Head) && cur.Revision != rev {
			next.Revision, next.WrappedKey = cur.Revision, cur.WrappedKey
			err = l.cfg.Store.PutAuditState(ctx, next)
		}
	}
	if err != nil {
		l.err = fmt.Errorf("kms: chained log %q: saving its head failed (another writer on this chain?): %w", l.cfg.Chain, storeErr(err))
		return l.err
	}
	next.Revision++
	l.st = next
	if _, err := l.w.Write(append(line, '\n')); err != nil {
		l.err = fmt.Errorf("kms: chained log %q: writing record %d failed: %w", l.cfg.Chain, next.Seq, err)
		return l.err
	}
	return nil
}

// chainRecord is the JSON of one record, without its MAC. Field order is
// the order on the line.
type chainRecord struct {
	Seq               uint64            `json:"seq"`
	Time              string            `json:"time"`
	RequestID         string            `json:"request_id,omitempty"`
	PrincipalARN      string            `json:"principal_arn,omitempty"`
	PrincipalAccount  string            `json:"principal_account,omitempty"`
	Op                Op                `json:"op"`
	KeyID             string            `json:"key_id,omitempty"`
	KeyARN            string            `json:"key_arn,omitempty"`
	KeyVersion        uint32            `json:"key_version,omitempty"`
	SourceKeyID       string            `json:"source_key_id,omitempty"`
	SourceKeyVersion  uint32            `json:"source_key_version,omitempty"`
	GrantID           string            `json:"grant_id,omitempty"`
	EncryptionContext map[string]string `json:"encryption_context,omitempty"`
	ContextOmitted    bool              `json:"encryption_context_omitted,omitempty"`
	Outcome           Outcome           `json:"outcome"`
	ErrorCode         string            `json:"error_code,omitempty"`
	Error             string            `json:"error,omitempty"`
	Prev              string            `json:"prev"`
}

// chainMACLabel starts the MAC input, so that the key MACs nothing else.
const chainMACLabel = "pocketkms audit record v1\n"

// macSuffixLen is the length of `,"mac":"<64 hex>"}`.
const macSuffixLen = len(`,"mac":""}`) + 2*sha256.Size

// appendChainRecord appends the line of record seq (without its newline).
func appendChainRecord(dst, key []byte, seq uint64, prev []byte, e *Event) ([]byte, error) {
	rec := chainRecord{
		Seq: seq, Time: e.Time.UTC().Format(time.RFC3339Nano), RequestID: e.RequestID,
		PrincipalARN: e.Principal.ARN, PrincipalAccount: e.Principal.Account, Op: e.Op,
		KeyID: e.KeyID, KeyARN: e.KeyARN, KeyVersion: e.KeyVersion,
		SourceKeyID: e.SourceKeyID, SourceKeyVersion: e.SourceKeyVersion, GrantID: e.GrantID,
		EncryptionContext: e.EncryptionContext, Outcome: e.Outcome, ErrorCode: e.ErrorCode,
		Prev: hex.EncodeToString(prev),
	}
	if e.Err != nil {
		rec.Error = e.Err.Error()
	}
	body, err := json.Marshal(&rec)
	if err == nil && len(body) > maxChainRecord {
		// A caller's oversized context (refused by the operation, but
		// audited) must not make a line the verifier cannot read: keep the
		// record, without the context.
		rec.EncryptionContext, rec.ContextOmitted = nil, true
		body, err = json.Marshal(&rec)
	}
	if err != nil || len(body) > maxChainRecord {
		return nil, fmt.Errorf("%w: encoding an audit record failed", ErrInternal)
	}
	mac := chainMAC(key, body)
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, `,"mac":"`...)
	dst = hex.AppendEncode(dst, mac)
	return append(dst, `"}`...), nil
}

func chainMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(chainMACLabel))
	m.Write(body)
	return m.Sum(nil)
}

// ChainProblem is what VerifyChainedLog found wrong with a record.
type ChainProblem string

// The problems.
const (
	// ChainBadRecord: the line is not a record (not JSON, no MAC).
	ChainBadRecord ChainProblem = "not a record"
	// ChainBadMAC: the MAC does not verify: the record was edited, or
	// written or re-MACed without the key.
	ChainBadMAC ChainProblem = "MAC does not verify (edited or forged)"
	// ChainGap: the record's sequence number skips ahead: records before
	// it were deleted.
	ChainGap ChainProblem = "records before it were deleted"
	// ChainOutOfOrder: the record's sequence number goes back or repeats:
	// records were reordered or replayed.
	ChainOutOfOrder ChainProblem = "records were reordered or repeated"
	// ChainBroken: the record does not carry the hash of the line before
	// it.
	ChainBroken ChainProblem = "it does not follow the record before it"
	// ChainTruncated: the log ends before the head saved in the Store:
	// records were cut off the end.
	ChainTruncated ChainProblem = "records were cut off the end"
)

// ChainError reports the first bad record of a chained log.
type ChainError struct {
	// Line is the 1-based line number of the first bad record (for
	// ChainTruncated, the line after the last one).
	Line int
	// Seq is the sequence number the verifier expected there.
	Seq     uint64
	Problem ChainProblem
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("kms: audit log: line %d (record %d): %s", e.Line, e.Seq, e.Problem)
}

// ChainReport sums up a log that verified.
type ChainReport struct {
	// Records is the number of records; Head is the SHA-256 of the last
	// line, in hex.
	Records uint64
	Head    string
	// Lost counts the records lost in crashes (see ChainConfig.Resume):
	// operations whose audit record never reached the log.
	Lost int
}

// MaxChainLine bounds one line of a chained log.
const MaxChainLine = 1 << 20

// maxChainRecord bounds what the writer puts on a line: well under
// MaxChainLine, with room for the MAC.
const maxChainRecord = 64 << 10

// VerifyChainedLog reads a chained log from the start and checks every
// record: its MAC under the chain's key, its sequence number and its link
// to the record before; and that the log reaches the head saved in the
// Store. It returns a *ChainError naming the first bad record, or a report.
func VerifyChainedLog(ctx context.Context, r io.Reader, cfg ChainConfig) (*ChainReport, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, key, err := loadChainKey(ctx, &cfg, false)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return verifyChain(r, key, st.Seq, st.Head)
}

func verifyChain(r io.Reader, key []byte, headSeq uint64, head []byte) (*ChainReport, error) {
	seq, prev, lost, line, err := scanChain(r, key)
	if err != nil {
		return nil, err
	}
	if seq < headSeq {
		return nil, &ChainError{Line: line + 1, Seq: seq + 1, Problem: ChainTruncated}
	}
	if seq > headSeq || (headSeq > 0 && !bytes.Equal(prev, head)) {
		// The log goes on past the saved head, or ends on another record
		// with the head's number: not the log the Store knows.
		return nil, &ChainError{Line: line, Seq: seq, Problem: ChainBroken}
	}
	return &ChainReport{Records: seq, Head: hex.EncodeToString(prev), Lost: lost}, nil
}

// scanChain checks every record of a log, and returns the last sequence
// number and line hash, the number of lost-record records and of lines.
func scanChain(r io.Reader, key []byte) (seq uint64, prev []byte, lost, line int, _ error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxChainLine)
	sc.Split(chainLines)
	prev = make([]byte, sha256.Size)
	for sc.Scan() {
		line++
		b := sc.Bytes()
		bad := func(p ChainProblem) error { return &ChainError{Line: line, Seq: seq + 1, Problem: p} }
		n := len(b)
		if n < macSuffixLen+2 || !bytes.HasPrefix(b[n-macSuffixLen:], []byte(`,"mac":"`)) || !bytes.HasSuffix(b, []byte(`"}`)) {
			return 0, nil, 0, 0, bad(ChainBadRecord)
		}
		mac, err := hex.DecodeString(string(b[n-macSuffixLen+len(`,"mac":"`) : n-2]))
		if err != nil {
			return 0, nil, 0, 0, bad(ChainBadRecord)
		}
		body := append(bytes.Clone(b[:n-macSuffixLen]), '}')
		if !hmac.Equal(mac, chainMAC(key, body)) {
			return 0, nil, 0, 0, bad(ChainBadMAC)
		}
		var rec chainRecord
		if json.Unmarshal(body, &rec) != nil {
			return 0, nil, 0, 0, bad(ChainBadRecord)
		}
		switch {
		case rec.Seq > seq+1:
			return 0, nil, 0, 0, bad(ChainGap)
		case rec.Seq < seq+1:
			return 0, nil, 0, 0, bad(ChainOutOfOrder)
		case rec.Prev != hex.EncodeToString(prev):
			return 0, nil, 0, 0, bad(ChainBroken)
		}
		if rec.Outcome == OutcomeLost {
			lost++
		}
		sum := sha256.Sum256(b)
		prev, seq = sum[:], rec.Seq
	}
	if err := sc.Err(); err != nil {
		return 0, nil, 0, 0, &ChainError{Line: line + 1, Seq: seq + 1, Problem: ChainBadRecord}
	}
	return seq, prev, lost, line, nil
}

// GetAuditState implements AuditStore.
func (s *MemoryStore) GetAuditState(_ context.Context, chain string) (*AuditState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.audit[chain]
	if !ok {
		return nil, ErrNotFound
	}
	return st.clone(), nil
}

// PutAuditState implements AuditStore.
func (s *MemoryStore) PutAuditState(_ context.Context, st *AuditState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.audit == nil {
		s.audit = make(map[string]*AuditState)
	}
	cur, ok := s.audit[st.Chain]
	switch {
	case !ok && st.Revision != 0:
		return ErrConflict
	case ok && st.Revision == 0:
		return ErrAlreadyExists
	case ok && cur.Revision != st.Revision:
		return ErrConflict
	}
	c := st.clone()
	c.Revision++
	s.audit[st.Chain] = c
	return nil
}

// ListAuditChains implements AuditStore.
func (s *MemoryStore) ListAuditChains(context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedKeys(s.audit), nil
}

// GetSetting implements SettingsStore.
func (s *MemoryStore) GetSetting(_ context.Context, name string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.settings[name]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

// PutSetting implements SettingsStore.
func (s *MemoryStore) PutSetting(_ context.Context, name, value, old string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settings == nil {
		s.settings = make(map[string]string)
	}
	cur, ok := s.settings[name]
	switch {
	case old == "" && ok:
		return ErrAlreadyExists
	case old != "" && (!ok || cur != old):
		return ErrConflict
	}
	s.settings[name] = value
	return nil
}

// errUnterminated marks a last line without its newline.
var errUnterminated = errors.New("kms: audit log: the last line has no newline")

// chainLines splits a log into lines ended by exactly "\n": unlike
// bufio.ScanLines it keeps carriage returns (so they fail the MAC) and
// refuses a last line without its newline (a record cut short).
func chainLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return 0, nil, errUnterminated
	}
	return 0, nil, nil
}
