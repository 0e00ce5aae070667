package kms

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketkms/kms/internal/keys"
)

// Clock tells the time. Every time-driven behaviour of a KeyRing reads it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// cryptoRand reads from crypto/rand.
type cryptoRand struct{}

func (cryptoRand) Read(b []byte) (int, error) { return crand.Read(b) }

// Config configures a KeyRing. Every field may be left zero; the zero Config
// is a working ring that keeps its keys in memory.
type Config struct {
	// Store keeps keys and aliases. Nil means a new MemoryStore.
	Store Store
	// RootKey wraps key material before it reaches the Store. It is
	// required when Store is set (even to a MemoryStore, which other rings
	// may share); with no Store, the ring makes a random root key that lives
	// as long as it does.
	RootKey RootKey
	// Policy authorizes operations. Nil means AllowAll.
	Policy Policy
	// Auditor receives one Event per operation. Nil discards events.
	Auditor Auditor
	// AuditRequired makes an Auditor error fail the operation.
	AuditRequired bool
	// Clock tells the time. Nil means the system clock.
	Clock Clock
	// Rand is the source of every secret and nonce the KeyRing makes. Nil
	// means crypto/rand. (Go generates RSA and ECDSA keys from its own
	// secure source whatever the reader.)
	Rand io.Reader
	// Region and Account appear in ARNs. Empty means "us-east-1" and
	// "111122223333".
	Region  string
	Account string
	// CacheTTL is how long the ring trusts its in-memory copy of a key or
	// alias before reading it from the Store again, measured on Clock. It
	// matters when several rings share one Store: a change made through one
	// ring (rotation, DisableKey, an alias update) reaches the others within
	// CacheTTL. Zero means one second with a Store given in Config, and
	// never re-reading with the ring's own in-memory store, which no one else
	// writes. A negative value re-reads on every operation. A ciphertext
	// naming a version the ring has not seen always triggers a re-read.
	CacheTTL time.Duration
}

// DefaultCacheTTL is Config.CacheTTL's default with a shared Store.
const DefaultCacheTTL = time.Second

// Defaults for Config.Region and Config.Account.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "111122223333"
)

// KeyRing holds customer master keys and performs the KMS operations on
// them. It is safe for concurrent use. Create one with NewKeyRing.
type KeyRing struct {
	cfg Config

	mu      sync.Mutex // serializes every change to keys and aliases
	keys    sync.Map   // key ID → *keyEntry; entries are immutable but for checked
	aliases sync.Map   // alias name → *aliasEntry
	// aliasGen counts alias writes, so that a read racing a write does not
	// cache what it read; keyGen counts Forgets, likewise for keys.
	aliasGen atomic.Uint64
	keyGen   atomic.Uint64

	reqPrefix string
	reqSeq    atomic.Uint64
	audited   bool // false with the default Auditor, which discards events
	allowAll  bool // the Policy is AllowAll
	// keyPolicies: the Policy is the key-policy engine itself.
	keyPolicies bool
}

// never is a CacheTTL that never expires.
const never = time.Duration(1<<63 - 1)

// keyEntry is an immutable view of a key: its record and parsed versions.
type keyEntry struct {
	// checked is when the record was last read from, or written to, the
	// Store (Unix nanoseconds on Config.Clock).
	checked atomic.Int64

	rec  *KeyRecord
	info specInfo
	arn  string
	// providerInfo is arn as the provider info of the encrypted data keys
	// the Envelope writes for the key: shared by them, never modified.
	providerInfo []byte
	// vers[i] is version i+1; nil where the material is absent.
	vers []*keys.Key

	// acc is the key's policy and grants prepared for KeyPolicies, made on
	// first use.
	accessOnce sync.Once
	acc        *access
}

// primary returns the primary version's key, or nil.
func (e *keyEntry) primary() *keys.Key { return e.version(e.rec.Primary) }

func (e *keyEntry) version(v uint32) *keys.Key {
	if v == 0 || int(v) > len(e.vers) {
		return nil
	}
	return e.vers[v-1]
}

