// Package keys holds key material per key type: generation, parsing with
// strict checks, and the cryptographic operations, on the standard library.
// A Key never prints its material.
package keys

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
)

// Kind is the family of a key.
type Kind int

// The kinds.
const (
	Symmetric Kind = iota + 1
	HMAC
	RSA
	EC
	Ed25519
)

// Type identifies a key type precisely: its kind and size (RSA modulus bits,
// EC curve, HMAC hash).
type Type struct {
	Kind  Kind
	Bits  int            // RSA
	Curve elliptic.Curve // EC
	Hash  crypto.Hash    // HMAC
}

// ErrMaterial reports key material that does not parse or does not fit the
// key type. It never carries the material or a parser's description of it.
var ErrMaterial = errors.New("key material is not valid for the key spec")

// Key is parsed key material ready for use. It is immutable and safe for
// concurrent use.
type Key struct {
	Type Type
	// VerifyOnly marks an asymmetric key known by its public key alone.
	VerifyOnly bool

	aead    cipher.AEAD
	secret  []byte // symmetric and HMAC material
	rsaPriv *rsa.PrivateKey
	ecPriv  *ecdsa.PrivateKey
	edPriv  ed25519.PrivateKey
	pub     crypto.PublicKey
	pubDER  []byte
}

// Format prints the type, never the material.
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "keys.Key(kind %d)", k.Type.Kind) }

// Generate returns fresh material for t: raw bytes for symmetric and HMAC
// keys, PKCS#8 DER for asymmetric ones. Symmetric and HMAC material and
// Ed25519 seeds are read from rand; RSA and ECDSA generation use the
// standard library's own secure source (Go ignores the reader there).
func Generate(t Type, rand io.Reader) ([]byte, error) {
	switch t.Kind {
	case Symmetric:
		return readN(rand, 32)
	case HMAC:
		return readN(rand, t.Hash.Size())
	case RSA:
		k, err := rsa.GenerateKey(rand, t.Bits)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case EC:
		k, err := ecdsa.GenerateKey(t.Curve, rand)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case Ed25519:
		seed, err := readN(rand, ed25519.SeedSize)
		if err != nil {
			return nil, err
		}
		defer clear(seed)
		return x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed))
	}
	return nil, ErrMaterial
}

func readN(rand io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, errors.New("reading random bytes failed")
	}
	return b, nil
}

// MinHMACKey and MaxHMACKey bound imported HMAC material for hash h: at
// least the digest size and at most the block size, as AWS KMS requires.
func MinHMACKey(h crypto.Hash) int { return h.Size() }

// MaxHMACKey returns the largest HMAC key accepted for h.
func MaxHMACKey(h crypto.Hash) int { return h.New().BlockSize() }

// Parse turns material into a Key of type t. Asymmetric material is PKCS#8
// DER, or PKIX (SubjectPublicKeyInfo) DER for a verify-only key. The
// material is copied.
func Parse(t Type, material []byte) (*Key, error) {
	k := &Key{Type: t}
	switch t.Kind {
	case Symmetric:
		if len(material) != 32 {
			return nil, ErrMaterial
		}
		block, err := aes.NewCipher(bytes.Clone(material))
		if err != nil {
			return nil, ErrMaterial
		}
		if k.aead, err = cipher.NewGCM(block); err != nil {
			return nil, ErrMaterial
		}
		k.secret = bytes.Clone(material)
		return k, nil
	case HMAC:
		if len(material) < MinHMACKey(t.Hash) || len(material) > MaxHMACKey(t.Hash) {
			return nil, ErrMaterial
		}
		k.secret = bytes.Clone(material)
		return k, nil
	}
	// The parsers may keep slices of their input (an Ed25519 public key
	// does), and callers clear the material after Parse: parse a copy that
	// the Key owns.
	material = bytes.Clone(material)
	priv, err := x509.ParsePKCS8PrivateKey(material)
	if err != nil {
		pub, perr := x509.ParsePKIXPublicKey(material)
		if perr != nil {
			return nil, ErrMaterial
		}
		k.VerifyOnly = true
		k.pub = pub
	} else {
		signer, ok := priv.(crypto.Signer) // X25519 keys, for one, are not
		if !ok {
			return nil, ErrMaterial
		}
		k.pub = signer.Public()
	}
	switch t.Kind {
	case RSA:
		pub, ok := k.pub.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() != t.Bits {
			return nil, ErrMaterial
		}
		if !k.VerifyOnly {
			k.rsaPriv = priv.(*rsa.PrivateKey)
		}
	case EC:
		pub, ok := k.pub.(*ecdsa.PublicKey)
		if !ok || pub.Curve != t.Curve {
			return nil, ErrMaterial
		}
		if !k.VerifyOnly {
			k.ecPriv = priv.(*ecdsa.PrivateKey)
		}
	case Ed25519:
		if _, ok := k.pub.(ed25519.PublicKey); !ok {
			return nil, ErrMaterial
		}
		if !k.VerifyOnly {
			k.edPriv = priv.(ed25519.PrivateKey)
		}
	default:
		return nil, ErrMaterial
	}
	if k.pubDER, err = x509.MarshalPKIXPublicKey(k.pub); err != nil {
		return nil, ErrMaterial
	}
	return k, nil
}

