package kms

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxKeyPolicySize is the largest key policy document, in bytes, as in AWS
// KMS.
const MaxKeyPolicySize = 32 << 10

// DefaultPolicyName is the name of a key's only policy.
const DefaultPolicyName = "default"

// ErrMalformedPolicy: a key policy document is not valid. The error is a
// [*PolicyError] that says where.
var ErrMalformedPolicy = errors.New("kms: malformed policy document")

// PolicyError says where a policy document is malformed. It matches
// [ErrMalformedPolicy] with errors.Is.
type PolicyError struct {
	// Statement is the 1-based index of the statement at fault; 0 when the
	// fault is in the document itself.
	Statement int
	// Sid is the statement's Sid, if it has one.
	Sid string
	// Field is the element at fault, for example "Effect", "Action" or
	// "Condition.StringEquals.kms:EncryptionContext:app".
	Field string
	// Reason says what is wrong.
	Reason string
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("kms: malformed policy document: ")
	if e.Statement > 0 {
		fmt.Fprintf(&b, "statement %d", e.Statement)
		if e.Sid != "" {
			fmt.Fprintf(&b, " (Sid %q)", e.Sid)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Is reports whether target is ErrMalformedPolicy.
func (e *PolicyError) Is(target error) bool { return target == ErrMalformedPolicy }

// DefaultKeyPolicy returns the key policy AWS KMS gives a key created with
// none: the account that owns the key has full access to it. There are no
// IAM policies in pocketkms, so under [KeyPolicies] this lets every
// principal of the account use and manage the key.
func DefaultKeyPolicy(account string) string {
	return `{
  "Version": "2012-10-17",
  "Id": "key-default-1",
  "Statement": [
    {
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::` + account + `:root"},
      "Action": "kms:*",
      "Resource": "*"
    }
  ]
}`
}

// ValidateKeyPolicy checks a key policy document as PutKeyPolicy does,
// returning nil or a *PolicyError.
func ValidateKeyPolicy(doc string) error {
	_, err := parsePolicy(doc)
	return err
}

// Limits of a policy document beyond its size.
const (
	maxPolicyDepth = 8 // nesting of JSON arrays and objects
)

// keyPolicy is a parsed key policy.
type keyPolicy struct {
	stmts []*statement
}

// statement is one parsed statement.
type statement struct {
	sid  string
	deny bool
	// principal or notPrincipal (one is set)
	principal    *principalSet
	notPrincipal *principalSet
	actions      []string // lower-case patterns
	notAction    bool
	resources    []string
	notResource  bool
	conds        []condition
}

// principalSet is the Principal (or NotPrincipal) element.
type principalSet struct {
	any      bool
	accounts []string
	arns     []string
}

func (s *principalSet) match(p *Principal, account string) bool {
	if s.any {
		return true
	}
	if p.ARN != "" && slices.Contains(s.arns, p.ARN) {
		return true
	}
	return account != "" && slices.Contains(s.accounts, account)
}

// principalAccount returns the caller's account: Principal.Account, or the
// account field of its ARN.
func principalAccount(p *Principal) string {
	if p.Account != "" {
		return p.Account
	}
	return arnAccount(p.ARN)
}

// arnAccount returns the account field of an ARN, "" if it has none.
func arnAccount(arn string) string {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return ""
	}
	parts := strings.SplitN(rest, ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// appliesTo reports whether the statement's Principal element matches.
func (s *statement) appliesTo(p *Principal, account string) bool {
	if s.principal != nil {
		return s.principal.match(p, account)
	}
	return !s.notPrincipal.match(p, account)
}

func (s *statement) matchesAction(action string) bool {
	m := slices.ContainsFunc(s.actions, func(pat string) bool { return globMatch(pat, action) })
	return m != s.notAction
}

func (s *statement) matchesResource(arn string) bool {
	m := slices.ContainsFunc(s.resources, func(pat string) bool { return globMatch(pat, arn) })
	return m != s.notResource
}

// actionName is the policy action of an operation: "kms:" and its name in
// lower case (actions match without regard to case).
func actionName(op Op) string { return "kms:" + strings.ToLower(string(op)) }

// ------------------------------------------------------------- parsing

// parsePolicy parses and validates a key policy document.
func parsePolicy(doc string) (*keyPolicy, error) {
	docErr := func(field, reason string) error { return &PolicyError{Field: field, Reason: reason} }
	if len(doc) > MaxKeyPolicySize {
		return nil, docErr("", fmt.Sprintf("the document is %d bytes; the limit is %d", len(doc), MaxKeyPolicySize))
	}
	if !utf8.ValidString(doc) {
		return nil, docErr("", "the document is not valid UTF-8")
	}
	for i, r := range doc {
		if !policyRune(r) {
			return nil, docErr("", fmt.Sprintf("character %U at byte %d is not allowed: a key policy holds printable ASCII and Latin-1 characters, tab, line feed and carriage return", r, i))
		}
	}
	if err := checkJSON(doc); err != nil {
		return nil, docErr("", err.Error())
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &top); err != nil {
		return nil, docErr("", "the document is not a JSON object")
	}
	for _, name := range sortedKeys(top) {
		switch name {
		case "Version", "Id", "Statement":
		default:
			return nil, docErr(name, "unknown element")
		}
	}
	for _, name := range []string{"Version", "Id", "Statement"} {
		if raw, ok := top[name]; ok && string(bytes.TrimSpace(raw)) == "null" {
			return nil, docErr(name, "must not be null")
		}
	}
	if raw, ok := top["Version"]; ok {
		var v string
		if json.Unmarshal(raw, &v) != nil || (v != "2012-10-17" && v != "2008-10-17") {
			return nil, docErr("Version", `must be "2012-10-17" or "2008-10-17"`)
		}
	}
	if raw, ok := top["Id"]; ok {
		var id string
		if json.Unmarshal(raw, &id) != nil {
			return nil, docErr("Id", "must be a string")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, docErr("Statement", "missing")
	}
	var stmts []json.RawMessage
	if isJSONArray(raw) {
		if json.Unmarshal(raw, &stmts) != nil {
			return nil, docErr("Statement", "must be an object or an array of objects")
		}
	} else {
		stmts = []json.RawMessage{raw}
	}
	if len(stmts) == 0 {
		return nil, docErr("Statement", "no statements")
	}
	p := &keyPolicy{}
	for i, raw := range stmts {
		s, err := parseStatement(raw)
		if err != nil {
			err.Statement = i + 1
			return nil, err
		}
		p.stmts = append(p.stmts, s)
	}
	return p, nil
}

func isJSONArray(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '['
}

// checkJSON checks that doc is one JSON value with no duplicate object
// keys (which parsers resolve differently) and no deeper nesting than a
// policy needs.
func checkJSON(doc string) error {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var stack []*jsonFrame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errors.New("the document is not valid JSON")
		}
		var top *jsonFrame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if str, ok := tok.(string); ok {
			// Escapes (\u...) must not bring in what the raw text may not hold.
			for _, r := range str {
				if !policyRune(r) {
					return fmt.Errorf("character %U (written as an escape) is not allowed: a key policy holds printable ASCII and Latin-1 characters, tab, line feed and carriage return", r)
				}
			}
		}
		if top != nil && top.keys != nil && top.wantKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return fmt.Errorf("the key %s appears twice in one object", quoteShort(k))
				}
				top.keys[k] = true
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &jsonFrame{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &jsonFrame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 {
				stack[n-1].valueDone()
			}
		default:
			if top != nil {
				top.valueDone()
			}
		}
		if len(stack) > maxPolicyDepth {
			return errors.New("the document nests too deeply")
		}
	}
}

// jsonFrame is an open JSON object (keys set) or array in checkJSON.
type jsonFrame struct {
	keys    map[string]bool
	wantKey bool // in an object: the next token is a key
}

func (f *jsonFrame) valueDone() {
	if f.keys != nil {
		f.wantKey = true
	}
}

// quoteShort quotes s for an error message, cut to 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

func parseStatement(raw json.RawMessage) (*statement, *PolicyError) {
	var m map[string]json.RawMessage
	if isJSONArray(raw) || json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, &PolicyError{Reason: "a statement must be a JSON object"}
	}
	s := &statement{}
	fail := func(field, reason string) *PolicyError {
		return &PolicyError{Sid: s.sid, Field: field, Reason: reason}
	}
	if raw, ok := m["Sid"]; ok {
		if json.Unmarshal(raw, &s.sid) != nil {
			return nil, fail("Sid", "must be a string")
		}
	}
	for _, name := range sortedKeys(m) {
		switch name {
		case "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition":
		default:
			return nil, fail(name, "unknown element")
		}
		if string(bytes.TrimSpace(m[name])) == "null" {
			return nil, fail(name, "must not be null")
		}
	}
	var effect string
	if raw, ok := m["Effect"]; !ok {
		return nil, fail("Effect", "missing")
	} else if json.Unmarshal(raw, &effect) != nil || (effect != "Allow" && effect != "Deny") {
		return nil, fail("Effect", `must be "Allow" or "Deny"`)
	}
	s.deny = effect == "Deny"

	field, raw, err := oneOf(m, "Principal", "NotPrincipal")
	if err != "" {
		return nil, fail(field, err)
	}
	if field == "NotPrincipal" && !s.deny {
		return nil, fail(field, "NotPrincipal is for Deny statements only (an Allow with it would let in everyone else, anonymous callers included)")
	}
	ps, perr := parsePrincipal(raw, field == "NotPrincipal")
	if perr != "" {
		return nil, fail(field, perr)
	}
	if field == "Principal" {
		s.principal = ps
	} else {
		s.notPrincipal = ps
	}

	field, raw, err = oneOf(m, "Action", "NotAction")
	if err != "" {
		return nil, fail(field, err)
	}
	s.notAction = field == "NotAction"
	acts, serr := stringList(raw)
	if serr != "" {
		return nil, fail(field, serr)
	}
	for _, a := range acts {
		if !validAction(a) {
			return nil, fail(field, fmt.Sprintf("%s is not an action (service:Name, or *)", quoteShort(a)))
		}
		s.actions = append(s.actions, strings.ToLower(a))
	}

	field, raw, err = oneOf(m, "Resource", "NotResource")
	if err != "" {
		return nil, fail(field, err)
	}
	s.notResource = field == "NotResource"
	if s.resources, serr = stringList(raw); serr != "" {
		return nil, fail(field, serr)
	}
	for _, r := range s.resources {
		if r != "*" && !strings.HasPrefix(r, "arn:") {
			return nil, fail(field, fmt.Sprintf("%s is not * or an ARN", quoteShort(r)))
		}
	}

	if raw, ok := m["Condition"]; ok {
		conds, perr := parseConditions(raw, s.deny)
		if perr != nil {
			perr.Sid = s.sid
			perr.Field = "Condition" + perr.Field
			return nil, perr
		}
		s.conds = conds
	}
	return s, nil
}

// oneOf returns the one element of a pair (Principal or NotPrincipal, ...)
// that the statement has.
func oneOf(m map[string]json.RawMessage, a, b string) (string, json.RawMessage, string) {
	ra, okA := m[a]
	rb, okB := m[b]
	switch {
	case okA && okB:
		return a, nil, "a statement has " + a + " or " + b + ", not both"
	case okA:
		return a, ra, ""
	case okB:
		return b, rb, ""
	}
	return a, nil, "missing (a key policy statement needs " + a + " or " + b + ")"
}

// stringList decodes a string or a non-empty array of non-empty strings.
func stringList(raw json.RawMessage) ([]string, string) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, "must not be empty"
		}
		return []string{one}, ""
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, "must be a string or an array of strings"
	}
	if len(list) == 0 {
		return nil, "must not be an empty array"
	}
	if slices.Contains(list, "") {
		return nil, "must not contain an empty string"
	}
	return list, ""
}