// NewKeyRing returns a KeyRing configured by cfg. The Config is copied;
// later changes to it have no effect.
func NewKeyRing(cfg Config) (*KeyRing, error) {
	if cfg.Rand == nil {
		cfg.Rand = cryptoRand{}
	}
	if cfg.Store == nil {
		if cfg.RootKey != nil {
			return nil, fmt.Errorf("%w: a RootKey needs a Store that outlives the ring", ErrInvalidArgument)
		}
		cfg.Store = NewMemoryStore()
		if cfg.CacheTTL == 0 {
			cfg.CacheTTL = never
		}
	} else if cfg.RootKey == nil {
		return nil, fmt.Errorf("%w: a Store needs a RootKey", ErrInvalidArgument)
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.RootKey == nil {
		var k [32]byte
		if _, err := io.ReadFull(cryptoRand{}, k[:]); err != nil {
			return nil, errors.New("kms: reading random root key failed")
		}
		rk, err := NewAESRootKey(k[:], cfg.Rand)
		clear(k[:])
		if err != nil {
			return nil, err
		}
		cfg.RootKey = rk
	}
	if cfg.Policy == nil {
		cfg.Policy = AllowAll{}
	}
	if cfg.Auditor == nil {
		cfg.Auditor = nopAuditor{}
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Account == "" {
		cfg.Account = DefaultAccount
	}
	if !validARNPart(cfg.Region) || !validARNPart(cfg.Account) {
		return nil, fmt.Errorf("%w: Region and Account must be ARN-safe", ErrInvalidArgument)
	}
	var p [6]byte
	if _, err := io.ReadFull(cryptoRand{}, p[:]); err != nil {
		return nil, errors.New("kms: reading random request ID prefix failed")
	}
	_, discard := cfg.Auditor.(nopAuditor)
	_, allowAll := cfg.Policy.(AllowAll)
	return &KeyRing{cfg: cfg, reqPrefix: hex.EncodeToString(p[:]), audited: !discard, allowAll: allowAll, keyPolicies: usesKeyPolicies(cfg.Policy)}, nil
}

func validARNPart(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Format prints the ring's region and account, never its keys.
func (r *KeyRing) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "kms.KeyRing(%s:%s)", r.cfg.Region, r.cfg.Account)
}

// Region returns the region in the ring's ARNs.
func (r *KeyRing) Region() string { return r.cfg.Region }

// Account returns the account in the ring's ARNs.
func (r *KeyRing) Account() string { return r.cfg.Account }

// KeyARN returns the ARN of the key with the given ID.
func (r *KeyRing) KeyARN(keyID string) string {
	return "arn:aws:kms:" + r.cfg.Region + ":" + r.cfg.Account + ":key/" + keyID
}

// AliasARN returns the ARN of an alias ("alias/<name>").
func (r *KeyRing) AliasARN(alias string) string {
	return "arn:aws:kms:" + r.cfg.Region + ":" + r.cfg.Account + ":" + alias
}

func (r *KeyRing) now() time.Time { return r.cfg.Clock.Now().UTC() }

// call carries one operation through the gate and into its audit event.
type call struct {
	r     *KeyRing
	ctx   context.Context
	ev    Event
	alias string // the alias the key was named by, if any
	name  string // the key as the caller named it
	// What some operations add to their Policy request.
	messageType MessageType
	pairSpec    DataKeyPairSpec
	bypass      bool
}

func (r *KeyRing) begin(ctx context.Context, op Op) call {
	p, _ := PrincipalFrom(ctx)
	if !r.audited {
		return call{r: r, ctx: ctx, ev: Event{Principal: p, Op: op}}
	}
	// A request ID is the ring's random prefix and a sequence number.
	var b [32]byte
	var seq [8]byte
	n := copy(b[:], r.reqPrefix)
	b[n] = '-'
	binary.BigEndian.PutUint64(seq[:], r.reqSeq.Add(1))
	hex.Encode(b[n+1:], seq[:])
	id := string(b[:n+1+2*len(seq)])
	return call{r: r, ctx: ctx, ev: Event{Time: r.now(), RequestID: id, Principal: p, Op: op}}
}

// snapshot returns the encryption context the operation works with. With
// an Auditor configured it is a copy, so that what the Auditor keeps cannot
// change when the caller reuses or changes its map after the call. (During
// the call the map is the caller's to leave alone, as any Go map shared
// between goroutines; a Policy sees it only during the call.)
func (c *call) snapshot(ec EncryptionContext) EncryptionContext {
	if c.r.audited && ec != nil {
		return maps.Clone(ec)
	}
	return ec
}

// key records the resolved key in the event.
func (c *call) key(e *keyEntry) {
	c.ev.KeyID, c.ev.KeyARN = e.rec.KeyID, e.arn
}

// authorize asks the Policy. Its error is wrapped to match ErrAccessDenied.
func (c *call) authorize(op Op, e *keyEntry, ec EncryptionContext, alg string) error {
	return c.ask(Request{Op: op, EncryptionContext: ec, Algorithm: alg}, e)
}

// authorizeGrant asks the Policy about an operation on grant g.
func (c *call) authorizeGrant(op Op, e *keyEntry, g *Grant) error {
	return c.ask(Request{Op: op, Grant: g}, e)
}

func (c *call) ask(req Request, e *keyEntry) error {
	if c.r.allowAll {
		// Nothing to decide; but a malformed grant token is still an error.
		if toks, _ := c.ctx.Value(grantTokensKey{}).([]string); len(toks) > 0 {
			return checkGrantTokens(toks)
		}
		return nil
	}
	req.Principal, req.RequestAlias, req.account = c.ev.Principal, c.alias, c.r.cfg.Account
	if req.MessageType == "" {
		req.MessageType = c.messageType
	}
	if req.DataKeyPairSpec == "" {
		req.DataKeyPairSpec = c.pairSpec
	}
	req.BypassPolicyLockoutSafetyCheck = req.BypassPolicyLockoutSafetyCheck || c.bypass
	if c.r.keyPolicies {
		req.clock = c.r.cfg.Clock // read on first need (time.Now is not free)
	} else {
		req.Time = c.r.now()
	}
	if e != nil {
		// A grant token for a grant this ring has not seen yet: read the
		// key again, so that the grant counts at once.
		fe, err := c.r.freshGrants(c.ctx, e)
		if err != nil {
			return err
		}
		req.entry = fe
		req.KeyID, req.KeyARN = fe.rec.KeyID, fe.arn
		req.KeySpec, req.KeyUsage, req.KeyOrigin = fe.rec.Spec, fe.rec.Usage, fe.rec.Origin
		req.KeyPolicy = fe.rec.Policy
		if req.KeyPolicy == "" {
			req.KeyPolicy = DefaultKeyPolicy(c.r.cfg.Account)
		}
	}
	if err := c.r.cfg.Policy.Authorize(c.ctx, req); err != nil {
		c.ev.Outcome = OutcomeDenied
		if err == ErrAccessDenied {
			return err
		}
		return &deniedError{err} // never the Policy's own *Error as ours
	}
	return nil
}

type deniedError struct{ reason error }

func (e *deniedError) Error() string   { return ErrAccessDenied.Error() + ": " + e.reason.Error() }
func (e *deniedError) Unwrap() []error { return []error{ErrAccessDenied, e.reason} }

// end audits the operation and returns the error to give the caller: nil,
// or an *Error. With AuditRequired, an audit failure turns success into
// ErrAuditFailed, so that no result is released.
func (c *call) end(err error) error {
	if err != nil {
		if c.ev.Outcome == "" {
			c.ev.Outcome = OutcomeFailed
		}
		if _, ok := err.(*Error); !ok {
			id := c.ev.KeyID
			if id == "" {
				id = c.name
			}
			err = &Error{Op: c.ev.Op, KeyID: id, Err: err}
		}
		c.ev.Err, c.ev.ErrorCode = err, ErrorCode(err)
	} else {
		c.ev.Outcome = OutcomeAllowed
	}
	if !c.r.audited {
		return err
	}
	actx := c.ctx
	if actx.Done() != nil {
		actx = context.WithoutCancel(actx)
	}
	if aerr := c.r.cfg.Auditor.Audit(actx, c.ev); aerr != nil && c.r.cfg.AuditRequired {
		if err == nil {
			return &Error{Op: c.ev.Op, KeyID: c.ev.KeyID, Err: ErrAuditFailed}
		}
	}
	return err
}

// resolve finds the key a caller names by ID, ARN, alias or alias ARN.
func (r *KeyRing) resolve(ctx context.Context, c *call, name string) (*keyEntry, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: no key named", ErrInvalidArgument)
	}
	if len(name) > 2048 || !printable(name) {
		return nil, fmt.Errorf("%w: key name is not valid", ErrInvalidArgument)
	}
	if c.name == "" {
		c.name = name
	}
	id := name
	if rest, ok := strings.CutPrefix(name, "arn:"); ok {
		prefix := "aws:kms:" + r.cfg.Region + ":" + r.cfg.Account + ":"
		res, ok := strings.CutPrefix(rest, prefix)
		if !ok {
			return nil, ErrNotFound
		}
		if kid, ok := strings.CutPrefix(res, "key/"); ok {
			if strings.Contains(kid, "/") {
				return nil, ErrNotFound // a key ARN names a key ID, never an alias
			}
			return live(r.load(ctx, kid))
		} else if strings.HasPrefix(res, "alias/") {
			id = res
		} else {
			return nil, ErrNotFound
		}
	}
	if strings.HasPrefix(id, "alias/") {
		c.alias = id
		target, err := r.aliasTarget(ctx, id)
		if err != nil {
			return nil, err
		}
		id = target
	}
	return live(r.load(ctx, id))
}

