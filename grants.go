package kms

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Grant limits. AWS KMS allows 50,000 grants per key; pocketkms keeps a
// key's grants in its record, so it allows fewer.
const (
	MaxGrantsPerKey         = 10000
	MaxGrantsPerGrantee     = 500 // per key, as in AWS KMS
	MaxGrantConstraintPairs = 8
	MaxGrantTokens          = 10 // per request
)

// Grant gives a grantee principal permission to use a key in some
// operations, optionally only with a given encryption context. Under
// [KeyPolicies] a grant allows what it names even when the key policy does
// not; an explicit Deny in the key policy still wins.
type Grant struct {
	// KeyID is the key's ARN in ListGrants output; its ID in a KeyRecord.
	KeyID        string
	GrantID      string
	Name         string
	CreationDate time.Time
	// GranteePrincipal may use the key; RetiringPrincipal may retire the
	// grant. Each is an ARN, an account's root ARN or an account ID (the
	// last two stand for every principal of the account).
	GranteePrincipal  string
	RetiringPrincipal string
	// IssuingAccount is the account of the principal that created it.
	IssuingAccount string
	Operations     []Op
	Constraints    *GrantConstraints
}

// GrantConstraints limit a grant's cryptographic operations to requests
// whose encryption context equals (EncryptionContextEquals) or includes
// (EncryptionContextSubset) the given pairs; a grant has one or the other,
// and an empty map counts as none. Context keys compare without
// regard to case, values exactly. They apply to the operations that take an
// encryption context; a grant with constraints still allows DescribeKey and
// RetireGrant, as in AWS KMS.
type GrantConstraints struct {
	EncryptionContextEquals EncryptionContext
	EncryptionContextSubset EncryptionContext
}

func (g Grant) clone() Grant {
	g.Operations = slices.Clone(g.Operations)
	if g.Constraints != nil {
		c := GrantConstraints{
			EncryptionContextEquals: maps.Clone(g.Constraints.EncryptionContextEquals),
			EncryptionContextSubset: maps.Clone(g.Constraints.EncryptionContextSubset),
		}
		g.Constraints = &c
	}
	return g
}

// grantOps are the operations a grant may allow.
var grantOps = []Op{
	OpDecrypt, OpEncrypt, OpGenerateDataKey, OpGenerateDataKeyWithoutPlaintext, OpGenerateDataKeyPair,
	OpGenerateDataKeyPairWithoutPlaintext, OpReEncryptFrom, OpReEncryptTo, OpSign, OpVerify, OpGetPublicKey,
	OpCreateGrant, OpRetireGrant, OpDescribeKey, OpGenerateMac, OpVerifyMac, OpDeriveSharedSecret,
}

// grantOpAllowed reports whether a grant on a key of the given spec and
// usage may allow op.
func grantOpAllowed(op Op, spec KeySpec, usage KeyUsage) bool {
	switch op {
	case OpCreateGrant, OpRetireGrant, OpDescribeKey:
		return true
	}
	switch usage {
	case EncryptDecrypt:
		if spec == SymmetricDefault {
			return op != OpSign && op != OpVerify && op != OpGetPublicKey && op != OpGenerateMac && op != OpVerifyMac && op != OpDeriveSharedSecret
		}
		return op == OpEncrypt || op == OpDecrypt || op == OpReEncryptFrom || op == OpReEncryptTo || op == OpGetPublicKey
	case SignVerify:
		return op == OpSign || op == OpVerify || op == OpGetPublicKey
	case GenerateVerifyMac:
		return op == OpGenerateMac || op == OpVerifyMac
	case KeyAgreement:
		return op == OpDeriveSharedSecret || op == OpGetPublicKey
	}
	return false
}

// CreateGrantInput is the input of CreateGrant.
type CreateGrantInput struct {
	KeyID             string
	GranteePrincipal  string
	RetiringPrincipal string
	Operations        []Op
	Constraints       *GrantConstraints
	// Name makes retries idempotent: a CreateGrant with the same name and
	// parameters as an existing grant returns that grant's ID (with a new
	// token) and creates nothing.
	Name string
}

// CreateGrantOutput is the output of CreateGrant.
type CreateGrantOutput struct {
	GrantID string
	// GrantToken names the grant; pass it with WithGrantTokens to use the
	// grant at once on a ring that shares the Store but has not yet seen
	// it, or to RetireGrant.
	GrantToken string
}

