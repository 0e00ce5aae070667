package kms_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// This file checks the audit contract operation by operation: every public
// operation of *kms.KeyRing (and Envelope.Seal and Envelope.Open, which
// audit through the ring) hands exactly one Event to the Auditor when it
// succeeds, when the Policy denies it and when it fails for another
// reason; and no event carries plaintext or key material.

var (
	auditOpsApp    = kms.Principal{ARN: "arn:aws:iam::111122223333:role/app", Account: "111122223333"}
	auditOpsDenied = kms.Principal{ARN: "arn:aws:iam::111122223333:role/denied", Account: "111122223333"}
)

const (
	auditOpsGrantee  = "arn:aws:iam::111122223333:role/grantee"
	auditOpsRetirer  = "arn:aws:iam::111122223333:role/retirer"
	auditOpsNoSuchID = "00000000-0000-4000-8000-000000000000" // a key ID no ring made
)

// auditOpsEC is the (non-secret) encryption context of the symmetric calls.
var auditOpsEC = kms.EncryptionContext{"purpose": "audit"}

// auditOpsFixture is one ring for one call: a Policy that denies the
// auditOpsDenied role everything, a Store that can be made to fail, and
// the secrets the call handled, for TestAuditEventsCarryNoSecrets.
type auditOpsFixture struct {
	t  *testing.T
	r  *kmstest.Ring
	fs *faultyStore
	// all records every event of the ring, setup included; r.Events is
	// reset before the call under test.
	all   *kms.Recorder
	asked atomic.Int32 // Policy calls

	mu      sync.Mutex
	secrets []auditOpsSecret
}

func auditOpsNewFixture(t *testing.T) *auditOpsFixture {
	t.Helper()
	f := &auditOpsFixture{t: t, fs: &faultyStore{MemoryStore: kms.NewMemoryStore()}, all: &kms.Recorder{}}
	root := randomBytes(t, 32)
	rk, err := kms.NewAESRootKey(root, nil)
	require.NoError(t, err)
	f.secret("root key", root)
	policy := kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
		f.asked.Add(1)
		if req.Principal.ARN == auditOpsDenied.ARN {
			return errors.New("auditOps: this role may do nothing")
		}
		return nil
	})
	f.r = kmstest.New(t, kms.Config{Store: f.fs, RootKey: rk, Policy: policy, Auditor: f.all})
	return f
}

// auditOpsSecret is bytes that no event may contain, and what they are.
type auditOpsSecret struct {
	what string
	b    []byte
}

// secret records bytes that no event may contain; it returns b.
func (f *auditOpsFixture) secret(what string, b []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets = append(f.secrets, auditOpsSecret{what, bytes.Clone(b)})
	return b
}

// pt returns distinctive random plaintext (or message), recorded as a
// secret.
func (f *auditOpsFixture) pt() []byte { return f.secret("plaintext or message", randomBytes(f.t, 48)) }

func (f *auditOpsFixture) key(spec kms.KeySpec, usage kms.KeyUsage) *kms.KeyMetadata {
	return f.r.CreateKey(spec, usage)
}

func (f *auditOpsFixture) sym() *kms.KeyMetadata {
	return f.key(kms.SymmetricDefault, kms.EncryptDecrypt)
}

func (f *auditOpsFixture) hmac() *kms.KeyMetadata { return f.key(kms.HMAC256, kms.GenerateVerifyMac) }

func (f *auditOpsFixture) signer() *kms.KeyMetadata {
	return f.key(kms.ECCNISTP256, kms.SignVerify)
}

func (f *auditOpsFixture) disabled() *kms.KeyMetadata {
	k := f.sym()
	require.NoError(f.t, f.r.DisableKey(context.Background(), k.KeyID))
	return k
}

func (f *auditOpsFixture) pendingDeletion() *kms.KeyMetadata {
	k := f.sym()
	_, err := f.r.ScheduleKeyDeletion(context.Background(), k.KeyID, 7)
	require.NoError(f.t, err)
	return k
}

func (f *auditOpsFixture) pendingImport() *kms.KeyMetadata {
	m, err := f.r.KeyRing.CreateKey(context.Background(), kms.CreateKeyInput{Origin: kms.OriginExternal})
	require.NoError(f.t, err)
	return m
}

func (f *auditOpsFixture) rotated() *kms.KeyMetadata {
	k := f.sym()
	_, err := f.r.RotateKeyOnDemand(context.Background(), k.KeyID)
	require.NoError(f.t, err)
	return k
}

// blob encrypts fresh plaintext under keyID with auditOpsEC.
func (f *auditOpsFixture) blob(keyID string) []byte {
	out, err := f.r.Encrypt(context.Background(), kms.EncryptInput{KeyID: keyID, Plaintext: f.pt(), EncryptionContext: auditOpsEC})
	require.NoError(f.t, err)
	return out.CiphertextBlob
}

// grant creates a grant on keyID that auditOpsRetirer may retire.
func (f *auditOpsFixture) grant(keyID string) *kms.CreateGrantOutput {
	out, err := f.r.CreateGrant(context.Background(), kms.CreateGrantInput{
		KeyID: keyID, GranteePrincipal: auditOpsGrantee, RetiringPrincipal: auditOpsRetirer, Operations: []kms.Op{kms.OpEncrypt},
	})
	require.NoError(f.t, err)
	return out
}

// rotationDue returns a key whose automatic rotation is due.
func (f *auditOpsFixture) rotationDue() *kms.KeyMetadata {
	k := f.sym()
	require.NoError(f.t, f.r.EnableKeyRotation(context.Background(), kms.EnableKeyRotationInput{KeyID: k.KeyID, RotationPeriodInDays: kms.MinRotationPeriodDays}))
	f.r.Clock.Advance((kms.MinRotationPeriodDays + 1) * 24 * time.Hour)
	return k
}

// deletionDue returns a key whose deletion date has passed.
func (f *auditOpsFixture) deletionDue() *kms.KeyMetadata {
	k := f.pendingDeletion()
	f.r.Clock.Advance(8 * 24 * time.Hour)
	return k
}

// registerPair records the private key of a data key pair as a secret: its
// scalar and the tail of its PKCS#8 encoding (the head is a fixed ASN.1
// prefix).
func (f *auditOpsFixture) registerPair(der []byte) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	require.NoError(f.t, err)
	scalar, err := k.(*ecdsa.PrivateKey).Bytes()
	require.NoError(f.t, err)
	f.secret("data key pair private scalar", scalar)
	f.secret("data key pair PKCS#8 tail", der[len(der)-40:])
}

