package kms_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/internal/esdk"
	"github.com/pocketkms/kms/internal/format"
	"github.com/pocketkms/kms/kmstest"
)

// envCtxRing is a ring for the Envelope context tests: with or without an
// Auditor, and with a Policy that records what it is asked, or AllowAll.
// Without an Auditor the KeyRing takes its fast paths (no context map is
// built on Open unless a Policy needs it), which kmstest.New, always
// recording, never exercises.
type envCtxRing struct {
	ring   *kms.KeyRing
	events *kms.Recorder // nil without an Auditor

	mu   sync.Mutex
	reqs []kms.Request
}

func newEnvCtxRing(t *testing.T, audited, policy bool) *envCtxRing {
	t.Helper()
	r := &envCtxRing{}
	var cfg kms.Config
	if policy {
		cfg.Policy = kms.PolicyFunc(func(_ context.Context, req kms.Request) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			req.EncryptionContext = maps.Clone(req.EncryptionContext) // a Policy must not keep the map
			r.reqs = append(r.reqs, req)
			return nil
		})
	}
	if audited {
		kr := kmstest.New(t, cfg)
		r.ring, r.events = kr.KeyRing, kr.Events
		return r
	}
	ring, err := kms.NewKeyRing(cfg)
	require.NoError(t, err)
	r.ring = ring
	return r
}

func (r *envCtxRing) requests(op kms.Op) []kms.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []kms.Request
	for _, req := range r.reqs {
		if req.Op == op {
			out = append(out, req)
		}
	}
	return out
}

func (r *envCtxRing) reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
	if r.events != nil {
		r.events.Reset()
	}
}

var envCtxConfigs = []struct {
	name             string
	audited, policed bool
}{
	{"no Auditor, AllowAll", false, false},
	{"Auditor, AllowAll", true, false},
	{"no Auditor, Policy", false, true},
	{"Auditor and Policy", true, true},
}

// TestEnvelopeContextSeenByAuditorAndPolicy checks that the GenerateDataKey
// of Envelope.Seal and the Decrypt of Envelope.Open hand the Auditor and
// the Policy the message's whole encryption context (with the signed
// suite's public key), whichever fast path the ring takes.
func TestEnvelopeContextSeenByAuditorAndPolicy(t *testing.T) {
	ctx := context.Background()
	ec := kms.EncryptionContext{"tenant": "7", "purpose": "payroll"}
	many := kms.EncryptionContext{} // more pairs than a header lookup scans
	for i := range 12 {
		many[fmt.Sprintf("k%02d", i)] = fmt.Sprint(i)
	}
	for _, cfg := range envCtxConfigs {
		for _, suite := range []uint16{kms.SuiteCommitted, kms.SuiteCommittedSigned} {
			for _, tc := range []struct {
				name string
				ec   kms.EncryptionContext
				open kms.EncryptionContext // what Open is given
			}{
				{"two pairs", ec, ec},
				{"two pairs, Open given one", ec, kms.EncryptionContext{"tenant": "7"}},
				{"two pairs, Open given none", ec, nil},
				{"many pairs", many, many},
				{"empty", nil, nil},
			} {
				t.Run(fmt.Sprintf("%s/%04x/%s", cfg.name, suite, tc.name), func(t *testing.T) {
					r := newEnvCtxRing(t, cfg.audited, cfg.policed)
					k, err := r.ring.CreateKey(ctx, kms.CreateKeyInput{})
					require.NoError(t, err)
					env, err := kms.NewEnvelope(r.ring, kms.EnvelopeConfig{
						Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}, Suite: suite,
					})
					require.NoError(t, err)
					r.reset()

					msg, err := env.Seal(ctx, []byte("pay"), tc.ec)
					require.NoError(t, err)
					h, err := kms.ParseHeader(msg)
					require.NoError(t, err)
					want := maps.Clone(tc.ec)
					if want == nil {
						want = kms.EncryptionContext{}
					}
					if suite == kms.SuiteCommittedSigned {
						require.Contains(t, h.EncryptionContext, "aws-crypto-public-key")
						want["aws-crypto-public-key"] = h.EncryptionContext["aws-crypto-public-key"]
					}
					assert.Equal(t, want, kms.EncryptionContext(h.EncryptionContext), "the header stores the context")

					pt, err := env.Open(ctx, msg, tc.open)
					require.NoError(t, err)
					assert.Equal(t, "pay", string(pt))

					// An empty context may reach the Auditor or Policy as nil.
					same := func(t *testing.T, got kms.EncryptionContext, what string) {
						t.Helper()
						if len(want) == 0 {
							assert.Empty(t, got, what)
							return
						}
						assert.Equal(t, want, got, what)
					}
					if cfg.audited {
						evs := r.events.Events()
						require.Len(t, evs, 2)
						assert.Equal(t, []kms.Op{kms.OpGenerateDataKey, kms.OpDecrypt}, []kms.Op{evs[0].Op, evs[1].Op})
						same(t, evs[0].EncryptionContext, "GenerateDataKey event")
						same(t, evs[1].EncryptionContext, "Decrypt event")
						assert.Equal(t, k.KeyID, evs[1].KeyID)
					}
					if cfg.policed {
						gen, dec := r.requests(kms.OpGenerateDataKey), r.requests(kms.OpDecrypt)
						require.Len(t, gen, 1)
						require.Len(t, dec, 1)
						same(t, gen[0].EncryptionContext, "GenerateDataKey request")
						same(t, dec[0].EncryptionContext, "Decrypt request")
					}
				})
			}
		}
	}
}