func validAction(a string) bool {
	if a == "*" {
		return true
	}
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" {
		return false
	}
	for _, c := range svc + name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*' || c == '?' || c == '-') {
			return false
		}
	}
	return true
}

// parsePrincipal parses a Principal element, or with not a NotPrincipal
// element. In a Principal, an account's root ARN (or ID) stands for every
// principal of the account; in a NotPrincipal it stands for the account
// entity alone, as in AWS (the documented pattern "every principal but
// bob": NotPrincipal [bob, the account root]), so it exempts no one else.
func parsePrincipal(raw json.RawMessage, not bool) (*principalSet, string) {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, `must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}`
		}
		return &principalSet{any: true}, ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil, `must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}`
	}
	ps := &principalSet{}
	for _, kind := range sortedKeys(m) {
		v := m[kind]
		list, err := stringList(v)
		if err != "" {
			return nil, kind + " " + err
		}
		switch kind {
		case "AWS":
			for _, id := range list {
				switch {
				case id == "*":
					ps.any = true
				case strings.ContainsAny(id, "*?"):
					return nil, fmt.Sprintf("%s: a principal ARN takes no wildcards (use \"*\" with a condition on aws:PrincipalArn)", quoteShort(id))
				case strings.HasPrefix(id, "arn:"):
					acct := arnAccount(id)
					switch {
					case acct == "":
						return nil, fmt.Sprintf("%s is not an ARN with an account", quoteShort(id))
					case id == "arn:aws:iam::"+acct+":root" && !not:
						ps.accounts = append(ps.accounts, acct)
					default:
						ps.arns = append(ps.arns, id)
					}
				case validAccountID(id):
					if not {
						ps.arns = append(ps.arns, "arn:aws:iam::"+id+":root")
					} else {
						ps.accounts = append(ps.accounts, id)
					}
				default:
					return nil, fmt.Sprintf("%s is neither *, an account ID nor an ARN", quoteShort(id))
				}
			}
		case "Service", "Federated", "CanonicalUser":
			// Valid, but no pocketkms principal is one of these: they
			// never match.
		default:
			return nil, fmt.Sprintf("unknown principal type %s", quoteShort(kind))
		}
	}
	return ps, ""
}

