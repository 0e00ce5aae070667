package wycheproof_test

import (
	"bytes"
	"crypto"
	_ "crypto/sha256" // the HMAC hashes, for their digest and block sizes
	_ "crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"testing"

	"github.com/c2sp/wycheproof"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// hexBytes is a byte string written in hex in the vector files.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// vectorFile is the part of a Wycheproof v1 vector file these tests read:
// the union of the ECDSA, RSA-OAEP and MAC group and test fields.
type vectorFile struct {
	Algorithm     string  `json:"algorithm"`
	NumberOfTests int     `json:"numberOfTests"`
	TestGroups    []group `json:"testGroups"`
}

type group struct {
	Type            string   `json:"type"`
	Sha             string   `json:"sha"`
	Mgf             string   `json:"mgf"`
	MgfSha          string   `json:"mgfSha"`
	KeySize         int      `json:"keySize"`
	TagSize         int      `json:"tagSize"`
	PublicKeyDer    hexBytes `json:"publicKeyDer"`
	KeyDer          hexBytes `json:"keyDer"`
	PrivateKeyPkcs8 hexBytes `json:"privateKeyPkcs8"`
	Tests           []vector `json:"tests"`
}

type vector struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Msg     hexBytes `json:"msg"`
	Sig     hexBytes `json:"sig"`
	Ct      hexBytes `json:"ct"`
	Label   hexBytes `json:"label"`
	Key     hexBytes `json:"key"`
	Tag     hexBytes `json:"tag"`
	Result  string   `json:"result"`
}

func (v vector) String() string {
	return fmt.Sprintf("tcId %d %q %v (%s)", v.TcID, v.Comment, v.Flags, v.Result)
}

// load reads and decodes one vector file from the Wycheproof module.
func load(t *testing.T, name string) *vectorFile {
	t.Helper()
	b, err := fs.ReadFile(wycheproof.TestVectors, name)
	require.NoError(t, err)
	var f vectorFile
	require.NoError(t, json.Unmarshal(b, &f), name)
	require.NotEmpty(t, f.TestGroups, name)
	n := 0
	for _, g := range f.TestGroups {
		n += len(g.Tests)
	}
	require.Equal(t, f.NumberOfTests, n, "%s: numberOfTests", name)
	return &f
}

// tally accounts for every vector of a file: each one either ran (went
// through the API with its outcome checked) or was skipped for a reason.
type tally struct {
	total   int
	ran     int            // passed to the API, outcome checked
	validOK int            // of ran: valid vectors the API accepted
	shape   int            // of ran: invalid vectors refused for their input shape
	skipped map[string]int // reason → count
}

func newTally() *tally { return &tally{skipped: map[string]int{}} }

func (c *tally) skip(reason string) { c.skipped[reason]++ }

// judge checks the outcome of one vector that the API can express. want is
// the typed error an invalid vector must give; shapeOK allows
// ErrInvalidArgument instead, where the API refuses the input's shape.
func (c *tally) judge(t *testing.T, tc vector, err error, want error, shapeOK bool) {
	t.Helper()
	c.ran++
	switch tc.Result {
	case "valid":
		if assert.NoError(t, err, "%v", tc) {
			c.validOK++
		}
	case "invalid":
		if shapeOK && errors.Is(err, kms.ErrInvalidArgument) {
			c.shape++
			return
		}
		assert.ErrorIs(t, err, want, "%v", tc)
	case "acceptable":
		// Either outcome, but a refusal must still be a typed error.
		if err != nil && !errors.Is(err, want) && !(shapeOK && errors.Is(err, kms.ErrInvalidArgument)) {
			t.Errorf("%v: refused with an unexpected error: %v", tc, err)
		}
	default:
		t.Errorf("%v: unknown result %q", tc, tc.Result)
	}
}

// refused records an invalid vector that the API cannot take as it stands
// (an unsupported input shape) but must still refuse with one of errs.
func (c *tally) refused(t *testing.T, tc vector, err error, errs ...error) {
	t.Helper()
	c.ran++
	c.shape++
	for _, e := range errs {
		if errors.Is(err, e) {
			return
		}
	}
	t.Errorf("%v: want one of %v, got %v", tc, errs, err)
}

// check logs the counts and asserts that no vector went unaccounted for
// and that at least floor vectors ran.
func (c *tally) check(t *testing.T, name string, floor int) {
	t.Helper()
	n := 0
	for _, v := range c.skipped {
		n += v
	}
	t.Logf("%s: %d vectors: ran %d (valid accepted %d, invalid refused for input shape %d), skipped %d",
		name, c.total, c.ran, c.validOK, c.shape, n)
	for _, reason := range slices.Sorted(maps.Keys(c.skipped)) {
		t.Logf("%s: skipped %d: %s", name, c.skipped[reason], reason)
	}
	require.Equal(t, c.total, c.ran+n, "%s: every vector must run or be skipped with a reason", name)
	require.Positive(t, c.ran, name)
	require.Positive(t, c.validOK, name)
	require.GreaterOrEqual(t, c.ran, floor, "%s: fewer vectors ran than expected", name)
}

