package kms

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"strings"

	"github.com/pocketkms/kms/internal/esdk"
	"github.com/pocketkms/kms/internal/format"
	"github.com/pocketkms/kms/internal/keys"
)

// This file holds the raw keyring recipients whose wrapping key is a key of
// the KeyRing (typically material imported with ImportKeyMaterial), so that
// it is stored wrapped, rotated, policed and audited like any other key.
// Each wrap is authorized and audited as an Encrypt of the key, each unwrap
// as a Decrypt.

// RawAESKeyRecipient is the SDK's raw AES keyring with a SYMMETRIC_DEFAULT
// key of the KeyRing as its wrapping key: the header names it by namespace
// and name, as the SDK's raw AES keyring does, so messages interoperate
// with the official SDKs given the same 256-bit key (imported into the ring
// with ImportKeyMaterial). The primary version wraps; every version is
// tried to unwrap, newest first after the primary.
func RawAESKeyRecipient(namespace, name, keyID string) (Recipient, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, err
	}
	return ringAES{namespace, name, keyID}, nil
}

// RawRSAKeyRecipient is the SDK's raw RSA keyring (OAEP with hash SHA-1,
// SHA-256, SHA-384 or SHA-512 and MGF1 over the same hash) with an RSA
// ENCRYPT_DECRYPT key of the KeyRing.
func RawRSAKeyRecipient(namespace, name, keyID string, hash crypto.Hash) (Recipient, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, err
	}
	if err := checkOAEPHash(hash); err != nil {
		return nil, err
	}
	return ringRSA{namespace, name, keyID, hash}, nil
}

func checkNamespace(namespace string) error {
	if namespace == "" || strings.HasPrefix(namespace, "aws-kms") {
		return fmt.Errorf("%w: the namespace must be set and not start with aws-kms", ErrInvalidArgument)
	}
	return nil
}

func checkOAEPHash(hash crypto.Hash) error {
	switch hash {
	case crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512:
		return nil
	}
	return fmt.Errorf("%w: OAEP hash must be SHA-1, SHA-256, SHA-384 or SHA-512", ErrInvalidArgument)
}

type ringAES struct{ namespace, name, keyID string }

func (a ringAES) wrap(ctx context.Context, r *KeyRing, _ int, dataKey []byte, ec map[string]string, enc []byte) (format.EDK, []byte, error) {
	c := r.begin(ctx, OpEncrypt)
	c.ev.EncryptionContext = ec
	edk, dk, err := func() (format.EDK, []byte, error) {
		e, err := r.rawKey(ctx, &c, OpEncrypt, a.keyID, keys.Symmetric, string(SymmetricDefaultAlgorithm), ec)
		if err != nil {
			return format.EDK{}, nil, err
		}
		iv := make([]byte, 12)
		if _, err := io.ReadFull(r.cfg.Rand, iv); err != nil {
			return format.EDK{}, nil, fmt.Errorf("%w: reading random IV failed", ErrInternal)
		}
		aad := enc // the raw AES keyring's associated data: none for an empty context
		if enc == nil {
			if aad, err = esdk.SerializeContext(ec); err != nil {
				return format.EDK{}, nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
			}
		}
		c.ev.KeyVersion = e.rec.Primary
		ct := e.primary().AEAD().Seal(nil, iv, dataKey, aad)
		return format.EDK{ProviderID: a.namespace, ProviderInfo: esdk.RawAESInfo(a.name, iv), Ciphertext: ct}, dataKey, nil
	}()
	if err := c.end(err); err != nil {
		return format.EDK{}, nil, err
	}
	return edk, dk, nil
}