// live refuses the tombstone of a deleted key.
func live(e *keyEntry, err error) (*keyEntry, error) {
	if err == nil && e.rec.State == KeyStateDeleted {
		return nil, fmt.Errorf("%w on %s", ErrKeyDeleted, e.rec.DeletionDate.Format(time.DateOnly))
	}
	return e, err
}

// errNoSuchVersion: the key never had the version asked for.
var errNoSuchVersion = errors.New("no such version")

// versionRecord returns the record of version v, or nil.
func (e *keyEntry) versionRecord(v uint32) *VersionRecord {
	i, ok := slices.BinarySearchFunc(e.rec.Versions, v, func(vr VersionRecord, v uint32) int { return cmp.Compare(vr.Version, v) })
	if !ok {
		return nil
	}
	return &e.rec.Versions[i]
}

// usableVersion returns version v's material for decrypting, verifying or
// deriving, or the reason it cannot be used: errNoSuchVersion, or an error
// naming the version (disabled, destroyed, below the minimum decryption
// version).
func (e *keyEntry) usableVersion(v uint32) (*keys.Key, error) {
	vr := e.versionRecord(v)
	switch {
	case vr == nil:
		return nil, errNoSuchVersion
	case vr.State == VersionDestroyed:
		return nil, fmt.Errorf("%w: version %d was destroyed on %s", ErrKeyVersionDestroyed, v, vr.DestroyedAt.Format(time.DateOnly))
	case vr.State == VersionDisabled:
		return nil, fmt.Errorf("%w: version %d", ErrKeyVersionDisabled, v)
	case v < e.rec.MinDecryptionVersion:
		return nil, fmt.Errorf("%w: version %d is below %d", ErrKeyVersionRetired, v, e.rec.MinDecryptionVersion)
	}
	k := e.version(v)
	if k == nil {
		return nil, errNoSuchVersion
	}
	return k, nil
}

