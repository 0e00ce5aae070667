package kms

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

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
	// KeyPolicy is the key's policy document (JSON); "" for operations on
	// no key.
	KeyPolicy string
	// Grant is the grant being created (CreateGrant), retired (RetireGrant)
	// or revoked (RevokeGrant). A Policy must not modify it.
	Grant *Grant
	// Time is the time of the request on the KeyRing's clock.
	Time time.Time
	// MessageType is Sign's and Verify's; DataKeyPairSpec is
	// GenerateDataKeyPair's; BypassPolicyLockoutSafetyCheck is CreateKey's
	// and PutKeyPolicy's.
	MessageType                    MessageType
	DataKeyPairSpec                DataKeyPairSpec
	BypassPolicyLockoutSafetyCheck bool

	entry   *keyEntry // the resolved key, for KeyPolicies
	account string    // the KeyRing's account
	clock   Clock     // for KeyPolicies, which reads the time only if a condition needs it
}

// KeyPolicies is the key-policy engine: a [Policy] that decides as AWS KMS
// does, from each key's policy document (PutKeyPolicy) and grants
// (CreateGrant):
//
//  1. an explicit Deny in the key policy that matches the request wins;
//  2. otherwise an Allow in the key policy, or a grant, allows it;
//  3. otherwise the request is denied.
//
// A statement matches when its Principal (or NotPrincipal), Action (or
// NotAction), Resource (or NotResource) and every Condition match. A
// principal "arn:aws:iam::ACCOUNT:root" or "ACCOUNT" in a policy or grant
// stands for every principal of that account: there are no IAM policies in
// pocketkms to delegate to, so the default key policy ([DefaultKeyPolicy])
// gives the account full access, as AWS's does. A call whose context
// carries no principal ([WithPrincipal]) matches only statements with
// Principal "*" and no grant.
//
// RetireGrant is decided by the grant, as in AWS KMS: its retiring
// principal, its grantee (when the grant allows RetireGrant) and the root
// of the account that created it may retire it; a key policy can deny, not
// allow, RetireGrant.
//
// Use it as Config.Policy: kms.Config{Policy: kms.KeyPolicies{}}.
type KeyPolicies struct {
	// Unkeyed decides the operations that name no key (CreateKey,
	// ListKeys, ListAliases, GenerateRandom, ListRetirableGrants), which
	// AWS governs by IAM policies alone. Nil allows the principals of the
	// KeyRing's own account and denies everyone else.
	Unkeyed Policy
}

var _ Policy = KeyPolicies{}

// Authorize decides req under its key's policy and grants.
func (kp KeyPolicies) Authorize(ctx context.Context, req Request) error {
	account := principalAccount(&req.Principal)
	if req.entry == nil {
		if kp.Unkeyed != nil {
			return kp.Unkeyed.Authorize(ctx, req)
		}
		if account == "" || account != req.account {
			return fmt.Errorf("%s is not allowed to call %s: it is not a principal of account %s", callerName(&req.Principal), req.Op, req.account)
		}
		return nil
	}
	acc := req.entry.access()
	if acc.perr != nil {
		return fmt.Errorf("the key policy cannot be evaluated: %w", acc.perr)
	}
	x := evalCtx{req: &req, account: account}
	allowed := false
	for _, s := range acc.statements(req.Op) {
		if !s.appliesTo(&req.Principal, account) || !s.conditionsHold(&x) {
			continue
		}
		if s.deny {
			return fmt.Errorf("an explicit deny in the key policy (%s) refuses %s to %s", s.name(acc), req.Op, callerName(&req.Principal))
		}
		allowed = true
	}
	if req.Op == OpRetireGrant {
		// Decided by the grant alone; the key policy could only deny.
		if req.Grant != nil && mayRetire(req.Grant, &req.Principal, account) {
			return nil
		}
		return fmt.Errorf("%s may not retire the grant: only its retiring principal, its grantee (when the grant allows RetireGrant) and its account's root may", callerName(&req.Principal))
	}
	if allowed || acc.grantAllows(&req, account) {
		return nil
	}
	return fmt.Errorf("no key policy statement or grant allows %s to %s", callerName(&req.Principal), req.Op)
}