var errPanicked = errors.New("panicked")

// noPanic runs f and turns a panic into a test failure naming the vector.
func noPanic(t *testing.T, tc vector, f func() error) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%v: panic: %v", tc, p)
			err = errPanicked
		}
	}()
	return f()
}

const skipEmptyMessage = "empty message (AWS KMS takes 1 to 4,096 bytes)"

// TestECDSA verifies the ASN.1 DER ECDSA vectors with verify-only keys
// imported from each group's public key.
func TestECDSA(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file  string
		spec  kms.KeySpec
		alg   kms.SigningAlgorithm
		sha   string
		floor int // every vector but the 4 with an empty message, which the API may refuse
	}{
		{"ecdsa_secp256r1_sha256_test.json", kms.ECCNISTP256, kms.ECDSASHA256, "SHA-256", 480},
		{"ecdsa_secp384r1_sha384_test.json", kms.ECCNISTP384, kms.ECDSASHA384, "SHA-384", 500},
		{"ecdsa_secp521r1_sha512_test.json", kms.ECCNISTP521, kms.ECDSASHA512, "SHA-512", 538},
	} {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			f := load(t, c.file)
			r := kmstest.New(t)
			tl := newTally()
			imported := map[string]*kms.KeyMetadata{} // public key DER → key
			for _, g := range f.TestGroups {
				require.Equal(t, "EcdsaVerify", g.Type)
				require.Equal(t, c.sha, g.Sha)
				der := g.PublicKeyDer
				if len(der) == 0 {
					der = g.KeyDer
				}
				require.NotEmpty(t, der, "group without a public key")
				m := imported[string(der)]
				if m == nil {
					m = r.ImportKey(c.spec, kms.SignVerify, der)
					require.True(t, m.VerifyOnly)
					require.Equal(t, c.spec, m.KeySpec)
					imported[string(der)] = m
				}
				for _, tc := range g.Tests {
					tl.total++
					err := noPanic(t, tc, func() error {
						out, err := r.Verify(ctx, kms.VerifyInput{
							KeyID: m.KeyID, Message: tc.Msg, MessageType: kms.MessageRaw,
							Signature: tc.Sig, SigningAlgorithm: c.alg,
						})
						if err == nil && (!out.SignatureValid || out.KeyVersion != 1) {
							return fmt.Errorf("Verify returned no error but SignatureValid %v, KeyVersion %d", out.SignatureValid, out.KeyVersion)
						}
						return err
					})
					if len(tc.Msg) == 0 && tc.Result != "invalid" && errors.Is(err, kms.ErrInvalidArgument) {
						tl.skip(skipEmptyMessage)
						continue
					}
					shape := len(tc.Msg) == 0 || len(tc.Sig) == 0 || len(tc.Sig) > kms.MaxSignatureSize
					tl.judge(t, tc, err, kms.ErrInvalidSignature, shape)
				}
			}
			tl.check(t, c.file, c.floor)
		})
	}
}

var errWrongPlaintext = errors.New("decrypted to a plaintext other than msg")

// TestRSAOAEP decrypts the RSA-OAEP SHA-256/MGF1-SHA-256 vectors with each
// group's private key imported into an ENCRYPT_DECRYPT key.
func TestRSAOAEP(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file  string
		spec  kms.KeySpec
		bits  int
		floor int // every vector without a label
	}{
		{"rsa_oaep_2048_sha256_mgf1sha256_test.json", kms.RSA2048, 2048, 29},
		{"rsa_oaep_3072_sha256_mgf1sha256_test.json", kms.RSA3072, 3072, 29},
	} {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			f := load(t, c.file)
			r := kmstest.New(t)
			tl := newTally()
			for _, g := range f.TestGroups {
				require.Equal(t, "RsaesOaepDecrypt", g.Type)
				require.Equal(t, "SHA-256", g.Sha)
				require.Equal(t, "MGF1", g.Mgf)
				require.Equal(t, "SHA-256", g.MgfSha)
				require.Equal(t, c.bits, g.KeySize)
				require.NotEmpty(t, g.PrivateKeyPkcs8)
				m := r.ImportKey(c.spec, kms.EncryptDecrypt, g.PrivateKeyPkcs8)
				require.False(t, m.VerifyOnly)
				require.Equal(t, c.spec, m.KeySpec)
				for _, tc := range g.Tests {
					tl.total++
					if len(tc.Label) > 0 {
						tl.skip("non-empty OAEP label (Decrypt takes none)")
						continue
					}
					err := noPanic(t, tc, func() error {
						out, err := r.Decrypt(ctx, kms.DecryptInput{
							KeyID: m.KeyID, CiphertextBlob: tc.Ct, EncryptionAlgorithm: kms.RSAESOAEPSHA256,
						})
						if err != nil {
							return err
						}
						defer clear(out.Plaintext)
						if !bytes.Equal(out.Plaintext, tc.Msg) {
							return errWrongPlaintext
						}
						if out.KeyVersion != 1 || out.EncryptionAlgorithm != kms.RSAESOAEPSHA256 {
							return fmt.Errorf("Decrypt reported version %d, algorithm %s", out.KeyVersion, out.EncryptionAlgorithm)
						}
						return nil
					})
					shape := len(tc.Ct) == 0 || len(tc.Ct) > kms.MaxCiphertextSize
					tl.judge(t, tc, err, kms.ErrInvalidCiphertext, shape)
				}
			}
			tl.check(t, c.file, c.floor)
		})
	}
}