// PublicDER returns the DER SubjectPublicKeyInfo of an asymmetric key.
func (k *Key) PublicDER() []byte { return bytes.Clone(k.pubDER) }

// Equal reports, in constant time for symmetric and HMAC material, whether
// material parses to the same key as k.
func (k *Key) Equal(other *Key) bool {
	switch k.Type.Kind {
	case HMAC, Symmetric:
		return hmac.Equal(k.secret, other.secret)
	default:
		return bytes.Equal(k.pubDER, other.pubDER) && k.VerifyOnly == other.VerifyOnly
	}
}

// AEAD returns the AES-256-GCM AEAD of a symmetric key.
func (k *Key) AEAD() cipher.AEAD { return k.aead }

// MAC returns HMAC(key, msg) with the key's hash.
func (k *Key) MAC(msg []byte) []byte {
	m := hmac.New(k.Type.Hash.New, k.secret)
	m.Write(msg)
	return m.Sum(nil)
}

// VerifyMAC reports in constant time whether mac is HMAC(key, msg).
func (k *Key) VerifyMAC(msg, mac []byte) bool {
	return hmac.Equal(k.MAC(msg), mac)
}

// SignScheme is a signature scheme over a digest.
type SignScheme int

// The signature schemes.
const (
	PSS SignScheme = iota + 1
	PKCS1v15
	ECDSA
	PureEd25519
	Ed25519ph
)

// ErrVerifyOnly reports a private-key operation on a verify-only key.
var ErrVerifyOnly = errors.New("key has no private part")

// Sign signs digest (the message itself for PureEd25519) with scheme and
// hash h. ECDSA signatures are ASN.1 DER; PSS uses a salt as long as the
// digest, as AWS KMS does.
func (k *Key) Sign(rand io.Reader, scheme SignScheme, h crypto.Hash, digest []byte) ([]byte, error) {
	if k.VerifyOnly {
		return nil, ErrVerifyOnly
	}
	switch scheme {
	case PSS:
		return rsa.SignPSS(rand, k.rsaPriv, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case PKCS1v15:
		return rsa.SignPKCS1v15(nil, k.rsaPriv, h, digest)
	case ECDSA:
		return ecdsa.SignASN1(rand, k.ecPriv, digest)
	case PureEd25519:
		return ed25519.Sign(k.edPriv, digest), nil
	case Ed25519ph:
		return k.edPriv.Sign(nil, digest, &ed25519.Options{Hash: crypto.SHA512})
	}
	return nil, ErrMaterial
}

// Verify reports whether sig is a valid signature of digest (the message
// for PureEd25519).
func (k *Key) Verify(scheme SignScheme, h crypto.Hash, digest, sig []byte) bool {
	switch scheme {
	case PSS:
		return rsa.VerifyPSS(k.pub.(*rsa.PublicKey), h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case PKCS1v15:
		return rsa.VerifyPKCS1v15(k.pub.(*rsa.PublicKey), h, digest, sig) == nil
	case ECDSA:
		return ecdsa.VerifyASN1(k.pub.(*ecdsa.PublicKey), digest, sig)
	case PureEd25519:
		return ed25519.Verify(k.pub.(ed25519.PublicKey), digest, sig)
	case Ed25519ph:
		return ed25519.VerifyWithOptions(k.pub.(ed25519.PublicKey), digest, sig, &ed25519.Options{Hash: crypto.SHA512}) == nil
	}
	return false
}

// EncryptOAEP encrypts msg to the RSA public key with OAEP (MGF1 with the
// same hash h, empty label).
func (k *Key) EncryptOAEP(rand io.Reader, h crypto.Hash, msg []byte) ([]byte, error) {
	return rsa.EncryptOAEP(h.New(), rand, k.pub.(*rsa.PublicKey), msg, nil)
}

// MaxOAEPPlaintext is the longest message EncryptOAEP accepts with hash h.
func (k *Key) MaxOAEPPlaintext(h crypto.Hash) int {
	return k.pub.(*rsa.PublicKey).Size() - 2*h.Size() - 2
}

// DecryptOAEP decrypts an RSA-OAEP ciphertext. Any failure is one error.
func (k *Key) DecryptOAEP(h crypto.Hash, ct []byte) ([]byte, error) {
	if k.VerifyOnly {
		return nil, ErrVerifyOnly
	}
	pt, err := rsa.DecryptOAEP(h.New(), nil, k.rsaPriv, ct, nil)
	if err != nil {
		return nil, errDecrypt
	}
	return pt, nil
}

var errDecrypt = errors.New("decryption failed")

// ECDH derives the shared secret with the peer's DER SubjectPublicKeyInfo,
// which must be on the key's curve.
func (k *Key) ECDH(peerDER []byte) ([]byte, error) {
	if k.VerifyOnly {
		return nil, ErrVerifyOnly
	}
	pub, err := x509.ParsePKIXPublicKey(peerDER)
	if err != nil {
		return nil, ErrMaterial
	}
	ep, ok := pub.(*ecdsa.PublicKey)
	if !ok || ep.Curve != k.Type.Curve {
		return nil, ErrMaterial
	}
	peer, err := ep.ECDH()
	if err != nil {
		return nil, ErrMaterial
	}
	priv, err := k.ecPriv.ECDH()
	if err != nil {
		return nil, ErrMaterial
	}
	return priv.ECDH(peer)
}