// CreateGrant adds a grant to a key. Under [KeyPolicies] the caller needs
// kms:CreateGrant in the key policy, or a grant that allows CreateGrant
// with all the new grant's operations and constraints at least as strict.
func (r *KeyRing) CreateGrant(ctx context.Context, in CreateGrantInput) (*CreateGrantOutput, error) {
	c := r.begin(ctx, OpCreateGrant)
	out, err := r.createGrant(ctx, &c, in)
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *KeyRing) createGrant(ctx context.Context, c *call, in CreateGrantInput) (*CreateGrantOutput, error) {
	e, err := r.resolve(ctx, c, in.KeyID)
	if err != nil {
		return nil, err
	}
	c.key(e)
	if err := refuseStates(e.rec, KeyStatePendingDeletion); err != nil {
		return nil, err
	}
	g, err := r.newGrant(e, c.ev.Principal, in)
	if err != nil {
		return nil, err
	}
	if err := c.authorizeGrant(OpCreateGrant, e, g); err != nil {
		return nil, err
	}
	var id string
	_, err = r.update(ctx, e.rec.KeyID, func(rec *KeyRecord) error {
		if err := refuseStates(rec, KeyStatePendingDeletion); err != nil {
			return err
		}
		if g.Name != "" {
			for _, old := range rec.Grants {
				if sameGrant(&old, g) {
					id = old.GrantID
					return errUnchanged
				}
			}
		}
		if len(rec.Grants) >= MaxGrantsPerKey {
			return fmt.Errorf("%w: a key has at most %d grants", ErrLimitExceeded, MaxGrantsPerKey)
		}
		n := 0
		for _, old := range rec.Grants {
			if old.GranteePrincipal == g.GranteePrincipal {
				n++
			}
		}
		if n >= MaxGrantsPerGrantee {
			return fmt.Errorf("%w: a grantee has at most %d grants on a key", ErrLimitExceeded, MaxGrantsPerGrantee)
		}
		gid, err := r.newGrantID()
		if err != nil {
			return err
		}
		g.GrantID, id = gid, gid
		rec.Grants = append(rec.Grants, g.clone())
		return nil
	})
	if err != nil && err != errUnchanged {
		return nil, err
	}
	c.ev.GrantID = id
	tok, err := r.grantToken(e.rec.KeyID, id)
	if err != nil {
		return nil, err
	}
	return &CreateGrantOutput{GrantID: id, GrantToken: tok}, nil
}