// lockoutSafe reports whether a policy document would let the caller of
// req (a PutKeyPolicy request on the key, with its properties) call
// PutKeyPolicy again: statements only, as AWS checks.
func lockoutSafe(pol *keyPolicy, req *Request) bool {
	p := &req.Principal
	account := principalAccount(p)
	x := evalCtx{req: req, account: account}
	allowed := false
	for _, s := range pol.stmts {
		if !s.matchesAction(actionName(OpPutKeyPolicy)) || !s.matchesResource(req.KeyARN) ||
			!s.appliesTo(p, account) || !s.conditionsHold(&x) {
			continue
		}
		if s.deny {
			return false
		}
		allowed = true
	}
	return allowed
}

// callerName names a caller in a denial.
func callerName(p *Principal) string {
	if p.ARN != "" {
		return p.ARN
	}
	if p.Account != "" {
		return "a principal of account " + p.Account
	}
	return "a caller with no principal"
}

// access is a key's policy and grants, prepared for evaluation.
type access struct {
	pol  *keyPolicy
	perr error
	// byOp lists, per operation, the statements whose Action and Resource
	// match it on this key.
	byOp map[Op][]*statement
	arn  string
	// grants by grantee principal.
	grants map[string][]*Grant
}

// policyOps are the operations a Policy is asked about.
var policyOps = []Op{
	OpCreateKey, OpDescribeKey, OpListKeys, OpCreateAlias, OpUpdateAlias, OpDeleteAlias, OpListAliases,
	OpTagResource, OpUntagResource, OpListResourceTags, OpUpdateKeyDescription, OpEnableKey, OpDisableKey,
	OpScheduleKeyDeletion, OpCancelKeyDeletion, OpEncrypt, OpDecrypt, OpReEncryptFrom, OpReEncryptTo,
	OpGenerateDataKey, OpGenerateDataKeyWithoutPlaintext, OpGenerateDataKeyPair, OpGenerateDataKeyPairWithoutPlaintext,
	OpSign, OpVerify, OpGetPublicKey, OpGenerateMac, OpVerifyMac, OpGenerateRandom, OpDeriveSharedSecret,
	OpGetParametersForImport, OpImportKeyMaterial, OpRotateKeyOnDemand, OpEnableKeyRotation,
	OpDisableKeyRotation, OpGetKeyRotationStatus, OpListKeyRotations, OpListKeyVersions, OpEnableKeyVersion,
	OpDisableKeyVersion, OpDestroyKeyVersion, OpUpdateKeyVersionLimits, OpPutKeyPolicy, OpGetKeyPolicy,
	OpListKeyPolicies, OpCreateGrant, OpListGrants, OpRetireGrant, OpRevokeGrant, OpListRetirableGrants,
}

// access returns the entry's prepared policy and grants, preparing them
// on first use.
func (e *keyEntry) access() *access {
	e.accessOnce.Do(func() {
		a := &access{arn: e.arn}
		doc := e.rec.Policy
		if doc == "" {
			doc = DefaultKeyPolicy(arnAccount(e.arn))
		}
		a.pol, a.perr = parsePolicy(doc)
		if a.perr == nil {
			a.byOp = make(map[Op][]*statement, len(policyOps))
			for _, op := range policyOps {
				a.byOp[op] = a.match(op)
			}
		}
		for i := range e.rec.Grants {
			g := &e.rec.Grants[i]
			if a.grants == nil {
				a.grants = map[string][]*Grant{}
			}
			a.grants[g.GranteePrincipal] = append(a.grants[g.GranteePrincipal], g)
		}
		e.acc = a
	})
	return e.acc
}

func (a *access) match(op Op) []*statement {
	action := actionName(op)
	var out []*statement
	for _, s := range a.pol.stmts {
		if s.matchesAction(action) && s.matchesResource(a.arn) {
			out = append(out, s)
		}
	}
	return out
}

func (a *access) statements(op Op) []*statement {
	if ss, ok := a.byOp[op]; ok {
		return ss
	}
	return a.match(op)
}

// name names a statement in a denial: its Sid, or its position.
func (s *statement) name(a *access) string {
	if s.sid != "" {
		return fmt.Sprintf("statement %q", s.sid)
	}
	return fmt.Sprintf("statement %d", slices.Index(a.pol.stmts, s)+1)
}

