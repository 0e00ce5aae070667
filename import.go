package kms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"io"
	"time"

	kwp "github.com/tink-crypto/tink-go/v2/kwp/subtle"

	"github.com/pocketkms/kms/internal/keys"
)

// WrappingAlgorithm is how imported key material is encrypted to the
// wrapping key of GetParametersForImport.
type WrappingAlgorithm string

// The wrapping algorithms. The RSA_AES_KEY_WRAP algorithms encrypt a fresh
// AES-256 key with RSA-OAEP and the material with it under AES key wrap with
// padding (RFC 5649); they are needed for asymmetric private keys, which are
// too long for RSA-OAEP alone. The result is the RSA ciphertext followed by
// the wrapped material.
const (
	WrapRSAESOAEPSHA1       WrappingAlgorithm = "RSAES_OAEP_SHA_1"
	WrapRSAESOAEPSHA256     WrappingAlgorithm = "RSAES_OAEP_SHA_256"
	WrapRSAAESKeyWrapSHA1   WrappingAlgorithm = "RSA_AES_KEY_WRAP_SHA_1"
	WrapRSAAESKeyWrapSHA256 WrappingAlgorithm = "RSA_AES_KEY_WRAP_SHA_256"
)

// WrappingKeySpec is the size of the RSA wrapping key.
type WrappingKeySpec string

// The wrapping key specs.
const (
	WrappingRSA2048 WrappingKeySpec = "RSA_2048"
	WrappingRSA3072 WrappingKeySpec = "RSA_3072"
	WrappingRSA4096 WrappingKeySpec = "RSA_4096"
)

var wrappingBits = map[WrappingKeySpec]int{WrappingRSA2048: 2048, WrappingRSA3072: 3072, WrappingRSA4096: 4096}

var wrappingHash = map[WrappingAlgorithm]crypto.Hash{
	WrapRSAESOAEPSHA1: crypto.SHA1, WrapRSAESOAEPSHA256: crypto.SHA256,
	WrapRSAAESKeyWrapSHA1: crypto.SHA1, WrapRSAAESKeyWrapSHA256: crypto.SHA256,
}

// ImportParametersLifetime is how long GetParametersForImport's wrapping
// key and token stay valid, as in AWS KMS.
const ImportParametersLifetime = 24 * time.Hour

// GetParametersForImportInput is the input of GetParametersForImport.
type GetParametersForImportInput struct {
	// KeyID names a key created with Origin EXTERNAL.
	KeyID             string
	WrappingAlgorithm WrappingAlgorithm
	WrappingKeySpec   WrappingKeySpec
}

// GetParametersForImportOutput is the result of GetParametersForImport.
type GetParametersForImportOutput struct {
	KeyID string
	// ImportToken must accompany the encrypted material to ImportKeyMaterial.
	ImportToken []byte
	// PublicKey is the RSA wrapping key, DER SubjectPublicKeyInfo.
	PublicKey         []byte
	ParametersValidTo time.Time
}

