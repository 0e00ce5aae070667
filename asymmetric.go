package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/pocketkms/kms/internal/keys"
)

// MaxSignMessageSize bounds Sign and Verify messages, and MaxSignatureSize
// Verify signatures, as AWS KMS does.
const (
	MaxSignMessageSize = 4096
	MaxSignatureSize   = 6144
)

// SignInput is the input of Sign.
type SignInput struct {
	// KeyID names a SIGN_VERIFY key.
	KeyID string
	// Message is the message (RAW, 1 to 4,096 bytes) or its digest
	// (DIGEST, exactly the length of the algorithm's hash).
	Message []byte
	// MessageType defaults to RAW.
	MessageType      MessageType
	SigningAlgorithm SigningAlgorithm
}

// SignOutput is the result of Sign.
type SignOutput struct {
	// Signature is the raw signature AWS KMS would return: ECDSA in ASN.1
	// DER, RSA and Ed25519 as their byte strings.
	Signature        []byte
	KeyID            string // the key's ARN
	KeyVersion       uint32 // the primary version that signed
	SigningAlgorithm SigningAlgorithm
}

// signPrep checks the signing parameters and returns the digest to sign or
// verify (the message itself for pure Ed25519).
func signPrep(e *keyEntry, alg SigningAlgorithm, mt MessageType, msg []byte) (signingInfo, []byte, error) {
	if err := needUsage(e, SignVerify); err != nil {
		return signingInfo{}, nil, err
	}
	if !e.info.allowsSigning(alg) {
		return signingInfo{}, nil, fmt.Errorf("%w: %s keys do not sign with %q", ErrInvalidUsage, e.rec.Spec, alg)
	}
	si := signing[alg]
	switch mt {
	case MessageRaw, "":
		if len(msg) == 0 || len(msg) > MaxSignMessageSize {
			return si, nil, fmt.Errorf("%w: Message must be 1 to %d bytes", ErrInvalidArgument, MaxSignMessageSize)
		}
		if si.scheme == keys.PureEd25519 {
			return si, msg, nil
		}
		return si, hashOf(si.hash, msg), nil
	case MessageDigest:
		if si.scheme == keys.PureEd25519 {
			return si, nil, fmt.Errorf("%w: ED25519_SHA_512 signs RAW messages only", ErrInvalidArgument)
		}
		if len(msg) != si.hash.Size() {
			return si, nil, fmt.Errorf("%w: a DIGEST for %s is %d bytes", ErrInvalidArgument, alg, si.hash.Size())
		}
		return si, msg, nil
	}
	return si, nil, fmt.Errorf("%w: MessageType must be RAW or DIGEST", ErrInvalidArgument)
}