// learn decrypts a ciphertext blob made by the ring, after the call under
// test, and records the plaintext as a secret (for the WithoutPlaintext
// operations, whose data key the caller never sees).
func (f *auditOpsFixture) learn(blob []byte, pair bool) {
	out, err := f.r.Decrypt(context.Background(), kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: auditOpsEC})
	require.NoError(f.t, err)
	if pair {
		f.registerPair(out.Plaintext)
		return
	}
	f.secret("data key", out.Plaintext)
}

func (f *auditOpsFixture) envelope(rc kms.Recipient) *kms.Envelope {
	env, err := kms.NewEnvelope(f.r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{rc}})
	require.NoError(f.t, err)
	return env
}

func (f *auditOpsFixture) rawAES(keyID string) kms.Recipient {
	rc, err := kms.RawAESKeyRecipient("auditOps", "wrapping-key", keyID)
	require.NoError(f.t, err)
	return rc
}

func (f *auditOpsFixture) seal(env *kms.Envelope) []byte {
	msg, err := env.Seal(context.Background(), f.pt(), auditOpsEC)
	require.NoError(f.t, err)
	return msg
}

// auditOpsCall is one call under test and the event it should produce.
type auditOpsCall struct {
	run func(ctx context.Context) error
	// key, source and grant are the expected KeyID, SourceKeyID and
	// GrantID of the event ("" for none).
	key, source, grant string
	// want is the sentinel a failure runner's error must match.
	want error
	// onDeny adjusts the expectations when the Policy denies the call.
	onDeny func(c *auditOpsCall)
	// after runs once the event is checked (its events are not counted).
	after func()
}

func auditOpsOn(key string, run func(ctx context.Context) error) *auditOpsCall {
	return &auditOpsCall{run: run, key: key}
}

func (c *auditOpsCall) fails(want error) *auditOpsCall {
	c.want = want
	return c
}

// auditOpsErr drops a result and keeps the error.
func auditOpsErr[T any](_ T, err error) error { return err }

// auditOpsSetup prepares a call on a fresh fixture.
type auditOpsSetup func(f *auditOpsFixture) *auditOpsCall

type auditOpsCase struct {
	name   string
	method string // the *kms.KeyRing method covered; "" for Envelope
	op     kms.Op // of the event
	// ok succeeds for auditOpsApp. Run by auditOpsDenied it is the denial
	// runner: every ok call reaches the Policy with valid input.
	ok auditOpsSetup
	// fail fails for auditOpsApp for a reason other than the Policy.
	fail auditOpsSetup
	// noDeny says why the Policy cannot deny the operation; the ok runner,
	// run by auditOpsDenied, must then still succeed without asking it.
	noDeny string
}