func validAccountID(s string) bool { return s != "" && validARNPart(s) && !strings.Contains(s, "*") }

// ---------------------------------------------------------- conditions

// condOp is a condition operator's base comparison.
type condOp uint8

const (
	opStringEquals condOp = iota
	opStringEqualsIgnoreCase
	opStringLike
	opNumericEquals
	opNumericLessThan
	opNumericLessThanEquals
	opNumericGreaterThan
	opNumericGreaterThanEquals
	opDateEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opBool
	opNull
	opArnLike // ArnEquals and ArnLike, which IAM evaluates alike
	opIPAddress
	opBinaryEquals
)

// condOps maps operator names to their base comparison and whether it is
// negated.
func lookupCondOp(name string) (condOp, bool, bool) {
	switch name {
	case "StringEquals":
		return opStringEquals, false, true
	case "StringNotEquals":
		return opStringEquals, true, true
	case "StringEqualsIgnoreCase":
		return opStringEqualsIgnoreCase, false, true
	case "StringNotEqualsIgnoreCase":
		return opStringEqualsIgnoreCase, true, true
	case "StringLike":
		return opStringLike, false, true
	case "StringNotLike":
		return opStringLike, true, true
	case "NumericEquals":
		return opNumericEquals, false, true
	case "NumericNotEquals":
		return opNumericEquals, true, true
	case "NumericLessThan":
		return opNumericLessThan, false, true
	case "NumericLessThanEquals":
		return opNumericLessThanEquals, false, true
	case "NumericGreaterThan":
		return opNumericGreaterThan, false, true
	case "NumericGreaterThanEquals":
		return opNumericGreaterThanEquals, false, true
	case "DateEquals":
		return opDateEquals, false, true
	case "DateNotEquals":
		return opDateEquals, true, true
	case "DateLessThan":
		return opDateLessThan, false, true
	case "DateLessThanEquals":
		return opDateLessThanEquals, false, true
	case "DateGreaterThan":
		return opDateGreaterThan, false, true
	case "DateGreaterThanEquals":
		return opDateGreaterThanEquals, false, true
	case "Bool":
		return opBool, false, true
	case "Null":
		return opNull, false, true
	case "ArnEquals", "ArnLike":
		return opArnLike, false, true
	case "ArnNotEquals", "ArnNotLike":
		return opArnLike, true, true
	case "IpAddress":
		return opIPAddress, false, true
	case "NotIpAddress":
		return opIPAddress, true, true
	case "BinaryEquals":
		return opBinaryEquals, false, true
	}
	return 0, false, false
}

