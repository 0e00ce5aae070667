package kms

import (
	"context"
	"fmt"
)

// PutKeyPolicyInput is the input of PutKeyPolicy.
type PutKeyPolicyInput struct {
	KeyID string
	// PolicyName is "default" (also when empty), the only name a key policy
	// has.
	PolicyName string
	// Policy is the new document, at most MaxKeyPolicySize bytes.
	Policy string
	// BypassPolicyLockoutSafetyCheck skips the check that, under
	// KeyPolicies, the new policy still lets the caller call PutKeyPolicy.
	// Without it, a policy that would lock the caller out is refused with
	// ErrMalformedPolicy.
	BypassPolicyLockoutSafetyCheck bool
}

// PutKeyPolicy replaces a key's policy. The document is validated first;
// a malformed one is refused with a [*PolicyError] that names the
// statement and element at fault.
func (r *KeyRing) PutKeyPolicy(ctx context.Context, in PutKeyPolicyInput) error {
	c := r.begin(ctx, OpPutKeyPolicy)
	return c.end(r.putKeyPolicy(ctx, &c, in))
}

func (r *KeyRing) putKeyPolicy(ctx context.Context, c *call, in PutKeyPolicyInput) error {
	if err := checkPolicyName(in.PolicyName); err != nil {
		return err
	}
	pol, err := parsePolicy(in.Policy)
	if err != nil {
		return err
	}
	e, err := r.resolve(ctx, c, in.KeyID)
	if err != nil {
		return err
	}
	c.key(e)
	c.bypass = in.BypassPolicyLockoutSafetyCheck
	if err := c.authorize(OpPutKeyPolicy, e, nil, ""); err != nil {
		return err
	}
	if !in.BypassPolicyLockoutSafetyCheck {
		if err := r.checkLockout(c, pol, e.rec, e); err != nil {
			return err
		}
	}
	_, err = r.update(ctx, e.rec.KeyID, func(rec *KeyRecord) error {
		rec.Policy = in.Policy
		return nil
	})
	return err
}

// checkLockout refuses, under KeyPolicies, a policy that would not let the
// caller call PutKeyPolicy on the key (rec: its ID, spec, usage and
// origin): the check AWS KMS makes so that a key is not left unmanageable
// by mistake.
func (r *KeyRing) checkLockout(c *call, pol *keyPolicy, rec *KeyRecord, e *keyEntry) error {
	if !usesKeyPolicies(r.cfg.Policy) {
		return nil
	}
	req := Request{
		Op: OpPutKeyPolicy, Principal: c.ev.Principal, KeyID: rec.KeyID, KeyARN: r.KeyARN(rec.KeyID),
		KeySpec: rec.Spec, KeyUsage: rec.Usage, KeyOrigin: rec.Origin, Time: r.now(),
		entry: e, // its tags, for aws:ResourceTag (nil for a key not yet made)
	}
	if lockoutSafe(pol, &req) {
		return nil
	}
	return &PolicyError{Reason: "the policy would not let the caller (" + callerName(&c.ev.Principal) +
		") call PutKeyPolicy on the key; fix the policy or set BypassPolicyLockoutSafetyCheck"}
}

// usesKeyPolicies reports whether the ring's Policy is the key-policy
// engine.
func usesKeyPolicies(p Policy) bool {
	switch p.(type) {
	case KeyPolicies, *KeyPolicies:
		return true
	}
	return false
}

func checkPolicyName(name string) error {
	if name != "" && name != DefaultPolicyName {
		return fmt.Errorf("%w: the only policy name is %q", ErrInvalidArgument, DefaultPolicyName)
	}
	return nil
}

// GetKeyPolicy returns a key's policy document. policyName is "default"
// or empty.
func (r *KeyRing) GetKeyPolicy(ctx context.Context, keyID, policyName string) (string, error) {
	c := r.begin(ctx, OpGetKeyPolicy)
	var doc string
	err := checkPolicyName(policyName)
	if err == nil {
		var e *keyEntry
		if e, err = r.resolve(ctx, &c, keyID); err == nil {
			c.key(e)
			if err = c.authorize(OpGetKeyPolicy, e, nil, ""); err == nil {
				doc = e.rec.Policy
				if doc == "" {
					doc = DefaultKeyPolicy(r.cfg.Account)
				}
			}
		}
	}
	if err := c.end(err); err != nil {
		return "", err
	}
	return doc, nil
}

// ListKeyPolicies returns the names of a key's policies: always
// ["default"].
func (r *KeyRing) ListKeyPolicies(ctx context.Context, keyID string) ([]string, error) {
	c := r.begin(ctx, OpListKeyPolicies)
	e, err := r.resolve(ctx, &c, keyID)
	if err == nil {
		c.key(e)
		err = c.authorize(OpListKeyPolicies, e, nil, "")
	}
	if err := c.end(err); err != nil {
		return nil, err
	}
	return []string{DefaultPolicyName}, nil
}