// TestHMAC verifies the HMAC vectors with each vector's key imported into
// an HMAC key of the matching spec.
func TestHMAC(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file  string
		spec  kms.KeySpec
		alg   kms.MacAlgorithm
		hash  crypto.Hash
		floor int // as observed: see the skip reasons logged
	}{
		{"hmac_sha256_test.json", kms.HMAC256, kms.HMACSHA256, crypto.SHA256, 134},
		{"hmac_sha384_test.json", kms.HMAC384, kms.HMACSHA384, crypto.SHA384, 136},
		{"hmac_sha512_test.json", kms.HMAC512, kms.HMACSHA512, crypto.SHA512, 136},
	} {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			f := load(t, c.file)
			r := kmstest.New(t)
			tl := newTally()
			digest, block := c.hash.Size(), c.hash.New().BlockSize()
			imported := map[string]*kms.KeyMetadata{} // key bytes → key
			for _, g := range f.TestGroups {
				require.Equal(t, "MacTest", g.Type)
				if g.KeySize < 8*digest || g.KeySize > 8*block {
					// The key cannot be imported, so no vector of the group
					// can be expressed; check that the import is refused.
					key := g.Tests[0].Key
					require.Equal(t, g.KeySize, 8*len(key))
					m, err := r.KeyRing.CreateKey(ctx, kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: kms.GenerateVerifyMac, Origin: kms.OriginExternal})
					require.NoError(t, err)
					err = kmstest.ImportMaterial(ctx, r.KeyRing, m.KeyID, key)
					require.ErrorIs(t, err, kms.ErrIncorrectKeyMaterial, "a %d-byte key for %s must be refused", len(key), c.spec)
					for range g.Tests {
						tl.total++
						tl.skip(fmt.Sprintf("%d-bit key outside the AWS KMS import bounds [%d, %d] bits", g.KeySize, 8*digest, 8*block))
					}
					continue
				}
				fullTag := g.TagSize == 8*digest
				for _, tc := range g.Tests {
					tl.total++
					require.Equal(t, g.KeySize, 8*len(tc.Key), "%v", tc)
					require.Equal(t, g.TagSize, 8*len(tc.Tag), "%v", tc)
					m := imported[string(tc.Key)]
					if m == nil {
						m = r.ImportKey(c.spec, kms.GenerateVerifyMac, tc.Key)
						require.Equal(t, c.spec, m.KeySpec)
						imported[string(tc.Key)] = m
					}
					err := noPanic(t, tc, func() error {
						out, err := r.VerifyMac(ctx, kms.VerifyMacInput{KeyID: m.KeyID, Message: tc.Msg, Mac: tc.Tag, MacAlgorithm: c.alg})
						if err == nil && (!out.MacValid || out.KeyVersion != 1) {
							return fmt.Errorf("VerifyMac returned no error but MacValid %v, KeyVersion %d", out.MacValid, out.KeyVersion)
						}
						return err
					})
					switch {
					case len(tc.Msg) == 0:
						// Refused for its shape, whatever the tag.
						if tc.Result == "invalid" {
							tl.refused(t, tc, err, kms.ErrInvalidArgument)
						} else {
							assert.ErrorIs(t, err, kms.ErrInvalidArgument, "%v", tc)
							tl.skip(skipEmptyMessage)
						}
					case !fullTag:
						// VerifyMac takes full tags only: a truncated tag,
						// even a correct one, must be refused.
						if tc.Result == "invalid" {
							tl.refused(t, tc, err, kms.ErrInvalidMac, kms.ErrInvalidArgument)
						} else {
							if !errors.Is(err, kms.ErrInvalidMac) && !errors.Is(err, kms.ErrInvalidArgument) {
								t.Errorf("%v: a truncated tag must be refused, got %v", tc, err)
							}
							tl.skip(fmt.Sprintf("%d-bit truncated tag (VerifyMac takes full tags only)", g.TagSize))
						}
					default:
						tl.judge(t, tc, err, kms.ErrInvalidMac, false)
					}
				}
			}
			tl.check(t, c.file, c.floor)
		})
	}
}