// setOp is a condition's set operator.
type setOp uint8

const (
	setNone setOp = iota
	setForAllValues
	setForAnyValue
)

// condition is one operator-key pair of a Condition element.
type condition struct {
	op       condOp
	neg      bool
	set      setOp
	ifExists bool
	key      condKey
	strs     []string // string, bool and null values (lower case for IgnoreCase and Bool)
	nums     []float64
	times    []time.Time
	prefixes []netip.Prefix
}

// parseConditions parses a Condition element of an Allow (deny false) or
// Deny statement.
func parseConditions(raw json.RawMessage, deny bool) ([]condition, *PolicyError) {
	var ops map[string]map[string]json.RawMessage
	if json.Unmarshal(raw, &ops) != nil {
		return nil, &PolicyError{Reason: `must be an object of operators, each an object of condition keys, as in {"StringEquals": {"kms:EncryptionContext:app": "billing"}}`}
	}
	var conds []condition
	for _, opName := range sortedKeys(ops) {
		keys := ops[opName]
		field := "." + opName
		name := opName
		set := setNone
		if rest, ok := strings.CutPrefix(name, "ForAllValues:"); ok {
			name, set = rest, setForAllValues
		} else if rest, ok := strings.CutPrefix(name, "ForAnyValue:"); ok {
			name, set = rest, setForAnyValue
		}
		ifExists := false
		if rest, ok := strings.CutSuffix(name, "IfExists"); ok && rest != "Null" {
			name, ifExists = rest, true
		}
		op, neg, ok := lookupCondOp(name)
		if !ok {
			return nil, &PolicyError{Field: field, Reason: "unknown condition operator"}
		}
		if op == opNull && set != setNone {
			return nil, &PolicyError{Field: field, Reason: "Null takes no set operator"}
		}
		if len(keys) == 0 {
			return nil, &PolicyError{Field: field, Reason: "no condition keys"}
		}
		for _, keyName := range sortedKeys(keys) {
			f := field + "." + keyName
			key, kerr := parseCondKey(keyName)
			if kerr != "" {
				return nil, &PolicyError{Field: f, Reason: kerr}
			}
			vals, verr := conditionValues(keys[keyName])
			if verr != "" {
				return nil, &PolicyError{Field: f, Reason: verr}
			}
			c := condition{op: op, neg: neg, set: set, ifExists: ifExists, key: key}
			if err := c.setValues(vals); err != "" {
				return nil, &PolicyError{Field: f, Reason: err}
			}
			if key.kind == keyEncryptionContext && set == setForAllValues {
				return nil, &PolicyError{Field: f, Reason: "ForAllValues on kms:EncryptionContext:<key> is overly permissive (it holds when the key is absent); use StringEquals, or ForAllValues on kms:EncryptionContextKeys"}
			}
			if key.kind == keyUnknown && c.holdsWhenAbsent() != deny {
				// pocketkms never provides the key, so the condition is
				// decided by its absence: refuse it where that would make
				// the statement weaker (a Deny that never applies, an Allow
				// that ignores the condition).
				what := "an Allow that ignores this condition"
				if deny {
					what = "a Deny that never applies"
				}
				return nil, &PolicyError{Field: f, Reason: fmt.Sprintf("pocketkms never provides the condition key %s, which would make this %s", quoteShort(keyName), what)}
			}
			conds = append(conds, c)
		}
	}
	return conds, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// holdsWhenAbsent reports how the condition evaluates for a request that
// lacks its key.
func (c *condition) holdsWhenAbsent() bool {
	switch {
	case c.op == opNull:
		return slices.Contains(c.strs, "true")
	case c.ifExists, c.set == setForAllValues:
		return true
	case c.set == setForAnyValue:
		return false
	}
	return c.neg
}

// conditionValues decodes a condition's value: a string, number or boolean,
// or a non-empty array of them, each as its text.
func conditionValues(raw json.RawMessage) ([]string, string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, "not valid JSON"
	}
	scalar := func(v any) (string, bool) {
		switch v := v.(type) {
		case string:
			return v, true
		case json.Number:
			return v.String(), true
		case bool:
			return strconv.FormatBool(v), true
		}
		return "", false
	}
	if list, ok := v.([]any); ok {
		if len(list) == 0 {
			return nil, "must not be an empty array"
		}
		out := make([]string, 0, len(list))
		for _, e := range list {
			s, ok := scalar(e)
			if !ok {
				return nil, "values must be strings, numbers or booleans"
			}
			out = append(out, s)
		}
		return out, ""
	}
	s, ok := scalar(v)
	if !ok {
		return nil, "must be a string, number or boolean, or an array of them"
	}
	return []string{s}, ""
}

