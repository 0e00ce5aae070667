// Tink's envelope AEAD, the peer: the same round trip through
// aead.NewKMSEnvelopeAEAD2 with a local AES-256-GCM key-encryption key.

package bench

import (
	"bytes"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// tinkAD is benchContext's one pair as Tink associated data.
var tinkAD = []byte("purpose=bench")

// newTinkEnvelope returns Tink's envelope AEAD with AES-256-GCM data keys
// under a local AES-256-GCM key-encryption key (a keyset handle's AEAD,
// standing in for a remote KMS).
func newTinkEnvelope(tb testing.TB) tink.AEAD {
	tb.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		tb.Fatal(err)
	}
	kek, err := aead.New(h)
	if err != nil {
		tb.Fatal(err)
	}
	return aead.NewKMSEnvelopeAEAD2(aead.AES256GCMKeyTemplate(), kek)
}

// tinkRoundTrip is one op of BenchmarkTinkEnvelope: Encrypt (a fresh data
// key, wrapped under the KEK) then Decrypt.
func tinkRoundTrip(env tink.AEAD, pt []byte) ([]byte, error) {
	ct, err := env.Encrypt(pt, tinkAD)
	if err != nil {
		return nil, err
	}
	return env.Decrypt(ct, tinkAD)
}

func BenchmarkTinkEnvelope(b *testing.B) {
	env := newTinkEnvelope(b)
	for _, s := range sizes {
		b.Run("size="+s.name, func(b *testing.B) {
			pt := message(b, s.n)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tinkRoundTrip(env, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestTinkRoundTrip(t *testing.T) {
	env := newTinkEnvelope(t)
	for _, s := range sizes {
		pt := message(t, s.n)
		got, err := tinkRoundTrip(env, pt)
		if err != nil {
			t.Fatalf("size=%s: %v", s.name, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("size=%s: round trip changed the plaintext", s.name)
		}
	}
	if _, err := env.Decrypt(mustEncrypt(t, env), []byte("purpose=other")); err == nil {
		t.Fatal("Decrypt with other associated data succeeded")
	}
}

func mustEncrypt(t *testing.T, env tink.AEAD) []byte {
	t.Helper()
	ct, err := env.Encrypt([]byte("x"), tinkAD)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}
