// The official AWS Encryption SDK for Go, the direct competitor: the same
// message format, here with raw AES (and, in the interop test, raw RSA)
// keyrings. It is both a benchmark peer and an interoperability peer.

package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	esdk "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygenerated"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// awsSuite and awsFrame are what the benchmarks ask of the SDK: the
// default suite and the frame length of pocketkms's default.
const (
	awsSuite       = mpltypes.ESDKAlgorithmSuiteIdAlgAes256GcmHkdfSha512CommitKey
	awsFrame int64 = 64 << 10
)

// awsESDK is the official Go SDK with one keyring.
type awsESDK struct {
	client  *esdk.Client
	keyring mpltypes.IKeyring
}

// newAWSESDK returns the SDK under its default commitment policy
// (REQUIRE_ENCRYPT_REQUIRE_DECRYPT) with the given keyring.
func newAWSESDK(tb testing.TB, keyring mpltypes.IKeyring) awsESDK {
	tb.Helper()
	c, err := esdk.NewClient(esdktypes.AwsEncryptionSdkConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return awsESDK{c, keyring}
}

func newMPL(tb testing.TB) *mpl.Client {
	tb.Helper()
	m, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// rawAESKeyring is the SDK's raw AES keyring for a 256-bit key.
func rawAESKeyring(tb testing.TB, m *mpl.Client, namespace, name string, key []byte) mpltypes.IKeyring {
	tb.Helper()
	k, err := m.CreateRawAesKeyring(context.Background(), mpltypes.CreateRawAesKeyringInput{
		KeyNamespace: namespace, KeyName: name, WrappingKey: key,
		WrappingAlg: mpltypes.AesWrappingAlgAlgAes256GcmIv12Tag16,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// rawRSAKeyring is the SDK's raw RSA keyring (OAEP with SHA-256 and MGF1
// SHA-256) holding both halves of priv.
func rawRSAKeyring(tb testing.TB, m *mpl.Client, namespace, name string, priv *rsa.PrivateKey) mpltypes.IKeyring {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := m.CreateRawRsaKeyring(context.Background(), mpltypes.CreateRawRsaKeyringInput{
		KeyNamespace: namespace, KeyName: name,
		PaddingScheme: mpltypes.PaddingSchemeOaepSha256Mgf1,
		PrivateKey:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		PublicKey:     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func (s awsESDK) seal(ctx context.Context, pt []byte, ec map[string]string, suite mpltypes.ESDKAlgorithmSuiteId, frame int64) ([]byte, error) {
	out, err := s.client.Encrypt(ctx, esdktypes.EncryptInput{
		Plaintext: pt, EncryptionContext: ec, Keyring: s.keyring,
		AlgorithmSuiteId: &suite, FrameLength: &frame,
	})
	if err != nil {
		return nil, err
	}
	return out.Ciphertext, nil
}

func (s awsESDK) open(ctx context.Context, msg []byte, ec map[string]string) ([]byte, error) {
	out, err := s.client.Decrypt(ctx, esdktypes.DecryptInput{Ciphertext: msg, EncryptionContext: ec, Keyring: s.keyring})
	if err != nil {
		return nil, err
	}
	return out.Plaintext, nil
}

// TestInteropGoESDK: messages pocketkms seals open in the official AWS
// Encryption SDK for Go, and the SDK's messages open in pocketkms, for
// both suites, several frame lengths, empty and multi-frame payloads, and
// two recipients (a raw AES key imported into the ring and a raw RSA key),
// each of which alone opens the message.
func TestInteropGoESDK(t *testing.T) {
	ctx := context.Background()
	// Never use literal keys like this outside tests.
	aesKey := bytes.Repeat([]byte{0x33}, 32)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	const ns = "pocketkms-interop"

	r := kmstest.New(t)
	ringKey := r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, aesKey).KeyID
	ourAES, err := kms.RawAESKeyRecipient(ns, "aes-1", ringKey)
	require.NoError(t, err)
	ourRSA, err := kms.RawRSARecipient(ns, "rsa-1", rsaKey, crypto.SHA256)
	require.NoError(t, err)

	m := newMPL(t)
	theirAES := rawAESKeyring(t, m, ns, "aes-1", aesKey)
	theirRSA := rawRSAKeyring(t, m, ns, "rsa-1", rsaKey)
	multi, err := m.CreateMultiKeyring(ctx, mpltypes.CreateMultiKeyringInput{Generator: theirAES, ChildKeyrings: []mpltypes.IKeyring{theirRSA}})
	require.NoError(t, err)
	peers := map[string]awsESDK{"aes": newAWSESDK(t, theirAES), "rsa": newAWSESDK(t, theirRSA)}
	ours := map[string]kms.Recipient{"aes": ourAES, "rsa": ourRSA}
	sdkBoth := newAWSESDK(t, multi)

	ec := kms.EncryptionContext{"tenant": "17", "purpose": "interop"}
	suites := map[uint16]mpltypes.ESDKAlgorithmSuiteId{
		kms.SuiteCommitted:       mpltypes.ESDKAlgorithmSuiteIdAlgAes256GcmHkdfSha512CommitKey,
		kms.SuiteCommittedSigned: mpltypes.ESDKAlgorithmSuiteIdAlgAes256GcmHkdfSha512CommitKeyEcdsaP384,
	}
	cases := []struct{ frame, size int }{{1, 100}, {1000, 0}, {1000, 2500}, {4096, 4096}, {65536, 70000}}
	for _, suite := range []uint16{kms.SuiteCommitted, kms.SuiteCommittedSigned} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%04x/frame=%d/size=%d", suite, c.frame, c.size), func(t *testing.T) {
				pt := bytes.Repeat([]byte("interop!"), c.size/8+1)[:c.size]

				// pocketkms seals for both recipients; the SDK opens with each alone.
				env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{ourAES, ourRSA}, Suite: suite, FrameLength: c.frame})
				require.NoError(t, err)
				msg, err := env.Seal(ctx, pt, ec)
				require.NoError(t, err)
				for name, peer := range peers {
					got, err := peer.open(ctx, msg, ec)
					require.NoError(t, err, "the Go SDK with the %s keyring", name)
					require.True(t, bytes.Equal(pt, got), "the Go SDK decrypted other bytes")
				}

				// The SDK seals for both; pocketkms opens with each alone.
				theirs, err := sdkBoth.seal(ctx, pt, ec, suites[suite], int64(c.frame))
				require.NoError(t, err)
				h, err := kms.ParseHeader(theirs)
				require.NoError(t, err)
				require.Equal(t, suite, h.Suite)
				require.Equal(t, c.frame, h.FrameLength)
				require.Len(t, h.Recipients, 2)
				for name, rc := range ours {
					one, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{rc}})
					require.NoError(t, err)
					got, err := one.Open(ctx, theirs, ec)
					require.NoError(t, err, "pocketkms with the %s recipient", name)
					require.True(t, bytes.Equal(pt, got), "pocketkms opened other bytes")
				}

				// Either side refuses the other's message under a wrong context.
				wrong := kms.EncryptionContext{"tenant": "18", "purpose": "interop"}
				_, err = peers["aes"].open(ctx, msg, wrong)
				require.Error(t, err, "the Go SDK opened under a wrong context")
				_, err = env.Open(ctx, theirs, wrong)
				require.ErrorIs(t, err, kms.ErrInvalidCiphertext)
			})
		}
	}
}