func auditOpsCases() []auditOpsCase {
	noPolicy := "the ring's own work (RunDue): audited, never asked of the Policy"
	return []auditOpsCase{
		// ---------------------------------------------------------- lifecycle
		{name: "CreateKey", op: kms.OpCreateKey,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				c := &auditOpsCall{}
				c.run = func(ctx context.Context) error {
					m, err := f.r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Description: "audited"})
					if err == nil {
						c.key = m.KeyID // denied: no key, no KeyID
					}
					return err
				}
				return c
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{KeySpec: kms.HMAC256}))
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "DescribeKey", op: kms.OpDescribeKey,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsErr(f.r.DescribeKey(ctx, k.Arn)) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error { return auditOpsErr(f.r.DescribeKey(ctx, "alias/none")) }).fails(kms.ErrNotFound)
			}},
		{name: "ListKeys", op: kms.OpListKeys,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				f.sym()
				return auditOpsOn("", func(ctx context.Context) error { return auditOpsErr(f.r.ListKeys(ctx, kms.ListKeysInput{})) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.ListKeys(ctx, kms.ListKeysInput{Limit: -1}))
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "EnableKey", op: kms.OpEnableKey,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.disabled()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.EnableKey(ctx, k.KeyID) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.pendingDeletion()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.EnableKey(ctx, k.KeyID) }).fails(kms.ErrPendingDeletion)
			}},
		{name: "DisableKey", op: kms.OpDisableKey,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.DisableKey(ctx, k.KeyID) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.pendingImport()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.DisableKey(ctx, k.KeyID) }).fails(kms.ErrPendingImport)
			}},
		{name: "ScheduleKeyDeletion", op: kms.OpScheduleKeyDeletion,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsErr(f.r.ScheduleKeyDeletion(ctx, k.KeyID, 7)) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.ScheduleKeyDeletion(ctx, k.KeyID, 3))
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "CancelKeyDeletion", op: kms.OpCancelKeyDeletion,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.pendingDeletion()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.CancelKeyDeletion(ctx, k.KeyID) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.CancelKeyDeletion(ctx, k.KeyID) }).fails(kms.ErrInvalidState)
			}},
		{name: "UpdateKeyDescription", op: kms.OpUpdateKeyDescription,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.UpdateKeyDescription(ctx, k.KeyID, "renamed") })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.UpdateKeyDescription(ctx, k.KeyID, "not UTF-8 \xff")
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "TagResource", op: kms.OpTagResource,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.TagResource(ctx, k.KeyID, []kms.Tag{{TagKey: "team", TagValue: "audit"}})
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.TagResource(ctx, k.KeyID, numberedTags(0, kms.MaxTagsPerKey+1))
				}).fails(kms.ErrLimitExceeded)
			}},
		{name: "UntagResource", op: kms.OpUntagResource,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				require.NoError(f.t, f.r.TagResource(context.Background(), k.KeyID, numberedTags(0, 2)))
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.UntagResource(ctx, k.KeyID, []string{numberedTags(0, 1)[0].TagKey})
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.pendingDeletion()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.UntagResource(ctx, k.KeyID, []string{"team"})
				}).fails(kms.ErrPendingDeletion)
			}},
		{name: "ListResourceTags", op: kms.OpListResourceTags,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: k.KeyID}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: k.KeyID, Limit: 51}))
				}).fails(kms.ErrInvalidArgument)
			}},

		// ------------------------------------------------------------ aliases
		{name: "CreateAlias", op: kms.OpCreateAlias,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.CreateAlias(ctx, "alias/audit", k.KeyID) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.pendingDeletion()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.CreateAlias(ctx, "alias/audit", k.KeyID)
				}).fails(kms.ErrPendingDeletion)
			}},
		{name: "UpdateAlias", op: kms.OpUpdateAlias,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				a, b := f.sym(), f.sym()
				require.NoError(f.t, f.r.CreateAlias(context.Background(), "alias/audit", a.KeyID))
				return auditOpsOn(b.KeyID, func(ctx context.Context) error { return f.r.UpdateAlias(ctx, "alias/audit", b.KeyID) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				a, h := f.sym(), f.hmac()
				require.NoError(f.t, f.r.CreateAlias(context.Background(), "alias/audit", a.KeyID))
				return auditOpsOn(h.KeyID, func(ctx context.Context) error {
					return f.r.UpdateAlias(ctx, "alias/audit", h.KeyID)
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "DeleteAlias", op: kms.OpDeleteAlias,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				require.NoError(f.t, f.r.CreateAlias(context.Background(), "alias/audit", k.KeyID))
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.DeleteAlias(ctx, "alias/audit") })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error { return f.r.DeleteAlias(ctx, "alias/none") }).fails(kms.ErrNotFound)
			}},
		{name: "ListAliases", op: kms.OpListAliases,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				require.NoError(f.t, f.r.CreateAlias(context.Background(), "alias/audit", k.KeyID))
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.ListAliases(ctx, kms.ListAliasesInput{KeyID: k.KeyID}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.ListAliases(ctx, kms.ListAliasesInput{Limit: 101}))
				}).fails(kms.ErrInvalidArgument)
			}},

		// ------------------------------------------------------------- crypto
		{name: "Encrypt", op: kms.OpEncrypt,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				pt := f.pt()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: auditOpsEC}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.disabled()
				pt := f.pt()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: pt, EncryptionContext: auditOpsEC}))
				}).fails(kms.ErrDisabled)
			}},
		{name: "Decrypt", op: kms.OpDecrypt,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				blob := f.blob(k.KeyID)
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: auditOpsEC}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				blob := f.blob(k.KeyID)
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: kms.EncryptionContext{"purpose": "other"}}))
				}).fails(kms.ErrInvalidCiphertext)
			}},
		{name: "ReEncrypt", op: kms.OpReEncrypt,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				src, dst := f.sym(), f.sym()
				blob := f.blob(src.KeyID)
				c := auditOpsOn(dst.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.ReEncrypt(ctx, kms.ReEncryptInput{
						CiphertextBlob: blob, SourceEncryptionContext: auditOpsEC,
						DestinationKeyID: dst.KeyID, DestinationEncryptionContext: auditOpsEC,
					}))
				})
				c.source = src.KeyID
				// Denied as ReEncryptFrom on the source, before the
				// destination is resolved.
				c.onDeny = func(c *auditOpsCall) { c.key = "" }
				return c
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				src, dst := f.sym(), f.disabled()
				blob := f.blob(src.KeyID)
				c := auditOpsOn(dst.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.ReEncrypt(ctx, kms.ReEncryptInput{
						CiphertextBlob: blob, SourceEncryptionContext: auditOpsEC, DestinationKeyID: dst.KeyID,
					}))
				}).fails(kms.ErrDisabled)
				c.source = src.KeyID
				return c
			}},
		{name: "GenerateDataKey", op: kms.OpGenerateDataKey,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					out, err := f.r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256, EncryptionContext: auditOpsEC})
					if err == nil {
						f.secret("data key", out.Plaintext)
					}
					return err
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID}))
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "GenerateDataKeyWithoutPlaintext", op: kms.OpGenerateDataKeyWithoutPlaintext,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				var blob []byte
				c := auditOpsOn(k.KeyID, func(ctx context.Context) error {
					out, err := f.r.GenerateDataKeyWithoutPlaintext(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, NumberOfBytes: 64, EncryptionContext: auditOpsEC})
					if err == nil {
						blob = out.CiphertextBlob
					}
					return err
				})
				c.after = func() {
					if blob != nil {
						f.learn(blob, false)
					}
				}
				return c
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.pendingDeletion()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GenerateDataKeyWithoutPlaintext(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256}))
				}).fails(kms.ErrPendingDeletion)
			}},
		{name: "GenerateRandom", op: kms.OpGenerateRandom,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error {
					b, err := f.r.GenerateRandom(ctx, 32)
					if err == nil {
						f.secret("random bytes", b)
					}
					return err
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error { return auditOpsErr(f.r.GenerateRandom(ctx, 0)) }).fails(kms.ErrInvalidArgument)
			}},

		// --------------------------------------------------------- asymmetric
		{name: "Sign", op: kms.OpSign,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				s := f.signer()
				msg := f.pt()
				return auditOpsOn(s.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.Sign(ctx, kms.SignInput{KeyID: s.KeyID, Message: msg, SigningAlgorithm: kms.ECDSASHA256}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				s := f.signer()
				msg := f.pt()
				return auditOpsOn(s.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.Sign(ctx, kms.SignInput{KeyID: s.KeyID, Message: msg, SigningAlgorithm: kms.RSASSAPSSSHA256}))
				}).fails(kms.ErrInvalidUsage)
			}},
		{name: "Verify", op: kms.OpVerify,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				s := f.signer()
				msg := f.pt()
				sig, err := f.r.Sign(context.Background(), kms.SignInput{KeyID: s.KeyID, Message: msg, SigningAlgorithm: kms.ECDSASHA256})
				require.NoError(f.t, err)
				return auditOpsOn(s.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.Verify(ctx, kms.VerifyInput{KeyID: s.KeyID, Message: msg, Signature: sig.Signature, SigningAlgorithm: kms.ECDSASHA256}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				s := f.signer()
				msg := f.pt()
				return auditOpsOn(s.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.Verify(ctx, kms.VerifyInput{KeyID: s.KeyID, Message: msg, Signature: []byte("not a signature"), SigningAlgorithm: kms.ECDSASHA256}))
				}).fails(kms.ErrInvalidSignature)
			}},
		{name: "GetPublicKey", op: kms.OpGetPublicKey,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				s := f.signer()
				return auditOpsOn(s.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: s.KeyID}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: k.KeyID}))
				}).fails(kms.ErrUnsupported)
			}},
		{name: "DeriveSharedSecret", op: kms.OpDeriveSharedSecret,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				a := f.key(kms.ECCNISTP256, kms.KeyAgreement)
				peer, err := ecdh.P256().GenerateKey(rand.Reader)
				require.NoError(f.t, err)
				pub, err := x509.MarshalPKIXPublicKey(peer.PublicKey())
				require.NoError(f.t, err)
				return auditOpsOn(a.KeyID, func(ctx context.Context) error {
					out, err := f.r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: a.KeyID, KeyAgreementAlgorithm: kms.ECDH, PublicKey: pub})
					if err == nil {
						f.secret("shared secret", out.SharedSecret)
					}
					return err
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				a := f.key(kms.ECCNISTP256, kms.KeyAgreement)
				return auditOpsOn(a.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: a.KeyID, KeyAgreementAlgorithm: kms.ECDH, PublicKey: []byte("not a public key")}))
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "GenerateDataKeyPair", op: kms.OpGenerateDataKeyPair,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					out, err := f.r.GenerateDataKeyPair(ctx, kms.GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: kms.PairECCNISTP256, EncryptionContext: auditOpsEC})
					if err == nil {
						f.registerPair(out.PrivateKeyPlaintext)
					}
					return err
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				h := f.hmac()
				return auditOpsOn(h.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GenerateDataKeyPair(ctx, kms.GenerateDataKeyPairInput{KeyID: h.KeyID, KeyPairSpec: kms.PairECCNISTP256}))
				}).fails(kms.ErrInvalidUsage)
			}},
		{name: "GenerateDataKeyPairWithoutPlaintext", op: kms.OpGenerateDataKeyPairWithoutPlaintext,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				var blob []byte
				c := auditOpsOn(k.KeyID, func(ctx context.Context) error {
					out, err := f.r.GenerateDataKeyPairWithoutPlaintext(ctx, kms.GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: kms.PairECCNISTP256, EncryptionContext: auditOpsEC})
					if err == nil {
						blob = out.PrivateKeyCiphertextBlob
					}
					return err
				})
				c.after = func() {
					if blob != nil {
						f.learn(blob, true)
					}
				}
				return c
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.disabled()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GenerateDataKeyPairWithoutPlaintext(ctx, kms.GenerateDataKeyPairInput{KeyID: k.KeyID, KeyPairSpec: kms.PairECCNISTP256}))
				}).fails(kms.ErrDisabled)
			}},

		// ---------------------------------------------------------------- MAC
		{name: "GenerateMac", op: kms.OpGenerateMac,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				h := f.hmac()
				msg := f.pt()
				return auditOpsOn(h.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: h.KeyID, Message: msg, MacAlgorithm: kms.HMACSHA256}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				h := f.hmac()
				msg := f.pt()
				return auditOpsOn(h.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: h.KeyID, Message: msg, MacAlgorithm: kms.HMACSHA384}))
				}).fails(kms.ErrInvalidUsage)
			}},
		{name: "VerifyMac", op: kms.OpVerifyMac,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				h := f.hmac()
				msg := f.pt()
				mac, err := f.r.GenerateMac(context.Background(), kms.GenerateMacInput{KeyID: h.KeyID, Message: msg, MacAlgorithm: kms.HMACSHA256})
				require.NoError(f.t, err)
				return auditOpsOn(h.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: h.KeyID, Message: msg, Mac: mac.Mac, MacAlgorithm: kms.HMACSHA256}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				h := f.hmac()
				msg := f.pt()
				return auditOpsOn(h.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: h.KeyID, Message: msg, Mac: make([]byte, 32), MacAlgorithm: kms.HMACSHA256}))
				}).fails(kms.ErrInvalidMac)
			}},

		// ------------------------------------------------------------- import
		{name: "GetParametersForImport", op: kms.OpGetParametersForImport,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				p := f.pendingImport()
				return auditOpsOn(p.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GetParametersForImport(ctx, kms.GetParametersForImportInput{
						KeyID: p.KeyID, WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, WrappingKeySpec: kms.WrappingRSA2048,
					}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.GetParametersForImport(ctx, kms.GetParametersForImportInput{
						KeyID: k.KeyID, WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, WrappingKeySpec: kms.WrappingRSA2048,
					}))
				}).fails(kms.ErrUnsupported)
			}},
		{name: "ImportKeyMaterial", op: kms.OpImportKeyMaterial,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				p := f.pendingImport()
				params, err := f.r.GetParametersForImport(context.Background(), kms.GetParametersForImportInput{
					KeyID: p.KeyID, WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, WrappingKeySpec: kms.WrappingRSA2048,
				})
				require.NoError(f.t, err)
				material := f.secret("imported key material", randomBytes(f.t, 32))
				enc, err := kmstest.WrapForImport(params.PublicKey, kms.WrapRSAAESKeyWrapSHA256, material)
				require.NoError(f.t, err)
				return auditOpsOn(p.KeyID, func(ctx context.Context) error {
					return f.r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: p.KeyID, ImportToken: params.ImportToken, EncryptedKeyMaterial: enc})
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: k.KeyID, ImportToken: randomBytes(f.t, 32), EncryptedKeyMaterial: randomBytes(f.t, 300)})
				}).fails(kms.ErrUnsupported)
			}},

		// ----------------------------------------------------------- rotation
		{name: "RotateKeyOnDemand", op: kms.OpRotateKeyOnDemand,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsErr(f.r.RotateKeyOnDemand(ctx, k.KeyID)) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.disabled()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.RotateKeyOnDemand(ctx, k.KeyID))
				}).fails(kms.ErrDisabled)
			}},
		{name: "EnableKeyRotation", op: kms.OpEnableKeyRotation,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: k.KeyID})
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: k.KeyID, RotationPeriodInDays: 10})
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "DisableKeyRotation", op: kms.OpDisableKeyRotation,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				require.NoError(f.t, f.r.EnableKeyRotation(context.Background(), kms.EnableKeyRotationInput{KeyID: k.KeyID}))
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.DisableKeyRotation(ctx, k.KeyID) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				s := f.signer()
				return auditOpsOn(s.KeyID, func(ctx context.Context) error { return f.r.DisableKeyRotation(ctx, s.KeyID) }).fails(kms.ErrUnsupported)
			}},
		{name: "GetKeyRotationStatus", op: kms.OpGetKeyRotationStatus,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsErr(f.r.GetKeyRotationStatus(ctx, k.KeyID)) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.GetKeyRotationStatus(ctx, auditOpsNoSuchID))
				}).fails(kms.ErrNotFound)
			}},
		{name: "ListKeyRotations", op: kms.OpListKeyRotations,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: k.KeyID}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.ListKeyRotations(ctx, kms.ListKeyRotationsInput{KeyID: k.KeyID, Marker: "not a marker"}))
				}).fails(kms.ErrInvalidArgument)
			}},

		// ----------------------------------------------------------- versions
		{name: "ListKeyVersions", op: kms.OpListKeyVersions,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsErr(f.r.ListKeyVersions(ctx, k.KeyID)) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error { return auditOpsErr(f.r.ListKeyVersions(ctx, "alias/none")) }).fails(kms.ErrNotFound)
			}},
		{name: "DisableKeyVersion", op: kms.OpDisableKeyVersion,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.DisableKeyVersion(ctx, k.KeyID, 1) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.DisableKeyVersion(ctx, k.KeyID, 1) // the primary version
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "EnableKeyVersion", op: kms.OpEnableKeyVersion,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				require.NoError(f.t, f.r.DisableKeyVersion(context.Background(), k.KeyID, 1))
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.EnableKeyVersion(ctx, k.KeyID, 1) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				require.NoError(f.t, f.r.DestroyKeyVersion(context.Background(), k.KeyID, 1))
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.EnableKeyVersion(ctx, k.KeyID, 1)
				}).fails(kms.ErrKeyVersionDestroyed)
			}},
		{name: "DestroyKeyVersion", op: kms.OpDestroyKeyVersion,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.DestroyKeyVersion(ctx, k.KeyID, 1) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.DestroyKeyVersion(ctx, k.KeyID, 9)
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "UpdateKeyVersionLimits", op: kms.OpUpdateKeyVersionLimits,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.KeyID, MinDecryptionVersion: 2})
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotated()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: k.KeyID, MinDecryptionVersion: 5})
				}).fails(kms.ErrInvalidArgument)
			}},

		// ------------------------------------------------------------ RunDue
		{name: "RunDue/rotation", method: "RunDue", op: kms.OpRotateKey, noDeny: noPolicy,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotationDue()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					out, err := f.r.RunDue(ctx)
					if err == nil && len(out.Rotated) != 1 {
						return fmt.Errorf("auditOps: RunDue rotated %d keys, want 1", len(out.Rotated))
					}
					return err
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotationDue()
				f.fs.failPutKey.Store(true)
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsDueFailure(f.r.RunDue(ctx)) }).fails(kms.ErrInternal)
			}},
		{name: "RunDue/deletion", method: "RunDue", op: kms.OpDeleteKey, noDeny: noPolicy,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.deletionDue()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					out, err := f.r.RunDue(ctx)
					if err == nil && len(out.Deleted) != 1 {
						return fmt.Errorf("auditOps: RunDue deleted %d keys, want 1", len(out.Deleted))
					}
					return err
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.deletionDue()
				f.fs.failPutKey.Store(true)
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsDueFailure(f.r.RunDue(ctx)) }).fails(kms.ErrInternal)
			}},
		{name: "RunDueEvery", op: kms.OpRotateKey, noDeny: noPolicy,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotationDue()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsRunOnce(ctx, f, false) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.rotationDue()
				f.fs.failPutKey.Store(true)
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsRunOnce(ctx, f, true) }).fails(kms.ErrInternal)
			}},

		// ------------------------------------------------------- key policies
		{name: "PutKeyPolicy", op: kms.OpPutKeyPolicy,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.PutKeyPolicy(ctx, kms.PutKeyPolicyInput{KeyID: k.KeyID, Policy: kms.DefaultKeyPolicy(f.r.Account())})
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn("", func(ctx context.Context) error {
					return f.r.PutKeyPolicy(ctx, kms.PutKeyPolicyInput{KeyID: k.KeyID, Policy: "{"})
				}).fails(kms.ErrMalformedPolicy)
			}},
		{name: "GetKeyPolicy", op: kms.OpGetKeyPolicy,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsErr(f.r.GetKeyPolicy(ctx, k.KeyID, "default")) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.GetKeyPolicy(ctx, k.KeyID, "other"))
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "ListKeyPolicies", op: kms.OpListKeyPolicies,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error { return auditOpsErr(f.r.ListKeyPolicies(ctx, k.KeyID)) })
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.ListKeyPolicies(ctx, auditOpsNoSuchID))
				}).fails(kms.ErrNotFound)
			}},

		// ------------------------------------------------------------- grants
		{name: "CreateGrant", op: kms.OpCreateGrant,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				c := auditOpsOn(k.KeyID, nil)
				c.run = func(ctx context.Context) error {
					out, err := f.r.CreateGrant(ctx, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: auditOpsGrantee, Operations: []kms.Op{kms.OpEncrypt}})
					if err == nil {
						c.grant = out.GrantID // denied: no grant, no GrantID
					}
					return err
				}
				return c
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.CreateGrant(ctx, kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: auditOpsGrantee}))
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "ListGrants", op: kms.OpListGrants,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				f.grant(k.KeyID)
				return auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return auditOpsErr(f.r.ListGrants(ctx, kms.ListGrantsInput{KeyID: k.KeyID}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.ListGrants(ctx, kms.ListGrantsInput{KeyID: k.KeyID, GrantID: "not-a-grant-id"}))
				}).fails(kms.ErrInvalidGrantID)
			}},
		{name: "ListRetirableGrants", op: kms.OpListRetirableGrants,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				f.grant(f.sym().KeyID)
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.ListRetirableGrants(ctx, kms.ListRetirableGrantsInput{RetiringPrincipal: auditOpsRetirer}))
				})
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				return auditOpsOn("", func(ctx context.Context) error {
					return auditOpsErr(f.r.ListRetirableGrants(ctx, kms.ListRetirableGrantsInput{}))
				}).fails(kms.ErrInvalidArgument)
			}},
		{name: "RetireGrant", op: kms.OpRetireGrant,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				g := f.grant(k.KeyID)
				c := auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.RetireGrant(ctx, kms.RetireGrantInput{GrantToken: g.GrantToken})
				})
				c.grant = g.GrantID
				return c
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				none := strings.Repeat("0", 64)
				c := auditOpsOn(k.KeyID, func(ctx context.Context) error {
					return f.r.RetireGrant(ctx, kms.RetireGrantInput{KeyID: k.KeyID, GrantID: none})
				}).fails(kms.ErrNotFound)
				c.grant = none
				return c
			}},
		{name: "RevokeGrant", op: kms.OpRevokeGrant,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				g := f.grant(k.KeyID)
				c := auditOpsOn(k.KeyID, func(ctx context.Context) error { return f.r.RevokeGrant(ctx, k.KeyID, g.GrantID) })
				c.grant = g.GrantID
				return c
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsOn("", func(ctx context.Context) error {
					return f.r.RevokeGrant(ctx, k.KeyID, "not-a-grant-id")
				}).fails(kms.ErrInvalidGrantID)
			}},

		// ----------------------------------------------------------- envelope
		// With a KeyRecipient, Seal is one GenerateDataKey and Open one
		// Decrypt; with a RawAESKeyRecipient (a ring key as raw AES
		// wrapping key), Seal is one Encrypt and Open one Decrypt.
		{name: "Envelope.Seal/KeyRecipient", op: kms.OpGenerateDataKey,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsEnvelopeSeal(f, k, kms.KeyRecipient(k.KeyID))
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.disabled()
				return auditOpsEnvelopeSeal(f, k, kms.KeyRecipient(k.KeyID)).fails(kms.ErrDisabled)
			}},
		{name: "Envelope.Open/KeyRecipient", op: kms.OpDecrypt,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsEnvelopeOpen(f, k, kms.KeyRecipient(k.KeyID), false)
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsEnvelopeOpen(f, k, kms.KeyRecipient(k.KeyID), true).fails(kms.ErrDisabled)
			}},
		{name: "Envelope.Seal/RawAESKeyRecipient", op: kms.OpEncrypt,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsEnvelopeSeal(f, k, f.rawAES(k.KeyID))
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.disabled()
				return auditOpsEnvelopeSeal(f, k, f.rawAES(k.KeyID)).fails(kms.ErrDisabled)
			}},
		{name: "Envelope.Open/RawAESKeyRecipient", op: kms.OpDecrypt,
			ok: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsEnvelopeOpen(f, k, f.rawAES(k.KeyID), false)
			},
			fail: func(f *auditOpsFixture) *auditOpsCall {
				k := f.sym()
				return auditOpsEnvelopeOpen(f, k, f.rawAES(k.KeyID), true).fails(kms.ErrDisabled)
			}},
	}
}

