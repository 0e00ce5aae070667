package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParseOwnsItsInput: callers clear material after Parse, so a Key must
// not share memory with it (an Ed25519 public key parsed in place would
// become all zeros and accept forgeries).
func TestParseOwnsItsInput(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	msg := []byte("message")
	sig := ed25519.Sign(priv, msg)
	for name, der := range map[string]func() ([]byte, error){
		"public":  func() ([]byte, error) { return x509.MarshalPKIXPublicKey(pub) },
		"private": func() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(priv) },
	} {
		b, err := der()
		require.NoError(t, err)
		k, err := Parse(Type{Kind: Ed25519}, b)
		require.NoError(t, err)
		clear(b)
		require.True(t, k.Verify(PureEd25519, 0, msg, sig), name)
		require.False(t, k.Verify(PureEd25519, 0, msg, make([]byte, 64)), name)
	}
}

func TestParseRejectsNonSigners(t *testing.T) {
	// An X25519 PKCS#8 key: ParsePKCS8PrivateKey returns *ecdh.PrivateKey.
	der := []byte{0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20}
	der = append(der, make([]byte, 32)...)
	der[len(der)-1] = 1
	_, err := Parse(Type{Kind: Ed25519}, der)
	require.ErrorIs(t, err, ErrMaterial)
}