// setValues checks and keeps a condition's values in the form its
// operator compares.
func (c *condition) setValues(vals []string) string {
	switch c.op {
	case opNumericEquals, opNumericLessThan, opNumericLessThanEquals, opNumericGreaterThan, opNumericGreaterThanEquals:
		for _, v := range vals {
			n, ok := parseNumber(v)
			if !ok {
				return fmt.Sprintf("%s is not a number", quoteShort(v))
			}
			c.nums = append(c.nums, n)
		}
	case opDateEquals, opDateLessThan, opDateLessThanEquals, opDateGreaterThan, opDateGreaterThanEquals:
		for _, v := range vals {
			t, ok := parseDate(v)
			if !ok {
				return fmt.Sprintf("%s is not a date (ISO 8601, as 2026-11-29T12:00:00Z, or seconds since 1970)", quoteShort(v))
			}
			c.times = append(c.times, t)
		}
	case opBool, opNull:
		for _, v := range vals {
			l := strings.ToLower(v)
			if l != "true" && l != "false" {
				return fmt.Sprintf("%s is not true or false", quoteShort(v))
			}
			c.strs = append(c.strs, l)
		}
	case opStringEqualsIgnoreCase:
		for _, v := range vals {
			c.strs = append(c.strs, strings.ToLower(v))
		}
	case opIPAddress:
		for _, v := range vals {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return fmt.Sprintf("%s is not an IP address or CIDR range", quoteShort(v))
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.prefixes = append(c.prefixes, p.Masked())
		}
	case opBinaryEquals:
		for _, v := range vals {
			if _, err := base64.StdEncoding.DecodeString(v); err != nil {
				return fmt.Sprintf("%s is not base64", quoteShort(v))
			}
			c.strs = append(c.strs, v)
		}
	case opArnLike:
		for _, v := range vals {
			if v != "*" && !strings.HasPrefix(v, "arn:") {
				return fmt.Sprintf("%s is not an ARN (or *)", quoteShort(v))
			}
			c.strs = append(c.strs, v)
		}
	default:
		c.strs = vals
	}
	return ""
}

func parseNumber(s string) (float64, bool) {
	n, err := strconv.ParseFloat(s, 64)
	return n, err == nil && !math.IsNaN(n) && !math.IsInf(n, 0)
}