// auditOpsDueFailure turns the single failure RunDue reports into the
// call's error.
func auditOpsDueFailure(out *kms.RunDueOutput, err error) error {
	if err != nil {
		return err
	}
	if len(out.Failed) != 1 || len(out.Rotated)+len(out.Deleted) != 0 {
		return fmt.Errorf("auditOps: RunDue reported %d failures, want 1 and no work done", len(out.Failed))
	}
	return out.Failed[0].Err
}

// auditOpsRunOnce runs RunDueEvery for one round and returns that round's
// result: its single failure if wantFailure, else nil after one rotation.
func auditOpsRunOnce(ctx context.Context, f *auditOpsFixture, wantFailure bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var round error
	err := f.r.RunDueEvery(ctx, time.Hour, func(out *kms.RunDueOutput, err error) {
		defer cancel()
		switch {
		case wantFailure:
			round = auditOpsDueFailure(out, err)
		case err != nil:
			round = err
		case len(out.Rotated) != 1:
			round = fmt.Errorf("auditOps: RunDueEvery rotated %d keys, want 1", len(out.Rotated))
		}
	})
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("auditOps: RunDueEvery returned %v, want context.Canceled", err)
	}
	return round
}

func auditOpsEnvelopeSeal(f *auditOpsFixture, k *kms.KeyMetadata, rc kms.Recipient) *auditOpsCall {
	env := f.envelope(rc)
	pt := f.pt()
	return auditOpsOn(k.KeyID, func(ctx context.Context) error {
		return auditOpsErr(env.Seal(ctx, pt, auditOpsEC))
	})
}