// TestEnvelopeKeyPolicyEncryptionContext checks kms:EncryptionContext
// conditions of a key policy on Envelope.Seal and Envelope.Open, with and
// without an Auditor.
func TestEnvelopeKeyPolicyEncryptionContext(t *testing.T) {
	ctx := context.Background()
	admin := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/admin"})
	app := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/app"})
	doc := `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/admin"},
	     "Action": "kms:*", "Resource": "*"},
	    {"Sid": "AppForTenant7", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app"},
	     "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
	     "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "7"}}}
	  ]
	}`
	for _, audited := range []bool{false, true} {
		for _, suite := range []uint16{kms.SuiteCommitted, kms.SuiteCommittedSigned} {
			t.Run(fmt.Sprintf("audited=%v/%04x", audited, suite), func(t *testing.T) {
				var ring *kms.KeyRing
				if audited {
					ring = kmstest.New(t, kms.Config{Policy: kms.KeyPolicies{}}).KeyRing
				} else {
					var err error
					ring, err = kms.NewKeyRing(kms.Config{Policy: kms.KeyPolicies{}})
					require.NoError(t, err)
				}
				k, err := ring.CreateKey(admin, kms.CreateKeyInput{Policy: doc})
				require.NoError(t, err)
				env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{
					Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}, Suite: suite,
				})
				require.NoError(t, err)
				t7, t8 := kms.EncryptionContext{"tenant": "7"}, kms.EncryptionContext{"tenant": "8"}

				for _, tc := range []struct {
					name   string
					sealer context.Context
					ec     kms.EncryptionContext
					open   kms.EncryptionContext
					want   error // of app's Open
				}{
					{"tenant 7", app, t7, t7, nil},
					{"tenant 7, Open given nothing", app, t7, nil, nil},
					{"tenant 8, sealed by admin", admin, t8, t8, kms.ErrAccessDenied},
					{"tenant 8, Open given nothing", admin, t8, nil, kms.ErrAccessDenied},
					{"no context, sealed by admin", admin, nil, nil, kms.ErrAccessDenied},
				} {
					t.Run(tc.name, func(t *testing.T) {
						msg, err := env.Seal(tc.sealer, []byte("x"), tc.ec)
						require.NoError(t, err)
						pt, err := env.Open(app, msg, tc.open)
						if tc.want == nil {
							require.NoError(t, err)
							assert.Equal(t, "x", string(pt))
							return
						}
						require.ErrorIs(t, err, tc.want)
						assert.Nil(t, pt)
					})
				}
				_, err = env.Seal(app, []byte("x"), t8)
				require.ErrorIs(t, err, kms.ErrAccessDenied, "app may not seal for tenant 8")
				_, err = env.Seal(app, []byte("x"), nil)
				require.ErrorIs(t, err, kms.ErrAccessDenied, "app may not seal without a context")
			})
		}
	}
}

// envCtxField encodes pairs as an ESDK header's context field, in the
// order given, empty keys and all.
func envCtxField(pairs ...[2]string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(pairs)))
	for _, p := range pairs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p[0])))
		b = append(b, p[0]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p[1])))
		b = append(b, p[1]...)
	}
	return b
}