func (a ringAES) unwrap(ctx context.Context, r *KeyRing, edk format.EDK, full esdk.Context) ([]byte, error) {
	iv, ok := esdk.RawAESIV(edk, a.namespace, a.name)
	if !ok {
		return nil, errNotMine
	}
	ec, enc := full.Map(), full.Encoding()
	c := r.begin(ctx, OpDecrypt)
	c.ev.EncryptionContext = ec
	dk, err := func() ([]byte, error) {
		e, err := r.rawKey(ctx, &c, OpDecrypt, a.keyID, keys.Symmetric, string(SymmetricDefaultAlgorithm), ec)
		if err != nil {
			return nil, err
		}
		aad := enc // the raw AES keyring's associated data: none for an empty context
		if len(ec) == 0 || enc == nil {
			if aad, err = esdk.SerializeContext(ec); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
			}
		}
		var dk []byte
		v, err := r.eachVersion(e, 0, func(k *keys.Key) bool {
			dk, err = k.AEAD().Open(nil, iv, edk.Ciphertext, aad)
			return err == nil
		})
		if err != nil {
			return nil, ErrInvalidCiphertext
		}
		c.ev.KeyVersion = v
		return dk, nil
	}()
	if err := c.end(err); err != nil {
		clear(dk)
		return nil, err
	}
	return dk, nil
}

type ringRSA struct {
	namespace, name, keyID string
	hash                   crypto.Hash
}

func (a ringRSA) wrap(ctx context.Context, r *KeyRing, _ int, dataKey []byte, ec map[string]string, _ []byte) (format.EDK, []byte, error) {
	c := r.begin(ctx, OpEncrypt)
	edk, dk, err := func() (format.EDK, []byte, error) {
		e, err := r.rawKey(ctx, &c, OpEncrypt, a.keyID, keys.RSA, oaepName(a.hash), nil)
		if err != nil {
			return format.EDK{}, nil, err
		}
		c.ev.KeyVersion = e.rec.Primary
		ct, err := e.primary().EncryptOAEP(r.cfg.Rand, a.hash, dataKey)
		if err != nil {
			return format.EDK{}, nil, fmt.Errorf("%w: the data key does not fit RSA-OAEP with this hash", ErrInvalidArgument)
		}
		return format.EDK{ProviderID: a.namespace, ProviderInfo: []byte(a.name), Ciphertext: ct}, dataKey, nil
	}()
	if err := c.end(err); err != nil {
		return format.EDK{}, nil, err
	}
	return edk, dk, nil
}

func (a ringRSA) unwrap(ctx context.Context, r *KeyRing, edk format.EDK, _ esdk.Context) ([]byte, error) {
	if edk.ProviderID != a.namespace || string(edk.ProviderInfo) != a.name {
		return nil, errNotMine
	}
	c := r.begin(ctx, OpDecrypt)
	dk, err := func() ([]byte, error) {
		e, err := r.rawKey(ctx, &c, OpDecrypt, a.keyID, keys.RSA, oaepName(a.hash), nil)
		if err != nil {
			return nil, err
		}
		var dk []byte
		v, err := r.eachVersion(e, 0, func(k *keys.Key) bool {
			dk, err = k.DecryptOAEP(a.hash, edk.Ciphertext)
			return err == nil
		})
		if err != nil {
			return nil, ErrInvalidCiphertext
		}
		c.ev.KeyVersion = v
		return dk, nil
	}()
	if err := c.end(err); err != nil {
		clear(dk)
		return nil, err
	}
	return dk, nil
}

// rawKey resolves and checks the ring key of a raw recipient and asks the
// Policy, as op.
func (r *KeyRing) rawKey(ctx context.Context, c *call, op Op, keyID string, kind keys.Kind, alg string, ec map[string]string) (*keyEntry, error) {
	e, err := r.usableKey(ctx, c, keyID)
	if err != nil {
		return nil, err
	}
	if err := needUsage(e, EncryptDecrypt); err != nil {
		return nil, err
	}
	if e.info.typ.Kind != kind {
		return nil, fmt.Errorf("%w: a %s key cannot be this raw recipient's wrapping key", ErrInvalidUsage, e.rec.Spec)
	}
	if err := c.authorize(op, e, ec, alg); err != nil {
		return nil, err
	}
	return e, nil
}

// oaepName names an OAEP hash for the Policy in the AWS style; SHA-384 and
// SHA-512, which only the raw RSA keyring uses, follow the same pattern.
func oaepName(h crypto.Hash) string {
	return map[crypto.Hash]string{
		crypto.SHA1: string(RSAESOAEPSHA1), crypto.SHA256: string(RSAESOAEPSHA256),
		crypto.SHA384: "RSAES_OAEP_SHA_384", crypto.SHA512: "RSAES_OAEP_SHA_512",
	}[h]
}