// auditOpsEnvelopeOpen seals a message to k and opens it; with disable, k
// is disabled in between.
func auditOpsEnvelopeOpen(f *auditOpsFixture, k *kms.KeyMetadata, rc kms.Recipient, disable bool) *auditOpsCall {
	env := f.envelope(rc)
	msg := f.seal(env)
	if disable {
		require.NoError(f.t, f.r.DisableKey(context.Background(), k.KeyID))
	}
	return auditOpsOn(k.KeyID, func(ctx context.Context) error {
		pt, err := env.Open(ctx, msg, auditOpsEC)
		if err == nil {
			f.secret("opened plaintext", pt)
		}
		return err
	})
}

// auditOpsCheck runs the call set up by setup as p, and checks that it
// produced exactly one event with op and outcome.
func auditOpsCheck(t *testing.T, tc auditOpsCase, setup auditOpsSetup, p kms.Principal, outcome kms.Outcome) {
	t.Helper()
	f := auditOpsNewFixture(t)
	c := setup(f)
	f.r.Clock.Advance(42 * time.Second)
	f.r.Events.Reset()
	f.asked.Store(0)

	err := c.run(kms.WithPrincipal(t.Context(), p))
	evs := f.r.Events.Events()
	if !assert.Len(t, evs, 1, "%s as %s: exactly one event per call; got ops %v", tc.name, p.ARN, auditOpsOps(evs)) {
		return
	}
	ev := evs[0]
	switch outcome {
	case kms.OutcomeAllowed:
		require.NoError(t, err)
		assert.NoError(t, ev.Err)
		assert.Empty(t, ev.ErrorCode)
	case kms.OutcomeDenied:
		require.ErrorIs(t, err, kms.ErrAccessDenied)
		assert.ErrorIs(t, ev.Err, kms.ErrAccessDenied)
		assert.Equal(t, "AccessDeniedException", ev.ErrorCode)
		assert.Equal(t, "AccessDeniedException", kms.ErrorCode(err))
		assert.NotZero(t, f.asked.Load(), "the Policy was asked")
		if c.onDeny != nil {
			c.onDeny(c)
		}
	case kms.OutcomeFailed:
		require.Error(t, err)
		require.ErrorIs(t, err, c.want, "the failure runner fails for its own reason")
		assert.NotErrorIs(t, err, kms.ErrAccessDenied)
		assert.ErrorIs(t, ev.Err, c.want)
		assert.NotEmpty(t, ev.ErrorCode)
		assert.Equal(t, kms.ErrorCode(err), ev.ErrorCode)
	}
	assert.Equal(t, tc.op, ev.Op)
	assert.Equal(t, outcome, ev.Outcome)
	assert.Equal(t, p, ev.Principal)
	assert.Equal(t, f.r.Clock.Now(), ev.Time, "Time is on the ring's clock")
	assert.NotEmpty(t, ev.RequestID)
	assert.Equal(t, c.key, ev.KeyID, "KeyID")
	if c.key != "" {
		assert.Equal(t, f.r.KeyARN(c.key), ev.KeyARN, "KeyARN")
	} else {
		assert.Empty(t, ev.KeyARN, "KeyARN")
	}
	assert.Equal(t, c.source, ev.SourceKeyID, "SourceKeyID")
	assert.Equal(t, c.grant, ev.GrantID, "GrantID")
	if c.after != nil {
		c.after()
	}
}