// Sign signs a message or digest with the primary version of an asymmetric
// SIGN_VERIFY key.
func (r *KeyRing) Sign(ctx context.Context, in SignInput) (*SignOutput, error) {
	c := r.begin(ctx, OpSign)
	out, err := func() (*SignOutput, error) {
		e, err := r.usableKey(ctx, &c, in.KeyID)
		if err != nil {
			return nil, err
		}
		si, digest, err := signPrep(e, in.SigningAlgorithm, in.MessageType, in.Message)
		if err != nil {
			return nil, err
		}
		c.messageType = in.MessageType
		if err := c.authorize(OpSign, e, nil, string(in.SigningAlgorithm)); err != nil {
			return nil, err
		}
		k := e.primary()
		c.ev.KeyVersion = e.rec.Primary
		if k.VerifyOnly {
			return nil, fmt.Errorf("%w: the key was imported as a public key and cannot sign", ErrUnsupported)
		}
		sig, err := k.Sign(r.cfg.Rand, si.scheme, si.hash, digest)
		if err != nil {
			return nil, fmt.Errorf("%w: signing failed", ErrInternal)
		}
		return &SignOutput{Signature: sig, KeyID: e.arn, KeyVersion: e.rec.Primary, SigningAlgorithm: in.SigningAlgorithm}, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

// VerifyInput is the input of Verify.
type VerifyInput struct {
	KeyID            string
	Message          []byte
	MessageType      MessageType
	Signature        []byte
	SigningAlgorithm SigningAlgorithm
	// KeyVersion pins the version to verify with; 0 tries the primary
	// version and then every other enabled version, newest first.
	KeyVersion uint32
}

// VerifyOutput is the result of a successful Verify.
type VerifyOutput struct {
	SignatureValid   bool // always true: an invalid signature is an error
	KeyID            string
	KeyVersion       uint32 // the version whose key verified the signature
	SigningAlgorithm SigningAlgorithm
}

// Verify checks a signature. As in AWS KMS, an invalid signature is an
// error, matching ErrInvalidSignature.
func (r *KeyRing) Verify(ctx context.Context, in VerifyInput) (*VerifyOutput, error) {
	c := r.begin(ctx, OpVerify)
	out, err := func() (*VerifyOutput, error) {
		e, err := r.usableKey(ctx, &c, in.KeyID)
		if err != nil {
			return nil, err
		}
		si, digest, err := signPrep(e, in.SigningAlgorithm, in.MessageType, in.Message)
		if err != nil {
			return nil, err
		}
		if len(in.Signature) == 0 || len(in.Signature) > MaxSignatureSize {
			return nil, fmt.Errorf("%w: Signature must be 1 to %d bytes", ErrInvalidArgument, MaxSignatureSize)
		}
		c.messageType = in.MessageType
		if err := c.authorize(OpVerify, e, nil, string(in.SigningAlgorithm)); err != nil {
			return nil, err
		}
		v, err := r.eachVersion(e, in.KeyVersion, func(k *keys.Key) bool {
			return k.Verify(si.scheme, si.hash, digest, in.Signature)
		})
		if err == errNoVersion {
			return nil, ErrInvalidSignature
		}
		if err != nil {
			return nil, err
		}
		c.ev.KeyVersion = v
		return &VerifyOutput{SignatureValid: true, KeyID: e.arn, KeyVersion: v, SigningAlgorithm: in.SigningAlgorithm}, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

// GetPublicKeyInput is the input of GetPublicKey.
type GetPublicKeyInput struct {
	KeyID string
	// KeyVersion names a version; 0 means the primary version.
	KeyVersion uint32
}

// GetPublicKeyOutput is the result of GetPublicKey.
type GetPublicKeyOutput struct {
	KeyID string // ARN
	// PublicKey is the DER SubjectPublicKeyInfo, for x509.ParsePKIXPublicKey.
	PublicKey              []byte
	KeyVersion             uint32
	KeySpec                KeySpec
	KeyUsage               KeyUsage
	EncryptionAlgorithms   []EncryptionAlgorithm
	SigningAlgorithms      []SigningAlgorithm
	KeyAgreementAlgorithms []KeyAgreementAlgorithm
}

// GetPublicKey returns the public key of an asymmetric key's version.
func (r *KeyRing) GetPublicKey(ctx context.Context, in GetPublicKeyInput) (*GetPublicKeyOutput, error) {
	c := r.begin(ctx, OpGetPublicKey)
	out, err := func() (*GetPublicKeyOutput, error) {
		e, err := r.usableKey(ctx, &c, in.KeyID)
		if err != nil {
			return nil, err
		}
		if k := e.info.typ.Kind; k == keys.Symmetric || k == keys.HMAC {
			return nil, fmt.Errorf("%w: %s keys have no public key", ErrUnsupported, e.rec.Spec)
		}
		if err := c.authorize(OpGetPublicKey, e, nil, ""); err != nil {
			return nil, err
		}
		v := in.KeyVersion
		if v == 0 {
			v = e.rec.Primary
		}
		k, err := e.usableVersion(v)
		if err == errNoSuchVersion {
			return nil, fmt.Errorf("%w: key has no version %d", ErrInvalidArgument, v)
		} else if err != nil {
			return nil, err
		}
		if e.rec.Usage == EncryptDecrypt && v < e.rec.MinEncryptionVersion {
			return nil, fmt.Errorf("%w: version %d is below the key's minimum encryption version %d", ErrInvalidArgument, v, e.rec.MinEncryptionVersion)
		}
		c.ev.KeyVersion = v
		var m KeyMetadata
		e.info.algorithms(&m, e.rec.Usage)
		return &GetPublicKeyOutput{
			KeyID: e.arn, PublicKey: k.PublicDER(), KeyVersion: v, KeySpec: e.rec.Spec, KeyUsage: e.rec.Usage,
			EncryptionAlgorithms: m.EncryptionAlgorithms, SigningAlgorithms: m.SigningAlgorithms,
			KeyAgreementAlgorithms: m.KeyAgreementAlgorithms,
		}, nil
	}()
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

// DeriveSharedSecretInput is the input of DeriveSharedSecret.
type DeriveSharedSecretInput struct {
	// KeyID names an ECC KEY_AGREEMENT key.
	KeyID                 string
	KeyAgreementAlgorithm KeyAgreementAlgorithm
	// PublicKey is the peer's DER SubjectPublicKeyInfo on the same curve.
	PublicKey []byte
	// KeyVersion names the version to use; 0 means the primary version.
	KeyVersion uint32
}

// DeriveSharedSecretOutput is the result of DeriveSharedSecret. Formatting
// it never prints the secret.
type DeriveSharedSecretOutput struct {
	// SharedSecret is the raw ECDH shared secret. Pass it through a KDF
	// before use, and keep it secret.
	SharedSecret          Secret
	KeyID                 string
	KeyVersion            uint32
	KeyAgreementAlgorithm KeyAgreementAlgorithm
	KeyOrigin             Origin
}

// DeriveSharedSecret computes the ECDH shared secret of a KEY_AGREEMENT
// key and a peer's public key.
func (r *KeyRing) DeriveSharedSecret(ctx context.Context, in DeriveSharedSecretInput) (*DeriveSharedSecretOutput, error) {
	c := r.begin(ctx, OpDeriveSharedSecret)
	out, err := func() (*DeriveSharedSecretOutput, error) {
		e, err := r.usableKey(ctx, &c, in.KeyID)
		if err != nil {
			return nil, err
		}
		if err := needUsage(e, KeyAgreement); err != nil {
			return nil, err
		}
		if in.KeyAgreementAlgorithm != ECDH {
			return nil, fmt.Errorf("%w: KeyAgreementAlgorithm must be ECDH", ErrInvalidArgument)
		}
		if len(in.PublicKey) == 0 || len(in.PublicKey) > 8192 {
			return nil, fmt.Errorf("%w: PublicKey must be 1 to 8,192 bytes", ErrInvalidArgument)
		}
		if err := c.authorize(OpDeriveSharedSecret, e, nil, string(ECDH)); err != nil {
			return nil, err
		}
		v := in.KeyVersion
		if v == 0 {
			v = e.rec.Primary
		}
		k, err := e.usableVersion(v)
		if err == errNoSuchVersion {
			return nil, fmt.Errorf("%w: key has no version %d", ErrInvalidArgument, v)
		} else if err != nil {
			return nil, err
		}
		c.ev.KeyVersion = v
		if k.VerifyOnly {
			return nil, fmt.Errorf("%w: the key was imported as a public key", ErrUnsupported)
		}
		s, err := k.ECDH(in.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: PublicKey is not a valid public key on the key's curve", ErrInvalidArgument)
		}
		return &DeriveSharedSecretOutput{SharedSecret: s, KeyID: e.arn, KeyVersion: v, KeyAgreementAlgorithm: ECDH, KeyOrigin: e.rec.Origin}, nil
	}()
	if err := c.end(err); err != nil {
		if out != nil {
			clear(out.SharedSecret)
		}
		return nil, err
	}
	return out, nil
}

// GenerateDataKeyPairInput is the input of GenerateDataKeyPair and
// GenerateDataKeyPairWithoutPlaintext.
type GenerateDataKeyPairInput struct {
	// KeyID names the SYMMETRIC_DEFAULT key that encrypts the private key.
	KeyID             string
	KeyPairSpec       DataKeyPairSpec
	EncryptionContext EncryptionContext
}

// GenerateDataKeyPairOutput is the result of GenerateDataKeyPair.
// Formatting it never prints the private key.
type GenerateDataKeyPairOutput struct {
	// PrivateKeyCiphertextBlob is the PKCS#8 private key in a ciphertext
	// blob under the symmetric key; Decrypt opens it.
	PrivateKeyCiphertextBlob []byte
	// PrivateKeyPlaintext is the PKCS#8 DER private key; nil from
	// GenerateDataKeyPairWithoutPlaintext. Keep it secret.
	PrivateKeyPlaintext Secret
	// PublicKey is the DER SubjectPublicKeyInfo.
	PublicKey   []byte
	KeyID       string
	KeyVersion  uint32
	KeyPairSpec DataKeyPairSpec
}

var pairTypes = map[DataKeyPairSpec]keys.Type{
	PairRSA2048:     {Kind: keys.RSA, Bits: 2048},
	PairRSA3072:     {Kind: keys.RSA, Bits: 3072},
	PairRSA4096:     {Kind: keys.RSA, Bits: 4096},
	PairECCNISTP256: {Kind: keys.EC, Curve: elliptic.P256()},
	PairECCNISTP384: {Kind: keys.EC, Curve: elliptic.P384()},
	PairECCNISTP521: {Kind: keys.EC, Curve: elliptic.P521()},
}

// GenerateDataKeyPair returns a fresh asymmetric key pair: the public key,
// the private key in PKCS#8, and the private key encrypted under a
// symmetric key.
func (r *KeyRing) GenerateDataKeyPair(ctx context.Context, in GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error) {
	return r.generateDataKeyPair(ctx, OpGenerateDataKeyPair, in)
}

// GenerateDataKeyPairWithoutPlaintext is GenerateDataKeyPair without the
// plaintext private key.
func (r *KeyRing) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, in GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error) {
	out, err := r.generateDataKeyPair(ctx, OpGenerateDataKeyPairWithoutPlaintext, in)
	if out != nil {
		clear(out.PrivateKeyPlaintext)
		out.PrivateKeyPlaintext = nil
	}
	return out, err
}

func (r *KeyRing) generateDataKeyPair(ctx context.Context, op Op, in GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error) {
	c := r.begin(ctx, op)
	in.EncryptionContext = c.snapshot(in.EncryptionContext)
	c.ev.EncryptionContext = in.EncryptionContext
	out, err := func() (*GenerateDataKeyPairOutput, error) {
		t, ok := pairTypes[in.KeyPairSpec]
		if !ok {
			return nil, fmt.Errorf("%w: unknown KeyPairSpec %q", ErrInvalidArgument, in.KeyPairSpec)
		}
		c.pairSpec = in.KeyPairSpec
		e, err := r.symmetricKey(ctx, &c, op, in.KeyID, in.EncryptionContext)
		if err != nil {
			return nil, err
		}
		der, err := keys.Generate(t, r.cfg.Rand)
		if err != nil {
			return nil, fmt.Errorf("%w: generating key pair failed", ErrInternal)
		}
		pub, err := publicFromPKCS8(der)
		if err != nil {
			clear(der)
			return nil, err
		}
		blob, err := r.seal(e, der, in.EncryptionContext, nil)
		if err != nil {
			clear(der)
			return nil, err
		}
		c.ev.KeyVersion = e.rec.Primary
		return &GenerateDataKeyPairOutput{
			PrivateKeyCiphertextBlob: blob, PrivateKeyPlaintext: der, PublicKey: pub,
			KeyID: e.arn, KeyVersion: e.rec.Primary, KeyPairSpec: in.KeyPairSpec,
		}, nil
	}()
	if err := c.end(err); err != nil {
		if out != nil {
			clear(out.PrivateKeyPlaintext)
		}
		return nil, err
	}
	return out, nil
}

func publicFromPKCS8(der []byte) ([]byte, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: generated key does not parse", ErrInternal)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return x509.MarshalPKIXPublicKey(&k.PublicKey)
	case *ecdsa.PrivateKey:
		return x509.MarshalPKIXPublicKey(&k.PublicKey)
	}
	return nil, fmt.Errorf("%w: unexpected generated key type", ErrInternal)
}