// parseDate reads the date forms IAM accepts: ISO 8601 date-times (with or
// without seconds and zone), dates, and seconds since the epoch.
func parseDate(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// condKind is a condition key the KeyRing provides.
type condKind uint8

const (
	keyUnknown           condKind = iota // provided by no request: always absent
	keyEncryptionContext                 // kms:EncryptionContext:<name>
	keyEncryptionContextKeys
	keyEncryptionAlgorithm
	keySigningAlgorithm
	keyMacAlgorithm
	keyKeyAgreementAlgorithm
	keyKeySpec
	keyKeyUsage
	keyKeyOrigin
	keyRequestAlias
	keyGrantOperations
	keyGranteePrincipal
	keyRetiringPrincipal
	keyGrantConstraintType
	keyCallerAccount
	keyPrincipalArn
	keyPrincipalAccount
	keyPrincipalTag // aws:PrincipalTag/<name>
	keyCurrentTime
	keyEpochTime
	keyWrappingAlgorithm
	keyMessageType
	keyDataKeyPairSpec
	keyBypassLockout
	keyResourceTag // aws:ResourceTag/<name>
)

// condKey is a parsed condition key.
type condKey struct {
	kind condKind
	name string // the context key or tag name, for the two kinds that take one
}

func parseCondKey(s string) (condKey, string) {
	if !strings.Contains(s, ":") || len(s) > 256 {
		return condKey{}, "a condition key is service:name, as kms:EncryptionContext:app"
	}
	for _, p := range []struct {
		prefix string
		kind   condKind
	}{{"kms:EncryptionContext:", keyEncryptionContext}, {"aws:ResourceTag/", keyResourceTag}, {"aws:PrincipalTag/", keyPrincipalTag}} {
		// The prefix matches without case, byte for byte (ASCII only).
		if len(s) >= len(p.prefix) && asciiEqualFold(s[:len(p.prefix)], p.prefix) {
			if len(s) == len(p.prefix) {
				return condKey{}, p.prefix + " needs a name after it"
			}
			return condKey{kind: p.kind, name: s[len(p.prefix):]}, ""
		}
	}
	l := strings.ToLower(s)
	var kind condKind
	switch l {
	case "kms:encryptioncontextkeys":
		kind = keyEncryptionContextKeys
	case "kms:encryptionalgorithm":
		kind = keyEncryptionAlgorithm
	case "kms:signingalgorithm":
		kind = keySigningAlgorithm
	case "kms:macalgorithm":
		kind = keyMacAlgorithm
	case "kms:keyagreementalgorithm":
		kind = keyKeyAgreementAlgorithm
	case "kms:keyspec", "kms:customermasterkeyspec":
		kind = keyKeySpec
	case "kms:keyusage", "kms:customermasterkeyusage":
		kind = keyKeyUsage
	case "kms:keyorigin":
		kind = keyKeyOrigin
	case "kms:requestalias":
		kind = keyRequestAlias
	case "kms:grantoperations":
		kind = keyGrantOperations
	case "kms:granteeprincipal":
		kind = keyGranteePrincipal
	case "kms:retiringprincipal":
		kind = keyRetiringPrincipal
	case "kms:grantconstrainttype":
		kind = keyGrantConstraintType
	case "kms:calleraccount":
		kind = keyCallerAccount
	case "aws:principalarn":
		kind = keyPrincipalArn
	case "aws:principalaccount":
		kind = keyPrincipalAccount
	case "aws:currenttime":
		kind = keyCurrentTime
	case "aws:epochtime":
		kind = keyEpochTime
	case "kms:wrappingalgorithm":
		kind = keyWrappingAlgorithm
	case "kms:messagetype":
		kind = keyMessageType
	case "kms:datakeypairspec":
		kind = keyDataKeyPairSpec
	case "kms:bypasspolicylockoutsafetycheck":
		kind = keyBypassLockout
	}
	return condKey{kind: kind}, ""
}

// ------------------------------------------------------------ matching

// globMatch matches s against a pattern in which * stands for any run of
// characters and ? for any one character.
func globMatch(pattern, s string) bool {
	if pattern == "*" {
		return true
	}
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == '?':
			_, n := utf8.DecodeRuneInString(s[i:])
			p, i = p+1, i+n
		case p < len(pattern) && pattern[p] == s[i]:
			p, i = p+1, i+1
		case star >= 0:
			_, n := utf8.DecodeRuneInString(s[mark:])
			mark += n
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// evalCtx is what conditions are evaluated against: one request.
type evalCtx struct {
	req     *Request
	account string // the caller's account
}

// now returns the request's time: Request.Time, or for a request the
// KeyRing made for KeyPolicies without one, its clock read on first need.
func (x *evalCtx) now() time.Time {
	if x.req.Time.IsZero() && x.req.clock != nil {
		x.req.Time = x.req.clock.Now().UTC()
	}
	return x.req.Time
}

// lookup returns the request's values of a condition key, the first in
// one and the rest in more, and whether the key is present. (Returning the
// first on its own keeps the request on the caller's stack.)
func (x *evalCtx) lookup(k condKey) (one string, more []string, ok bool) {
	r := x.req
	switch k.kind {
	case keyEncryptionContext:
		switch n := len(r.EncryptionContext); {
		case n == 0:
			return "", nil, false
		case n == 1:
			if v, hit := r.EncryptionContext[k.name]; hit {
				return v, nil, true // the common case, without iterating the map
			}
		}
		for ck, cv := range r.EncryptionContext {
			if strings.EqualFold(ck, k.name) {
				if ok {
					more = append(more, cv)
				} else {
					one, ok = cv, true
				}
			}
		}
		return one, more, ok
	case keyEncryptionContextKeys:
		if len(r.EncryptionContext) == 0 {
			return "", nil, false
		}
		keys := sortedKeys(r.EncryptionContext)
		return keys[0], keys[1:], true
	case keyEncryptionAlgorithm, keySigningAlgorithm, keyMacAlgorithm, keyKeyAgreementAlgorithm, keyWrappingAlgorithm:
		if algorithmKind(r.Op) != k.kind {
			return "", nil, false
		}
		return r.Algorithm, nil, r.Algorithm != ""
	case keyKeySpec:
		return string(r.KeySpec), nil, r.KeySpec != ""
	case keyKeyUsage:
		return string(r.KeyUsage), nil, r.KeyUsage != ""
	case keyKeyOrigin:
		return string(r.KeyOrigin), nil, r.KeyOrigin != ""
	case keyRequestAlias:
		return r.RequestAlias, nil, r.RequestAlias != ""
	case keyMessageType:
		if r.Op != OpSign && r.Op != OpVerify {
			return "", nil, false
		}
		if r.MessageType == "" {
			return string(MessageRaw), nil, true
		}
		return string(r.MessageType), nil, true
	case keyDataKeyPairSpec:
		return string(r.DataKeyPairSpec), nil, r.DataKeyPairSpec != ""
	case keyBypassLockout:
		if r.Op != OpCreateKey && r.Op != OpPutKeyPolicy {
			return "", nil, false
		}
		return strconv.FormatBool(r.BypassPolicyLockoutSafetyCheck), nil, true
	case keyResourceTag:
		if r.entry == nil {
			return "", nil, false
		}
		for _, t := range r.entry.rec.Tags {
			if strings.EqualFold(t.TagKey, k.name) {
				return t.TagValue, nil, true
			}
		}
		return "", nil, false
	case keyCallerAccount, keyPrincipalAccount:
		return x.account, nil, x.account != ""
	case keyPrincipalArn:
		return r.Principal.ARN, nil, r.Principal.ARN != ""
	case keyPrincipalTag:
		if len(r.Principal.Tags) == 0 {
			return "", nil, false
		}
		for tk, tv := range r.Principal.Tags {
			if strings.EqualFold(tk, k.name) {
				return tv, nil, true
			}
		}
		return "", nil, false
	case keyCurrentTime:
		if t := x.now(); !t.IsZero() {
			return t.UTC().Format(time.RFC3339Nano), nil, true
		}
		return "", nil, false
	case keyEpochTime:
		if t := x.now(); !t.IsZero() {
			return strconv.FormatInt(t.Unix(), 10), nil, true
		}
		return "", nil, false
	}
	if r.Grant == nil || r.Op != OpCreateGrant {
		return "", nil, false // the grant keys below are CreateGrant's
	}
	switch k.kind {
	case keyGrantOperations:
		var ops []string
		for _, op := range r.Grant.Operations {
			ops = append(ops, string(op))
		}
		if len(ops) == 0 {
			return "", nil, false
		}
		return ops[0], ops[1:], true
	case keyGranteePrincipal:
		return r.Grant.GranteePrincipal, nil, r.Grant.GranteePrincipal != ""
	case keyRetiringPrincipal:
		return r.Grant.RetiringPrincipal, nil, r.Grant.RetiringPrincipal != ""
	case keyGrantConstraintType:
		gc := r.Grant.Constraints
		switch {
		case gc == nil:
		case gc.EncryptionContextEquals != nil:
			return "EncryptionContextEquals", nil, true
		case gc.EncryptionContextSubset != nil:
			return "EncryptionContextSubset", nil, true
		}
	}
	return "", nil, false
}

// algorithmKind says which algorithm condition key an operation's
// Algorithm answers.
func algorithmKind(op Op) condKind {
	switch op {
	case OpSign, OpVerify:
		return keySigningAlgorithm
	case OpGenerateMac, OpVerifyMac:
		return keyMacAlgorithm
	case OpDeriveSharedSecret:
		return keyKeyAgreementAlgorithm
	case OpGetParametersForImport:
		return keyWrappingAlgorithm
	}
	return keyEncryptionAlgorithm
}

// holds evaluates the condition against the request.
func (c *condition) holds(x *evalCtx) bool {
	var one string
	var more []string
	var present bool
	if c.key.kind == keyCurrentTime && c.times != nil {
		present = !x.now().IsZero() // test compares the time itself
	} else {
		one, more, present = x.lookup(c.key)
	}
	if c.op == opNull {
		// "true": the key must be absent; "false": present.
		for _, want := range c.strs {
			if (want == "true") == !present {
				return true
			}
		}
		return false
	}
	if !present {
		switch {
		case c.ifExists:
			return true
		case c.set == setForAllValues:
			return true // vacuously: every one of no values matches
		case c.set == setForAnyValue:
			return false
		}
		return c.neg // a negated operator holds for an absent key
	}
	switch c.set {
	case setForAllValues:
		if c.test(x, one) == c.neg {
			return false
		}
		for _, v := range more {
			if c.test(x, v) == c.neg {
				return false
			}
		}
		return true
	case setForAnyValue:
		if c.test(x, one) != c.neg {
			return true
		}
		for _, v := range more {
			if c.test(x, v) != c.neg {
				return true
			}
		}
		return false
	}
	if c.key.kind == keyEncryptionContext {
		// Several context keys that differ only in case: the request is
		// ambiguous, so read it the strict way. A positive operator holds
		// only if every value matches; a negated one if any value fails.
		all := c.test(x, one)
		for _, v := range more {
			all = all && c.test(x, v)
		}
		return all != c.neg
	}
	// A single-valued operator on several values: a positive operator holds
	// if any value matches, a negated one if none does.
	any := c.test(x, one)
	for _, v := range more {
		any = any || c.test(x, v)
	}
	return any != c.neg
}

// test reports whether one request value matches under the base operator.
func (c *condition) test(x *evalCtx, v string) bool {
	if c.key.kind == keyCurrentTime && c.times != nil {
		// Compare the clock's time itself, not its text.
		return c.matchesTime(x.now())
	}
	return c.matches(v)
}

// matches reports whether one request value matches any policy value under
// the base (non-negated) operator.
func (c *condition) matches(v string) bool {
	switch c.op {
	case opStringEquals:
		return slices.Contains(c.strs, v)
	case opStringEqualsIgnoreCase, opBool:
		l := strings.ToLower(v)
		return slices.Contains(c.strs, l)
	case opStringLike, opArnLike:
		return slices.ContainsFunc(c.strs, func(p string) bool { return globMatch(p, v) })
	case opBinaryEquals:
		return slices.Contains(c.strs, v)
	case opIPAddress:
		a, err := netip.ParseAddr(strings.Clone(v)) // a copy: an address may keep its zone, and v must not escape
		return err == nil && slices.ContainsFunc(c.prefixes, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) || p.Contains(a) })
	case opNumericEquals, opNumericLessThan, opNumericLessThanEquals, opNumericGreaterThan, opNumericGreaterThanEquals:
		n, ok := parseNumber(v)
		if !ok {
			return false
		}
		return slices.ContainsFunc(c.nums, func(p float64) bool {
			switch c.op {
			case opNumericEquals:
				return n == p
			case opNumericLessThan:
				return n < p
			case opNumericLessThanEquals:
				return n <= p
			case opNumericGreaterThan:
				return n > p
			}
			return n >= p
		})
	case opDateEquals, opDateLessThan, opDateLessThanEquals, opDateGreaterThan, opDateGreaterThanEquals:
		t, ok := parseDate(v)
		return ok && c.matchesTime(t)
	}
	return false
}

// matchesTime reports whether t matches any policy date under the base
// date operator.
func (c *condition) matchesTime(t time.Time) bool {
	return slices.ContainsFunc(c.times, func(p time.Time) bool {
		switch c.op {
		case opDateEquals:
			return t.Equal(p)
		case opDateLessThan:
			return t.Before(p)
		case opDateLessThanEquals:
			return !t.After(p)
		case opDateGreaterThan:
			return t.After(p)
		}
		return !t.Before(p)
	})
}

// conditionsHold reports whether every condition of the statement holds.
func (s *statement) conditionsHold(x *evalCtx) bool {
	for i := range s.conds {
		if !s.conds[i].holds(x) {
			return false
		}
	}
	return true
}

// asciiEqualFold is strings.EqualFold for ASCII only: no Unicode folding
// (the Kelvin sign is not a k).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// policyRune reports whether a key policy may hold r: printable ASCII and
// Latin-1, tab, line feed and carriage return, as in AWS KMS.
func policyRune(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r >= 0xa0 && r <= 0xff
}