func auditOpsOps(evs []kms.Event) []kms.Op {
	ops := make([]kms.Op, len(evs))
	for i, e := range evs {
		ops[i] = e.Op
	}
	return ops
}

// TestAuditEveryOperation runs every public operation of *kms.KeyRing that
// takes a context (and Envelope.Seal and Envelope.Open) three times: as a
// success, as a denial by the Policy and as a failure for another reason,
// and checks that each call hands exactly one Event to the Auditor, with
// the right operation, outcome, error code, principal and key.
func TestAuditEveryOperation(t *testing.T) {
	t.Parallel()
	cases := auditOpsCases()

	t.Run("every operation has a row", func(t *testing.T) {
		covered := map[string]bool{}
		for _, tc := range cases {
			switch {
			case tc.method != "":
				covered[tc.method] = true
			case !strings.HasPrefix(tc.name, "Envelope."):
				covered[tc.name] = true
			}
		}
		ctxType := reflect.TypeFor[context.Context]()
		var missing []string
		rt := reflect.TypeFor[*kms.KeyRing]()
		for i := range rt.NumMethod() {
			m := rt.Method(i)
			if m.Type.NumIn() > 1 && m.Type.In(1) == ctxType && !covered[m.Name] {
				missing = append(missing, m.Name)
			}
		}
		assert.Empty(t, missing, "KeyRing operations without a row")
	})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t.Run("allowed", func(t *testing.T) {
				t.Parallel()
				auditOpsCheck(t, tc, tc.ok, auditOpsApp, kms.OutcomeAllowed)
			})
			t.Run("denied", func(t *testing.T) {
				t.Parallel()
				if tc.noDeny != "" {
					// The Policy cannot deny it: as the denied role it
					// still succeeds, and the Policy is never asked.
					t.Log("cannot be denied: " + tc.noDeny)
					f := auditOpsNewFixture(t)
					c := tc.ok(f)
					f.r.Events.Reset()
					f.asked.Store(0)
					require.NoError(t, c.run(kms.WithPrincipal(t.Context(), auditOpsDenied)))
					evs := f.r.Events.Events()
					require.Len(t, evs, 1)
					assert.Equal(t, tc.op, evs[0].Op)
					assert.Equal(t, kms.OutcomeAllowed, evs[0].Outcome)
					assert.Equal(t, auditOpsDenied, evs[0].Principal)
					assert.Zero(t, f.asked.Load(), "the Policy is never asked")
					return
				}
				auditOpsCheck(t, tc, tc.ok, auditOpsDenied, kms.OutcomeDenied)
			})
			t.Run("failed", func(t *testing.T) {
				t.Parallel()
				auditOpsCheck(t, tc, tc.fail, auditOpsApp, kms.OutcomeFailed)
			})
		})
	}

	// Calls that, by design, hand no event to the Auditor: RunDue audits
	// the changes it makes (one OpRotateKey or OpDeleteKey each), not
	// itself; an Envelope audits only the ring operations it makes.
	t.Run("without events", func(t *testing.T) {
		t.Parallel()
		f := auditOpsNewFixture(t)
		k := f.sym()
		env := f.envelope(kms.KeyRecipient(k.KeyID))
		ctx := kms.WithPrincipal(t.Context(), auditOpsApp)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		// A recipient named by an alias that has since been deleted: Open
		// resolves the name as bookkeeping (no Policy, no event) and finds
		// no encrypted data key of its own.
		require.NoError(t, f.r.CreateAlias(context.Background(), "alias/env", k.KeyID))
		byAlias := f.envelope(kms.KeyRecipient("alias/env"))
		orphan := f.seal(byAlias)
		require.NoError(t, f.r.DeleteAlias(context.Background(), "alias/env"))
		for _, u := range []struct {
			name string
			run  func() error
			want error
		}{
			{"RunDue with nothing due", func() error { return auditOpsErr(f.r.RunDue(ctx)) }, nil},
			{"RunDue cancelled", func() error { return auditOpsErr(f.r.RunDue(cancelled)) }, context.Canceled},
			{"RunDueEvery with no interval", func() error { return f.r.RunDueEvery(ctx, 0, nil) }, kms.ErrInvalidArgument},
			{"Envelope.Seal with a reserved context key", func() error {
				return auditOpsErr(env.Seal(ctx, []byte("x"), kms.EncryptionContext{"aws-crypto-x": "y"}))
			}, kms.ErrInvalidArgument},
			{"Envelope.Open of a malformed message", func() error {
				return auditOpsErr(env.Open(ctx, []byte("not a message"), nil))
			}, kms.ErrInvalidCiphertext},
			{"Envelope.Open to a recipient whose alias was deleted", func() error {
				return auditOpsErr(byAlias.Open(ctx, orphan, auditOpsEC))
			}, kms.ErrIncorrectKey},
		} {
			f.r.Events.Reset()
			err := u.run()
			if u.want == nil {
				require.NoError(t, err, u.name)
			} else {
				require.ErrorIs(t, err, u.want, u.name)
			}
			assert.Empty(t, auditOpsOps(f.r.Events.Events()), "%s: no event", u.name)
		}
	})

	// Envelope.Rewrap opens and seals again: one Decrypt and one
	// GenerateDataKey with a KeyRecipient.
	t.Run("Envelope.Rewrap", func(t *testing.T) {
		t.Parallel()
		f := auditOpsNewFixture(t)
		k := f.sym()
		env := f.envelope(kms.KeyRecipient(k.KeyID))
		msg := f.seal(env)
		f.r.Events.Reset()
		_, err := env.Rewrap(kms.WithPrincipal(t.Context(), auditOpsApp), msg, auditOpsEC)
		require.NoError(t, err)
		evs := f.r.Events.Events()
		require.Equal(t, []kms.Op{kms.OpDecrypt, kms.OpGenerateDataKey}, auditOpsOps(evs))
		for _, ev := range evs {
			assert.Equal(t, kms.OutcomeAllowed, ev.Outcome)
			assert.Equal(t, k.KeyID, ev.KeyID)
			assert.Equal(t, auditOpsApp, ev.Principal)
		}
	})
}

