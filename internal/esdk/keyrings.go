package esdk

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pocketkms/kms/internal/format"
)

// Keyring unwraps the encrypted data keys addressed to it.
type Keyring interface {
	// Unwrap returns the data key of edk, or errNotMine if edk is for
	// another keyring, or an error if it is for this one but fails.
	Unwrap(edk format.EDK, ec map[string]string) ([]byte, error)
}

var errNotMine = errors.New("encrypted data key is for another keyring")

// Unwrappers tries every keyring on every encrypted data key, in order, and
// returns the first data key one of them unwraps.
func Unwrappers(krs ...Keyring) Unwrapper {
	return func(edks []format.EDK, ec Context) ([]byte, error) {
		for _, edk := range edks {
			for _, kr := range krs {
				if dk, err := kr.Unwrap(edk, ec.Map()); err == nil {
					return dk, nil
				}
			}
		}
		return nil, ErrNoKey
	}
}

// RawAES is the SDK's raw AES keyring: the data key sealed with AES-GCM
// under a wrapping key, the serialized encryption context as associated
// data. The provider ID is the key namespace; the provider info is the key
// name, the tag length in bits (uint32, 128), the IV length (uint32, 12) and
// the IV.
type RawAES struct {
	Namespace, Name string
	aead            cipher.AEAD
}

// NewRawAES returns a raw AES keyring for a 16, 24 or 32-byte wrapping key.
func NewRawAES(namespace, name string, key []byte) (*RawAES, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("raw AES keyring: wrapping key must be 16, 24 or 32 bytes")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &RawAES{Namespace: namespace, Name: name, aead: aead}, nil
}

// Format prints the keyring's names, never its key.
func (k *RawAES) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "esdk.RawAES(%s/%s)", k.Namespace, k.Name)
}

// Unwrap implements Keyring.
func (k *RawAES) Unwrap(edk format.EDK, ec map[string]string) ([]byte, error) {
	iv, ok := RawAESIV(edk, k.Namespace, k.Name)
	if !ok {
		return nil, errNotMine
	}
	aad, err := SerializeContext(ec)
	if err != nil {
		return nil, err
	}
	dk, err := k.aead.Open(nil, iv, edk.Ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return dk, nil
}

// RawAESInfo is the provider info of a raw AES EDK: the key name, the tag
// length in bits (128) and the IV length (12) as uint32s, and the IV.
func RawAESInfo(name string, iv []byte) []byte {
	info := append([]byte(name), 0, 0, 0, 128, 0, 0, 0, 12)
	return append(info, iv...)
}

// RawAESIV returns the IV of a raw AES EDK addressed to namespace and name,
// and whether it is one.
func RawAESIV(edk format.EDK, namespace, name string) ([]byte, bool) {
	info := edk.ProviderInfo
	n := len(name)
	if edk.ProviderID != namespace || len(info) != n+4+4+12 || string(info[:n]) != name ||
		binary.BigEndian.Uint32(info[n:]) != 128 || binary.BigEndian.Uint32(info[n+4:]) != 12 {
		return nil, false
	}
	return info[n+8:], true
}

// SerializeContext is the SDK's serialization of an encryption context:
// empty for an empty context, else the canonical encoding of section 1.
func SerializeContext(ec map[string]string) ([]byte, error) {
	if len(ec) == 0 {
		return nil, nil
	}
	return format.AppendContext(nil, ec)
}

// RawRSA is the SDK's raw RSA keyring, with OAEP padding: the provider ID is
// the key namespace, the provider info the key name, and the ciphertext the
// RSA-OAEP encryption of the data key with MGF1 over the same hash.
type RawRSA struct {
	Namespace, Name string
	Hash            crypto.Hash
	priv            *rsa.PrivateKey // nil for a wrap-only keyring
	pub             *rsa.PublicKey
}

// NewRawRSA returns a raw RSA keyring that unwraps with priv.
func NewRawRSA(namespace, name string, priv *rsa.PrivateKey, h crypto.Hash) *RawRSA {
	return &RawRSA{Namespace: namespace, Name: name, Hash: h, priv: priv, pub: &priv.PublicKey}
}

// Format prints the keyring's names, never its key.
func (k *RawRSA) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "esdk.RawRSA(%s/%s)", k.Namespace, k.Name)
}

// Unwrap implements Keyring.
func (k *RawRSA) Unwrap(edk format.EDK, _ map[string]string) ([]byte, error) {
	if edk.ProviderID != k.Namespace || string(edk.ProviderInfo) != k.Name || k.priv == nil {
		return nil, errNotMine
	}
	dk, err := rsa.DecryptOAEP(k.Hash.New(), nil, k.priv, edk.Ciphertext, nil)
	if err != nil {
		return nil, ErrOpen
	}
	return dk, nil
}

// Wrap seals a data key for this keyring, with a fresh random IV.
func (k *RawAES) Wrap(dataKey []byte, ec map[string]string, rand io.Reader) (format.EDK, error) {
	iv := make([]byte, 12)
	if _, err := io.ReadFull(rand, iv); err != nil {
		return format.EDK{}, errors.New("esdk: reading random IV failed")
	}
	aad, err := SerializeContext(ec)
	if err != nil {
		return format.EDK{}, err
	}
	return format.EDK{ProviderID: k.Namespace, ProviderInfo: RawAESInfo(k.Name, iv), Ciphertext: k.aead.Seal(nil, iv, dataKey, aad)}, nil
}

// Wrap encrypts a data key to this keyring's public key.
func (k *RawRSA) Wrap(dataKey []byte, _ map[string]string, rand io.Reader) (format.EDK, error) {
	ct, err := rsa.EncryptOAEP(k.Hash.New(), rand, k.pub, dataKey, nil)
	if err != nil {
		return format.EDK{}, err
	}
	return format.EDK{ProviderID: k.Namespace, ProviderInfo: []byte(k.Name), Ciphertext: ct}, nil
}

// NewRawRSAPublic returns a raw RSA keyring that can only wrap.
func NewRawRSAPublic(namespace, name string, pub *rsa.PublicKey, h crypto.Hash) *RawRSA {
	return &RawRSA{Namespace: namespace, Name: name, Hash: h, pub: pub}
}