// namesCaller reports whether a principal named in a grant (an ARN, an
// account's root ARN or an account ID) is the caller.
func namesCaller(name string, p *Principal, account string) bool {
	if name == "" {
		return false
	}
	if p.ARN != "" && name == p.ARN {
		return true
	}
	return account != "" && (name == account || name == "arn:aws:iam::"+account+":root")
}

// grantAllows reports whether a grant on the key allows the request.
func (a *access) grantAllows(req *Request, account string) bool {
	if len(a.grants) == 0 {
		return false
	}
	check := func(gs []*Grant) bool {
		for _, g := range gs {
			if g.allows(req) {
				return true
			}
		}
		return false
	}
	if req.Principal.ARN != "" && check(a.grants[req.Principal.ARN]) {
		return true
	}
	if account != "" && (check(a.grants[account]) || check(a.grants["arn:aws:iam::"+account+":root"])) {
		return true
	}
	return false
}

// allows reports whether the grant allows the request (its grantee is
// already known to be the caller).
func (g *Grant) allows(req *Request) bool {
	if !slices.Contains(g.Operations, req.Op) {
		return false
	}
	if req.Op == OpCreateGrant {
		return req.Grant != nil && g.covers(req.Grant)
	}
	if g.Constraints == nil || !constrainable(req.Op) {
		return true
	}
	return g.Constraints.satisfiedBy(req.EncryptionContext)
}

// covers reports whether a grant that allows CreateGrant may create child:
// no more operations, and constraints at least as strict.
func (g *Grant) covers(child *Grant) bool {
	for _, op := range child.Operations {
		if !slices.Contains(g.Operations, op) {
			return false
		}
	}
	gc := g.Constraints
	if gc == nil {
		return true
	}
	cc := child.Constraints
	if cc == nil {
		return false
	}
	if gc.EncryptionContextEquals != nil {
		return cc.EncryptionContextEquals != nil && foldEqual(gc.EncryptionContextEquals, cc.EncryptionContextEquals)
	}
	// A subset constraint: the child must require every pair too.
	req := cc.EncryptionContextSubset
	if cc.EncryptionContextEquals != nil {
		req = cc.EncryptionContextEquals
	}
	return req != nil && foldContains(req, gc.EncryptionContextSubset)
}

// constrainable reports whether grant constraints apply to an operation:
// the cryptographic operations that take an encryption context.
func constrainable(op Op) bool {
	switch op {
	case OpEncrypt, OpDecrypt, OpReEncryptFrom, OpReEncryptTo, OpGenerateDataKey, OpGenerateDataKeyWithoutPlaintext,
		OpGenerateDataKeyPair, OpGenerateDataKeyPairWithoutPlaintext:
		return true
	}
	return false
}

// satisfiedBy checks a request's encryption context against the
// constraints. Keys compare without regard to case and values exactly, as
// AWS KMS compares them in grant constraints.
func (c *GrantConstraints) satisfiedBy(ec EncryptionContext) bool {
	if c.EncryptionContextEquals != nil && !foldEqual(c.EncryptionContextEquals, ec) {
		return false
	}
	if c.EncryptionContextSubset != nil && !foldContains(ec, c.EncryptionContextSubset) {
		return false
	}
	return true
}

// foldContains reports whether every pair of want is in have, comparing
// keys without regard to case.
func foldContains(have, want EncryptionContext) bool {
	for wk, wv := range want {
		found := false
		if hv, ok := have[wk]; ok && hv == wv {
			found = true
		} else {
			for hk, hv := range have {
				if hv == wv && strings.EqualFold(hk, wk) {
					found = true
					break
				}
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func foldEqual(a, b EncryptionContext) bool {
	return len(a) == len(b) && foldContains(a, b) && foldContains(b, a)
}

// mayRetire reports whether the caller may retire the grant.
func mayRetire(g *Grant, p *Principal, account string) bool {
	if namesCaller(g.RetiringPrincipal, p, account) {
		return true
	}
	if slices.Contains(g.Operations, OpRetireGrant) && namesCaller(g.GranteePrincipal, p, account) {
		return true
	}
	return g.IssuingAccount != "" && p.ARN == "arn:aws:iam::"+g.IssuingAccount+":root"
}