// auditOpsForms returns the renderings of b to look for: raw, hex, base64
// and Go's %v, %#v and %q, of b and of its first 12 bytes.
func auditOpsForms(b []byte) []string {
	var forms []string
	for _, s := range [][]byte{b, b[:min(12, len(b))]} {
		forms = append(forms,
			string(s),
			hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)),
			base64.StdEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(s),
			base64.URLEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s),
			strings.Trim(fmt.Sprint(s), "[]"),
			strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", s), "[]byte{"), "}"),
			strings.Trim(fmt.Sprintf("%q", s), `"`),
		)
	}
	return forms
}

// auditOpsRender returns the event as %v, %+v, %#v, JSON (if it
// marshals) and slog JSON.
func auditOpsRender(t *testing.T, ev kms.Event) map[string]string {
	out := map[string]string{
		"%v":  fmt.Sprintf("%v", ev),
		"%+v": fmt.Sprintf("%+v", ev),
		"%#v": fmt.Sprintf("%#v", ev),
	}
	if ev.Err != nil {
		out["Err.Error()"] = ev.Err.Error()
	}
	if j, err := json.Marshal(ev); err == nil {
		out["json"] = string(j)
	} else {
		t.Logf("%s event does not marshal to JSON: %v", ev.Op, err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("kms", "event", ev)
	out["slog"] = buf.String()
	return out
}

// auditOpsLeaks reports the first secret rendering found in an event.
func auditOpsLeaks(t *testing.T, secrets []auditOpsSecret, ev kms.Event) string {
	for how, text := range auditOpsRender(t, ev) {
		for _, s := range secrets {
			if len(s.b) < 12 {
				continue
			}
			for _, form := range auditOpsForms(s.b) {
				if strings.Contains(text, form) {
					return fmt.Sprintf("%s event, rendered as %s, contains a %s", ev.Op, how, s.what)
				}
			}
		}
	}
	return ""
}

// TestAuditEventsCarryNoSecrets runs every runner of TestAuditEveryOperation
// again (success, denial and failure) and checks that no event of the
// ring, setup included, contains a plaintext, a data key or data key pair,
// a shared secret, random bytes, an HMAC or signed message, imported key
// material or the root key, in any common encoding.
func TestAuditEventsCarryNoSecrets(t *testing.T) {
	t.Parallel()

	t.Run("the detector finds secrets", func(t *testing.T) {
		s := randomBytes(t, 32)
		for _, leak := range []error{
			fmt.Errorf("%s", s), fmt.Errorf("%x", s), fmt.Errorf("%X", s), fmt.Errorf("%v", s), fmt.Errorf("%#v", s), fmt.Errorf("%q", s),
			errors.New(base64.StdEncoding.EncodeToString(s)), errors.New(base64.RawURLEncoding.EncodeToString(s)),
			fmt.Errorf("%x...", s[:12]),
		} {
			assert.NotEmpty(t, auditOpsLeaks(t, []auditOpsSecret{{"test secret", s}}, kms.Event{Op: kms.OpDecrypt, Err: leak}), "%q", leak.Error())
		}
		assert.NotEmpty(t, auditOpsLeaks(t, []auditOpsSecret{{"test secret", s}}, kms.Event{EncryptionContext: kms.EncryptionContext{"k": hex.EncodeToString(s)}}))
		assert.Empty(t, auditOpsLeaks(t, []auditOpsSecret{{"test secret", s}}, kms.Event{Op: kms.OpDecrypt, Err: errors.New("kms: invalid ciphertext")}))
	})

	for _, tc := range auditOpsCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runs := []struct {
				name  string
				setup auditOpsSetup
				p     kms.Principal
			}{{"allowed", tc.ok, auditOpsApp}, {"denied", tc.ok, auditOpsDenied}, {"failed", tc.fail, auditOpsApp}}
			for _, run := range runs {
				f := auditOpsNewFixture(t)
				c := run.setup(f)
				_ = c.run(kms.WithPrincipal(t.Context(), run.p))
				if c.after != nil {
					c.after()
				}
				evs := f.all.Events()
				require.NotEmpty(t, evs)
				f.mu.Lock()
				secrets := slices.Clone(f.secrets)
				f.mu.Unlock()
				require.NotEmpty(t, secrets)
				for _, ev := range evs {
					if leak := auditOpsLeaks(t, secrets, ev); leak != "" {
						t.Errorf("%s %s: %s", tc.name, run.name, leak)
					}
				}
			}
		})
	}
}

