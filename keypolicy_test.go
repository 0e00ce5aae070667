package kms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// This file tests key policies: the document grammar (ValidateKeyPolicy,
// and PutKeyPolicy and CreateKey, which validate the same way), the
// KeyPolicies engine against the key-policy examples of the AWS KMS
// Developer Guide, the policy lockout safety check, the policy operations,
// and a fuzz target for the parser.
//
// Where pocketkms departs from AWS KMS on purpose (conditions on keys it
// never provides), the tests say so.

// ------------------------------------------------------------ principals

const kpForeignAccount = "444455556666"

var (
	kpAdmin    = kms.Principal{ARN: "arn:aws:iam::111122223333:role/KMSAdminRole", Account: kms.DefaultAccount}
	kpRole     = kms.Principal{ARN: "arn:aws:iam::111122223333:role/ExampleRole", Account: kms.DefaultAccount}
	kpOther    = kms.Principal{ARN: "arn:aws:iam::111122223333:role/OtherRole", Account: kms.DefaultAccount}
	kpRoot     = kms.Principal{ARN: "arn:aws:iam::111122223333:root", Account: kms.DefaultAccount}
	kpAcctOnly = kms.Principal{Account: kms.DefaultAccount} // a principal known by its account alone
	// kpForeign has the role name of kpRole in another account.
	kpForeign  = kms.Principal{ARN: "arn:aws:iam::444455556666:role/ExampleRole", Account: kpForeignAccount}
	kpForeign2 = kms.Principal{ARN: "arn:aws:iam::555566667777:role/ExampleRole", Account: "555566667777"}
	// kpNobody stands for a call whose context carries no principal.
	kpNobody = kms.Principal{}
)

// kpTagged returns p with principal tags.
func kpTagged(p kms.Principal, kv ...string) kms.Principal {
	p.Tags = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Tags[kv[i]] = kv[i+1]
	}
	return p
}

// kpCtx returns a context carrying p, or no principal for kpNobody.
func kpCtx(p kms.Principal) context.Context {
	if p.ARN == "" && p.Account == "" && p.Tags == nil {
		return context.Background()
	}
	return kms.WithPrincipal(context.Background(), p)
}

func kpName(p kms.Principal) string {
	switch {
	case p.ARN != "":
		s := p.ARN[strings.LastIndexAny(p.ARN, ":/")+1:]
		if p.Account != kms.DefaultAccount {
			s = p.Account + ":" + s
		}
		for k, v := range p.Tags {
			s += "+" + k + "=" + v
		}
		return s
	case p.Account != "":
		return "account-" + p.Account
	}
	return "no-principal"
}

// ------------------------------------------------------------ documents

// kpAdminStmt gives kpAdmin full access; kpPolicy puts it first in every
// test policy, so that the fixture can manage the key and the lockout
// check passes.
const kpAdminStmt = `{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"},"Action":"kms:*","Resource":"*"}`

// kpPolicy returns a policy document of the admin statement and stmts.
func kpPolicy(stmts ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(append([]string{kpAdminStmt}, stmts...), ",") + `]}`
}