// newGrant checks a CreateGrant input and returns the grant it describes.
func (r *KeyRing) newGrant(e *keyEntry, caller Principal, in CreateGrantInput) (*Grant, error) {
	if err := checkGrantPrincipal("GranteePrincipal", in.GranteePrincipal, true); err != nil {
		return nil, err
	}
	if err := checkGrantPrincipal("RetiringPrincipal", in.RetiringPrincipal, false); err != nil {
		return nil, err
	}
	if len(in.Name) > 256 || !validGrantName(in.Name) {
		return nil, fmt.Errorf("%w: Name is 1 to 256 letters, digits and :/_-", ErrInvalidArgument)
	}
	if len(in.Operations) == 0 {
		return nil, fmt.Errorf("%w: a grant needs at least one operation", ErrInvalidArgument)
	}
	ops := slices.Clone(in.Operations)
	slices.Sort(ops)
	if len(slices.Compact(ops)) != len(in.Operations) {
		return nil, fmt.Errorf("%w: Operations lists an operation twice", ErrInvalidArgument)
	}
	for _, op := range in.Operations {
		if !slices.Contains(grantOps, op) {
			return nil, fmt.Errorf("%w: %q is not an operation a grant can allow", ErrInvalidArgument, op)
		}
		if !grantOpAllowed(op, e.rec.Spec, e.rec.Usage) {
			return nil, fmt.Errorf("%w: a grant on a %s %s key cannot allow %s", ErrInvalidArgument, e.rec.Spec, e.rec.Usage, op)
		}
	}
	g := &Grant{
		KeyID: e.rec.KeyID, Name: in.Name, CreationDate: r.now(),
		GranteePrincipal: in.GranteePrincipal, RetiringPrincipal: in.RetiringPrincipal,
		IssuingAccount: principalAccount(&caller), Operations: slices.Clone(in.Operations),
	}
	if g.IssuingAccount == "" {
		g.IssuingAccount = r.cfg.Account
	}
	if gc := in.Constraints; gc != nil && (len(gc.EncryptionContextEquals) > 0 || len(gc.EncryptionContextSubset) > 0) {
		if len(gc.EncryptionContextEquals) > 0 && len(gc.EncryptionContextSubset) > 0 {
			return nil, fmt.Errorf("%w: a grant takes EncryptionContextEquals or EncryptionContextSubset, not both", ErrInvalidArgument)
		}
		if e.rec.Spec != SymmetricDefault {
			return nil, fmt.Errorf("%w: encryption context constraints need a symmetric encryption key", ErrInvalidArgument)
		}
		for _, ec := range []EncryptionContext{gc.EncryptionContextEquals, gc.EncryptionContextSubset} {
			if len(ec) > MaxGrantConstraintPairs {
				return nil, fmt.Errorf("%w: a constraint has at most %d pairs", ErrInvalidArgument, MaxGrantConstraintPairs)
			}
			for k, v := range ec {
				if k == "" || utf8.RuneCountInString(v) > 384 || !utf8.ValidString(k) || !utf8.ValidString(v) {
					return nil, fmt.Errorf("%w: constraint keys must not be empty and values are at most 384 characters", ErrInvalidArgument)
				}
			}
		}
		g.Constraints = &GrantConstraints{}
		if len(gc.EncryptionContextEquals) > 0 {
			g.Constraints.EncryptionContextEquals = maps.Clone(gc.EncryptionContextEquals)
		} else {
			g.Constraints.EncryptionContextSubset = maps.Clone(gc.EncryptionContextSubset)
		}
	}
	return g, nil
}

func checkGrantPrincipal(field, p string, required bool) error {
	if p == "" && !required {
		return nil
	}
	if p == "" || len(p) > 256 || !printable(p) {
		return fmt.Errorf("%w: %s must be 1 to 256 printable characters", ErrInvalidArgument, field)
	}
	if p != "*" && !strings.HasPrefix(p, "arn:") && !validAccountID(p) {
		return fmt.Errorf("%w: %s must be an ARN or an account ID", ErrInvalidArgument, field)
	}
	if p == "*" {
		return fmt.Errorf("%w: %s cannot be *", ErrInvalidArgument, field)
	}
	return nil
}

func validGrantName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '/' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// sameGrant reports whether a stored grant is an idempotent retry of g.
func sameGrant(old, g *Grant) bool {
	if old.Name != g.Name || old.GranteePrincipal != g.GranteePrincipal || old.RetiringPrincipal != g.RetiringPrincipal {
		return false
	}
	a, b := slices.Clone(old.Operations), slices.Clone(g.Operations)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		return false
	}
	oc, gc := old.Constraints, g.Constraints
	if oc == nil || gc == nil {
		return oc == nil && gc == nil
	}
	return (oc.EncryptionContextEquals == nil) == (gc.EncryptionContextEquals == nil) &&
		(oc.EncryptionContextSubset == nil) == (gc.EncryptionContextSubset == nil) &&
		maps.Equal(oc.EncryptionContextEquals, gc.EncryptionContextEquals) &&
		maps.Equal(oc.EncryptionContextSubset, gc.EncryptionContextSubset)
}

// errUnchanged ends an update that has nothing to write.
var errUnchanged = errors.New("kms: unchanged")

// newGrantID returns 32 random bytes in hex, the form of AWS grant IDs.
func (r *KeyRing) newGrantID() (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(r.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("%w: reading random grant ID failed", ErrInternal)
	}
	return hex.EncodeToString(b[:]), nil
}