// aliasEntry is a cached alias; an empty target is a deleted alias.
type aliasEntry struct {
	target  string
	checked int64
}

// stale reports whether a copy read at checked must be read again.
func (r *KeyRing) stale(checked int64) bool {
	if r.cfg.CacheTTL == never {
		return false
	}
	return r.cfg.CacheTTL < 0 || time.Duration(r.cfg.Clock.Now().UnixNano()-checked) >= r.cfg.CacheTTL
}

func (r *KeyRing) aliasTarget(ctx context.Context, alias string) (string, error) {
	old, _ := r.aliases.Load(alias)
	if old != nil && old.(*aliasEntry).target != "" && !r.stale(old.(*aliasEntry).checked) {
		return old.(*aliasEntry).target, nil
	}
	gen := r.aliasGen.Load()
	a, err := r.cfg.Store.GetAlias(ctx, alias)
	if err != nil {
		return "", storeErr(err)
	}
	// Cache what was read only if no alias was written meanwhile and the
	// entry is the one this read replaces: a read must never overwrite a
	// newer write.
	if r.aliasGen.Load() == gen {
		e := &aliasEntry{target: a.TargetKeyID, checked: r.cfg.Clock.Now().UnixNano()}
		if old == nil {
			r.aliases.LoadOrStore(alias, e)
		} else {
			r.aliases.CompareAndSwap(alias, old, e)
		}
	}
	return a.TargetKeyID, nil
}

// setAlias records an alias write (target "" for a deletion); the caller
// holds r.mu and has written the Store.
func (r *KeyRing) setAlias(alias, target string) {
	r.aliasGen.Add(1)
	r.aliases.Store(alias, &aliasEntry{target: target, checked: r.cfg.Clock.Now().UnixNano()})
}