// TestInteropGoESDKStream: a multi-frame message written by pocketkms's
// streaming writer opens in the Go SDK, and one the SDK wrote opens
// through pocketkms's streaming reader.
func TestInteropGoESDKStream(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{0x44}, 32)
	rc, err := kms.RawAESRecipient("pocketkms-interop", "stream", key)
	require.NoError(t, err)
	r := kmstest.New(t)
	env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{rc}, FrameLength: 4096})
	require.NoError(t, err)
	peer := newAWSESDK(t, rawAESKeyring(t, newMPL(t), "pocketkms-interop", "stream", key))
	pt := message(t, 1<<20+123)
	ec := kms.EncryptionContext{"stream": "yes"}

	var buf bytes.Buffer
	w, err := env.NewWriter(ctx, &buf, ec)
	require.NoError(t, err)
	for rest := pt; len(rest) > 0; {
		n := min(len(rest), 10_000)
		_, err := w.Write(rest[:n])
		require.NoError(t, err)
		rest = rest[n:]
	}
	require.NoError(t, w.Close())
	got, err := peer.open(ctx, buf.Bytes(), ec)
	require.NoError(t, err)
	require.True(t, bytes.Equal(pt, got))

	theirs, err := peer.seal(ctx, pt, ec, mpltypes.ESDKAlgorithmSuiteIdAlgAes256GcmHkdfSha512CommitKeyEcdsaP384, 4096)
	require.NoError(t, err)
	rd, err := env.NewReader(ctx, bytes.NewReader(theirs), ec)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = out.ReadFrom(rd)
	require.NoError(t, err)
	require.True(t, bytes.Equal(pt, out.Bytes()))
}