func validGrantID(id string) bool {
	if len(id) != 64 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// A grant token is "pkgt1" and the URL-safe base64 (unpadded) of: the key
// ID (36 bytes), the grant ID (32 bytes) and 16 random bytes, so that every
// CreateGrant returns a new token. It names a grant; it is no credential:
// using a grant still takes being its grantee.
const grantTokenPrefix = "pkgt1"

func (r *KeyRing) grantToken(keyID, grantID string) (string, error) {
	raw := make([]byte, 0, 36+32+16)
	raw = append(raw, keyID...)
	gid, _ := hex.DecodeString(grantID)
	raw = append(raw, gid...)
	var nonce [16]byte
	if _, err := io.ReadFull(r.cfg.Rand, nonce[:]); err != nil {
		return "", fmt.Errorf("%w: reading random grant token failed", ErrInternal)
	}
	raw = append(raw, nonce[:]...)
	return grantTokenPrefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

// parseGrantToken returns the key ID and grant ID a token names.
func parseGrantToken(tok string) (keyID, grantID string, err error) {
	rest, ok := strings.CutPrefix(tok, grantTokenPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(36+32+16) {
		return "", "", ErrInvalidGrantToken
	}
	raw, derr := base64.RawURLEncoding.DecodeString(rest)
	if derr != nil || !validKeyID(string(raw[:36])) {
		return "", "", ErrInvalidGrantToken
	}
	return string(raw[:36]), hex.EncodeToString(raw[36:68]), nil
}

// validKeyID reports whether s has the form of a key ID the ring makes.
func validKeyID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

type grantTokensKey struct{}

// WithGrantTokens returns a context that carries grant tokens from
// CreateGrant. A KeyRing that is asked to use a key while holding a token
// for a grant it has not seen reads the key from its Store again, so the
// grant is usable at once even through another ring that shares the Store
// (without a token, within Config.CacheTTL). At most MaxGrantTokens tokens
// are accepted; a token that does not parse fails the operation with
// ErrInvalidGrantToken.
func WithGrantTokens(ctx context.Context, tokens ...string) context.Context {
	return context.WithValue(ctx, grantTokensKey{}, slices.Clone(tokens))
}

// checkGrantTokens checks the number and form of grant tokens.
func checkGrantTokens(toks []string) error {
	if len(toks) > MaxGrantTokens {
		return fmt.Errorf("%w: at most %d grant tokens", ErrInvalidArgument, MaxGrantTokens)
	}
	for _, t := range toks {
		if t == "" {
			return fmt.Errorf("%w: a grant token is empty", ErrInvalidArgument)
		}
		if _, _, err := parseGrantToken(t); err != nil {
			return err
		}
	}
	return nil
}

// freshGrants returns e, or e read again from the Store when the context
// carries a token for a grant on e that e does not have.
func (r *KeyRing) freshGrants(ctx context.Context, e *keyEntry) (*keyEntry, error) {
	toks, _ := ctx.Value(grantTokensKey{}).([]string)
	if len(toks) == 0 {
		return e, nil
	}
	if err := checkGrantTokens(toks); err != nil {
		return nil, err
	}
	stale := false
	for _, t := range toks {
		kid, gid, err := parseGrantToken(t)
		if err != nil {
			return nil, err
		}
		if kid == e.rec.KeyID && !slices.ContainsFunc(e.rec.Grants, func(g Grant) bool { return g.GrantID == gid }) {
			stale = true
		}
	}
	if !stale {
		return e, nil
	}
	return r.reload(ctx, e.rec.KeyID, e)
}

// ListGrantsInput is the input of ListGrants.
type ListGrantsInput struct {
	KeyID string
	// GrantID and GranteePrincipal, when set, select grants.
	GrantID          string
	GranteePrincipal string
	// Limit is 1 to 100; 0 means 50.
	Limit  int
	Marker string
}

// ListGrantsOutput is a page of grants, ordered by grant ID.
type ListGrantsOutput struct {
	Grants     []Grant
	NextMarker string
	Truncated  bool
}

// ListGrants lists a key's grants.
func (r *KeyRing) ListGrants(ctx context.Context, in ListGrantsInput) (*ListGrantsOutput, error) {
	c := r.begin(ctx, OpListGrants)
	out, err := r.listGrants(ctx, &c, in)
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *KeyRing) listGrants(ctx context.Context, c *call, in ListGrantsInput) (*ListGrantsOutput, error) {
	limit, err := listLimit(in.Limit, 50, 100)
	if err != nil {
		return nil, err
	}
	if in.GrantID != "" && !validGrantID(in.GrantID) {
		return nil, ErrInvalidGrantID
	}
	if in.Marker != "" && !validGrantID(in.Marker) {
		return nil, fmt.Errorf("%w: Marker is not one ListGrants returned", ErrInvalidArgument)
	}
	e, err := r.resolve(ctx, c, in.KeyID)
	if err != nil {
		return nil, err
	}
	c.key(e)
	if err := c.authorize(OpListGrants, e, nil, ""); err != nil {
		return nil, err
	}
	var all []Grant
	for _, g := range e.rec.Grants {
		if (in.GrantID == "" || g.GrantID == in.GrantID) && (in.GranteePrincipal == "" || g.GranteePrincipal == in.GranteePrincipal) {
			all = append(all, g)
		}
	}
	slices.SortFunc(all, func(a, b Grant) int { return cmp.Compare(a.GrantID, b.GrantID) })
	return grantPage(all, in.Marker, limit, func(g Grant) string { return g.GrantID }, func(g *Grant) { g.KeyID = e.arn }), nil
}

// grantPage returns the grants after marker, at most limit of them, as
// copies with fix applied.
func grantPage(all []Grant, marker string, limit int, pos func(Grant) string, fix func(*Grant)) *ListGrantsOutput {
	i, _ := slices.BinarySearchFunc(all, marker, func(g Grant, m string) int { return cmp.Compare(pos(g), m) })
	if marker != "" && i < len(all) && pos(all[i]) == marker {
		i++
	}
	all = all[i:]
	out := &ListGrantsOutput{}
	if len(all) > limit {
		all = all[:limit]
		out.Truncated = true
		out.NextMarker = pos(all[limit-1])
	}
	for _, g := range all {
		g = g.clone()
		fix(&g)
		out.Grants = append(out.Grants, g)
	}
	return out
}

// listLimit checks a page size.
func listLimit(n, def, max int) (int, error) {
	if n == 0 {
		return def, nil
	}
	if n < 1 || n > max {
		return 0, fmt.Errorf("%w: Limit must be 1 to %d", ErrInvalidArgument, max)
	}
	return n, nil
}

// ListRetirableGrantsInput is the input of ListRetirableGrants.
type ListRetirableGrantsInput struct {
	RetiringPrincipal string
	// Limit is 1 to 100; 0 means 50.
	Limit  int
	Marker string
}

// ListRetirableGrants lists the grants, on every key of the ring, whose
// retiring principal is the one given. Grants are ordered by key ID, then
// grant ID.
func (r *KeyRing) ListRetirableGrants(ctx context.Context, in ListRetirableGrantsInput) (*ListGrantsOutput, error) {
	c := r.begin(ctx, OpListRetirableGrants)
	out, err := r.listRetirableGrants(ctx, &c, in)
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *KeyRing) listRetirableGrants(ctx context.Context, c *call, in ListRetirableGrantsInput) (*ListGrantsOutput, error) {
	limit, err := listLimit(in.Limit, 50, 100)
	if err != nil {
		return nil, err
	}
	if err := checkGrantPrincipal("RetiringPrincipal", in.RetiringPrincipal, true); err != nil {
		return nil, err
	}
	afterKey, afterGrant, ok := strings.Cut(in.Marker, "/")
	if in.Marker != "" && (!ok || !validKeyID(afterKey) || !validGrantID(afterGrant)) {
		return nil, fmt.Errorf("%w: Marker is not one ListRetirableGrants returned", ErrInvalidArgument)
	}
	if err := c.authorize(OpListRetirableGrants, nil, nil, ""); err != nil {
		return nil, err
	}
	pos := func(g Grant) string { return g.KeyID + "/" + g.GrantID }
	var found []Grant
	// Read records straight from the Store: listing needs no key material.
	collect := func(id string) error {
		rec, err := r.cfg.Store.GetKey(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil // deleted meanwhile
		} else if err != nil {
			return storeErr(err)
		}
		if rec.State == KeyStateDeleted {
			return nil // a deleted key has no grants
		}
		var gs []Grant
		for _, g := range rec.Grants {
			if g.RetiringPrincipal == in.RetiringPrincipal && (in.Marker == "" || pos(g) > in.Marker) {
				gs = append(gs, g)
			}
		}
		slices.SortFunc(gs, func(a, b Grant) int { return cmp.Compare(a.GrantID, b.GrantID) })
		found = append(found, gs...)
		return nil
	}
	if afterKey != "" {
		if err := collect(afterKey); err != nil {
			return nil, err
		}
	}
	for cursor := afterKey; len(found) <= limit; {
		ids, err := r.cfg.Store.ListKeys(ctx, cursor, 100)
		if err != nil {
			return nil, storeErr(err)
		}
		for _, id := range ids {
			if err := collect(id); err != nil {
				return nil, err
			}
		}
		if len(ids) < 100 {
			break
		}
		cursor = ids[len(ids)-1]
	}
	return grantPage(found, "", limit, pos, func(g *Grant) { g.KeyID = r.KeyARN(g.KeyID) }), nil
}

// RetireGrantInput names the grant to retire: by GrantToken, or by KeyID
// and GrantID.
type RetireGrantInput struct {
	GrantToken string
	KeyID      string
	GrantID    string
}

// RetireGrant deletes a grant when it is no longer needed. Its retiring
// principal, its grantee (when the grant allows RetireGrant) and the root
// of the account that created it may retire it.
func (r *KeyRing) RetireGrant(ctx context.Context, in RetireGrantInput) error {
	c := r.begin(ctx, OpRetireGrant)
	return c.end(r.removeGrant(ctx, &c, OpRetireGrant, in))
}

// RevokeGrant deletes a grant. Under KeyPolicies it takes kms:RevokeGrant
// in the key policy.
func (r *KeyRing) RevokeGrant(ctx context.Context, keyID, grantID string) error {
	c := r.begin(ctx, OpRevokeGrant)
	return c.end(r.removeGrant(ctx, &c, OpRevokeGrant, RetireGrantInput{KeyID: keyID, GrantID: grantID}))
}

func (r *KeyRing) removeGrant(ctx context.Context, c *call, op Op, in RetireGrantInput) error {
	keyID, grantID := in.KeyID, in.GrantID
	if in.GrantToken != "" {
		kid, gid, err := parseGrantToken(in.GrantToken)
		if err != nil {
			return err
		}
		if keyID == "" {
			keyID = kid
		}
		if grantID == "" {
			grantID = gid
		}
		if grantID != gid {
			return fmt.Errorf("%w: the token names another grant", ErrInvalidArgument)
		}
	}
	if keyID == "" || grantID == "" {
		return fmt.Errorf("%w: name the grant by GrantToken, or by KeyID and GrantID", ErrInvalidArgument)
	}
	if !validGrantID(grantID) {
		return ErrInvalidGrantID
	}
	c.ev.GrantID = grantID
	e, err := r.resolve(ctx, c, keyID)
	if err != nil {
		return err
	}
	c.key(e)
	if in.GrantToken != "" {
		if kid, _, _ := parseGrantToken(in.GrantToken); kid != e.rec.KeyID {
			return fmt.Errorf("%w: the token names a grant on another key", ErrInvalidArgument)
		}
		if e, err = r.freshGrants(WithGrantTokens(ctx, in.GrantToken), e); err != nil {
			return err
		}
	}
	i := slices.IndexFunc(e.rec.Grants, func(g Grant) bool { return g.GrantID == grantID })
	if i < 0 {
		// The ring's copy may predate the grant (made through another ring
		// sharing the Store): read the key again before saying it is gone.
		if e, err = r.reload(ctx, e.rec.KeyID, e); err != nil {
			return err
		}
		i = slices.IndexFunc(e.rec.Grants, func(g Grant) bool { return g.GrantID == grantID })
	}
	if i < 0 {
		if op == OpRevokeGrant {
			// Ask first, so that whether a grant exists is no answer to
			// those who may not revoke it.
			if err := c.authorizeGrant(op, e, &Grant{KeyID: e.rec.KeyID, GrantID: grantID}); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: no grant %s on the key", ErrNotFound, grantID)
	}
	g := e.rec.Grants[i].clone()
	if err := c.authorizeGrant(op, e, &g); err != nil {
		return err
	}
	_, err = r.update(ctx, e.rec.KeyID, func(rec *KeyRecord) error {
		j := slices.IndexFunc(rec.Grants, func(g Grant) bool { return g.GrantID == grantID })
		if j < 0 {
			return fmt.Errorf("%w: no grant %s on the key", ErrNotFound, grantID)
		}
		rec.Grants = slices.Delete(rec.Grants, j, j+1)
		return nil
	})
	return err
}