// kpDoc returns a policy document of stmts alone.
func kpDoc(stmts ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// kpStmt is one statement with the given principal element (raw JSON),
// actions and condition (raw JSON, "" for none), with Resource "*".
func kpStmt(effect, principal string, actions []string, cond string) string {
	a, _ := json.Marshal(actions)
	s := `{"Effect":"` + effect + `","Principal":` + principal + `,"Action":` + string(a) + `,"Resource":"*"`
	if cond != "" {
		s += `,"Condition":` + cond
	}
	return s + "}"
}

const (
	kpRoleP  = `{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"}`
	kpAdminP = `{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"}`
	kpOtherP = `{"AWS":"arn:aws:iam::111122223333:role/OtherRole"}`
)

// kpAWSExamplePolicy is the complete example key policy of the AWS KMS
// Developer Guide ("Creating a key policy", example key policy).
const kpAWSExamplePolicy = `{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-2",
  "Statement": [
    {
      "Sid": "Enable IAM policies",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
      "Action": "kms:*",
      "Resource": "*"
    },
    {
      "Sid": "Allow access for Key Administrators",
      "Effect": "Allow",
      "Principal": {"AWS": [
        "arn:aws:iam::111122223333:user/KMSAdminUser",
        "arn:aws:iam::111122223333:role/KMSAdminRole"
      ]},
      "Action": [
        "kms:Create*",
        "kms:Describe*",
        "kms:Enable*",
        "kms:List*",
        "kms:Put*",
        "kms:Update*",
        "kms:Revoke*",
        "kms:Disable*",
        "kms:Get*",
        "kms:Delete*",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:ScheduleKeyDeletion",
        "kms:CancelKeyDeletion"
      ],
      "Resource": "*"
    },
    {
      "Sid": "Allow use of the key",
      "Effect": "Allow",
      "Principal": {"AWS": [
        "arn:aws:iam::111122223333:user/ExampleUser",
        "arn:aws:iam::111122223333:role/ExampleRole",
        "arn:aws:iam::444455556666:root"
      ]},
      "Action": [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey"
      ],
      "Resource": "*"
    },
    {
      "Sid": "Allow attachment of persistent resources",
      "Effect": "Allow",
      "Principal": {"AWS": [
        "arn:aws:iam::111122223333:user/ExampleUser",
        "arn:aws:iam::111122223333:role/ExampleRole",
        "arn:aws:iam::444455556666:root"
      ]},
      "Action": [
        "kms:CreateGrant",
        "kms:ListGrants",
        "kms:RevokeGrant"
      ],
      "Resource": "*",
      "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    }
  ]
}`

// kpPad pads a valid document with spaces to n bytes.
func kpPad(doc string, n int) string {
	return doc[:len(doc)-1] + strings.Repeat(" ", n-len(doc)) + "}"
}

// kpMinimal is a small valid document.
const kpMinimal = `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}}`

// kpValidDoc is a document ValidateKeyPolicy must accept.
type kpValidDoc struct {
	name string
	doc  string
}

func kpValidDocs() []kpValidDoc {
	cond := func(c string) string {
		return `{"Version":"2012-10-17","Statement":[{"Sid":"S","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*","Condition":` + c + `}]}`
	}
	return []kpValidDoc{
		{"AWS default key policy", kms.DefaultKeyPolicy("111122223333")},
		{"AWS default key policy, other account", kms.DefaultKeyPolicy(kpForeignAccount)},
		{"AWS example key policy", kpAWSExamplePolicy},
		{"Statement as a single object", kpMinimal},
		{"Version 2008-10-17", `{"Version":"2008-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}`},
		{"no Version, with Id", `{"Id":"my-policy","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`},
		{"Principal *", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}`},
		{"Principal AWS *", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}]}`},
		{"Principal account ID", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*"}]}`},
		{"Principal list of ARNs and accounts", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/A","arn:aws:iam::111122223333:user/B","444455556666","arn:aws:iam::444455556666:root"]},"Action":"kms:Decrypt","Resource":"*"}]}`},
		{"Principal Service", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*"}]}`},
		{"Principal Service list and AWS", `{"Statement":[{"Effect":"Allow","Principal":{"Service":["logs.amazonaws.com","s3.amazonaws.com"],"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Decrypt","Resource":"*"}]}`},
		{"NotPrincipal", `{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:role/Admin","arn:aws:iam::111122223333:root"]},"Action":"kms:*","Resource":"*"}]}`},
		{"NotAction", `{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":["kms:Decrypt","kms:ReEncrypt*"],"Resource":"*"}]}`},
		{"NotResource", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:*","NotResource":"arn:aws:kms:us-east-1:111122223333:key/*"}]}`},
		{"Action * and wildcards", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":["*","kms:*","kms:Generate*","kms:?ncrypt","KMS:DESCRIBEKEY","kms:ReEncrypt*"],"Resource":"*"}]}`},
		{"Resource ARN and ARN pattern", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":["arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","arn:aws:kms:*:111122223333:key/*"]}]}`},
		{"Sid with spaces and Latin-1", `{"Statement":[{"Sid":"Allow use of the clé","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}`},
		{"several statements", kpPolicy(kpStmt("Deny", kpRoleP, []string{"kms:Decrypt"}, ""), kpStmt("Allow", kpOtherP, []string{"kms:Encrypt"}, ""))},
		{"StringEquals on encryption context", cond(`{"StringEquals":{"kms:EncryptionContext:Department":"IT","kms:EncryptionContext:Project":["Alpha","Beta"]}}`)},
		{"StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase", cond(`{"StringNotEquals":{"aws:PrincipalTag/team":"billing"},"StringEqualsIgnoreCase":{"kms:EncryptionContext:a":"X"},"StringNotEqualsIgnoreCase":{"kms:CallerAccount":"444455556666"}}`)},
		{"StringLike, StringNotLike", cond(`{"StringLike":{"kms:RequestAlias":"alias/*finance*","kms:SigningAlgorithm":"RSASSA_PSS*"},"StringNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/Bad?"}}`)},
		{"ForAllValues: and ForAnyValue:", cond(`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Department","Project"]},"ForAnyValue:StringLike":{"kms:GrantOperations":"Encrypt*"}}`)},
		{"ForAllValues:StringEqualsIfExists, ForAnyValue:StringNotLike", cond(`{"ForAllValues:StringEqualsIfExists":{"kms:EncryptionContextKeys":"a"},"ForAnyValue:StringNotLike":{"kms:EncryptionContextKeys":"b*"}}`)},
		{"...IfExists", cond(`{"StringEqualsIfExists":{"kms:EncryptionContext:a":"b"},"StringNotEqualsIfExists":{"aws:PrincipalTag/team":"x"},"NumericLessThanIfExists":{"aws:EpochTime":"1"},"DateGreaterThanIfExists":{"aws:CurrentTime":"2020-01-01"},"BoolIfExists":{"kms:BypassPolicyLockoutSafetyCheck":"false"}}`)},
		{"Null with a JSON boolean", cond(`{"Null":{"kms:EncryptionContextKeys":false,"kms:EncryptionContext:Secret":true}}`)},
		{"Null with strings", cond(`{"Null":{"kms:EncryptionContextKeys":"false","aws:PrincipalTag/x":["true"]}}`)},
		{"Bool", cond(`{"Bool":{"kms:GrantIsForAWSResource":true,"aws:SecureTransport":"True"}}`)},
		{"Numeric operators", cond(`{"NumericEquals":{"aws:EpochTime":1735689600},"NumericNotEquals":{"aws:EpochTime":"1"},"NumericLessThan":{"aws:EpochTime":"1.5e9"},"NumericLessThanEquals":{"aws:EpochTime":-3},"NumericGreaterThan":{"aws:EpochTime":0.5},"NumericGreaterThanEquals":{"aws:EpochTime":["1","2"]}}`)},
		{"Date operators", cond(`{"DateEquals":{"aws:CurrentTime":"2025-01-01T00:00:00Z"},"DateNotEquals":{"aws:CurrentTime":"2025-01-01"},"DateLessThan":{"aws:CurrentTime":"2026-11-29T12:00:00+02:00"},"DateLessThanEquals":{"aws:CurrentTime":"2026-11-29T12:00"},"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00"},"DateGreaterThanEquals":{"aws:EpochTime":1735689600}}`)},
		{"condition keys in any case", cond(`{"StringEquals":{"KMS:ENCRYPTIONCONTEXT:Dept":"IT","kms:callerAccount":"111122223333","AWS:PrincipalTag/Team":"x"}}`)},
		{"unknown condition keys", cond(`{"StringEquals":{"kms:ViaService":"ec2.us-west-2.amazonaws.com","aws:SourceVpce":"vpce-1a2b3c4d"}}`)},
		{"grant condition keys", cond(`{"StringEquals":{"kms:GranteePrincipal":"arn:aws:iam::111122223333:role/A","kms:RetiringPrincipal":"arn:aws:iam::111122223333:role/B","kms:GrantConstraintType":"EncryptionContextEquals"}}`)},
		{"deprecated key spec keys", cond(`{"StringEquals":{"kms:CustomerMasterKeySpec":"SYMMETRIC_DEFAULT","kms:CustomerMasterKeyUsage":"ENCRYPT_DECRYPT","kms:KeySpec":"RSA_2048","kms:KeyUsage":"SIGN_VERIFY","kms:KeyOrigin":"EXTERNAL"}}`)},
		{"JSON whitespace and escapes", "{\r\n\t\"Statement\" : {\"Effect\":\"Allow\",\"Principal\":\"\\u002a\",\"Action\":\"kms:\\u0045ncrypt\",\"Resource\":\"*\"}\n}\n"},
		{"exactly MaxKeyPolicySize bytes", kpPad(kpMinimal, kms.MaxKeyPolicySize)},
	}
}

// kpBadDoc is a malformed document and where its PolicyError must point.
type kpBadDoc struct {
	name      string
	doc       string
	statement int
	sid       string
	field     string
}

func kpBadDocs() []kpBadDoc {
	allow := `{"Sid":"One","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}`
	// stmt2 is a document whose second statement, with Sid "Two", is body.
	stmt2 := func(body string) string { return `{"Version":"2012-10-17","Statement":[` + allow + "," + body + `]}` }
	// cond is a document whose only statement has Sid "C" and condition c.
	cond := func(c string) string {
		return `{"Statement":[{"Sid":"C","Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":` + c + `}]}`
	}
	deep := `{"Statement":[` + allow + `],"Id":` + strings.Repeat("[", 9) + `"x"` + strings.Repeat("]", 9) + `}`
	return []kpBadDoc{
		// The document.
		{"not JSON", `{"Statement": [`, 0, "", ""},
		{"not JSON: trailing garbage", kpMinimal + ` x`, 0, "", ""},
		{"two JSON values", kpMinimal + kpMinimal, 0, "", ""},
		{"empty", ``, 0, "", ""},
		{"JSON array", `[` + kpMinimal + `]`, 0, "", ""},
		{"JSON string", `"policy"`, 0, "", ""},
		{"invalid UTF-8", `{"Statement":[{"Sid":"caf` + "\xe9" + `","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`, 0, "", ""},
		{"larger than MaxKeyPolicySize", kpPad(kpMinimal, kms.MaxKeyPolicySize+1), 0, "", ""},
		{"too deep", deep, 0, "", ""},
		{"too deep in a condition", cond(`{"StringEquals":{"kms:EncryptionContext:a":[[[[[["x"]]]]]]}}`), 0, "", ""},
		// The nesting limit is 8: 9 levels are refused for their depth, 8
		// for what they hold.
		{"nested 9 deep", cond(`{"StringEquals":{"kms:EncryptionContext:a":[[[["x"]]]]}}`), 0, "", ""},
		{"nested 8 deep", cond(`{"StringEquals":{"kms:EncryptionContext:a":[[["x"]]]}}`), 1, "C", "Condition.StringEquals.kms:EncryptionContext:a"},
		{"duplicate top-level key", `{"Version":"2012-10-17","Version":"2012-10-17","Statement":[` + allow + `]}`, 0, "", ""},
		{"duplicate key in a statement", `{"Statement":[{"Effect":"Allow","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}`, 0, "", ""},
		{"duplicate key spelled with an escape", `{"Statement":[{"Effect":"Allow","Eff\u0065ct":"Deny","Principal":"*","Action":"*","Resource":"*"}]}`, 0, "", ""},
		{"duplicate condition key", cond(`{"StringEquals":{"kms:EncryptionContext:a":"x","kms:EncryptionContext:a":"y"}}`), 0, "", ""},
		{"unknown top-level element", `{"Version":"2012-10-17","Statement":[` + allow + `],"Comment":"hi"}`, 0, "", "Comment"},
		{"top-level element in the wrong case", `{"version":"2012-10-17","Statement":[` + allow + `]}`, 0, "", "version"},
		{"bad Version", `{"Version":"2012-10-18","Statement":[` + allow + `]}`, 0, "", "Version"},
		{"Version not a string", `{"Version":20121017,"Statement":[` + allow + `]}`, 0, "", "Version"},
		{"Id not a string", `{"Id":7,"Statement":[` + allow + `]}`, 0, "", "Id"},
		{"no Statement", `{"Version":"2012-10-17"}`, 0, "", "Statement"},
		{"empty Statement", `{"Version":"2012-10-17","Statement":[]}`, 0, "", "Statement"},
		{"JSON null", `null`, 0, "", "Statement"},
		// A statement.
		{"statement not an object", `{"Statement":[` + allow + `,"Allow"]}`, 2, "", ""},
		{"statement null", `{"Statement":[null]}`, 1, "", ""},
		{"statement an array", `{"Statement":[[` + allow + `]]}`, 1, "", ""},
		{"missing Effect in statement 2", stmt2(`{"Sid":"Two","Principal":"*","Action":"*","Resource":"*"}`), 2, "Two", "Effect"},
		{"Effect in lower case", stmt2(`{"Sid":"Two","Effect":"allow","Principal":"*","Action":"*","Resource":"*"}`), 2, "Two", "Effect"},
		{"Effect null", stmt2(`{"Sid":"Two","Effect":null,"Principal":"*","Action":"*","Resource":"*"}`), 2, "Two", "Effect"},
		{"Sid not a string", stmt2(`{"Sid":2,"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}`), 2, "", "Sid"},
		{"unknown statement element", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Conditions":{}}`), 2, "Two", "Conditions"},
		{"missing Principal", stmt2(`{"Sid":"Two","Effect":"Allow","Action":"*","Resource":"*"}`), 2, "Two", "Principal"},
		{"both Principal and NotPrincipal", stmt2(`{"Sid":"Two","Effect":"Deny","Principal":"*","NotPrincipal":{"AWS":"111122223333"},"Action":"*","Resource":"*"}`), 2, "Two", "Principal"},
		{"Principal a name", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"alice","Action":"*","Resource":"*"}`), 2, "Two", "Principal"},
		{"Principal empty object", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":{},"Action":"*","Resource":"*"}`), 2, "Two", "Principal"},
		{"Principal empty AWS list", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":{"AWS":[]},"Action":"*","Resource":"*"}`), 2, "Two", "Principal"},
		{"Principal ARN without an account", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":{"AWS":"arn:aws:s3:::bucket"},"Action":"*","Resource":"*"}`), 2, "Two", "Principal"},
		{"Principal neither ARN nor account", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":{"AWS":"role/Admin"},"Action":"*","Resource":"*"}`), 2, "Two", "Principal"},
		{"Principal unknown type", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":{"Group":"admins"},"Action":"*","Resource":"*"}`), 2, "Two", "Principal"},
		{"NotPrincipal bad", stmt2(`{"Sid":"Two","Effect":"Deny","NotPrincipal":{"AWS":""},"Action":"*","Resource":"*"}`), 2, "Two", "NotPrincipal"},
		{"missing Action", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Resource":"*"}`), 2, "Two", "Action"},
		{"empty Action array", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}`), 2, "Two", "Action"},
		{"empty Action string", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":"","Resource":"*"}`), 2, "Two", "Action"},
		{"Action without a service", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":"Encrypt","Resource":"*"}`), 2, "Two", "Action"},
		{"Action with a space", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":["kms:Encrypt","kms:De crypt"],"Resource":"*"}`), 2, "Two", "Action"},
		{"Action a number", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":["kms:Encrypt",5],"Resource":"*"}`), 2, "Two", "Action"},
		{"both Action and NotAction", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":"kms:Encrypt","NotAction":"kms:Decrypt","Resource":"*"}`), 2, "Two", "Action"},
		{"empty NotAction", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","NotAction":[],"Resource":"*"}`), 2, "Two", "NotAction"},
		{"Resource not * or an ARN", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":"*","Resource":"key/1234"}`), 2, "Two", "Resource"},
		{"Resource list with a non-ARN", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":"*","Resource":["*","alias/x"]}`), 2, "Two", "Resource"},
		{"empty NotResource", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":"*","NotResource":""}`), 2, "Two", "NotResource"},
		{"both Resource and NotResource", stmt2(`{"Sid":"Two","Effect":"Allow","Principal":"*","Action":"*","Resource":"*","NotResource":"*"}`), 2, "Two", "Resource"},
		{"third statement", `{"Statement":[` + allow + "," + allow + `,{"Sid":"Three","Effect":"Deny","Principal":"*","Action":"*","Resource":"nope"}]}`, 3, "Three", "Resource"},
		// Conditions.
		{"Condition not an object", cond(`"StringEquals"`), 1, "C", "Condition"},
		{"Condition operator not an object", cond(`{"StringEquals":"kms:EncryptionContext:a"}`), 1, "C", "Condition"},
		{"unknown operator", cond(`{"StringEqualz":{"kms:EncryptionContext:a":"x"}}`), 1, "C", "Condition.StringEqualz"},
		{"operator in the wrong case", cond(`{"stringEquals":{"kms:EncryptionContext:a":"x"}}`), 1, "C", "Condition.stringEquals"},
		{"IfExists alone", cond(`{"IfExists":{"kms:EncryptionContext:a":"x"}}`), 1, "C", "Condition.IfExists"},
		{"NullIfExists", cond(`{"NullIfExists":{"kms:EncryptionContext:a":"true"}}`), 1, "C", "Condition.NullIfExists"},
		{"set operator on Null", cond(`{"ForAllValues:Null":{"kms:EncryptionContextKeys":"true"}}`), 1, "C", "Condition.ForAllValues:Null"},
		{"two set operators", cond(`{"ForAllValues:ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"a"}}`), 1, "C", "Condition.ForAllValues:ForAnyValue:StringEquals"},
		{"operator with no keys", cond(`{"StringEquals":{}}`), 1, "C", "Condition.StringEquals"},
		{"bad number", cond(`{"NumericLessThan":{"aws:EpochTime":"soon"}}`), 1, "C", "Condition.NumericLessThan.aws:EpochTime"},
		{"NaN", cond(`{"NumericEquals":{"aws:EpochTime":"NaN"}}`), 1, "C", "Condition.NumericEquals.aws:EpochTime"},
		{"infinity", cond(`{"NumericGreaterThan":{"aws:EpochTime":"Inf"}}`), 1, "C", "Condition.NumericGreaterThan.aws:EpochTime"},
		{"bad date", cond(`{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}`), 1, "C", "Condition.DateLessThan.aws:CurrentTime"},
		{"bad Bool", cond(`{"Bool":{"aws:SecureTransport":"yes"}}`), 1, "C", "Condition.Bool.aws:SecureTransport"},
		{"bad Null", cond(`{"Null":{"kms:EncryptionContextKeys":"maybe"}}`), 1, "C", "Condition.Null.kms:EncryptionContextKeys"},
		{"condition key without a service", cond(`{"StringEquals":{"Department":"IT"}}`), 1, "C", "Condition.StringEquals.Department"},
		{"encryption context key with no name", cond(`{"StringEquals":{"kms:EncryptionContext:":"IT"}}`), 1, "C", "Condition.StringEquals.kms:EncryptionContext:"},
		{"principal tag with no name", cond(`{"StringEquals":{"aws:PrincipalTag/":"x"}}`), 1, "C", "Condition.StringEquals.aws:PrincipalTag/"},
		{"condition key too long", cond(`{"StringEquals":{"kms:EncryptionContext:` + strings.Repeat("k", 300) + `":"x"}}`), 1, "C", "Condition.StringEquals.kms:EncryptionContext:" + strings.Repeat("k", 300)},
		{"condition value an object", cond(`{"StringEquals":{"kms:EncryptionContext:a":{"b":"c"}}}`), 1, "C", "Condition.StringEquals.kms:EncryptionContext:a"},
		{"condition value null", cond(`{"StringEquals":{"kms:EncryptionContext:a":null}}`), 1, "C", "Condition.StringEquals.kms:EncryptionContext:a"},
		{"condition value empty array", cond(`{"StringEquals":{"kms:EncryptionContext:a":[]}}`), 1, "C", "Condition.StringEquals.kms:EncryptionContext:a"},
		{"condition value nested array", cond(`{"StringEquals":{"kms:EncryptionContext:a":[["x"]]}}`), 1, "C", "Condition.StringEquals.kms:EncryptionContext:a"},
		{"second operator bad", cond(`{"StringEquals":{"kms:EncryptionContext:a":"x"},"NumericLessThan":{"aws:EpochTime":"x"}}`), 1, "C", "Condition.NumericLessThan.aws:EpochTime"},
	}
}

// kpCheckPolicyError checks that err is a *kms.PolicyError matching
// ErrMalformedPolicy that points where want says.
func kpCheckPolicyError(t *testing.T, err error, want kpBadDoc) *kms.PolicyError {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, kms.ErrMalformedPolicy)
	var pe *kms.PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, want.statement, pe.Statement, "PolicyError.Statement (%v)", err)
	assert.Equal(t, want.sid, pe.Sid, "PolicyError.Sid (%v)", err)
	assert.Equal(t, want.field, pe.Field, "PolicyError.Field (%v)", err)
	assert.NotEmpty(t, pe.Reason, "PolicyError.Reason")
	msg := pe.Error()
	assert.True(t, strings.HasPrefix(msg, "kms: malformed policy document: "), "PolicyError text: %q", msg)
	if want.statement > 0 {
		assert.Contains(t, msg, fmt.Sprintf("statement %d", want.statement))
	} else {
		assert.NotContains(t, msg, "statement ")
	}
	if want.sid != "" {
		assert.Contains(t, msg, fmt.Sprintf("(Sid %q)", want.sid))
	}
	if want.field != "" {
		assert.Contains(t, msg, want.field+": ")
	}
	return pe
}

// ------------------------------------------------------------ 1. grammar

func TestValidateKeyPolicy(t *testing.T) {
	ctx := kpCtx(kpAdmin)
	bad := kpBadDocs()
	valid := kpValidDocs()

	t.Run("malformed", func(t *testing.T) {
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				kpCheckPolicyError(t, kms.ValidateKeyPolicy(tc.doc), tc)
			})
		}
	})

	t.Run("valid", func(t *testing.T) {
		for _, tc := range valid {
			t.Run(tc.name, func(t *testing.T) {
				require.NoError(t, kms.ValidateKeyPolicy(tc.doc))
			})
		}
	})

	// PutKeyPolicy and CreateKey validate as ValidateKeyPolicy does, on
	// both engines, and a refused document changes nothing.
	for _, engine := range []struct {
		name   string
		policy kms.Policy
	}{{"AllowAll", nil}, {"KeyPolicies", kms.KeyPolicies{}}} {
		t.Run("PutKeyPolicy/"+engine.name, func(t *testing.T) {
			r := kmstest.New(t, kms.Config{Policy: engine.policy})
			key, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Policy: kpPolicy()})
			require.NoError(t, err)
			before, err := r.GetKeyPolicy(ctx, key.KeyID, "default")
			require.NoError(t, err)
			require.Equal(t, kpPolicy(), before)
			for _, tc := range bad {
				err := r.PutKeyPolicy(ctx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: tc.doc})
				pe := kpCheckPolicyError(t, err, tc)
				assert.Equal(t, "MalformedPolicyDocumentException", kms.ErrorCode(err), tc.name)
				ke := requireOpErr(t, err, kms.ErrMalformedPolicy, kms.OpPutKeyPolicy, anyKeyID)
				assert.NotErrorIs(t, ke, kms.ErrAccessDenied)
				ev, ok := r.Events.Last()
				require.True(t, ok)
				assert.Equal(t, kms.OpPutKeyPolicy, ev.Op)
				assert.Equal(t, kms.OutcomeFailed, ev.Outcome, tc.name)
				assert.Equal(t, "MalformedPolicyDocumentException", ev.ErrorCode, tc.name)
				// The same verdict with the bypass flag: it skips only the
				// lockout check.
				err = r.PutKeyPolicy(ctx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: tc.doc, BypassPolicyLockoutSafetyCheck: true})
				var pe2 *kms.PolicyError
				require.ErrorAs(t, err, &pe2, tc.name)
				assert.Equal(t, *pe, *pe2, tc.name)
				now, err := r.GetKeyPolicy(ctx, key.KeyID, "")
				require.NoError(t, err)
				require.Equal(t, before, now, "%s: a refused document changed the stored policy", tc.name)
			}
			// The key still works under the policy it kept.
			kpRoundTrip(t, r.KeyRing, ctx, key.KeyID)
		})

		t.Run("CreateKey/"+engine.name, func(t *testing.T) {
			r := kmstest.New(t, kms.Config{Policy: engine.policy})
			for _, tc := range bad {
				if tc.doc == "" {
					continue // CreateKey's empty Policy means the default one
				}
				m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Policy: tc.doc})
				require.Nil(t, m, tc.name)
				kpCheckPolicyError(t, err, tc)
				assert.Equal(t, "MalformedPolicyDocumentException", kms.ErrorCode(err), tc.name)
				requireOpErr(t, err, kms.ErrMalformedPolicy, kms.OpCreateKey, anyKeyID)
			}
			keys, err := r.ListKeys(ctx, kms.ListKeysInput{})
			require.NoError(t, err)
			assert.Empty(t, keys.Keys, "a refused CreateKey made a key")
		})

		t.Run("valid round trip/"+engine.name, func(t *testing.T) {
			// Every valid document is accepted by PutKeyPolicy and returned
			// byte for byte. (Under KeyPolicies with the bypass flag: most
			// of them do not let the admin back in.)
			r := kmstest.New(t, kms.Config{Policy: engine.policy})
			for _, tc := range valid {
				key, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{})
				require.NoError(t, err)
				require.NoError(t, r.PutKeyPolicy(ctx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: tc.doc, BypassPolicyLockoutSafetyCheck: true}), tc.name)
				if engine.policy != nil {
					continue // the admin may no longer read it
				}
				got, err := r.GetKeyPolicy(ctx, key.KeyID, "default")
				require.NoError(t, err)
				require.Equal(t, tc.doc, got, tc.name)
			}
		})
	}

	t.Run("size limit counts bytes", func(t *testing.T) {
		// 2-byte characters: the limit is 32,768 bytes, not characters.
		sid := strings.Repeat("é", 16400) // 32,800 bytes
		doc := `{"Statement":{"Sid":"` + sid + `","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}`
		require.Less(t, utf8.RuneCountInString(doc), kms.MaxKeyPolicySize)
		kpCheckPolicyError(t, kms.ValidateKeyPolicy(doc), kpBadDoc{})
		assert.Equal(t, 32768, kms.MaxKeyPolicySize)
	})

	t.Run("AWS accepts", func(t *testing.T) {
		// Documents AWS KMS accepts that pocketkms refuses.
		t.Run("Arn and IP condition operators", func(t *testing.T) {
			// The key policy the Amazon Route 53 Developer Guide gives for
			// DNSSEC signing keys uses ArnLike; ArnEquals, ArnNotLike,
			// IpAddress and BinaryEquals are IAM operators too.
			for _, c := range []string{
				`{"ArnLike":{"aws:SourceArn":"arn:aws:route53:::hostedzone/*"},"StringEquals":{"aws:SourceAccount":"111122223333"}}`,
				`{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/ExampleRole"}}`,
				`{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/Bad*"}}`,
				`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`,
				`{"BinaryEquals":{"aws:SomeKey":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}`,
			} {
				doc := `{"Statement":[{"Effect":"Allow","Principal":{"Service":"dnssec-route53.amazonaws.com"},"Action":["kms:DescribeKey","kms:GetPublicKey","kms:Sign"],"Resource":"*","Condition":` + c + `}]}`
				assert.NoError(t, kms.ValidateKeyPolicy(doc), c)
			}
		})
	})

	t.Run("conditions on keys pocketkms never provides", func(t *testing.T) {
		// pocketkms has no network, no services and no organizations:
		// aws:SourceIp, aws:SecureTransport, kms:ViaService and the like are
		// never in a request. A condition on such a key is decided by its
		// absence, so it is refused where that would weaken the statement
		// (unlike AWS KMS, which accepts it), and accepted where it makes
		// the statement stricter.
		allow := func(c string) string {
			return `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":` + c + `}]}`
		}
		deny := func(c string) string {
			return `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":` + c + `}]}`
		}
		for _, doc := range []string{
			allow(`{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`),
			allow(`{"BoolIfExists":{"aws:SecureTransport":"true"}}`),
			allow(`{"Null":{"aws:SourceIp":"true"}}`),
			allow(`{"ForAllValues:StringEquals":{"aws:TagKeys":["a"]}}`),
			deny(`{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}`),
			deny(`{"Bool":{"aws:SecureTransport":"false"}}`),
			deny(`{"StringEquals":{"kms:EncryptionContex:typo":"x"}}`),
		} {
			err := kms.ValidateKeyPolicy(doc)
			var pe *kms.PolicyError
			require.ErrorAs(t, err, &pe, doc)
			assert.Equal(t, 1, pe.Statement)
			assert.Contains(t, pe.Field, "Condition.")
			assert.Contains(t, pe.Reason, "pocketkms never provides the condition key", doc)
		}
		for _, doc := range []string{
			allow(`{"StringEquals":{"aws:SourceIp":"203.0.113.7"}}`),
			allow(`{"Bool":{"aws:SecureTransport":"true"}}`),
			deny(`{"StringNotEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}`),
			deny(`{"BoolIfExists":{"aws:SecureTransport":"false"}}`),
			deny(`{"Null":{"aws:SourceIp":"true"}}`),
		} {
			assert.NoError(t, kms.ValidateKeyPolicy(doc), doc)
		}
	})

	t.Run("AWS refuses", func(t *testing.T) {
		// Documents AWS KMS refuses that pocketkms accepts.
		t.Run("ForAllValues on kms:EncryptionContext:context-key", func(t *testing.T) {
			// AWS KMS Developer Guide, kms:EncryptionContext:context-key:
			// "If you create or update a policy that includes a ForAllValues
			// set operator with the kms:EncryptionContext:context-key, AWS
			// KMS returns [...] OverlyPermissiveCondition".
			doc := `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContext:Department":"IT"}}}]}`
			require.ErrorIs(t, kms.ValidateKeyPolicy(doc), kms.ErrMalformedPolicy)
		})
		t.Run("characters beyond Latin-1", func(t *testing.T) {
			// AWS KMS Developer Guide, key policy format: "A key policy
			// document can include only the following characters: printable
			// ASCII characters; printable characters in the Basic Latin and
			// Latin-1 Supplement character set; the tab, line feed, and
			// carriage return special characters".
			for _, sid := range []string{"鍵", "🔑", "\u0001", "\u0085"} {
				doc := `{"Statement":[{"Sid":"` + sid + `","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`
				assert.ErrorIs(t, kms.ValidateKeyPolicy(doc), kms.ErrMalformedPolicy, "%q", sid)
			}
		})
	})

	t.Run("the same fault is reported the same way", func(t *testing.T) {
		// Two faults of one kind: which is reported must not depend on
		// map iteration order.
		doc := `{"Statement":[` + kpMinimal[len(`{"Statement":`):len(kpMinimal)-1] + `],"Foo":1,"Bar":2}`
		first := kms.ValidateKeyPolicy(doc)
		require.Error(t, first)
		for range 100 {
			require.Equal(t, first.Error(), kms.ValidateKeyPolicy(doc).Error())
		}
	})
}

// kpRoundTrip encrypts and decrypts under keyID as the caller of ctx.
func kpRoundTrip(t *testing.T, ring *kms.KeyRing, ctx context.Context, keyID string) {
	t.Helper()
	ec := kms.EncryptionContext{"purpose": "round trip"}
	out, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: keyID, Plaintext: []byte("round trip"), EncryptionContext: ec})
	require.NoError(t, err)
	dec, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
	require.NoError(t, err)
	require.True(t, string(dec.Plaintext) == "round trip", "decrypted plaintext differs")
}

// ------------------------------------------------------------ 2. engine

// kpFixture is one key under test, on a ring with KeyPolicies.
type kpFixture struct {
	r   *kmstest.Ring
	key *kms.KeyMetadata
}

// kpOp is an operation a case calls as one principal.
type kpOp struct {
	op   kms.Op // the operation audited and named in the error
	desc string
	run  func(t *testing.T, fx *kpFixture, ctx context.Context) error
}

func kpECDesc(ec kms.EncryptionContext) string {
	if ec == nil {
		return "{}"
	}
	var kv []string
	for k, v := range ec {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return "{" + strings.Join(kv, ",") + "}"
}

var kpAdminCtx = kpCtx(kpAdmin)

const kpPlaintext = "policy test plaintext"

// kpAdminEncrypt encrypts as the admin, for the operations that need a
// ciphertext.
func kpAdminEncrypt(t *testing.T, fx *kpFixture, alg kms.EncryptionAlgorithm, ec kms.EncryptionContext) []byte {
	t.Helper()
	out, err := fx.r.Encrypt(kpAdminCtx, kms.EncryptInput{KeyID: fx.key.KeyID, Plaintext: []byte(kpPlaintext), EncryptionContext: ec, EncryptionAlgorithm: alg})
	require.NoError(t, err, "the admin's Encrypt")
	return out.CiphertextBlob
}

func kpEncryptVia(name string, ec kms.EncryptionContext) kpOp {
	return kpOp{kms.OpEncrypt, "Encrypt" + kpVia(name) + kpECDesc(ec), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, err := fx.r.Encrypt(ctx, kms.EncryptInput{KeyID: kpKeyName(fx, name), Plaintext: []byte(kpPlaintext), EncryptionContext: ec})
		return err
	}}
}

func kpEncrypt(ec kms.EncryptionContext) kpOp { return kpEncryptVia("", ec) }

func kpEncryptRSA(alg kms.EncryptionAlgorithm) kpOp {
	return kpOp{kms.OpEncrypt, "Encrypt " + string(alg), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, err := fx.r.Encrypt(ctx, kms.EncryptInput{KeyID: fx.key.KeyID, Plaintext: []byte(kpPlaintext), EncryptionAlgorithm: alg})
		return err
	}}
}

func kpDecryptVia(name string, ec kms.EncryptionContext) kpOp {
	return kpOp{kms.OpDecrypt, "Decrypt" + kpVia(name) + kpECDesc(ec), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		blob := kpAdminEncrypt(t, fx, "", ec)
		in := kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec}
		if name != "" {
			in.KeyID = kpKeyName(fx, name)
		}
		out, err := fx.r.Decrypt(ctx, in)
		if err == nil {
			require.True(t, string(out.Plaintext) == kpPlaintext, "decrypted plaintext differs")
		}
		return err
	}}
}

func kpDecrypt(ec kms.EncryptionContext) kpOp { return kpDecryptVia("", ec) }

func kpDecryptRSA(alg kms.EncryptionAlgorithm) kpOp {
	return kpOp{kms.OpDecrypt, "Decrypt " + string(alg), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		blob := kpAdminEncrypt(t, fx, alg, nil)
		out, err := fx.r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob, KeyID: fx.key.KeyID, EncryptionAlgorithm: alg})
		if err == nil {
			require.True(t, string(out.Plaintext) == kpPlaintext, "decrypted plaintext differs")
		}
		return err
	}}
}

func kpReEncrypt(ec kms.EncryptionContext) kpOp {
	return kpOp{kms.OpReEncrypt, "ReEncrypt" + kpECDesc(ec), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		blob := kpAdminEncrypt(t, fx, "", ec)
		_, err := fx.r.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: ec, DestinationKeyID: fx.key.KeyID, DestinationEncryptionContext: ec})
		return err
	}}
}

// kpReEncryptVia re-encrypts under the key, naming the source key by src
// and the destination by dst.
func kpReEncryptVia(src, dst string) kpOp {
	return kpOp{kms.OpReEncrypt, "ReEncrypt from" + kpVia(src) + "to" + kpVia(dst), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		blob := kpAdminEncrypt(t, fx, "", nil)
		in := kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyID: kpKeyName(fx, dst)}
		if src != "" {
			in.SourceKeyID = kpKeyName(fx, src)
		}
		_, err := fx.r.ReEncrypt(ctx, in)
		return err
	}}
}

func kpGDKVia(name string, ec kms.EncryptionContext) kpOp {
	return kpOp{kms.OpGenerateDataKey, "GenerateDataKey" + kpVia(name) + kpECDesc(ec), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		out, err := fx.r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: kpKeyName(fx, name), KeySpec: kms.AES256, EncryptionContext: ec})
		if err == nil {
			require.Len(t, out.Plaintext, 32)
		}
		return err
	}}
}

func kpGDK(ec kms.EncryptionContext) kpOp { return kpGDKVia("", ec) }

func kpGDKNoPlaintext(ec kms.EncryptionContext) kpOp {
	return kpOp{kms.OpGenerateDataKeyWithoutPlaintext, "GenerateDataKeyWithoutPlaintext" + kpECDesc(ec), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, err := fx.r.GenerateDataKeyWithoutPlaintext(ctx, kms.GenerateDataKeyInput{KeyID: fx.key.KeyID, NumberOfBytes: 16, EncryptionContext: ec})
		return err
	}}
}

func kpGDKPair(ec kms.EncryptionContext) kpOp {
	return kpOp{kms.OpGenerateDataKeyPair, "GenerateDataKeyPair" + kpECDesc(ec), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, err := fx.r.GenerateDataKeyPair(ctx, kms.GenerateDataKeyPairInput{KeyID: fx.key.KeyID, KeyPairSpec: kms.PairECCNISTP256, EncryptionContext: ec})
		return err
	}}
}

func kpDescribeVia(name string) kpOp {
	return kpOp{kms.OpDescribeKey, "DescribeKey" + kpVia(name), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		m, err := fx.r.DescribeKey(ctx, kpKeyName(fx, name))
		if err == nil {
			require.Equal(t, fx.key.KeyID, m.KeyID)
		}
		return err
	}}
}

var kpDescribe = kpDescribeVia("")

var kpGetPolicy = kpOp{kms.OpGetKeyPolicy, "GetKeyPolicy", func(t *testing.T, fx *kpFixture, ctx context.Context) error {
	_, err := fx.r.GetKeyPolicy(ctx, fx.key.KeyID, "default")
	return err
}}

var kpListGrants = kpOp{kms.OpListGrants, "ListGrants", func(t *testing.T, fx *kpFixture, ctx context.Context) error {
	_, err := fx.r.ListGrants(ctx, kms.ListGrantsInput{KeyID: fx.key.KeyID})
	return err
}}

// kpDisable disables the key when allowed, so it comes last in a case.
var kpDisable = kpOp{kms.OpDisableKey, "DisableKey", func(t *testing.T, fx *kpFixture, ctx context.Context) error {
	return fx.r.DisableKey(ctx, fx.key.KeyID)
}}

var kpGetPublicKey = kpOp{kms.OpGetPublicKey, "GetPublicKey", func(t *testing.T, fx *kpFixture, ctx context.Context) error {
	_, err := fx.r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: fx.key.KeyID})
	return err
}}

func kpSign(alg kms.SigningAlgorithm) kpOp {
	return kpOp{kms.OpSign, "Sign " + string(alg), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, err := fx.r.Sign(ctx, kms.SignInput{KeyID: fx.key.KeyID, Message: []byte("message"), MessageType: kms.MessageRaw, SigningAlgorithm: alg})
		return err
	}}
}

func kpVerify(alg kms.SigningAlgorithm) kpOp {
	return kpOp{kms.OpVerify, "Verify " + string(alg), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		sig, err := fx.r.Sign(kpAdminCtx, kms.SignInput{KeyID: fx.key.KeyID, Message: []byte("message"), MessageType: kms.MessageRaw, SigningAlgorithm: alg})
		require.NoError(t, err, "the admin's Sign")
		_, err = fx.r.Verify(ctx, kms.VerifyInput{KeyID: fx.key.KeyID, Message: []byte("message"), MessageType: kms.MessageRaw, Signature: sig.Signature, SigningAlgorithm: alg})
		return err
	}}
}

func kpMac(alg kms.MacAlgorithm) kpOp {
	return kpOp{kms.OpGenerateMac, "GenerateMac " + string(alg), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, err := fx.r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: fx.key.KeyID, Message: []byte("message"), MacAlgorithm: alg})
		return err
	}}
}

func kpDerive(alg kms.KeyAgreementAlgorithm) kpOp {
	return kpOp{kms.OpDeriveSharedSecret, "DeriveSharedSecret " + string(alg), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, peer := crPeerKey(t, crECDHCurves[fx.key.KeySpec])
		_, err := fx.r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: fx.key.KeyID, KeyAgreementAlgorithm: alg, PublicKey: peer})
		return err
	}}
}

// kpSignDigest signs a SHA-256 digest with ECDSA_SHA_256.
var kpSignDigest = kpOp{kms.OpSign, "Sign a DIGEST", func(t *testing.T, fx *kpFixture, ctx context.Context) error {
	_, err := fx.r.Sign(ctx, kms.SignInput{KeyID: fx.key.KeyID, Message: make([]byte, 32), MessageType: kms.MessageDigest, SigningAlgorithm: kms.ECDSASHA256})
	return err
}}

// kpPutPolicyBypass puts the default key policy with the lockout check
// bypassed.
var kpPutPolicyBypass = kpOp{kms.OpPutKeyPolicy, "PutKeyPolicy bypassing the lockout check", func(t *testing.T, fx *kpFixture, ctx context.Context) error {
	return fx.r.PutKeyPolicy(ctx, kms.PutKeyPolicyInput{KeyID: fx.key.KeyID, Policy: kms.DefaultKeyPolicy(kms.DefaultAccount), BypassPolicyLockoutSafetyCheck: true})
}}

var kpGDKPairRSA = kpOp{kms.OpGenerateDataKeyPair, "GenerateDataKeyPair RSA_2048", func(t *testing.T, fx *kpFixture, ctx context.Context) error {
	_, err := fx.r.GenerateDataKeyPair(ctx, kms.GenerateDataKeyPairInput{KeyID: fx.key.KeyID, KeyPairSpec: kms.PairRSA2048})
	return err
}}

func kpCreateGrant(grantee string, ops ...kms.Op) kpOp {
	return kpOp{kms.OpCreateGrant, fmt.Sprintf("CreateGrant %v for %s", ops, grantee[strings.LastIndex(grantee, ":")+1:]), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, err := fx.r.CreateGrant(ctx, kms.CreateGrantInput{KeyID: fx.key.KeyID, GranteePrincipal: grantee, Operations: ops})
		return err
	}}
}

func kpGetParameters(alg kms.WrappingAlgorithm) kpOp {
	return kpOp{kms.OpGetParametersForImport, "GetParametersForImport " + string(alg), func(t *testing.T, fx *kpFixture, ctx context.Context) error {
		_, err := fx.r.GetParametersForImport(ctx, kms.GetParametersForImportInput{KeyID: fx.key.KeyID, WrappingAlgorithm: alg, WrappingKeySpec: kms.WrappingRSA2048})
		return err
	}}
}

// Key names a case may call a key by ("" is its ID).
const (
	kpByARN      = "{{KEY_ARN}}"
	kpByAliasARN = "{{ALIAS_ARN}}"
)

func kpKeyName(fx *kpFixture, name string) string {
	switch name {
	case "":
		return fx.key.KeyID
	case kpByARN:
		return fx.key.Arn
	case kpByAliasARN:
		return fx.r.AliasARN("alias/finance-key")
	}
	return name
}

func kpVia(name string) string {
	switch name {
	case "":
		return " "
	case kpByARN:
		return " via key ARN "
	case kpByAliasARN:
		return " via alias ARN "
	}
	return " via " + name + " "
}

// kpCall is one call of a case and whether the engine must allow it.
type kpCall struct {
	who    kms.Principal
	do     kpOp
	allow  bool
	before func(t *testing.T, fx *kpFixture) // runs first, if set
}

func kpAllow(who kms.Principal, do kpOp) kpCall { return kpCall{who: who, do: do, allow: true} }
func kpDeny(who kms.Principal, do kpOp) kpCall  { return kpCall{who: who, do: do} }

// kpCheck checks an operation's verdict, its error and its audit event.
func kpCheck(t *testing.T, r *kmstest.Ring, err error, allow bool, op kms.Op, who kms.Principal) {
	t.Helper()
	ev, ok := r.Events.Last()
	require.True(t, ok, "no event was audited")
	assert.Equal(t, op, ev.Op, "Event.Op")
	assert.Equal(t, who.ARN, ev.Principal.ARN, "Event.Principal")
	if allow {
		require.NoError(t, err, "the policy must allow this call")
		assert.Equal(t, kms.OutcomeAllowed, ev.Outcome, "Event.Outcome")
		return
	}
	require.Error(t, err, "the policy must deny this call")
	assert.NotContains(t, err.Error(), kpPlaintext)
	require.ErrorIs(t, err, kms.ErrAccessDenied, "the policy must deny this call")
	assert.Equal(t, "AccessDeniedException", kms.ErrorCode(err))
	var ke *kms.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, op, ke.Op, "Error.Op")
	assert.Equal(t, kms.OutcomeDenied, ev.Outcome, "Event.Outcome")
	assert.Equal(t, "AccessDeniedException", ev.ErrorCode, "Event.ErrorCode")
	assert.ErrorIs(t, ev.Err, kms.ErrAccessDenied, "Event.Err")
}

// kpCase is a key policy and calls to check against it.
type kpCase struct {
	name string
	// doc is the key policy; "" keeps the default key policy. {{KEY_ARN}}
	// in it is replaced by the key's ARN.
	doc    string
	spec   kms.KeySpec
	usage  kms.KeyUsage
	origin kms.Origin
	setup  func(t *testing.T, fx *kpFixture)
	calls  []kpCall
}

// kpRun creates the case's key as the admin, puts its policy and checks
// every call in order.
func kpRun(t *testing.T, tc kpCase) {
	r := kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{}})
	key, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{KeySpec: tc.spec, KeyUsage: tc.usage, Origin: tc.origin})
	require.NoError(t, err)
	fx := &kpFixture{r: r, key: key}
	if tc.doc != "" {
		doc := strings.ReplaceAll(tc.doc, "{{KEY_ARN}}", key.Arn)
		require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: doc}))
	}
	if tc.setup != nil {
		tc.setup(t, fx)
	}
	for i, c := range tc.calls {
		verdict := "denied"
		if c.allow {
			verdict = "allowed"
		}
		t.Run(fmt.Sprintf("%02d %s %s %s", i+1, kpName(c.who), strings.TrimSpace(c.do.desc), verdict), func(t *testing.T) {
			if c.before != nil {
				c.before(t, fx)
			}
			err := c.do.run(t, fx, kpCtx(c.who))
			kpCheck(t, r, err, c.allow, c.do.op, c.who)
		})
	}
}

type kpEC = kms.EncryptionContext

// TestKeyPolicyExamples checks the KeyPolicies engine against the key
// policy examples of the AWS KMS Developer Guide (key policies, condition
// keys, ABAC), calling the real operations as several principals.
func TestKeyPolicyExamples(t *testing.T) {
	roleUse := []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"}
	app := kpEC{"AppName": "ExampleApp"}
	// The time the fake clock starts at, and dates around it.
	start := kmstest.Epoch // 2025-01-01T00:00:00Z
	june := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	setClock := func(at time.Time) func(*testing.T, *kpFixture) {
		return func(_ *testing.T, fx *kpFixture) { fx.r.Clock.Set(at) }
	}
	at := func(when time.Time, c kpCall) kpCall { c.before = setClock(when); return c }

	cases := []kpCase{
		// ---- Principal
		{
			name: "Principal: a role of the account",
			doc:  kpPolicy(`{"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"}`),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpDecrypt(app)),
				kpAllow(kpRole, kpReEncrypt(app)),
				kpAllow(kpRole, kpGDK(nil)),
				kpAllow(kpRole, kpGDKNoPlaintext(nil)),
				kpAllow(kpRole, kpGDKPair(nil)),
				kpAllow(kpRole, kpDescribe),
				kpDeny(kpRole, kpGetPolicy),
				kpDeny(kpRole, kpListGrants),
				kpDeny(kpRole, kpDisable),
				// Another role of the same account is not named.
				kpDeny(kpOther, kpEncrypt(nil)),
				kpDeny(kpOther, kpDescribe),
				// Nor is the account, its root or a principal known by its
				// account alone.
				kpDeny(kpRoot, kpEncrypt(nil)),
				kpDeny(kpAcctOnly, kpEncrypt(nil)),
				// ARNs match exactly: not a longer name, not a path.
				kpDeny(kms.Principal{ARN: kpRole.ARN + "2", Account: kms.DefaultAccount}, kpEncrypt(nil)),
				kpDeny(kms.Principal{ARN: "arn:aws:iam::111122223333:role/ExampleRol", Account: kms.DefaultAccount}, kpEncrypt(nil)),
				kpDeny(kms.Principal{ARN: "arn:aws:iam::111122223333:role/team/ExampleRole", Account: kms.DefaultAccount}, kpEncrypt(nil)),
				kpDeny(kms.Principal{ARN: "arn:aws:iam::111122223333:user/ExampleRole", Account: kms.DefaultAccount}, kpEncrypt(nil)),
				// A role of the same name in another account.
				kpDeny(kpForeign, kpEncrypt(nil)),
				kpDeny(kpForeign, kpDecrypt(nil)),
				// No principal at all.
				kpDeny(kpNobody, kpEncrypt(nil)),
				kpDeny(kpNobody, kpDescribe),
			},
		},
		{
			name: "Principal: the account root (default key policy)",
			doc:  "", // kms.DefaultKeyPolicy
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpOther, kpDecrypt(app)),
				kpAllow(kpRoot, kpGDK(nil)),
				kpAllow(kpAcctOnly, kpEncrypt(nil)),
				kpAllow(kpTagged(kpOther, "team", "x"), kpGetPolicy),
				kpAllow(kpRole, kpListGrants),
				kpDeny(kpForeign, kpEncrypt(nil)),
				kpDeny(kpForeign, kpDescribe),
				kpDeny(kms.Principal{ARN: "arn:aws:iam::444455556666:root"}, kpDescribe),
				kpDeny(kpNobody, kpEncrypt(nil)),
				kpDeny(kpNobody, kpGetPolicy),
			},
		},
		{
			name: "Principal: an account ID",
			doc:  kpPolicy(kpStmt("Allow", `{"AWS":"111122223333"}`, []string{"kms:Encrypt"}, "")),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpAcctOnly, kpEncrypt(nil)),
				// The account comes from the ARN when Principal.Account is
				// not set.
				kpAllow(kms.Principal{ARN: kpOther.ARN}, kpEncrypt(nil)),
				kpDeny(kpRole, kpDecrypt(nil)),
				kpDeny(kpForeign, kpEncrypt(nil)),
				kpDeny(kms.Principal{ARN: kpForeign.ARN}, kpEncrypt(nil)),
				kpDeny(kpNobody, kpEncrypt(nil)),
			},
		},
		{
			name: "Principal: another account (AWS example key policy)",
			doc:  kpAWSExamplePolicy,
			calls: []kpCall{
				// "Enable IAM policies": every principal of the account.
				kpAllow(kpOther, kpEncrypt(nil)),
				kpAllow(kpOther, kpGetPolicy),
				// "Allow use of the key" names account 444455556666.
				kpAllow(kpForeign, kpEncrypt(nil)),
				kpAllow(kpForeign, kpDecrypt(app)),
				kpAllow(kpForeign, kpReEncrypt(nil)),
				kpAllow(kpForeign, kpGDK(app)),
				kpAllow(kpForeign, kpDescribe),
				kpAllow(kms.Principal{Account: kpForeignAccount}, kpDescribe),
				// ...but not to manage it, nor, without an AWS resource
				// (kms:GrantIsForAWSResource), to create grants.
				kpDeny(kpForeign, kpGetPolicy),
				kpDeny(kpForeign, kpCreateGrant(kpForeign.ARN, kms.OpDecrypt)),
				kpDeny(kpForeign, kpListGrants),
				kpDeny(kpForeign, kpDisable),
				// A third account is named nowhere.
				kpDeny(kpForeign2, kpEncrypt(nil)),
				kpDeny(kpNobody, kpDescribe),
			},
		},
		{
			name: `Principal: "*"`,
			doc:  kpPolicy(kpStmt("Allow", `"*"`, []string{"kms:Encrypt"}, "")),
			calls: []kpCall{
				kpAllow(kpNobody, kpEncrypt(nil)),
				kpAllow(kpForeign, kpEncrypt(nil)),
				kpAllow(kpRole, kpEncrypt(nil)),
				kpDeny(kpNobody, kpDecrypt(nil)),
				kpDeny(kpForeign, kpDescribe),
			},
		},
		{
			name: `Principal: {"AWS": "*"}`,
			doc:  kpPolicy(kpStmt("Allow", `{"AWS":"*"}`, []string{"kms:Encrypt"}, "")),
			calls: []kpCall{
				kpAllow(kpNobody, kpEncrypt(nil)),
				kpAllow(kpForeign2, kpEncrypt(nil)),
				kpDeny(kpRole, kpDescribe),
			},
		},
		{
			name: `Principal: {"Service": ...} names no pocketkms caller`,
			doc:  kpPolicy(kpStmt("Allow", `{"Service":"ec2.amazonaws.com"}`, []string{"kms:*"}, "")),
			calls: []kpCall{
				kpDeny(kpRole, kpEncrypt(nil)),
				kpDeny(kpNobody, kpEncrypt(nil)),
				kpDeny(kms.Principal{ARN: "ec2.amazonaws.com"}, kpEncrypt(nil)),
			},
		},
		{
			name: "kms:CallerAccount with Principal AWS * (AWS managed key for EBS, without kms:ViaService)",
			doc: kpPolicy(`{"Sid":"Allow access for all principals in the account","Effect":"Allow","Principal":{"AWS":"*"},
				"Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}},
				"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:CreateGrant","kms:DescribeKey"],"Resource":"*"}`),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpAcctOnly, kpGDK(nil)),
				kpAllow(kms.Principal{ARN: kpOther.ARN}, kpDecrypt(nil)),
				kpAllow(kpOther, kpCreateGrant(kpRole.ARN, kms.OpDecrypt)),
				kpDeny(kpForeign, kpEncrypt(nil)),
				kpDeny(kpNobody, kpEncrypt(nil)), // the key is absent: StringEquals fails
				kpDeny(kpRole, kpGetPolicy),
			},
		},
		{
			name: "kms:ViaService: the AWS managed key policy for EBS (no request comes through a service)",
			doc: kpPolicy(`{"Sid":"Allow access through EBS for all principals in the account that are authorized to use EBS","Effect":"Allow","Principal":{"AWS":"*"},
				"Condition":{"StringEquals":{"kms:CallerAccount":"111122223333","kms:ViaService":"ec2.us-west-2.amazonaws.com"}},
				"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:CreateGrant","kms:DescribeKey"],"Resource":"*"}`),
			calls: []kpCall{
				kpDeny(kpRole, kpEncrypt(nil)),
				kpDeny(kpRole, kpDescribe),
			},
		},
		{
			name: "aws:PrincipalArn and aws:PrincipalAccount with Principal *",
			doc: kpPolicy(
				kpStmt("Allow", `"*"`, []string{"kms:Encrypt"}, `{"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/ExampleRole"}}`),
				kpStmt("Allow", `"*"`, []string{"kms:DescribeKey"}, `{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/Ex*"}}`),
				kpStmt("Allow", `"*"`, []string{"kms:GenerateDataKey"}, `{"StringEquals":{"aws:PrincipalAccount":"444455556666"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpDeny(kpOther, kpEncrypt(nil)),
				kpDeny(kpForeign, kpEncrypt(nil)),
				kpDeny(kpNobody, kpEncrypt(nil)),
				kpAllow(kpRole, kpDescribe),
				kpDeny(kpOther, kpDescribe),
				kpAllow(kpForeign, kpGDK(nil)),
				kpDeny(kpRole, kpGDK(nil)),
			},
		},

		// ---- Encryption context
		{
			name: "kms:EncryptionContext:AppName StringEquals (RoleForExampleApp)",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt"}, `{"StringEquals":{"kms:EncryptionContext:AppName":"ExampleApp"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpGDK(app)),
				kpAllow(kpRole, kpGDK(kpEC{"AppName": "ExampleApp", "Project": "Alpha"})), // other pairs are permitted
				kpAllow(kpRole, kpEncrypt(app)),
				kpAllow(kpRole, kpDecrypt(app)),
				kpDeny(kpRole, kpGDK(kpEC{"AppName": "OtherApp"})),
				kpDeny(kpRole, kpGDK(kpEC{"Project": "Alpha"})), // the key is missing
				kpDeny(kpRole, kpGDK(nil)),
				kpDeny(kpRole, kpDecrypt(kpEC{"AppName": "OtherApp"})),
				// The context key's name is not case sensitive; its value is.
				kpAllow(kpRole, kpGDK(kpEC{"appname": "ExampleApp"})),
				kpAllow(kpRole, kpDecrypt(kpEC{"APPNAME": "ExampleApp"})),
				kpDeny(kpRole, kpGDK(kpEC{"AppName": "exampleapp"})),
				kpDeny(kpRole, kpGDK(kpEC{"AppName": "ExampleApp "})),
				kpDeny(kpOther, kpGDK(app)),
				kpDeny(kpRole, kpGDKNoPlaintext(app)), // not an action of the statement
			},
		},
		{
			name: "kms:EncryptionContext: the condition key in any case (Appname example)",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Decrypt"}, `{"StringEquals":{"KMS:encryptioncontext:Appname":"ExampleApp"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpDecrypt(app)),
				kpAllow(kpRole, kpDecrypt(kpEC{"appNAME": "ExampleApp"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"AppName": "EXAMPLEAPP"})),
			},
		},
		{
			name: "kms:EncryptionContext: StringEqualsIgnoreCase and StringNotEqualsIgnoreCase",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"StringEqualsIgnoreCase":{"kms:EncryptionContext:AppName":"ExampleApp"}}`),
				kpStmt("Deny", kpRoleP, []string{"kms:Encrypt"}, `{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:Stage":["test","dev"]}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"AppName": "EXAMPLEAPP", "Stage": "Test"})),
				kpAllow(kpRole, kpEncrypt(kpEC{"appname": "exampleapp", "stage": "DEV"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"AppName": "ExampleApp", "Stage": "Prod"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"AppName": "ExampleApp"})), // negated, key absent: holds
				kpDeny(kpRole, kpEncrypt(kpEC{"AppName": "Example", "Stage": "test"})),
			},
		},
		{
			name: "kms:EncryptionContext: two pairs in one condition (AND)",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Decrypt"}, `{"StringEquals":{"kms:EncryptionContext:Department":"IT","kms:EncryptionContext:Project":"Alpha"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpDecrypt(kpEC{"Department": "IT", "Project": "Alpha"})),
				kpAllow(kpRole, kpDecrypt(kpEC{"Department": "IT", "Project": "Alpha", "Stage": "Test"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"Department": "IT"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"Project": "Alpha"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"Department": "IT", "Project": "Beta"})),
			},
		},
		{
			name: "kms:EncryptionContext: two statements (OR)",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:GenerateDataKey"}, `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`),
				kpStmt("Allow", kpRoleP, []string{"kms:GenerateDataKey"}, `{"StringEquals":{"kms:EncryptionContext:Project":"Alpha"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpGDK(kpEC{"Department": "IT"})),
				kpAllow(kpRole, kpGDK(kpEC{"Project": "Alpha"})),
				kpAllow(kpRole, kpGDK(kpEC{"Department": "IT", "Project": "Alpha"})),
				kpDeny(kpRole, kpGDK(kpEC{"Department": "HR", "Project": "Beta"})),
				kpDeny(kpRole, kpGDK(nil)),
			},
		},
		{
			name: "kms:EncryptionContext: one of several values (OR within a key)",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"StringEquals":{"kms:EncryptionContext:Stage":["Test","Dev"]}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"Stage": "Test"})),
				kpAllow(kpRole, kpEncrypt(kpEC{"Stage": "Dev"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Stage": "Prod"})),
			},
		},
		{
			name: "kms:EncryptionContext and ForAllValues kms:EncryptionContextKeys: require a pair, forbid others (alice example)",
			doc: kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:GenerateDataKey"},
				`{"StringEquals":{"kms:EncryptionContext:AppName":"ExampleApp"},"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["AppName"]}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpGDK(app)),
				kpDeny(kpRole, kpGDK(kpEC{"AppName": "ExampleApp", "Project": "Alpha"})),
				kpDeny(kpRole, kpGDK(nil)),
				// kms:EncryptionContextKeys compares names case-sensitively.
				kpDeny(kpRole, kpGDK(kpEC{"appname": "ExampleApp"})),
			},
		},
		{
			name: "ForAllValues:StringEquals kms:EncryptionContextKeys alone",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:GenerateDataKey", "kms:Decrypt"}, `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Department","Project"]}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpGDK(kpEC{"Department": "IT"})),
				kpAllow(kpRole, kpGDK(kpEC{"Department": "IT", "Project": "Alpha"})),
				kpAllow(kpRole, kpDecrypt(kpEC{"Project": "Alpha"})),
				kpDeny(kpRole, kpGDK(kpEC{"Department": "IT", "Stage": "Test"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"Stage": "Test"})),
				kpDeny(kpRole, kpGDK(kpEC{"department": "IT"})),
				// No context: "it doesn't require any encryption context keys"
				// (vacuously true, as AWS documents).
				kpAllow(kpRole, kpGDK(nil)),
				kpAllow(kpRole, kpGDK(kpEC{})),
				kpAllow(kpRole, kpDecrypt(nil)),
			},
		},
		{
			name: "ForAnyValue:StringEquals kms:EncryptionContextKeys",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Encrypt", "kms:GenerateDataKey*"}, `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"AppName"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpGDK(kpEC{"AppName": "Helper", "Project": "Alpha"})),
				kpAllow(kpRole, kpEncrypt(kpEC{"AppName": ""})),
				kpAllow(kpRole, kpGDKNoPlaintext(app)),
				kpDeny(kpRole, kpGDK(kpEC{"Project": "Alpha"})),
				kpDeny(kpRole, kpGDK(nil)), // no context: the condition is not satisfied
				kpDeny(kpRole, kpEncrypt(kpEC{"appname": "Helper"})),
			},
		},
		{
			name: "ForAnyValue:StringEqualsIgnoreCase and ForAllValues:StringLike on kms:EncryptionContextKeys",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"ForAnyValue:StringEqualsIgnoreCase":{"kms:EncryptionContextKeys":"AppName"}}`),
				kpStmt("Allow", kpRoleP, []string{"kms:Decrypt"}, `{"ForAllValues:StringLike":{"kms:EncryptionContextKeys":["aws:*","app-?"]}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"appname": "Helper"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"app": "Helper"})),
				kpAllow(kpRole, kpDecrypt(kpEC{"aws:s3:arn": "x", "app-1": "y"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"aws:s3:arn": "x", "app-12": "y"})),
			},
		},
		{
			name: "ForAllValues:StringNotEquals and ForAnyValue:StringNotEquals",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"ForAllValues:StringNotEquals":{"kms:EncryptionContextKeys":["Secret","Password"]}}`),
				kpStmt("Allow", kpRoleP, []string{"kms:Decrypt"}, `{"ForAnyValue:StringNotEquals":{"kms:EncryptionContextKeys":"Tenant"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"Tenant": "a", "Stage": "b"})),
				kpAllow(kpRole, kpEncrypt(nil)),
				kpDeny(kpRole, kpEncrypt(kpEC{"Tenant": "a", "Secret": "b"})),
				kpAllow(kpRole, kpDecrypt(kpEC{"Tenant": "a", "Stage": "b"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"Tenant": "a"})),
				kpDeny(kpRole, kpDecrypt(nil)),
			},
		},
		{
			// A single-valued operator on the multi-valued
			// kms:EncryptionContextKeys: a positive operator holds when any
			// value matches, a negated one when none does.
			name: "kms:EncryptionContextKeys without a set operator",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"StringEquals":{"kms:EncryptionContextKeys":"AppName"}}`),
				kpStmt("Allow", kpRoleP, []string{"kms:Decrypt"}, `{"StringNotEquals":{"kms:EncryptionContextKeys":["Secret","Password"]}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"AppName": "x", "Project": "y"})),
				kpAllow(kpRole, kpEncrypt(kpEC{"AAA": "x", "AppName": "y", "Zeta": "z"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Project": "x", "Stage": "y"})),
				kpDeny(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpDecrypt(kpEC{"A": "x", "B": "y"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"A": "x", "Secret": "y"})),
				kpDeny(kpRole, kpDecrypt(kpEC{"Password": "x", "Z": "y"})),
				kpAllow(kpRole, kpDecrypt(nil)), // negated, key absent: holds
			},
		},
		{
			name: "Null kms:EncryptionContextKeys false: require an encryption context",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Encrypt", "kms:GenerateDataKey*"}, `{"Null":{"kms:EncryptionContextKeys":false}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"anything": "at all"})),
				kpAllow(kpRole, kpGDKPair(kpEC{"a": "b"})),
				kpDeny(kpRole, kpEncrypt(nil)),
				kpDeny(kpRole, kpEncrypt(kpEC{})),
				kpDeny(kpRole, kpGDKPair(nil)),
			},
		},
		{
			name: "Null on a context key: forbid it",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"Null":{"kms:EncryptionContext:Secret":"true"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpEncrypt(kpEC{"Public": "x"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Secret": "x"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"SECRET": ""})),
			},
		},
		{
			name: "StringLike with wildcards on a context value",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"StringLike":{"kms:EncryptionContext:Project":["Alpha-*","Beta-?","*-prod-*"]}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"Project": "Alpha-1"})),
				kpAllow(kpRole, kpEncrypt(kpEC{"Project": "Alpha-"})), // * matches nothing too
				kpAllow(kpRole, kpEncrypt(kpEC{"Project": "Beta-7"})),
				kpAllow(kpRole, kpEncrypt(kpEC{"Project": "Beta-é"})), // ? is one character
				kpAllow(kpRole, kpEncrypt(kpEC{"Project": "x-prod-y"})),
				kpAllow(kpRole, kpEncrypt(kpEC{"Project": "-prod-"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Project": "Beta-77"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Project": "Beta-"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Project": "alpha-1"})), // case sensitive
				kpDeny(kpRole, kpEncrypt(kpEC{"Project": "xAlpha-1"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Project": "x-prod"})),
				kpDeny(kpRole, kpEncrypt(nil)),
			},
		},
		{
			name: "StringNotLike in a Deny",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, ""),
				kpStmt("Deny", kpRoleP, []string{"kms:Encrypt"}, `{"StringNotLike":{"kms:EncryptionContext:Bucket":"arn:aws:s3:::team-*"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"Bucket": "arn:aws:s3:::team-a"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Bucket": "arn:aws:s3:::other"})),
				kpDeny(kpRole, kpEncrypt(nil)),
			},
		},

		// ---- Explicit deny
		{
			name: "Deny overrides Allow: Stage=Restricted or Production",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:GenerateDataKey"}, ""),
				`{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":"kms:GenerateDataKey","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:Stage":["Restricted","Production"]}}}`),
			calls: []kpCall{
				kpDeny(kpRole, kpGDK(kpEC{"Stage": "Restricted"})),
				kpDeny(kpRole, kpGDK(kpEC{"stage": "Production", "Team": "x"})),
				kpAllow(kpRole, kpGDK(kpEC{"Stage": "Test"})),
				kpAllow(kpRole, kpGDK(nil)),
			},
		},
		{
			name: "Deny kms:Decrypt when aws:PrincipalTag/team is not billing (ABAC)",
			doc: kpPolicy(
				kpStmt("Allow", `{"AWS":["arn:aws:iam::111122223333:role/ExampleRole","arn:aws:iam::111122223333:role/OtherRole"]}`, []string{"kms:Encrypt", "kms:Decrypt"}, ""),
				kpStmt("Deny", `"*"`, []string{"kms:Decrypt"}, `{"StringNotEquals":{"aws:PrincipalTag/team":"billing"}}`)),
			calls: []kpCall{
				kpAllow(kpTagged(kpRole, "team", "billing"), kpDecrypt(app)),
				kpAllow(kpTagged(kpOther, "Team", "billing", "x", "y"), kpDecrypt(app)), // tag keys are not case sensitive
				kpDeny(kpTagged(kpRole, "team", "Billing"), kpDecrypt(app)),             // values are
				kpDeny(kpTagged(kpRole, "team", "ops"), kpDecrypt(app)),
				kpDeny(kpTagged(kpRole, "project", "billing"), kpDecrypt(app)),
				// A missing tag: the negated operator holds, so the Deny applies.
				kpDeny(kpRole, kpDecrypt(app)),
				kpDeny(kpNobody, kpDecrypt(nil)),
				// The Deny is for kms:Decrypt only.
				kpAllow(kpRole, kpEncrypt(app)),
				kpDeny(kpTagged(kpForeign, "team", "billing"), kpDecrypt(nil)), // the Allow does not name it
			},
		},
		{
			// "If the key is not present, evaluate the condition element as
			// true" (IAM User Guide, ...IfExists condition operators).
			name: "...IfExists: an absent key makes the condition true",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Decrypt"}, `{"StringEqualsIfExists":{"aws:PrincipalTag/team":"billing"}}`),
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, ""),
				kpStmt("Deny", kpRoleP, []string{"kms:Encrypt"}, `{"StringNotEqualsIfExists":{"aws:PrincipalTag/team":"billing"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpDecrypt(app)),
				kpAllow(kpTagged(kpRole, "team", "billing"), kpDecrypt(app)),
				kpDeny(kpTagged(kpRole, "team", "ops"), kpDecrypt(app)),
				kpDeny(kpRole, kpEncrypt(nil)),
				kpAllow(kpTagged(kpRole, "team", "billing"), kpEncrypt(nil)),
				kpDeny(kpTagged(kpRole, "team", "ops"), kpEncrypt(nil)),
			},
		},
		{
			name: "Allow on a principal tag (ABAC)",
			doc:  kpPolicy(kpStmt("Allow", `{"AWS":"arn:aws:iam::111122223333:root"}`, []string{"kms:Encrypt"}, `{"StringEquals":{"aws:PrincipalTag/Project":"Alpha"}}`)),
			calls: []kpCall{
				kpAllow(kpTagged(kpRole, "project", "Alpha"), kpEncrypt(nil)),
				kpDeny(kpTagged(kpRole, "Project", "Beta"), kpEncrypt(nil)),
				kpDeny(kpRole, kpEncrypt(nil)),
				kpDeny(kpTagged(kpForeign, "Project", "Alpha"), kpEncrypt(nil)),
			},
		},
		{
			name: "an explicit Deny overrides a grant",
			doc:  kpPolicy(kpStmt("Deny", kpRoleP, []string{"kms:Encrypt"}, `{"StringEquals":{"kms:EncryptionContext:Stage":"Restricted"}}`)),
			setup: func(t *testing.T, fx *kpFixture) {
				_, err := fx.r.CreateGrant(kpAdminCtx, kms.CreateGrantInput{KeyID: fx.key.KeyID, GranteePrincipal: kpRole.ARN, Operations: []kms.Op{kms.OpEncrypt}})
				require.NoError(t, err)
			},
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)), // by the grant alone
				kpAllow(kpRole, kpEncrypt(kpEC{"Stage": "Test"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Stage": "Restricted"})),
				kpDeny(kpRole, kpDecrypt(nil)), // not in the grant
				kpDeny(kpOther, kpEncrypt(nil)),
			},
		},

		// ---- Request parameters and key properties
		{
			name: "kms:EncryptionAlgorithm: only RSAES_OAEP_SHA_256 with an RSA key",
			spec: kms.RSA2048, usage: kms.EncryptDecrypt,
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt", "kms:Decrypt"}, ""),
				`{"Sid":"Allow only one encryption algorithm with this asymmetric KMS key","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*"],"Resource":"*","Condition":{"StringNotEquals":{"kms:EncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}}`),
			calls: []kpCall{
				kpAllow(kpRole, kpEncryptRSA(kms.RSAESOAEPSHA256)),
				kpDeny(kpRole, kpEncryptRSA(kms.RSAESOAEPSHA1)),
				kpAllow(kpRole, kpDecryptRSA(kms.RSAESOAEPSHA256)),
				kpDeny(kpRole, kpDecryptRSA(kms.RSAESOAEPSHA1)),
				kpAllow(kpAdmin, kpEncryptRSA(kms.RSAESOAEPSHA1)), // the Deny names the role only
			},
		},
		{
			name: "kms:EncryptionAlgorithm: SYMMETRIC_DEFAULT only (AllowOnlySymmetricAlgorithm), symmetric key",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, roleUse, ""),
				`{"Sid":"AllowOnlySymmetricAlgorithm","Effect":"Deny","Principal":"*","Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/*","Condition":{"StringNotEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}}`),
			calls: []kpCall{
				// The algorithm used counts even when the request names none.
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpDecrypt(app)),
				kpAllow(kpRole, kpReEncrypt(nil)),
				kpAllow(kpRole, kpGDK(nil)),
				kpAllow(kpRole, kpGDKNoPlaintext(nil)),
				kpAllow(kpRole, kpGDKPair(nil)),
				kpAllow(kpRole, kpDescribe),
			},
		},
		{
			name: "kms:EncryptionAlgorithm: SYMMETRIC_DEFAULT only (AllowOnlySymmetricAlgorithm), RSA key",
			spec: kms.RSA2048, usage: kms.EncryptDecrypt,
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, roleUse, ""),
				`{"Sid":"AllowOnlySymmetricAlgorithm","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/*","Condition":{"StringNotEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}}`),
			calls: []kpCall{
				kpDeny(kpRole, kpEncryptRSA(kms.RSAESOAEPSHA256)),
				kpDeny(kpRole, kpDecryptRSA(kms.RSAESOAEPSHA1)),
				kpAllow(kpRole, kpDescribe),
			},
		},
		{
			name: "kms:SigningAlgorithm StringLike RSASSA_PSS* (testers)",
			spec: kms.RSA2048, usage: kms.SignVerify,
			doc: kpPolicy(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":"kms:Sign","Resource":"*","Condition":{"StringLike":{"kms:SigningAlgorithm":"RSASSA_PSS*"}}}`,
				kpStmt("Allow", kpOtherP, []string{"kms:Verify", "kms:GetPublicKey"}, `{"StringEquals":{"kms:KeyUsage":"SIGN_VERIFY"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpSign(kms.RSASSAPSSSHA256)),
				kpAllow(kpRole, kpSign(kms.RSASSAPSSSHA512)),
				kpDeny(kpRole, kpSign(kms.RSASSAPKCS1V15SHA256)),
				kpDeny(kpRole, kpVerify(kms.RSASSAPSSSHA256)),
				kpDeny(kpOther, kpSign(kms.RSASSAPSSSHA256)),
				kpAllow(kpOther, kpVerify(kms.RSASSAPKCS1V15SHA384)),
				kpAllow(kpOther, kpGetPublicKey),
				kpDeny(kpRole, kpGetPublicKey),
			},
		},
		{
			name: "kms:MacAlgorithm: two statements (testers)",
			spec: kms.HMAC384, usage: kms.GenerateVerifyMac,
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:GenerateMac", "kms:VerifyMac"}, `{"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_384"}}`),
				kpStmt("Allow", kpRoleP, []string{"kms:GenerateMac", "kms:VerifyMac"}, `{"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_512"}}`),
				kpStmt("Allow", kpOtherP, []string{"kms:GenerateMac"}, `{"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_512"}}`),
				// An algorithm key of another kind is absent for MAC operations.
				kpStmt("Allow", `{"AWS":"arn:aws:iam::444455556666:root"}`, []string{"kms:GenerateMac"}, `{"StringEquals":{"kms:SigningAlgorithm":"HMAC_SHA_384"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpMac(kms.HMACSHA384)),
				kpDeny(kpOther, kpMac(kms.HMACSHA384)),
				kpDeny(kpForeign, kpMac(kms.HMACSHA384)),
			},
		},
		{
			name: "kms:KeyAgreementAlgorithm",
			spec: kms.ECCNISTP256, usage: kms.KeyAgreement,
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:DeriveSharedSecret"}, `{"StringEquals":{"kms:KeyAgreementAlgorithm":"ECDH"}}`),
				kpStmt("Allow", kpOtherP, []string{"kms:DeriveSharedSecret"}, `{"StringEquals":{"kms:EncryptionAlgorithm":"ECDH"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpDerive(kms.ECDH)),
				kpDeny(kpOther, kpDerive(kms.ECDH)),
			},
		},
		{
			name: "kms:KeySpec: Alice may describe symmetric keys (key policy overview example), symmetric key",
			doc:  kpPolicy(`{"Sid":"Describe the policy statement","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":"kms:DescribeKey","Resource":"*","Condition":{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT"}}}`),
			calls: []kpCall{
				kpAllow(kpRole, kpDescribe),
				kpDeny(kpRole, kpEncrypt(nil)),
			},
		},
		{
			name: "kms:KeySpec: Alice may describe symmetric keys, ECC key",
			spec: kms.ECCNISTP256, usage: kms.SignVerify,
			doc: kpPolicy(`{"Sid":"Describe the policy statement","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":"kms:DescribeKey","Resource":"*","Condition":{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT"}}}`),
			calls: []kpCall{
				kpDeny(kpRole, kpDescribe),
			},
		},
		{
			name: "kms:KeyUsage, kms:KeyOrigin and the deprecated kms:CustomerMasterKeySpec",
			spec: kms.ECCNISTP256, usage: kms.SignVerify,
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Sign", "kms:GetPublicKey"}, `{"StringEquals":{"kms:KeyUsage":"SIGN_VERIFY","kms:KeyOrigin":"AWS_KMS","kms:CustomerMasterKeySpec":"ECC_NIST_P256"}}`),
				kpStmt("Allow", kpOtherP, []string{"kms:Sign"}, `{"StringEquals":{"kms:KeyUsage":"ENCRYPT_DECRYPT"}}`),
				kpStmt("Allow", kpOtherP, []string{"kms:GetPublicKey"}, `{"StringEquals":{"kms:KeyOrigin":"EXTERNAL"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpSign(kms.ECDSASHA256)),
				kpAllow(kpRole, kpGetPublicKey),
				kpDeny(kpOther, kpSign(kms.ECDSASHA256)),
				kpDeny(kpOther, kpGetPublicKey),
			},
		},
		{
			name: "kms:RequestAlias: only through alias/finance-key",
			doc: kpPolicy(`{"Sid":"Key policy using a request alias condition","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":["kms:GenerateDataKey","kms:DescribeKey","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:RequestAlias":"alias/finance-key"}}}`,
				kpStmt("Allow", kpOtherP, []string{"kms:Encrypt"}, `{"StringLike":{"kms:RequestAlias":"alias/*finance*"}}`)),
			setup: func(t *testing.T, fx *kpFixture) {
				require.NoError(t, fx.r.CreateAlias(kpAdminCtx, "alias/finance-key", fx.key.KeyID))
				require.NoError(t, fx.r.CreateAlias(kpAdminCtx, "alias/other-key", fx.key.KeyID))
				require.NoError(t, fx.r.CreateAlias(kpAdminCtx, "alias/old-finance", fx.key.KeyID))
			},
			calls: []kpCall{
				kpAllow(kpRole, kpGDKVia("alias/finance-key", nil)),
				kpAllow(kpRole, kpGDKVia(kpByAliasARN, nil)),
				kpAllow(kpRole, kpDescribeVia("alias/finance-key")),
				kpAllow(kpRole, kpDecryptVia("alias/finance-key", app)),
				// The same key by another identifier does not satisfy it.
				kpDeny(kpRole, kpGDKVia("", nil)),
				kpDeny(kpRole, kpGDKVia(kpByARN, nil)),
				kpDeny(kpRole, kpGDKVia("alias/other-key", nil)),
				kpDeny(kpRole, kpDescribeVia("")),
				kpDeny(kpRole, kpDecryptVia("", app)), // the blob names the key by ID
				kpAllow(kpOther, kpEncryptVia("alias/old-finance", nil)),
				kpDeny(kpOther, kpEncryptVia("alias/other-key", nil)),
			},
		},
		{
			name: "kms:RequestAlias in ReEncrypt: each side by its own name",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:ReEncrypt*"}, `{"StringEquals":{"kms:RequestAlias":"alias/finance-key"}}`),
				kpStmt("Allow", kpOtherP, []string{"kms:ReEncryptFrom"}, `{"StringEquals":{"kms:RequestAlias":"alias/finance-key"}}`),
				kpStmt("Allow", kpOtherP, []string{"kms:ReEncryptTo"}, `{"Null":{"kms:RequestAlias":"true"}}`)),
			setup: func(t *testing.T, fx *kpFixture) {
				require.NoError(t, fx.r.CreateAlias(kpAdminCtx, "alias/finance-key", fx.key.KeyID))
			},
			calls: []kpCall{
				kpAllow(kpRole, kpReEncryptVia("alias/finance-key", "alias/finance-key")),
				kpAllow(kpRole, kpReEncryptVia(kpByAliasARN, "alias/finance-key")),
				kpDeny(kpRole, kpReEncryptVia("alias/finance-key", "")),
				kpDeny(kpRole, kpReEncryptVia("", "alias/finance-key")),
				kpAllow(kpOther, kpReEncryptVia("alias/finance-key", kpByARN)),
				kpDeny(kpOther, kpReEncryptVia("alias/finance-key", "alias/finance-key")),
			},
		},
		{
			name: "kms:GrantOperations, kms:GranteePrincipal and kms:GrantConstraintType on CreateGrant",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:CreateGrant"}, `{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","Decrypt"]},"StringEquals":{"kms:GranteePrincipal":"arn:aws:iam::111122223333:role/OtherRole"}}`),
				kpStmt("Allow", kpOtherP, []string{"kms:CreateGrant"}, `{"StringEquals":{"kms:GrantConstraintType":"EncryptionContextSubset"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpCreateGrant(kpOther.ARN, kms.OpEncrypt)),
				kpAllow(kpRole, kpCreateGrant(kpOther.ARN, kms.OpDecrypt, kms.OpEncrypt)),
				kpDeny(kpRole, kpCreateGrant(kpOther.ARN, kms.OpEncrypt, kms.OpDescribeKey)),
				kpDeny(kpRole, kpCreateGrant(kpForeign.ARN, kms.OpEncrypt)),
				kpDeny(kpOther, kpCreateGrant(kpRole.ARN, kms.OpEncrypt)), // no constraint
			},
		},

		// ---- Time
		{
			name: "aws:CurrentTime DateLessThan, on the ring's clock",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"DateLessThan":{"aws:CurrentTime":"2025-06-01T00:00:00Z"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				at(june.Add(-time.Nanosecond), kpAllow(kpRole, kpEncrypt(nil))),
				at(june, kpDeny(kpRole, kpEncrypt(nil))),
				at(june.Add(24*time.Hour), kpDeny(kpRole, kpEncrypt(nil))),
				at(start, kpAllow(kpRole, kpEncrypt(nil))),
			},
		},
		{
			name: "aws:CurrentTime DateGreaterThanEquals with a date, aws:EpochTime NumericLessThan",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"DateGreaterThanEquals":{"aws:CurrentTime":"2025-03-01"}}`),
				kpStmt("Allow", kpOtherP, []string{"kms:Encrypt"}, `{"NumericLessThan":{"aws:EpochTime":1748736000}}`), // 2025-06-01
				kpStmt("Allow", kpOtherP, []string{"kms:Decrypt"}, `{"DateLessThan":{"aws:EpochTime":"1748736000"}}`)),
			calls: []kpCall{
				kpDeny(kpRole, kpEncrypt(nil)),
				kpAllow(kpOther, kpEncrypt(nil)),
				kpAllow(kpOther, kpDecrypt(nil)),
				at(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), kpAllow(kpRole, kpEncrypt(nil))),
				at(june, kpDeny(kpOther, kpEncrypt(nil))),
				at(june, kpDeny(kpOther, kpDecrypt(nil))),
				at(june, kpAllow(kpRole, kpEncrypt(nil))),
			},
		},

		// ---- NotPrincipal, NotAction, Resource
		{
			name: "NotPrincipal in a Deny: everyone but the named roles",
			doc: kpPolicy(
				kpStmt("Allow", `"*"`, []string{"kms:Encrypt"}, ""),
				`{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:role/KMSAdminRole","arn:aws:iam::111122223333:role/ExampleRole"]},"Action":"kms:*","Resource":"*"}`),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpDeny(kpOther, kpEncrypt(nil)),
				kpDeny(kpForeign, kpEncrypt(nil)),
				kpDeny(kpNobody, kpEncrypt(nil)),
				kpDeny(kpRole, kpDecrypt(nil)), // NotPrincipal does not allow
			},
		},
		{
			// In a NotPrincipal the account root is the account entity
			// alone, as in AWS (the documented "everyone but bob" pattern
			// lists bob and the root): it exempts no other principal.
			name: "NotPrincipal with the account root exempts only the root",
			doc: kpPolicy(
				kpStmt("Allow", `"*"`, []string{"kms:Encrypt"}, ""),
				`{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:role/ExampleRole","arn:aws:iam::111122223333:role/KMSAdminRole","arn:aws:iam::111122223333:root"]},"Action":"kms:*","Resource":"*"}`),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpDeny(kpAcctOnly, kpEncrypt(nil)),
				kpDeny(kpOther, kpEncrypt(nil)),
				kpDeny(kpForeign, kpEncrypt(nil)),
				kpDeny(kpNobody, kpEncrypt(nil)),
			},
		},
		{
			name: "NotAction in an Allow",
			doc:  kpPolicy(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"NotAction":["kms:Decrypt","kms:ReEncrypt*","kms:*Policy"],"Resource":"*"}`),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpGDK(nil)),
				kpAllow(kpRole, kpDescribe),
				kpAllow(kpRole, kpListGrants),
				kpDeny(kpRole, kpDecrypt(nil)),
				kpDeny(kpRole, kpReEncrypt(nil)),
				kpDeny(kpRole, kpGetPolicy),
				kpDeny(kpOther, kpEncrypt(nil)),
			},
		},
		{
			name: "NotAction in a Deny: nothing but Encrypt and Describe*",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:*"}, ""),
				`{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"NotAction":["kms:Encrypt","kms:Describe*"],"Resource":"*"}`),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpDescribe),
				kpDeny(kpRole, kpDecrypt(nil)),
				kpDeny(kpRole, kpGDK(nil)),
				kpDeny(kpRole, kpGetPolicy),
				kpDeny(kpRole, kpDisable),
			},
		},
		{
			name: "Resource: the key's ARN, ARN patterns and NotResource",
			doc: kpPolicy(
				`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":"kms:Encrypt","Resource":"{{KEY_ARN}}"}`,
				`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":"kms:DescribeKey","Resource":["arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000","arn:aws:kms:*:111122223333:key/*"]}`,
				`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":"kms:Decrypt","Resource":"arn:aws:kms:eu-west-1:111122223333:key/*"}`,
				`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"},"Action":"kms:GenerateDataKey","Resource":"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"}`,
				`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/OtherRole"},"Action":"kms:Encrypt","NotResource":"{{KEY_ARN}}"}`,
				`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/OtherRole"},"Action":"kms:DescribeKey","NotResource":"arn:aws:kms:us-east-1:111122223333:alias/*"}`,
				`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/OtherRole"},"Action":"kms:GenerateDataKey","Resource":"arn:aws:kms:us-east-1:111122223333:alias/*"}`),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpDescribe),
				kpDeny(kpRole, kpDecrypt(nil)), // another region
				kpDeny(kpRole, kpGDK(nil)),     // another key
				kpDeny(kpOther, kpEncrypt(nil)),
				kpAllow(kpOther, kpDescribe),
				kpDeny(kpOther, kpGDK(nil)), // a key is never its alias
			},
		},

		// ---- Actions
		{
			name: "Action wildcards: kms:Generate* and kms:Describe*",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Generate*", "kms:Describe*"}, "")),
			calls: []kpCall{
				kpAllow(kpRole, kpGDK(nil)),
				kpAllow(kpRole, kpGDKNoPlaintext(nil)),
				kpAllow(kpRole, kpGDKPair(nil)),
				kpAllow(kpRole, kpDescribe),
				kpDeny(kpRole, kpEncrypt(nil)),
				kpDeny(kpRole, kpDecrypt(nil)),
			},
		},
		{
			name: "Action wildcards: ? and a wildcard in the middle",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:?ncrypt", "kms:Get*Policy", "kms:Re*To"}, "")),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpDeny(kpRole, kpDecrypt(nil)),
				kpAllow(kpRole, kpGetPolicy),
				kpDeny(kpRole, kpDescribe),
				kpDeny(kpRole, kpReEncrypt(nil)), // ReEncryptTo alone: ReEncryptFrom is needed too
			},
		},
		{
			name: "ReEncrypt takes kms:ReEncryptFrom and kms:ReEncryptTo",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:ReEncryptFrom"}, ""), kpStmt("Allow", kpOtherP, []string{"kms:ReEncryptFrom", "kms:ReEncryptTo"}, "")),
			calls: []kpCall{
				kpDeny(kpRole, kpReEncrypt(nil)),
				kpAllow(kpOther, kpReEncrypt(app)),
				kpDeny(kpOther, kpDecrypt(app)),
			},
		},
		{
			name: "Action names are not case sensitive",
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"KMS:ENCRYPT", "kms:generatedatakey", "Kms:DeScRiBeKeY", "kms:REENCRYPT*"}, "")),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpGDK(nil)),
				kpAllow(kpRole, kpDescribe),
				kpAllow(kpRole, kpReEncrypt(nil)),
				kpDeny(kpRole, kpDecrypt(nil)),
				kpDeny(kpRole, kpGDKNoPlaintext(nil)),
			},
		},
		{
			name: `Action "*" and another service's actions`,
			doc:  kpPolicy(kpStmt("Allow", kpRoleP, []string{"*"}, ""), kpStmt("Allow", kpOtherP, []string{"s3:*", "kmsx:Encrypt", "iam:Encrypt"}, "")),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpGetPolicy),
				kpDeny(kpOther, kpEncrypt(nil)),
			},
		},

		// ---- Conditions on keys no request has
		{
			name: "Bool on a key no request has, and BoolIfExists and Null on one a request may lack",
			doc: kpPolicy(
				kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, `{"Bool":{"aws:SecureTransport":"true"}}`),
				kpStmt("Allow", kpRoleP, []string{"kms:Decrypt"}, `{"StringEqualsIfExists":{"aws:PrincipalTag/team":"billing"}}`),
				kpStmt("Allow", kpRoleP, []string{"kms:GenerateDataKey"}, `{"Null":{"aws:PrincipalTag/team":"true"}}`)),
			calls: []kpCall{
				kpDeny(kpRole, kpEncrypt(nil)),
				kpAllow(kpRole, kpDecrypt(nil)),
				kpAllow(kpRole, kpGDK(nil)),
			},
		},
		{
			name: "every condition of a statement must hold",
			doc: kpPolicy(kpStmt("Allow", `"*"`, []string{"kms:Encrypt"},
				`{"StringEquals":{"kms:CallerAccount":"111122223333","kms:EncryptionContext:Tenant":"a"},"StringLike":{"aws:PrincipalArn":"*Example*"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`)),
			calls: []kpCall{
				kpAllow(kpRole, kpEncrypt(kpEC{"Tenant": "a"})),
				kpDeny(kpRole, kpEncrypt(kpEC{"Tenant": "b"})),
				kpDeny(kpOther, kpEncrypt(kpEC{"Tenant": "a"})),
				kpDeny(kpForeign, kpEncrypt(kpEC{"Tenant": "a"})),
				at(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), kpDeny(kpRole, kpEncrypt(kpEC{"Tenant": "a"}))),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { kpRun(t, tc) })
	}

	t.Run("a new key policy takes effect at once", func(t *testing.T) {
		r := kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{}})
		key, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{Policy: kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:Encrypt"}, ""))})
		require.NoError(t, err)
		fx := &kpFixture{r: r, key: key}
		check := func(who kms.Principal, op kpOp, allow bool) {
			t.Helper()
			kpCheck(t, r, op.run(t, fx, kpCtx(who)), allow, op.op, who)
		}
		check(kpRole, kpEncrypt(nil), true)
		check(kpOther, kpEncrypt(nil), false)
		require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: kpPolicy(kpStmt("Allow", kpOtherP, []string{"kms:Encrypt"}, ""))}))
		check(kpRole, kpEncrypt(nil), false)
		check(kpOther, kpEncrypt(nil), true)
		require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: kms.DefaultKeyPolicy(kms.DefaultAccount)}))
		check(kpRole, kpEncrypt(nil), true)
		check(kpForeign, kpEncrypt(nil), false)
	})

	t.Run("operations on no key", func(t *testing.T) {
		type unkeyed struct {
			op  kms.Op
			run func(r *kmstest.Ring, ctx context.Context) error
		}
		ops := []unkeyed{
			{kms.OpCreateKey, func(r *kmstest.Ring, ctx context.Context) error {
				_, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{BypassPolicyLockoutSafetyCheck: true})
				return err
			}},
			{kms.OpListKeys, func(r *kmstest.Ring, ctx context.Context) error {
				_, err := r.ListKeys(ctx, kms.ListKeysInput{})
				return err
			}},
			{kms.OpListAliases, func(r *kmstest.Ring, ctx context.Context) error {
				_, err := r.ListAliases(ctx, kms.ListAliasesInput{})
				return err
			}},
			{kms.OpGenerateRandom, func(r *kmstest.Ring, ctx context.Context) error {
				_, err := r.GenerateRandom(ctx, 16)
				return err
			}},
			{kms.OpListRetirableGrants, func(r *kmstest.Ring, ctx context.Context) error {
				_, err := r.ListRetirableGrants(ctx, kms.ListRetirableGrantsInput{RetiringPrincipal: kpRole.ARN})
				return err
			}},
		}
		denyAll := kms.PolicyFunc(func(context.Context, kms.Request) error { return errors.New("no") })
		var seen []kms.Request
		onlySymmetric := kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
			seen = append(seen, req)
			if req.Op == kms.OpCreateKey && req.KeySpec != kms.SymmetricDefault {
				return errors.New("symmetric keys only")
			}
			return nil
		})
		for _, eng := range []struct {
			name    string
			policy  kms.KeyPolicies
			allowed map[string]bool // by kpName
		}{
			{"Unkeyed nil: the ring's account only", kms.KeyPolicies{}, map[string]bool{"ExampleRole": true, "root": true, "account-111122223333": true}},
			{"Unkeyed AllowAll", kms.KeyPolicies{Unkeyed: kms.AllowAll{}}, map[string]bool{"ExampleRole": true, "root": true, "account-111122223333": true, "444455556666:ExampleRole": true, "no-principal": true}},
			{"Unkeyed denies", kms.KeyPolicies{Unkeyed: denyAll}, map[string]bool{}},
		} {
			t.Run(eng.name, func(t *testing.T) {
				r := kmstest.New(t, kms.Config{Policy: eng.policy})
				for _, who := range []kms.Principal{kpRole, kpRoot, kpAcctOnly, kpForeign, kpNobody} {
					for _, op := range ops {
						err := op.run(r, kpCtx(who))
						kpCheck(t, r, err, eng.allowed[kpName(who)], op.op, who)
					}
				}
			})
		}
		t.Run("Unkeyed sees CreateKey's key spec", func(t *testing.T) {
			r := kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{Unkeyed: onlySymmetric}})
			_, err := r.KeyRing.CreateKey(kpCtx(kpForeign), kms.CreateKeyInput{KeySpec: kms.ECCNISTP256, KeyUsage: kms.SignVerify, BypassPolicyLockoutSafetyCheck: true})
			kpCheck(t, r, err, false, kms.OpCreateKey, kpForeign)
			_, err = r.KeyRing.CreateKey(kpCtx(kpForeign), kms.CreateKeyInput{BypassPolicyLockoutSafetyCheck: true})
			kpCheck(t, r, err, true, kms.OpCreateKey, kpForeign)
			require.Len(t, seen, 2)
			for _, req := range seen {
				assert.Equal(t, kpForeign.ARN, req.Principal.ARN)
				assert.Empty(t, req.KeyID)
				assert.Empty(t, req.KeyPolicy)
			}
			assert.Equal(t, kms.ECCNISTP256, seen[0].KeySpec)
			assert.Equal(t, kms.SignVerify, seen[0].KeyUsage)
			assert.Equal(t, kms.OriginAWSKMS, seen[1].KeyOrigin)
		})
	})

	t.Run("AWS KMS differs", func(t *testing.T) {
		t.Run("a Deny on a documented condition key pocketkms never sets", func(t *testing.T) {
			// AWS KMS Developer Guide, AWS KMS condition keys and ABAC:
			// kms:MessageType (Sign, Verify), kms:BypassPolicyLockoutSafetyCheck
			// (PutKeyPolicy), kms:DataKeyPairSpec (GenerateDataKeyPair*) and
			// aws:ResourceTag/tag-key. ValidateKeyPolicy accepts them, but
			// no request carries them, so a Deny conditioned on them never
			// applies: the policy fails open.
			allowRole := kpStmt("Allow", kpRoleP, []string{"kms:*"}, "")
			kpRun(t, kpCase{
				spec: kms.ECCNISTP256, usage: kms.SignVerify,
				doc: kpPolicy(allowRole,
					kpStmt("Deny", kpRoleP, []string{"kms:Sign"}, `{"StringEquals":{"kms:MessageType":"DIGEST"}}`),
					kpStmt("Deny", kpRoleP, []string{"kms:PutKeyPolicy"}, `{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":true}}`)),
				calls: []kpCall{
					kpAllow(kpRole, kpSign(kms.ECDSASHA256)),
					kpDeny(kpRole, kpSignDigest),
					kpDeny(kpRole, kpPutPolicyBypass),
				},
			})
			kpRun(t, kpCase{
				doc: kpPolicy(allowRole,
					kpStmt("Deny", kpRoleP, []string{"kms:GenerateDataKeyPair*"}, `{"StringLike":{"kms:DataKeyPairSpec":"RSA*"}}`),
					kpStmt("Deny", kpRoleP, []string{"kms:Decrypt"}, `{"StringEquals":{"aws:ResourceTag/Stage":"Restricted"}}`)),
				setup: func(t *testing.T, fx *kpFixture) {
					require.NoError(t, fx.r.TagResource(kpAdminCtx, fx.key.KeyID, []kms.Tag{{TagKey: "Stage", TagValue: "Restricted"}}))
				},
				calls: []kpCall{
					kpAllow(kpRole, kpGDKPair(nil)),
					kpDeny(kpRole, kpGDKPairRSA),
					kpDeny(kpRole, kpDecrypt(nil)),
				},
			})
		})
		t.Run("kms:EncryptionAlgorithm is not a GetParametersForImport key", func(t *testing.T) {
			// AWS KMS Developer Guide, kms:EncryptionAlgorithm: its API
			// operations are Decrypt, Encrypt, GenerateDataKey*,
			// GenerateDataKeyPair* and ReEncrypt. The wrapping algorithm of
			// GetParametersForImport is kms:WrappingAlgorithm, so a Deny on
			// the weak RSAES_OAEP_SHA_1 encryption algorithm must not stop
			// an import.
			kpRun(t, kpCase{
				origin: kms.OriginExternal,
				doc: kpPolicy(
					kpStmt("Allow", kpRoleP, []string{"kms:GetParametersForImport"}, ""),
					kpStmt("Deny", kpRoleP, []string{"kms:*"}, `{"StringEquals":{"kms:EncryptionAlgorithm":"RSAES_OAEP_SHA_1"}}`),
					kpStmt("Allow", kpOtherP, []string{"kms:GetParametersForImport"}, `{"StringEquals":{"kms:EncryptionAlgorithm":"RSA_AES_KEY_WRAP_SHA_256"}}`)),
				calls: []kpCall{
					kpAllow(kpRole, kpGetParameters(kms.WrapRSAESOAEPSHA1)),
					kpDeny(kpOther, kpGetParameters(kms.WrapRSAAESKeyWrapSHA256)),
				},
			})
		})
	})
}

// ------------------------------------------------------------ 3. lockout

func TestPutKeyPolicyLockout(t *testing.T) {
	otherKeyARN := "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"
	root := `{"AWS":"arn:aws:iam::111122223333:root"}`
	type doc struct{ name, doc string }
	// Policies that would stop kpAdmin from calling PutKeyPolicy again.
	lockouts := []doc{
		{"names another role only", kpDoc(kpStmt("Allow", kpRoleP, []string{"kms:*"}, ""))},
		{"the caller may not call PutKeyPolicy", kpDoc(kpStmt("Allow", kpAdminP, []string{"kms:Encrypt", "kms:Get*", "kms:Describe*"}, ""), kpStmt("Allow", kpRoleP, []string{"kms:*"}, ""))},
		{"an explicit Deny", kpDoc(kpStmt("Allow", root, []string{"kms:*"}, ""), kpStmt("Deny", kpAdminP, []string{"kms:PutKeyPolicy"}, ""))},
		{"an explicit Deny on kms:Put*", kpPolicy(kpStmt("Deny", `"*"`, []string{"kms:Put*"}, ""))},
		{"a Deny with NotPrincipal that leaves the caller in", kpDoc(
			`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"},"Action":"kms:*","Resource":"*"}`,
			`{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:role/Other"},"Action":"kms:PutKeyPolicy","Resource":"*"}`)},
		{"NotAction excludes PutKeyPolicy", kpDoc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"},"NotAction":"kms:Put*","Resource":"*"}`)},
		{"a condition PutKeyPolicy never meets", kpDoc(kpStmt("Allow", kpAdminP, []string{"kms:*"}, `{"StringEquals":{"kms:EncryptionContext:Department":"IT"}}`))},
		{"a principal tag the caller lacks", kpDoc(kpStmt("Allow", root, []string{"kms:*"}, `{"StringEquals":{"aws:PrincipalTag/role":"admin"}}`))},
		{"a date already past", kpDoc(kpStmt("Allow", kpAdminP, []string{"kms:*"}, `{"DateLessThan":{"aws:CurrentTime":"2024-12-31T23:59:59Z"}}`))},
		{"another key's ARN", kpDoc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"},"Action":"kms:*","Resource":"` + otherKeyARN + `"}`)},
		{"another account", kms.DefaultKeyPolicy(kpForeignAccount)},
		{"a Service principal", kpDoc(kpStmt("Allow", `{"Service":"kms.amazonaws.com"}`, []string{"kms:*"}, ""))},
	}
	// Policies that still let kpAdmin call PutKeyPolicy.
	safe := []doc{
		{"the default key policy", kms.DefaultKeyPolicy(kms.DefaultAccount)},
		{"the caller by ARN, kms:Put*", kpDoc(kpStmt("Allow", kpAdminP, []string{"kms:Put*"}, ""))},
		{"the caller's account by ID", kpDoc(kpStmt("Allow", `{"AWS":"111122223333"}`, []string{"kms:PutKeyPolicy"}, ""))},
		{`Principal "*" with aws:PrincipalArn`, kpDoc(kpStmt("Allow", `"*"`, []string{"kms:PutKeyPolicy"}, `{"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/KMSAdminRole"}}`))},
		{"kms:CallerAccount", kpDoc(kpStmt("Allow", `{"AWS":"*"}`, []string{"kms:*"}, `{"StringEquals":{"kms:CallerAccount":"111122223333"}}`))},
		{"NotAction that spares PutKeyPolicy", kpDoc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"},"NotAction":"kms:Encrypt","Resource":"*"}`)},
		{"a Deny of something else", kpPolicy(kpStmt("Deny", kpAdminP, []string{"kms:Decrypt", "kms:ScheduleKeyDeletion"}, ""))},
		{"a date in the future", kpDoc(kpStmt("Allow", kpAdminP, []string{"kms:*"}, `{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`))},
		{"the key's own ARN", kpDoc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"},"Action":"kms:PutKeyPolicy","Resource":"{{KEY_ARN}}"}`)},
		{"an ARN pattern", kpDoc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"},"Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/*"}`)},
	}
	forKey := func(d string, m *kms.KeyMetadata) string { return strings.ReplaceAll(d, "{{KEY_ARN}}", m.Arn) }

	// requireLockout checks a refusal by the lockout check.
	requireLockout := func(t *testing.T, r *kmstest.Ring, err error, op kms.Op) {
		t.Helper()
		requireOpErr(t, err, kms.ErrMalformedPolicy, op, anyKeyID)
		assert.Equal(t, "MalformedPolicyDocumentException", kms.ErrorCode(err))
		assert.NotErrorIs(t, err, kms.ErrAccessDenied)
		var pe *kms.PolicyError
		require.ErrorAs(t, err, &pe)
		assert.Zero(t, pe.Statement)
		assert.Contains(t, pe.Reason, "PutKeyPolicy")
		assert.Contains(t, pe.Reason, kpAdmin.ARN, "the refusal names the caller")
		ev, ok := r.Events.Last()
		require.True(t, ok)
		assert.Equal(t, op, ev.Op)
		assert.Equal(t, kms.OutcomeFailed, ev.Outcome)
		assert.Equal(t, "MalformedPolicyDocumentException", ev.ErrorCode)
	}

	for _, engine := range []struct {
		name   string
		policy kms.Policy
	}{{"KeyPolicies", kms.KeyPolicies{}}, {"*KeyPolicies", &kms.KeyPolicies{}}} {
		t.Run("PutKeyPolicy/"+engine.name, func(t *testing.T) {
			r := kmstest.New(t, kms.Config{Policy: engine.policy})
			for _, d := range lockouts {
				t.Run(d.name, func(t *testing.T) {
					require.NoError(t, kms.ValidateKeyPolicy(d.doc), "a well-formed document")
					key, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{})
					require.NoError(t, err)
					err = r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: d.doc})
					requireLockout(t, r, err, kms.OpPutKeyPolicy)
					got, err := r.GetKeyPolicy(kpAdminCtx, key.KeyID, "")
					require.NoError(t, err)
					require.Equal(t, kms.DefaultKeyPolicy(kms.DefaultAccount), got, "the refused policy was stored")
					kpRoundTrip(t, r.KeyRing, kpAdminCtx, key.KeyID)

					// With the check bypassed the policy is put, and the
					// check was right: the caller is locked out.
					require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: d.doc, BypassPolicyLockoutSafetyCheck: true}))
					err = r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: kms.DefaultKeyPolicy(kms.DefaultAccount), BypassPolicyLockoutSafetyCheck: true})
					kpCheck(t, r, err, false, kms.OpPutKeyPolicy, kpAdmin)
				})
			}
			for _, d := range safe {
				t.Run(d.name, func(t *testing.T) {
					key, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{})
					require.NoError(t, err)
					doc := forKey(d.doc, key)
					require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: doc}))
					// The check was right: the caller may put it again.
					require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: doc}))
				})
			}
			t.Run("the caller is the one checked", func(t *testing.T) {
				// The role may put a policy that names the role only; the
				// admin may not.
				key, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{})
				require.NoError(t, err)
				roleOnly := kpDoc(kpStmt("Allow", kpRoleP, []string{"kms:*"}, ""))
				requireLockout(t, r, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: roleOnly}), kms.OpPutKeyPolicy)
				require.NoError(t, r.PutKeyPolicy(kpCtx(kpRole), kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: roleOnly}))
				got, err := r.GetKeyPolicy(kpCtx(kpRole), key.KeyID, "default")
				require.NoError(t, err)
				require.Equal(t, roleOnly, got)
				// Authorization comes first: the admin, locked out now, is
				// denied before any lockout check.
				err = r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: roleOnly})
				kpCheck(t, r, err, false, kms.OpPutKeyPolicy, kpAdmin)
				// A caller with no principal only passes Principal "*".
				anyone := kpDoc(kpStmt("Allow", `"*"`, []string{"kms:*"}, ""))
				require.NoError(t, r.PutKeyPolicy(kpCtx(kpRole), kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: anyone}))
				err = r.PutKeyPolicy(kpCtx(kpNobody), kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: kms.DefaultKeyPolicy(kms.DefaultAccount)})
				requireOpErr(t, err, kms.ErrMalformedPolicy, kms.OpPutKeyPolicy, anyKeyID)
				require.NoError(t, r.PutKeyPolicy(kpCtx(kpNobody), kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: anyone}))
			})
		})

		t.Run("CreateKey/"+engine.name, func(t *testing.T) {
			r := kmstest.New(t, kms.Config{Policy: engine.policy})
			count := func() int {
				t.Helper()
				out, err := r.ListKeys(kpAdminCtx, kms.ListKeysInput{})
				require.NoError(t, err)
				return len(out.Keys)
			}
			for _, d := range lockouts {
				t.Run(d.name, func(t *testing.T) {
					before := count()
					m, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{Policy: d.doc})
					require.Nil(t, m)
					requireLockout(t, r, err, kms.OpCreateKey)
					require.Equal(t, before, count(), "a refused CreateKey made a key")

					m, err = r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{Policy: d.doc, BypassPolicyLockoutSafetyCheck: true})
					require.NoError(t, err)
					require.Equal(t, before+1, count())
					err = r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: m.KeyID, Policy: kms.DefaultKeyPolicy(kms.DefaultAccount), BypassPolicyLockoutSafetyCheck: true})
					kpCheck(t, r, err, false, kms.OpPutKeyPolicy, kpAdmin)
				})
			}
			for _, d := range safe {
				if strings.Contains(d.doc, "{{KEY_ARN}}") {
					continue // no ARN before the key exists
				}
				t.Run(d.name, func(t *testing.T) {
					m, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{Policy: d.doc})
					require.NoError(t, err)
					require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: m.KeyID, Policy: d.doc}))
				})
			}
		})
	}

	t.Run("AllowAll: no lockout check", func(t *testing.T) {
		for _, policy := range []kms.Policy{nil, kms.AllowAll{}} {
			r := kmstest.New(t, kms.Config{Policy: policy})
			for _, who := range []kms.Principal{kpAdmin, kpNobody} {
				ctx := kpCtx(who)
				for _, d := range lockouts {
					key, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Policy: d.doc})
					require.NoError(t, err, d.name)
					got, err := r.GetKeyPolicy(ctx, key.KeyID, "default")
					require.NoError(t, err)
					require.Equal(t, d.doc, got)
					other := lockouts[(slices.IndexFunc(lockouts, func(x doc) bool { return x.name == d.name })+1)%len(lockouts)].doc
					require.NoError(t, r.PutKeyPolicy(ctx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: other}), d.name)
					got, err = r.GetKeyPolicy(ctx, key.KeyID, "")
					require.NoError(t, err)
					require.Equal(t, other, got)
					// The key policy does not govern the ring's use.
					kpRoundTrip(t, r.KeyRing, ctx, key.KeyID)
				}
			}
		}
	})

	t.Run("GetKeyPolicy, ListKeyPolicies and policy names", func(t *testing.T) {
		for _, engine := range []struct {
			name   string
			policy kms.Policy
		}{{"AllowAll", nil}, {"KeyPolicies", kms.KeyPolicies{}}} {
			t.Run(engine.name, func(t *testing.T) {
				r := kmstest.New(t, kms.Config{Policy: engine.policy})
				key, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{})
				require.NoError(t, err)
				// A key created with no policy has AWS's default one.
				got, err := r.GetKeyPolicy(kpAdminCtx, key.KeyID, "default")
				require.NoError(t, err)
				require.Equal(t, kms.DefaultKeyPolicy(kms.DefaultAccount), got)
				require.NoError(t, kms.ValidateKeyPolicy(got))

				// What is put is returned byte for byte.
				odd := "  {\n\t\"Statement\" : [ " + kpAdminStmt + " ] ,\"Version\":\"2012-10-17\"}\r\n"
				require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: odd}))
				for _, name := range []string{key.KeyID, key.Arn} {
					got, err = r.GetKeyPolicy(kpAdminCtx, name, "default")
					require.NoError(t, err)
					require.Equal(t, odd, got)
				}
				require.NoError(t, r.CreateAlias(kpAdminCtx, "alias/policy-test", key.KeyID))
				got, err = r.GetKeyPolicy(kpAdminCtx, "alias/policy-test", "")
				require.NoError(t, err)
				require.Equal(t, odd, got)

				names, err := r.ListKeyPolicies(kpAdminCtx, key.KeyID)
				require.NoError(t, err)
				require.Equal(t, []string{"default"}, names)
				ev, _ := r.Events.Last()
				assert.Equal(t, kms.OpListKeyPolicies, ev.Op)
				assert.Equal(t, key.KeyID, ev.KeyID)

				for _, bad := range []string{"Default", "DEFAULT", "default ", "other", "key-default-1", "*"} {
					_, err := r.GetKeyPolicy(kpAdminCtx, key.KeyID, bad)
					requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpGetKeyPolicy, anyKeyID)
					assert.Equal(t, "ValidationException", kms.ErrorCode(err))
					err = r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, PolicyName: bad, Policy: kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:*"}, ""))})
					requireOpErr(t, err, kms.ErrInvalidArgument, kms.OpPutKeyPolicy, anyKeyID)
					assert.Equal(t, "ValidationException", kms.ErrorCode(err))
				}
				got, err = r.GetKeyPolicy(kpAdminCtx, key.KeyID, "")
				require.NoError(t, err)
				require.Equal(t, odd, got, "a refused policy name changed the policy")
				require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, PolicyName: "default", Policy: kpMinimal, BypassPolicyLockoutSafetyCheck: true}))

				// Unknown keys.
				missing := "00000000-0000-4000-8000-000000000000"
				_, err = r.GetKeyPolicy(kpAdminCtx, missing, "default")
				requireOpErr(t, err, kms.ErrNotFound, kms.OpGetKeyPolicy, missing)
				_, err = r.ListKeyPolicies(kpAdminCtx, missing)
				requireOpErr(t, err, kms.ErrNotFound, kms.OpListKeyPolicies, missing)
				err = r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: missing, Policy: kpMinimal})
				requireOpErr(t, err, kms.ErrNotFound, kms.OpPutKeyPolicy, missing)
			})
		}
		t.Run("another account's default policy", func(t *testing.T) {
			r := kmstest.New(t, kms.Config{Account: kpForeignAccount, Policy: kms.KeyPolicies{}})
			key, err := r.KeyRing.CreateKey(kpCtx(kpForeign), kms.CreateKeyInput{})
			require.NoError(t, err)
			got, err := r.GetKeyPolicy(kpCtx(kpForeign), key.KeyID, "")
			require.NoError(t, err)
			require.Equal(t, kms.DefaultKeyPolicy(kpForeignAccount), got)
			_, err = r.GetKeyPolicy(kpAdminCtx, key.KeyID, "")
			kpCheck(t, r, err, false, kms.OpGetKeyPolicy, kpAdmin)
		})
		t.Run("KeyPolicies governs the policy operations", func(t *testing.T) {
			r := kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{}})
			doc := kpPolicy(kpStmt("Allow", kpRoleP, []string{"kms:ListKeyPolicies"}, ""), kpStmt("Allow", kpOtherP, []string{"kms:GetKeyPolicy"}, ""))
			key, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{Policy: doc})
			require.NoError(t, err)
			_, err = r.ListKeyPolicies(kpCtx(kpRole), key.KeyID)
			kpCheck(t, r, err, true, kms.OpListKeyPolicies, kpRole)
			_, err = r.GetKeyPolicy(kpCtx(kpRole), key.KeyID, "")
			kpCheck(t, r, err, false, kms.OpGetKeyPolicy, kpRole)
			_, err = r.ListKeyPolicies(kpCtx(kpOther), key.KeyID)
			kpCheck(t, r, err, false, kms.OpListKeyPolicies, kpOther)
			got, err := r.GetKeyPolicy(kpCtx(kpOther), key.KeyID, "")
			kpCheck(t, r, err, true, kms.OpGetKeyPolicy, kpOther)
			require.Equal(t, doc, got)
			err = r.PutKeyPolicy(kpCtx(kpOther), kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: doc})
			kpCheck(t, r, err, false, kms.OpPutKeyPolicy, kpOther)
			_, err = r.ListKeyPolicies(kpCtx(kpForeign), key.KeyID)
			kpCheck(t, r, err, false, kms.OpListKeyPolicies, kpForeign)
		})
	})

	t.Run("AWS KMS differs", func(t *testing.T) {
		t.Run("the check ignores the key's properties", func(t *testing.T) {
			// PutKeyPolicy: "The key policy must allow the calling principal
			// to make a subsequent PutKeyPolicy request on the KMS key." A
			// condition on kms:KeyUsage holds for every request on this key,
			// PutKeyPolicy included, yet the check evaluates the policy
			// without the key's spec, usage and origin.
			r := kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{}})
			doc := kpDoc(kpStmt("Allow", kpAdminP, []string{"kms:*"}, `{"StringEquals":{"kms:KeyUsage":"ENCRYPT_DECRYPT"}}`))
			key, err := r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{Policy: doc, BypassPolicyLockoutSafetyCheck: true})
			require.NoError(t, err)
			kpRoundTrip(t, r.KeyRing, kpAdminCtx, key.KeyID) // the condition holds
			// The admin is allowed to call PutKeyPolicy, and to put this
			// very policy back.
			require.NoError(t, r.PutKeyPolicy(kpAdminCtx, kms.PutKeyPolicyInput{KeyID: key.KeyID, Policy: doc}))
			_, err = r.KeyRing.CreateKey(kpAdminCtx, kms.CreateKeyInput{Policy: doc})
			require.NoError(t, err)
		})
		t.Run("CreateKey without a Policy", func(t *testing.T) {
			// CreateKey: the lockout criteria apply "If you provide a key
			// policy"; with none, AWS KMS attaches the default key policy.
			// Here a caller whom Unkeyed lets create keys, but who is not
			// of the ring's account, gets MalformedPolicyDocumentException
			// for a request that holds no policy document.
			r := kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{Unkeyed: kms.AllowAll{}}})
			for _, who := range []kms.Principal{kpForeign, kpNobody} {
				_, err := r.KeyRing.CreateKey(kpCtx(who), kms.CreateKeyInput{})
				require.NoError(t, err, kpName(who))
			}
		})
	})
}

// ------------------------------------------------------------ 4. fuzzing

// FuzzParseKeyPolicy feeds arbitrary documents to ValidateKeyPolicy: it
// must never panic, and must accept a document or refuse it with a
// *PolicyError matching ErrMalformedPolicy.
func FuzzParseKeyPolicy(f *testing.F) {
	for _, d := range kpValidDocs() {
		f.Add(d.doc)
	}
	for _, d := range kpBadDocs() {
		f.Add(d.doc)
	}
	for _, d := range []string{
		kpPolicy(`{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:role/KMSAdminRole"]},"NotAction":"kms:Encrypt","NotResource":"arn:aws:kms:*:111122223333:key/*"}`),
		kpPolicy(kpStmt("Allow", `"*"`, []string{"kms:*"}, `{"ForAnyValue:StringLike":{"kms:EncryptionContextKeys":["a*?","*"]},"NullIfExists":{"x:y":"true"}}`)),
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"DateEquals":{"aws:CurrentTime":["2025-01-01T00:00:00.123456789Z","1735689600","2025-01-01"]}}}}`,
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"NumericEquals":{"aws:EpochTime":[1e308,"-0","0x10","1_000"]}}}}`,
		`{"Statement":[{"Sid":"\u00e9\ud83d\udd11\ud800","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`,
		`{"Statement":{}}`, `{"Statement":null}`, `{"Statement":"x"}`, `{"Statement":[{"Effect":"Allow","Principal":{"AWS":null}}]}`,
		`{`, `}`, `[`, `"`, `{"a":`, `{"Statement":[` + strings.Repeat("[", 64),
	} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		err := kms.ValidateKeyPolicy(doc)
		if err == nil {
			// Only a JSON object of at most 32 KiB of UTF-8 passes.
			if len(doc) > kms.MaxKeyPolicySize || !utf8.ValidString(doc) || !json.Valid([]byte(doc)) {
				t.Fatalf("accepted a document that is too large, not UTF-8 or not JSON: %q", doc)
			}
			var top map[string]json.RawMessage
			if json.Unmarshal([]byte(doc), &top) != nil || top["Statement"] == nil {
				t.Fatalf("accepted a document with no Statement: %q", doc)
			}
			return
		}
		var pe *kms.PolicyError
		if !errors.As(err, &pe) || !errors.Is(err, kms.ErrMalformedPolicy) {
			t.Fatalf("error is not a *kms.PolicyError matching ErrMalformedPolicy: %T %v", err, err)
		}
		if pe.Statement < 0 || pe.Reason == "" || (pe.Statement == 0 && pe.Sid != "") {
			t.Fatalf("PolicyError out of shape: %+v", *pe)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "kms: malformed policy document: ") {
			t.Fatalf("error text %q", msg)
		}
		if errors.Is(err, kms.ErrInvalidArgument) || errors.Is(err, kms.ErrAccessDenied) {
			t.Fatalf("a PolicyError matches another sentinel: %v", err)
		}
	})
}

// TestKeyPolicyReviewFindings pins fixes from review: NotPrincipal only in
// a Deny, no wildcard principal ARNs, context keys that differ only in
// case read strictly, and condition-key prefixes folded as ASCII only.
func TestKeyPolicyReviewFindings(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"NotPrincipal in an Allow": kpDoc(`{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:Decrypt","Resource":"*"}`),
		"a wildcard principal ARN": kpDoc(`{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/*"},"Action":"kms:Decrypt","Resource":"*"}`),
		"a Kelvin sign in the key": kpDoc(`{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"` + "\u212a" + `ms:EncryptionContext:app":"x"}}}`),
	} {
		err := kms.ValidateKeyPolicy(doc)
		assert.ErrorIs(t, err, kms.ErrMalformedPolicy, name)
	}

	// A tenant-bound role cannot smuggle a second tenant in a key that
	// differs only in case.
	ctx := context.Background()
	r := kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{}})
	admin := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/admin"})
	roleA := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/a"})
	doc := kpDoc(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/a"},"Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"A"}}}`,
		`{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/a"},"Action":"kms:Encrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:EncryptionContext:tenant":"A"}}}`)
	k, err := r.KeyRing.CreateKey(admin, kms.CreateKeyInput{Policy: doc})
	require.NoError(t, err)
	_, err = r.Encrypt(roleA, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionContext: kms.EncryptionContext{"tenant": "A"}})
	require.NoError(t, err)
	_, err = r.Encrypt(roleA, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionContext: kms.EncryptionContext{"tenant": "A", "TENANT": "B"}})
	require.ErrorIs(t, err, kms.ErrAccessDenied)
}

// TestKeyPolicyEscapesAndTags: escapes cannot bring in characters the raw
// text may not hold, and the lockout check sees the key's tags.
func TestKeyPolicyEscapesAndTags(t *testing.T) {
	t.Parallel()
	doc := kpDoc(`{"Sid":"\u0001","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}`)
	require.ErrorIs(t, kms.ValidateKeyPolicy(doc), kms.ErrMalformedPolicy)

	ctx := context.Background()
	r := kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{}})
	admin := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/admin"})
	k, err := r.KeyRing.CreateKey(admin, kms.CreateKeyInput{Tags: []kms.Tag{{TagKey: "locked", TagValue: "yes"}}})
	require.NoError(t, err)
	lockout := kpDoc(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/locked":"yes"}}}`)
	err = r.PutKeyPolicy(admin, kms.PutKeyPolicyInput{KeyID: k.KeyID, Policy: lockout})
	require.ErrorIs(t, err, kms.ErrMalformedPolicy, "the lockout check sees the key's tag")
}