// auditOpsAliasStore is a Store whose DeleteAlias fails on demand.
type auditOpsAliasStore struct {
	*kms.MemoryStore
	failDeleteAlias atomic.Bool
}

func (s *auditOpsAliasStore) DeleteAlias(ctx context.Context, name string) error {
	if s.failDeleteAlias.Load() {
		return errors.New("auditOps store: DeleteAlias failed")
	}
	return s.MemoryStore.DeleteAlias(ctx, name)
}

// TestAuditDeleteKeyRecordedWhenAliasCleanupFails: when RunDue destroys a
// key whose deletion date has passed but then fails to delete its aliases,
// the key is gone for good, so the audit trail must say that it was
// deleted: some OpDeleteKey event for the key must be allowed, in that
// RunDue or in the next one, which finishes the alias cleanup.
func TestAuditDeleteKeyRecordedWhenAliasCleanupFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &auditOpsAliasStore{MemoryStore: kms.NewMemoryStore()}
	r := kmstest.New(t, kms.Config{Store: st, RootKey: newRootKey(t)})
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	require.NoError(t, r.CreateAlias(ctx, "alias/doomed", k.KeyID))
	_, err := r.ScheduleKeyDeletion(ctx, k.KeyID, 7)
	require.NoError(t, err)
	r.Clock.Advance(8 * 24 * time.Hour)
	r.Events.Reset()

	st.failDeleteAlias.Store(true)
	first, err := r.RunDue(ctx)
	require.NoError(t, err)
	_, err = r.DescribeKey(ctx, k.KeyID)
	require.ErrorIs(t, err, kms.ErrKeyDeleted, "the key's material is destroyed")
	st.failDeleteAlias.Store(false)
	second, err := r.RunDue(ctx)
	require.NoError(t, err)
	aliases, err := r.ListAliases(ctx, kms.ListAliasesInput{})
	require.NoError(t, err)
	require.Empty(t, aliases.Aliases, "the next RunDue deletes the alias")

	deletes := r.Events.ByOp(kms.OpDeleteKey)
	require.Len(t, deletes, 1, "one DeleteKey event for the key")
	assert.Equal(t, kms.OutcomeAllowed, deletes[0].Outcome, "the deletion happened, whatever became of its aliases")
	assert.Equal(t, k.KeyID, deletes[0].KeyID)
	assert.Equal(t, []string{k.KeyID}, first.Deleted, "the first RunDue deleted the key")
	assert.Empty(t, second.Deleted)
}