// envCtxForge rewrites the header of msg (suite 0x0478) to store the
// context field stored, and authenticates it (with the required pairs) as
// a holder of the data key can: the body depends only on the data key and
// the message ID, which stay.
func envCtxForge(t *testing.T, msg, dataKey, stored []byte, required map[string]string) []byte {
	t.Helper()
	h, n, err := format.ParseMessageHeader(msg, format.HeaderLimits{})
	require.NoError(t, err)
	h.RawContext = stored
	hdr, err := h.AppendHeader(nil)
	require.NoError(t, err)
	info := binary.BigEndian.AppendUint16(nil, kms.SuiteCommitted)
	key, err := hkdf.Key(sha512.New, dataKey, h.MessageID, string(append(info, "DERIVEKEY"...)), 32)
	require.NoError(t, err)
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	bodyLen := len(hdr) - 16
	aad := append([]byte(nil), hdr[:bodyLen]...)
	if required != nil {
		enc, err := format.AppendContext(nil, required)
		require.NoError(t, err)
		aad = append(aad, enc...)
	}
	aead.Seal(hdr[bodyLen:bodyLen], make([]byte, 12), nil, aad)
	return append(hdr, msg[n:]...)
}

// TestEnvelopeOpenContextNotEncodable: a header may store a context that
// has no canonical encoding (an empty key, or more than MaxContextBytes).
// An "aws-kms" encrypted data key is bound to the canonical encoding of
// the context, so such a message must not open with a KeyRing key. In
// particular it must not open with an encrypted data key bound to the
// empty context: whoever knows that data key (any reader of one message
// sealed without a context) could otherwise make messages that Open
// accepts under whatever context the reader demands.
func TestEnvelopeOpenContextNotEncodable(t *testing.T) {
	ctx := context.Background()
	suite, ok := format.SuiteByID(kms.SuiteCommitted)
	require.True(t, ok)
	big := strings.Repeat("v", format.MaxContextBytes)
	want := kms.EncryptionContext{"purpose": "payroll"}
	for _, cfg := range envCtxConfigs {
		for _, tc := range []struct {
			name     string
			stored   []byte                // the header's context field
			required map[string]string     // pairs the header tag also covers
			open     kms.EncryptionContext // what Open demands
		}{
			{"stored pair beside an empty key", envCtxField([2]string{"", "x"}, [2]string{"purpose", "payroll"}), nil, want},
			{"stored pair beside an empty key, Open given nothing", envCtxField([2]string{"", "x"}, [2]string{"purpose", "payroll"}), nil, nil},
			{"required pair beside an empty key", envCtxField([2]string{"", ""}), want, want},
			{"stored pair, over MaxContextBytes", envCtxField([2]string{"pad", big}, [2]string{"purpose", "payroll"}), nil, want},
		} {
			t.Run(cfg.name+"/"+tc.name, func(t *testing.T) {
				r := newEnvCtxRing(t, cfg.audited, cfg.policed)
				k, err := r.ring.CreateKey(ctx, kms.CreateKeyInput{})
				require.NoError(t, err)
				env, err := kms.NewEnvelope(r.ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}})
				require.NoError(t, err)

				// A data key bound to the empty context, as the reader of a
				// message sealed without a context holds it.
				dk, err := r.ring.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256})
				require.NoError(t, err)
				sealed, err := esdk.Seal(esdk.SealInput{
					Suite: suite, DataKey: dk.Plaintext,
					EDKs:     []format.EDK{{ProviderID: "aws-kms", ProviderInfo: []byte(dk.KeyID), Ciphertext: dk.CiphertextBlob}},
					FrameLen: 4096, Plaintext: []byte("forged"), Rand: rand.Reader,
				})
				require.NoError(t, err)
				// Sanity: the message as sealed, without a context, opens.
				pt, err := env.Open(ctx, sealed, nil)
				require.NoError(t, err)
				require.Equal(t, "forged", string(pt))

				msg := envCtxForge(t, sealed, dk.Plaintext, tc.stored, tc.required)
				_, err = kms.ParseHeader(msg)
				require.NoError(t, err, "the header parses: the format allows this context")

				pt, err = env.Open(ctx, msg, tc.open)
				assert.Error(t, err, "a message whose context has no canonical encoding opened")
				assert.Nil(t, pt)
			})
		}
	}
}