// GetParametersForImport makes a fresh RSA wrapping key and import token
// for a key of origin EXTERNAL, valid for 24 hours; each call replaces the
// previous parameters.
func (r *KeyRing) GetParametersForImport(ctx context.Context, in GetParametersForImportInput) (*GetParametersForImportOutput, error) {
	c := r.begin(ctx, OpGetParametersForImport)
	out, err := func() (*GetParametersForImportOutput, error) {
		bits, ok := wrappingBits[in.WrappingKeySpec]
		if !ok {
			return nil, fmt.Errorf("%w: WrappingKeySpec must be RSA_2048, RSA_3072 or RSA_4096", ErrInvalidArgument)
		}
		if _, ok := wrappingHash[in.WrappingAlgorithm]; !ok {
			return nil, fmt.Errorf("%w: unknown WrappingAlgorithm %q", ErrInvalidArgument, in.WrappingAlgorithm)
		}
		e, err := r.resolve(ctx, &c, in.KeyID)
		if err != nil {
			return nil, err
		}
		c.key(e)
		if e.rec.Origin != OriginExternal {
			return nil, fmt.Errorf("%w: only keys of origin EXTERNAL take imported material", ErrUnsupported)
		}
		if err := refuseStates(e.rec, KeyStatePendingDeletion); err != nil {
			return nil, err
		}
		if err := c.authorize(OpGetParametersForImport, e, nil, string(in.WrappingAlgorithm)); err != nil {
			return nil, err
		}
		wk, err := rsa.GenerateKey(r.cfg.Rand, bits)
		if err != nil {
			return nil, fmt.Errorf("%w: generating wrapping key failed", ErrInternal)
		}
		der, err := x509.MarshalPKCS8PrivateKey(wk)
		if err != nil {
			return nil, fmt.Errorf("%w: wrapping key does not marshal", ErrInternal)
		}
		defer clear(der)
		pub, err := x509.MarshalPKIXPublicKey(&wk.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: wrapping key does not marshal", ErrInternal)
		}
		token := make([]byte, 32)
		if _, err := io.ReadFull(r.cfg.Rand, token); err != nil {
			return nil, fmt.Errorf("%w: reading random import token failed", ErrInternal)
		}
		validTo := r.now().Add(ImportParametersLifetime)
		wrapped, err := r.cfg.RootKey.Wrap(ctx, der, importAD(e.rec.KeyID, token))
		if err != nil {
			return nil, fmt.Errorf("%w: root key could not wrap the wrapping key: %w", ErrInternal, err)
		}
		_, err = r.update(ctx, e.rec.KeyID, func(rec *KeyRecord) error {
			rec.Import = &ImportRecord{TokenID: bytes.Clone(token), Algorithm: in.WrappingAlgorithm, Spec: in.WrappingKeySpec, ValidTo: validTo, Wrapped: wrapped}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return &GetParametersForImportOutput{KeyID: e.arn, ImportToken: token, PublicKey: pub, ParametersValidTo: validTo}, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

func importAD(keyID string, token []byte) []byte {
	b := append([]byte("pocketkms/v1/import\x00"), keyID...)
	return append(append(b, 0), token...)
}

// ImportKeyMaterialInput is the input of ImportKeyMaterial.
type ImportKeyMaterialInput struct {
	KeyID       string
	ImportToken []byte
	// EncryptedKeyMaterial is the material encrypted to the wrapping key
	// with the WrappingAlgorithm given to GetParametersForImport. The
	// material is 32 raw bytes for SYMMETRIC_DEFAULT; for HMAC keys, raw
	// bytes from the digest size to the block size of the hash; for
	// asymmetric keys, a PKCS#8 DER private key, or a DER
	// SubjectPublicKeyInfo for a verify-only SIGN_VERIFY key.
	EncryptedKeyMaterial []byte
	// ExpirationModel defaults to KEY_MATERIAL_DOES_NOT_EXPIRE. With
	// KEY_MATERIAL_EXPIRES, ValidTo (at most 365 days ahead) is when the key
	// stops working until the same material is imported again.
	ExpirationModel ExpirationModel
	ValidTo         time.Time
}

// ImportKeyMaterial imports key material into a key of origin EXTERNAL.
// The first import makes version 1 and enables the key; later imports must
// bring the same material (else ErrIncorrectKeyMaterial) and renew it.
// The import token is single use.
func (r *KeyRing) ImportKeyMaterial(ctx context.Context, in ImportKeyMaterialInput) error {
	c := r.begin(ctx, OpImportKeyMaterial)
	err := func() error {
		if len(in.EncryptedKeyMaterial) == 0 || len(in.EncryptedKeyMaterial) > 6144 {
			return fmt.Errorf("%w: EncryptedKeyMaterial must be 1 to 6,144 bytes", ErrInvalidArgument)
		}
		if in.ExpirationModel == "" {
			in.ExpirationModel = KeyMaterialDoesNotExpire
		}
		switch in.ExpirationModel {
		case KeyMaterialDoesNotExpire:
			if !in.ValidTo.IsZero() {
				return fmt.Errorf("%w: ValidTo needs KEY_MATERIAL_EXPIRES", ErrInvalidArgument)
			}
		case KeyMaterialExpires:
			if now := r.now(); !in.ValidTo.After(now) || in.ValidTo.After(now.Add(365*24*time.Hour)) {
				return fmt.Errorf("%w: ValidTo must be in the next 365 days", ErrInvalidArgument)
			}
		default:
			return fmt.Errorf("%w: unknown ExpirationModel %q", ErrInvalidArgument, in.ExpirationModel)
		}
		e, err := r.resolve(ctx, &c, in.KeyID)
		if err != nil {
			return err
		}
		c.key(e)
		if e.rec.Origin != OriginExternal {
			return fmt.Errorf("%w: only keys of origin EXTERNAL take imported material", ErrUnsupported)
		}
		if err := refuseStates(e.rec, KeyStatePendingDeletion); err != nil {
			return err
		}
		if err := c.authorize(OpImportKeyMaterial, e, nil, ""); err != nil {
			return err
		}
		imp := e.rec.Import
		if imp == nil || subtle.ConstantTimeCompare(imp.TokenID, in.ImportToken) != 1 {
			return ErrInvalidImportToken
		}
		if !r.now().Before(imp.ValidTo) {
			return fmt.Errorf("%w: the import parameters expired", ErrInvalidImportToken)
		}
		raw, err := r.unwrapImport(ctx, e.rec.KeyID, imp, in.EncryptedKeyMaterial)
		if err != nil {
			return err
		}
		defer clear(raw)
		k, err := keys.Parse(e.info.typ, raw)
		if err != nil || (k.VerifyOnly && e.rec.Usage != SignVerify) {
			return fmt.Errorf("%w: the material is not valid for %s %s", ErrIncorrectKeyMaterial, e.rec.Spec, e.rec.Usage)
		}
		if p := e.primary(); p != nil && !p.Equal(k) {
			return ErrIncorrectKeyMaterial
		}
		var vr VersionRecord
		if len(e.rec.Versions) == 0 {
			if vr, err = r.wrapVersion(ctx, e.rec, 1, raw); err != nil {
				return err
			}
		}
		next, err := r.update(ctx, e.rec.KeyID, func(rec *KeyRecord) error {
			if rec.Import == nil || subtle.ConstantTimeCompare(rec.Import.TokenID, in.ImportToken) != 1 {
				return ErrInvalidImportToken
			}
			if len(rec.Versions) == 0 {
				if vr.Version == 0 {
					return ErrConflict
				}
				rec.Versions, rec.Primary = []VersionRecord{vr}, 1
			}
			if rec.State == KeyStatePendingImport {
				rec.State = KeyStateEnabled
			}
			rec.ExpirationModel, rec.ValidTo = in.ExpirationModel, in.ValidTo
			rec.Import = nil
			return nil
		})
		if err != nil {
			return err
		}
		c.ev.KeyVersion = next.rec.Primary
		return nil
	}()
	return c.end(err)
}

// unwrapImport decrypts material encrypted to an import wrapping key.
func (r *KeyRing) unwrapImport(ctx context.Context, keyID string, imp *ImportRecord, ct []byte) ([]byte, error) {
	der, err := r.cfg.RootKey.Unwrap(ctx, imp.Wrapped, importAD(keyID, imp.TokenID))
	if err != nil {
		return nil, fmt.Errorf("%w: root key could not unwrap the wrapping key", ErrInternal)
	}
	defer clear(der)
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: stored wrapping key does not parse", ErrInternal)
	}
	wk, ok := pk.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: stored wrapping key is not RSA", ErrInternal)
	}
	h := wrappingHash[imp.Algorithm]
	bad := fmt.Errorf("%w: EncryptedKeyMaterial does not decrypt with the wrapping key", ErrInvalidCiphertext)
	switch imp.Algorithm {
	case WrapRSAESOAEPSHA1, WrapRSAESOAEPSHA256:
		pt, err := rsa.DecryptOAEP(h.New(), nil, wk, ct, nil)
		if err != nil {
			return nil, bad
		}
		return pt, nil
	default:
		n := wk.Size()
		if len(ct) <= n {
			return nil, bad
		}
		aesKey, err := rsa.DecryptOAEP(h.New(), nil, wk, ct[:n], nil)
		if err != nil || len(aesKey) != 32 {
			return nil, bad
		}
		defer clear(aesKey)
		w, err := kwp.NewKWP(aesKey)
		if err != nil {
			return nil, bad
		}
		pt, err := w.Unwrap(ct[n:])
		if err != nil {
			return nil, bad
		}
		return pt, nil
	}
}

// WrapKeyMaterial is the client's half of importing key material: it
// encrypts material to the wrapping public key (DER SubjectPublicKeyInfo)
// that GetParametersForImport returned, with the WrappingAlgorithm asked
// for, as the AWS KMS documentation tells clients to (RSAES-OAEP alone, or
// RSAES-OAEP of a fresh AES-256 key followed by AES key wrap with padding,
// RFC 5649, of the material). Randomness comes from rand (nil means
// crypto/rand).
func WrapKeyMaterial(publicKeyDER []byte, alg WrappingAlgorithm, material []byte, rand io.Reader) ([]byte, error) {
	if rand == nil {
		rand = cryptoRand{}
	}
	pk, err := x509.ParsePKIXPublicKey(publicKeyDER)
	if err != nil {
		return nil, fmt.Errorf("%w: the wrapping public key does not parse", ErrInvalidArgument)
	}
	pub, ok := pk.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the wrapping public key is not RSA", ErrInvalidArgument)
	}
	h, ok := wrappingHash[alg]
	if !ok {
		return nil, fmt.Errorf("%w: unknown WrappingAlgorithm %q", ErrInvalidArgument, alg)
	}
	switch alg {
	case WrapRSAESOAEPSHA1, WrapRSAESOAEPSHA256:
		out, err := rsa.EncryptOAEP(h.New(), rand, pub, material, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: the material is too long for %s with this key", ErrInvalidArgument, alg)
		}
		return out, nil
	}
	aesKey := make([]byte, 32)
	if _, err := io.ReadFull(rand, aesKey); err != nil {
		return nil, fmt.Errorf("%w: reading a random key failed", ErrInternal)
	}
	defer clear(aesKey)
	head, err := rsa.EncryptOAEP(h.New(), rand, pub, aesKey, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: wrapping with %s failed", ErrInvalidArgument, alg)
	}
	w, err := kwp.NewKWP(aesKey)
	if err != nil {
		return nil, fmt.Errorf("%w: AES key wrap", ErrInternal)
	}
	tail, err := w.Wrap(material)
	if err != nil {
		return nil, fmt.Errorf("%w: the material cannot be wrapped (%d bytes)", ErrInvalidArgument, len(material))
	}
	return append(head, tail...), nil
}
