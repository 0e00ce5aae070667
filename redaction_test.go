package kms_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// secrets collects byte strings that must never be printed.
type secrets [][]byte

// leak returns the first rendering of a secret found in text, or "".
func (s secrets) leak(text string) string {
	for _, b := range s {
		dec := strings.Fields(strings.Trim(fmt.Sprintf("%v", b), "[]"))
		goHex := strings.Split(strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", b), "[]byte{"), "}"), ", ")
		for _, form := range []string{
			string(b),
			hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
			base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
			strings.Join(dec[:min(6, len(dec))], " "),      // %v of a []byte
			strings.Join(goHex[:min(6, len(goHex))], ", "), // %#v of a []byte
			fmt.Sprintf("%q", b)[1 : 1+min(12, len(fmt.Sprintf("%q", b))-2)],
		} {
			if len(form) >= 8 && strings.Contains(text, form) {
				return form
			}
		}
	}
	return ""
}

func (s secrets) check(t *testing.T, where, text string) {
	t.Helper()
	if s.leak(text) != "" {
		t.Fatalf("%s prints secret bytes", where)
	}
}

// TestLeakDetector shows that the check below can fail: every fmt verb
// applied to raw secret bytes is caught.
func TestLeakDetector(t *testing.T) {
	b := []byte{0x9E, 0x11, 0x7B, 0x2D, 0x00, 0x42, 0xFF, 0x10, 0x20, 0x30, 0x40, 0x50}
	s := secrets{b}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%X", "%s", "%q"} {
		require.NotEmpty(t, s.leak("x"+fmt.Sprintf(verb, b)+"y"), verb)
		require.NotEmpty(t, s.leak(fmt.Sprintf(verb, struct{ K []byte }{b})), verb+" in a struct")
	}
	require.Empty(t, s.leak("[redacted]"))
}