// load returns the entry of a key by ID, reading the Store on a miss or
// when the cached copy is older than CacheTTL.
func (r *KeyRing) load(ctx context.Context, id string) (*keyEntry, error) {
	v, ok := r.keys.Load(id)
	if ok && !r.stale(v.(*keyEntry).checked.Load()) {
		return v.(*keyEntry), nil
	}
	var prev *keyEntry
	if ok {
		prev = v.(*keyEntry)
	}
	return r.reload(ctx, id, prev)
}

// reload reads a key from the Store and publishes it, reusing prev's
// parsed versions.
func (r *KeyRing) reload(ctx context.Context, id string, prev *keyEntry) (*keyEntry, error) {
	gen := r.keyGen.Load()
	rec, err := r.cfg.Store.GetKey(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) && prev != nil {
			r.keys.CompareAndDelete(id, prev)
		}
		return nil, storeErr(err)
	}
	if rec.KeyID != id {
		return nil, fmt.Errorf("%w: the Store returned key %s for %s", ErrInternal, rec.KeyID, id)
	}
	now := r.cfg.Clock.Now().UnixNano()
	if prev != nil && prev.rec.Revision == rec.Revision {
		prev.checked.Store(now)
		return prev, nil
	}
	e, err := r.build(ctx, rec, prev)
	if err != nil {
		return nil, err
	}
	e.checked.Store(now)
	if prev == nil {
		if r.keyGen.Load() != gen {
			return e, nil // a Forget came meanwhile: what was read may predate it
		}
		v, _ := r.keys.LoadOrStore(id, e)
		return v.(*keyEntry), nil
	}
	r.keys.CompareAndSwap(id, prev, e)
	return e, nil
}

// maxUpdateAttempts bounds the retries of a key update that conflicts with
// other writers of the Store.
const maxUpdateAttempts = 20