func TestNoKeyMaterialInOutput(t *testing.T) {
	ctx := context.Background()
	// Never use literal keys like these outside tests.
	rootBytes := bytes.Repeat([]byte{0xC3, 0x5A}, 16)
	root, err := kms.NewAESRootKey(rootBytes, nil)
	require.NoError(t, err)
	var events kms.Recorder
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	auditor := kms.AuditorFunc(func(ctx context.Context, e kms.Event) error {
		logger.InfoContext(ctx, "kms", "event", e, "text", fmt.Sprintf("%+v", e))
		return events.Audit(ctx, e)
	})
	cfg := kms.Config{RootKey: root, Store: kms.NewMemoryStore(), Auditor: auditor}
	ring, err := kms.NewKeyRing(cfg)
	require.NoError(t, err)
	tr := &kmstest.Ring{KeyRing: ring, Events: &events}

	symMaterial := bytes.Repeat([]byte{0x9E, 0x11, 0x7B, 0x2D}, 8)
	hmacMaterial := bytes.Repeat([]byte{0x3F, 0xA8}, 16)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	require.NoError(t, err)
	ecScalar, err := ecKey.Bytes()
	require.NoError(t, err)
	sec := secrets{rootBytes, symMaterial, hmacMaterial, ecScalar, ecDER[len(ecDER)-40:]}

	kt := kmstest.New(t)
	sym := importInto(t, ring, kms.SymmetricDefault, kms.EncryptDecrypt, symMaterial)
	hm := importInto(t, ring, kms.HMAC256, kms.GenerateVerifyMac, hmacMaterial)
	ec := importInto(t, ring, kms.ECCNISTP256, kms.KeyAgreement, ecDER)

	plaintext := []byte("the plaintext that must stay hidden")
	sec = append(sec, plaintext)
	ectx := kms.EncryptionContext{"purpose": "redaction"}

	encIn := kms.EncryptInput{KeyID: sym, Plaintext: plaintext, EncryptionContext: ectx}
	enc, err := ring.Encrypt(ctx, encIn)
	require.NoError(t, err)
	dec, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ectx})
	require.NoError(t, err)
	dk, err := ring.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: sym, KeySpec: kms.AES256, EncryptionContext: ectx})
	require.NoError(t, err)
	sec = append(sec, bytes.Clone(dk.Plaintext))
	pair, err := ring.GenerateDataKeyPair(ctx, kms.GenerateDataKeyPairInput{KeyID: sym, KeyPairSpec: kms.PairECCNISTP256, EncryptionContext: ectx})
	require.NoError(t, err)
	pairKey, err := x509.ParsePKCS8PrivateKey(pair.PrivateKeyPlaintext)
	require.NoError(t, err)
	pairScalar, err := pairKey.(*ecdsa.PrivateKey).Bytes()
	require.NoError(t, err)
	sec = append(sec, pairScalar)
	peer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	peerDER, err := x509.MarshalPKIXPublicKey(&peer.PublicKey)
	require.NoError(t, err)
	shared, err := ring.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: ec, KeyAgreementAlgorithm: kms.ECDH, PublicKey: peerDER})
	require.NoError(t, err)
	sec = append(sec, bytes.Clone(shared.SharedSecret))
	rnd, err := ring.GenerateRandom(ctx, 32)
	require.NoError(t, err)
	sec = append(sec, bytes.Clone(rnd))
	mac, err := ring.GenerateMac(ctx, kms.GenerateMacInput{KeyID: hm, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)

	// Failures, so that errors and failed events are in the trail too.
	var errs []error
	for _, f := range []func() error{
		func() error {
			_, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: kms.EncryptionContext{"purpose": "other"}})
			return err
		},
		func() error {
			_, err := ring.VerifyMac(ctx, kms.VerifyMacInput{KeyID: hm, Message: []byte("n"), Mac: mac.Mac, MacAlgorithm: kms.HMACSHA256})
			return err
		},
		func() error {
			_, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: hm, Plaintext: plaintext})
			return err
		},
		func() error { // bad material on import
			k, err := ring.CreateKey(ctx, kms.CreateKeyInput{KeySpec: kms.ECCNISTP384, KeyUsage: kms.SignVerify, Origin: kms.OriginExternal})
			require.NoError(t, err)
			return kmstest.ImportMaterial(ctx, ring, k.KeyID, ecDER)
		},
		func() error { // wrong length symmetric material
			k, err := ring.CreateKey(ctx, kms.CreateKeyInput{Origin: kms.OriginExternal})
			require.NoError(t, err)
			return kmstest.ImportMaterial(ctx, ring, k.KeyID, append(bytes.Clone(symMaterial), 1))
		},
		func() error {
			_, err := ring.DeriveSharedSecret(ctx, kms.DeriveSharedSecretInput{KeyID: ec, KeyAgreementAlgorithm: kms.ECDH, PublicKey: ecDER})
			return err
		},
	} {
		err := f()
		require.Error(t, err)
		errs = append(errs, err)
	}

	rawRecipient, err := kms.RawAESRecipient("ns", "name", symMaterial)
	require.NoError(t, err)
	env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(sym), rawRecipient}})
	require.NoError(t, err)
	sealed, err := env.Seal(ctx, plaintext, ectx)
	require.NoError(t, err)
	opened, err := env.Open(ctx, sealed, ectx)
	require.NoError(t, err)
	require.True(t, bytes.Equal(plaintext, opened))
	_, openErr := env.Open(ctx, sealed, kms.EncryptionContext{"purpose": "other"})
	require.Error(t, openErr)
	errs = append(errs, openErr)

	cachedEnv, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(sym)}, Cache: &kms.CacheConfig{MaxAge: time.Hour}})
	require.NoError(t, err)
	cachedMsg, err := cachedEnv.Seal(ctx, plaintext, ectx)
	require.NoError(t, err)
	_, err = cachedEnv.Open(ctx, cachedMsg, ectx)
	require.NoError(t, err)

	values := map[string]any{
		"Envelope": env, "Envelope with a warm cache": cachedEnv, "Recipient": rawRecipient, "EnvelopeMessage": sealed,
		"KeyRing": ring, "Config": cfg, "RootKey": root, "kmstest.Ring": tr, "kmstest.Ring(new)": kt,
		"EncryptInput": encIn, "EncryptOutput": enc, "DecryptOutput": dec, "GenerateDataKeyOutput": dk,
		"GenerateDataKeyPairOutput": pair, "DeriveSharedSecretOutput": shared, "Secret": rnd,
		"Recorder": &events, "Events": events.Events(),
	}
	for i, e := range errs {
		values[fmt.Sprintf("error %d", i)] = e
		sec.check(t, fmt.Sprintf("error %d", i), e.Error())
		var ke *kms.Error
		require.True(t, errors.As(e, &ke), "error %d is not a *kms.Error", i)
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%X", "%s", "%q"} {
			sec.check(t, name+" "+verb, fmt.Sprintf(verb, v))
			sec.check(t, "pointer to "+name+" "+verb, fmt.Sprintf(verb, &v))
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("v", "v", v)
		sec.check(t, name+" in slog", buf.String())
		if b, err := json.Marshal(v); err == nil {
			sec.check(t, name+" in JSON", string(b))
		}
	}
	sec.check(t, "audit log", logBuf.String())
	require.Greater(t, len(events.Events()), 10)
	for _, e := range events.Events() {
		sec.check(t, "event", fmt.Sprintf("%+v %#v", e, e))
	}
}

func importInto(t *testing.T, ring *kms.KeyRing, spec kms.KeySpec, usage kms.KeyUsage, material []byte) string {
	t.Helper()
	ctx := context.Background()
	k, err := ring.CreateKey(ctx, kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Origin: kms.OriginExternal})
	require.NoError(t, err)
	require.NoError(t, kmstest.ImportMaterial(ctx, ring, k.KeyID, material))
	return k.KeyID
}