// sleepJitter waits a random time of up to attempt milliseconds, or until
// ctx ends.
func sleepJitter(ctx context.Context, rand io.Reader, attempt int) error {
	var b [2]byte
	_, _ = io.ReadFull(rand, b[:])
	d := time.Duration(int(binary.BigEndian.Uint16(b[:]))%(attempt*1000)+100) * time.Microsecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Forget drops the ring's cached copy of a key (named by key ID) or alias
// (alias/<name>), so that its next use reads the Store. Stores that learn
// of other writers' changes call it (sqlstore's Follow); the ring's own
// changes never need it.
func (r *KeyRing) Forget(name string) {
	if strings.HasPrefix(name, "alias/") {
		r.aliasGen.Add(1)
		r.aliases.Delete(name)
		return
	}
	r.keyGen.Add(1)
	r.keys.Delete(name)
}

// ForgetAll drops every cached key and alias, for a Store that may have
// missed changes (after losing its notification connection, say).
func (r *KeyRing) ForgetAll() {
	r.aliasGen.Add(1)
	r.keyGen.Add(1)
	r.aliases.Clear()
	r.keys.Clear()
}

// publish stores an entry the ring has just written to the Store.
func (r *KeyRing) publish(e *keyEntry) {
	e.checked.Store(r.cfg.Clock.Now().UnixNano())
	r.keys.Store(e.rec.KeyID, e)
}

// storeErr keeps sentinel errors from a Store and reports the rest as
// ErrInternal with the Store's message (which a Store must keep free of
// secrets; it only ever holds wrapped material).
func storeErr(err error) error {
	for _, s := range []error{ErrNotFound, ErrAlreadyExists, ErrConflict} {
		if errors.Is(err, s) {
			return s
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: store: %w", ErrInternal, err)
}

// versionAD is the associated data binding wrapped material to its key and
// version: "pocketkms/v1/material" || 0x00 || key ID || 0x00 || uint32 version.
func versionAD(keyID string, v uint32) []byte {
	b := make([]byte, 0, 32+len(keyID))
	b = append(b, "pocketkms/v1/material"...)
	b = append(b, 0)
	b = append(b, keyID...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, v)
}

// MaxKeyVersions bounds the versions of one key.
const MaxKeyVersions = 10000

// build parses a record into an entry, reusing prev's parsed versions whose
// wrapped material is unchanged and the versions wrapVersion has just
// parsed. A record that breaks an invariant the KeyRing relies on is
// refused, whatever the Store returned.
func (r *KeyRing) build(ctx context.Context, rec *KeyRecord, prev *keyEntry) (*keyEntry, error) {
	if err := validRecord(rec); err != nil {
		return nil, fmt.Errorf("%w: stored key %s: %s", ErrInternal, rec.KeyID, err)
	}
	info := specs[rec.Spec]
	e := &keyEntry{rec: rec, info: info, arn: r.KeyARN(rec.KeyID)}
	e.providerInfo = []byte(e.arn)
	e.providerInfo = e.providerInfo[:len(e.providerInfo):len(e.providerInfo)] // no append reaches a shared array
	for _, v := range rec.Versions {
		for len(e.vers) < int(v.Version) {
			e.vers = append(e.vers, nil)
		}
		switch {
		case v.parsed != nil:
			e.vers[v.Version-1] = v.parsed
			continue
		case len(v.Wrapped) == 0:
			continue
		case prev != nil:
			if i := int(v.Version) - 1; i < len(prev.vers) && prev.vers[i] != nil && bytes.Equal(prev.recVersion(v.Version), v.Wrapped) {
				e.vers[i] = prev.vers[i]
				continue
			}
		}
		k, err := r.unwrapVersion(ctx, rec, v)
		if err != nil {
			return nil, err
		}
		e.vers[v.Version-1] = k
	}
	return e, nil
}

// validRecord checks what the KeyRing relies on in a stored record.
func validRecord(rec *KeyRecord) error {
	info, ok := specs[rec.Spec]
	switch {
	case !ok:
		return errors.New("unknown spec")
	case !slices.Contains(info.usages, rec.Usage):
		return errors.New("usage not allowed for the spec")
	case rec.Origin != OriginAWSKMS && rec.Origin != OriginExternal:
		return errors.New("unknown origin")
	}
	switch rec.State {
	case KeyStateEnabled, KeyStateDisabled, KeyStatePendingDeletion, KeyStatePendingImport:
	case KeyStateDeleted: // a tombstone: checked below, but for material
	default:
		return errors.New("unknown state")
	}
	var last uint32
	primary := false
	for _, v := range rec.Versions {
		if v.Version <= last || v.Version > MaxKeyVersions {
			return errors.New("versions out of order or out of range")
		}
		last = v.Version
		switch v.State {
		case "", VersionEnabled, VersionDisabled, VersionDestroyed:
		default:
			return errors.New("unknown version state")
		}
		if v.Version == rec.Primary {
			primary = len(v.Wrapped) > 0 && (v.State == "" || v.State == VersionEnabled)
		}
	}
	if rec.State == KeyStateDeleted {
		for _, v := range rec.Versions {
			if len(v.Wrapped) > 0 {
				return errors.New("a deleted key still has material")
			}
		}
		return nil
	}
	if len(rec.Versions) == 0 {
		if rec.Primary != 0 || (rec.State != KeyStatePendingImport && rec.State != KeyStatePendingDeletion) {
			return errors.New("a key without versions must await import")
		}
	} else if !primary {
		return errors.New("the primary version has no material or is not enabled")
	}
	if rec.MinDecryptionVersion > rec.Primary || rec.MinEncryptionVersion > rec.Primary {
		return errors.New("a minimum version is above the primary version")
	}
	if p := rec.RotationPeriodDays; p != 0 && (p < MinRotationPeriodDays || p > MaxRotationPeriodDays) {
		return errors.New("rotation period out of range")
	}
	return nil
}

func (e *keyEntry) recVersion(v uint32) []byte {
	for _, vr := range e.rec.Versions {
		if vr.Version == v {
			return vr.Wrapped
		}
	}
	return nil
}

func (r *KeyRing) unwrapVersion(ctx context.Context, rec *KeyRecord, v VersionRecord) (*keys.Key, error) {
	raw, err := r.cfg.RootKey.Unwrap(ctx, v.Wrapped, versionAD(rec.KeyID, v.Version))
	if err != nil {
		return nil, fmt.Errorf("%w: key %s version %d: root key could not unwrap its material", ErrInternal, rec.KeyID, v.Version)
	}
	defer clear(raw)
	k, err := keys.Parse(specs[rec.Spec].typ, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s version %d: stored material does not parse", ErrInternal, rec.KeyID, v.Version)
	}
	return k, nil
}

// wrapVersion wraps fresh material as version v of key id and parses it.
func (r *KeyRing) wrapVersion(ctx context.Context, rec *KeyRecord, v uint32, raw []byte) (VersionRecord, error) {
	k, err := keys.Parse(specs[rec.Spec].typ, raw)
	if err != nil {
		return VersionRecord{}, ErrIncorrectKeyMaterial
	}
	w, err := r.cfg.RootKey.Wrap(ctx, raw, versionAD(rec.KeyID, v))
	if err != nil {
		return VersionRecord{}, fmt.Errorf("%w: root key could not wrap key material: %w", ErrInternal, err)
	}
	vr := VersionRecord{Version: v, CreatedAt: r.now(), Wrapped: w, VerifyOnly: k.VerifyOnly, parsed: k}
	if k.Type.Kind == keys.RSA || k.Type.Kind == keys.EC || k.Type.Kind == keys.Ed25519 {
		vr.PublicKey = k.PublicDER()
	}
	return vr, nil
}

// update applies mutate to a copy of the key's record under the write lock,
// saves it and publishes the new entry. On a conflict with another writer
// of the same Store it reloads the record and tries again.
func (r *KeyRing) update(ctx context.Context, id string, mutate func(rec *KeyRecord) error) (*keyEntry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if _, err := live(cur, nil); err != nil {
			return nil, err // deleted meanwhile: a tombstone never changes
		}
		rec := cur.rec.clone()
		if err := mutate(rec); err != nil {
			return nil, err
		}
		if err := validRecord(rec); err != nil {
			return nil, fmt.Errorf("%w: key %s: the change would store an invalid record: %s", ErrInternal, id, err)
		}
		err := r.cfg.Store.PutKey(ctx, rec)
		if errors.Is(err, ErrConflict) && attempt < maxUpdateAttempts {
			// Another writer of the Store got there first: read its change
			// and apply ours on top. After a few collisions, wait a little
			// (longer each time, at random) so that writers racing on one
			// key in several processes all get through.
			if attempt >= 2 {
				if err := sleepJitter(ctx, r.cfg.Rand, attempt); err != nil {
					return nil, err
				}
			}
			if cur, err = r.reload(ctx, id, cur); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, storeErr(err)
		}
		rec.Revision++
		next, err := r.build(ctx, rec, cur)
		if err != nil {
			// Saved but not usable here: forget the cached copy, so that the
			// next use reads the Store again.
			r.keys.Delete(id)
			return nil, err
		}
		r.publish(next)
		return next, nil
	}
}

// state returns a key's effective state: an Enabled key whose imported
// material has expired is PendingImport, as in AWS KMS.
func (r *KeyRing) state(rec *KeyRecord) KeyState {
	if rec.State == KeyStateEnabled && rec.ExpirationModel == KeyMaterialExpires && !r.now().Before(rec.ValidTo) {
		return KeyStatePendingImport
	}
	return rec.State
}

// usable reports whether a key's state allows cryptographic use.
func (r *KeyRing) usable(e *keyEntry) error {
	switch r.state(e.rec) {
	case KeyStateEnabled:
		return nil
	case KeyStateDisabled:
		return ErrDisabled
	case KeyStatePendingDeletion:
		return ErrPendingDeletion
	case KeyStatePendingImport:
		return ErrPendingImport
	}
	return ErrInvalidState
}

// usableKey resolves a key for a cryptographic operation, records it in
// the event and checks that its state allows use.
func (r *KeyRing) usableKey(ctx context.Context, c *call, name string) (*keyEntry, error) {
	e, err := r.resolve(ctx, c, name)
	if err != nil {
		return nil, err
	}
	c.key(e)
	if err := r.usable(e); err != nil {
		return nil, err
	}
	return e, nil
}

// needUsage checks a key's usage.
func needUsage(e *keyEntry, u KeyUsage) error {
	if e.rec.Usage != u {
		return fmt.Errorf("%w: key usage is %s, not %s", ErrInvalidUsage, e.rec.Usage, u)
	}
	return nil
}

// newKeyID returns a random version 4 UUID.
func (r *KeyRing) newKeyID() (string, error) {
	var u [16]byte
	if _, err := io.ReadFull(r.cfg.Rand, u[:]); err != nil {
		return "", errors.New("kms: reading random key ID failed")
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:]), nil
}

// printable reports whether s is printable ASCII without spaces.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
