package kms

import (
	"context"
	"crypto"
	"fmt"
	"io"

	"github.com/pocketkms/kms/internal/format"
	"github.com/pocketkms/kms/internal/keys"
)

// Limits of the cryptographic operations, as AWS KMS sets them.
const (
	MaxPlaintextSize  = 4096 // Encrypt
	MaxDataKeyBytes   = 1024 // GenerateDataKey NumberOfBytes
	MaxRandomBytes    = 1024 // GenerateRandom
	MaxCiphertextSize = format.MaxBlobSize
)

// EncryptInput is the input of Encrypt.
type EncryptInput struct {
	// KeyID names a SYMMETRIC_DEFAULT key, or an RSA ENCRYPT_DECRYPT key.
	KeyID string
	// Plaintext is 1 to 4,096 bytes (less for RSA: the OAEP limit).
	Plaintext Secret
	// EncryptionContext is bound to the ciphertext; symmetric keys only.
	EncryptionContext EncryptionContext
	// EncryptionAlgorithm defaults to SYMMETRIC_DEFAULT; RSA keys need
	// RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256.
	EncryptionAlgorithm EncryptionAlgorithm
}

// EncryptOutput is the result of Encrypt.
type EncryptOutput struct {
	// CiphertextBlob is a ciphertext blob (docs/FORMAT.md) for symmetric
	// keys and the raw RSA-OAEP ciphertext for RSA keys.
	CiphertextBlob      []byte
	KeyID               string // the key's ARN
	KeyVersion          uint32
	EncryptionAlgorithm EncryptionAlgorithm
}

// Encrypt encrypts up to 4,096 bytes under the primary version of a key.
// With a symmetric key, the result is a self-describing ciphertext blob
// that names the key and version and binds the encryption context.
func (r *KeyRing) Encrypt(ctx context.Context, in EncryptInput) (*EncryptOutput, error) {
	c := r.begin(ctx, OpEncrypt)
	in.EncryptionContext = c.snapshot(in.EncryptionContext)
	c.ev.EncryptionContext = in.EncryptionContext
	out, err := r.encrypt(ctx, &c, OpEncrypt, in)
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

// encrypt resolves, checks, authorizes (as op) and encrypts.
func (r *KeyRing) encrypt(ctx context.Context, c *call, op Op, in EncryptInput) (*EncryptOutput, error) {
	if len(in.Plaintext) == 0 || len(in.Plaintext) > MaxPlaintextSize {
		return nil, fmt.Errorf("%w: Plaintext must be 1 to %d bytes", ErrInvalidArgument, MaxPlaintextSize)
	}
	e, err := r.resolve(ctx, c, in.KeyID)
	if err != nil {
		return nil, err
	}
	c.key(e)
	alg, err := r.checkEncryption(e, in.EncryptionAlgorithm, in.EncryptionContext)
	if err != nil {
		return nil, err
	}
	if err := c.authorize(op, e, in.EncryptionContext, string(alg)); err != nil {
		return nil, err
	}
	out := &EncryptOutput{KeyID: e.arn, KeyVersion: e.rec.Primary, EncryptionAlgorithm: alg}
	c.ev.KeyVersion = e.rec.Primary
	if alg == SymmetricDefaultAlgorithm {
		out.CiphertextBlob, err = r.seal(e, in.Plaintext, in.EncryptionContext, nil)
	} else {
		out.CiphertextBlob, err = r.encryptOAEP(e, alg, in.Plaintext)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkEncryption checks a key's state and usage and the algorithm for
// Encrypt or Decrypt, and returns the algorithm with its default applied.
func (r *KeyRing) checkEncryption(e *keyEntry, alg EncryptionAlgorithm, ec EncryptionContext) (EncryptionAlgorithm, error) {
	if err := r.usable(e); err != nil {
		return "", err
	}
	if err := needUsage(e, EncryptDecrypt); err != nil {
		return "", err
	}
	if alg == "" {
		alg = SymmetricDefaultAlgorithm
	}
	symmetric := e.info.typ.Kind == keys.Symmetric
	switch {
	case alg == SymmetricDefaultAlgorithm && symmetric:
	case (alg == RSAESOAEPSHA1 || alg == RSAESOAEPSHA256) && !symmetric:
		if len(ec) > 0 {
			return "", fmt.Errorf("%w: asymmetric keys take no encryption context", ErrInvalidArgument)
		}
	default:
		return "", fmt.Errorf("%w: %s keys do not encrypt with %q", ErrInvalidUsage, e.rec.Spec, alg)
	}
	return alg, nil
}

// seal makes a ciphertext blob of pt under the key's primary version, bound
// to ec, whose canonical encoding the caller may give as ecEnc. The
// blob and the associated data share one allocation: the blob is returned
// with its capacity cut, so that appends by the caller cannot reach the
// associated data behind it.
func (r *KeyRing) seal(e *keyEntry, pt []byte, ec EncryptionContext, ecEnc []byte) ([]byte, error) {
	k := e.primary()
	if k == nil {
		return nil, ErrPendingImport
	}
	if ecEnc == nil { // else the caller has encoded ec
		var ecBuf [256]byte
		var err error
		if ecEnc, err = format.AppendContext(ecBuf[:0], ec); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
	}
	h := format.BlobHeader{KeyID: e.rec.KeyID, KeyVersion: e.rec.Primary}
	hs := format.HeaderSize(len(h.KeyID))
	n := hs + len(pt) + format.TagSize
	buf := make([]byte, 0, n+hs+len(ecEnc))
	blob, err := h.AppendHeader(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: key ID does not fit a ciphertext blob", ErrInvalidArgument)
	}
	nonce := blob[hs-format.NonceSize : hs]
	if _, err := io.ReadFull(r.cfg.Rand, nonce); err != nil {
		return nil, fmt.Errorf("%w: reading random nonce failed", ErrInternal)
	}
	aad := append(append(buf[n:n], blob...), ecEnc...)
	return k.AEAD().Seal(blob, nonce, pt, aad)[:n:n], nil
}

func (r *KeyRing) encryptOAEP(e *keyEntry, alg EncryptionAlgorithm, pt []byte) ([]byte, error) {
	k := e.primary()
	h := oaepHash[alg]
	if len(pt) > k.MaxOAEPPlaintext(h) {
		return nil, fmt.Errorf("%w: %s with %s encrypts at most %d bytes", ErrInvalidArgument, e.rec.Spec, alg, k.MaxOAEPPlaintext(h))
	}
	ct, err := k.EncryptOAEP(r.cfg.Rand, h, pt)
	if err != nil {
		return nil, fmt.Errorf("%w: RSA encryption failed", ErrInternal)
	}
	return ct, nil
}

// DecryptInput is the input of Decrypt.
type DecryptInput struct {
	CiphertextBlob []byte
	// KeyID is optional for symmetric ciphertext blobs, which name their
	// key; if given, it must name that key (else ErrIncorrectKey). RSA
	// ciphertexts need it.
	KeyID string
	// KeyVersion pins the version of an RSA key; 0 tries the primary
	// version and then every other enabled version, newest first. Symmetric
	// blobs name their version and ignore it.
	KeyVersion uint32
	// EncryptionContext must be exactly the one given to Encrypt.
	EncryptionContext EncryptionContext
	// EncryptionAlgorithm defaults to SYMMETRIC_DEFAULT.
	EncryptionAlgorithm EncryptionAlgorithm
}

// DecryptOutput is the result of Decrypt. Formatting it never prints the
// plaintext.
type DecryptOutput struct {
	Plaintext           Secret
	KeyID               string // the key's ARN
	KeyVersion          uint32
	EncryptionAlgorithm EncryptionAlgorithm
}

// Decrypt decrypts a ciphertext blob from Encrypt or GenerateDataKey (the
// key and version are read from it) or an RSA-OAEP ciphertext (the key must
// be named). A wrong encryption context or a modified ciphertext fails with
// ErrInvalidCiphertext and returns no plaintext.
func (r *KeyRing) Decrypt(ctx context.Context, in DecryptInput) (*DecryptOutput, error) {
	c := r.begin(ctx, OpDecrypt)
	in.EncryptionContext = c.snapshot(in.EncryptionContext)
	c.ev.EncryptionContext = in.EncryptionContext
	out, err := r.decrypt(ctx, &c, OpDecrypt, decryptArgs{blob: in.CiphertextBlob, keyID: in.KeyID, version: in.KeyVersion, ec: in.EncryptionContext, alg: in.EncryptionAlgorithm})
	if err := c.end(err); err != nil {
		if out != nil {
			clear(out.Plaintext)
		}
		return nil, err
	}
	return out, nil
}

type decryptArgs struct {
	blob    []byte
	keyID   string
	version uint32
	ec      EncryptionContext
	alg     EncryptionAlgorithm
	// For a symmetric blob, internal callers may give the key already
	// resolved (as keyID) and the canonical encoding of ec.
	entry *keyEntry
	enc   []byte
}

// decrypt resolves, checks, authorizes (as op) and decrypts.
func (r *KeyRing) decrypt(ctx context.Context, c *call, op Op, a decryptArgs) (*DecryptOutput, error) {
	if len(a.blob) == 0 || len(a.blob) > MaxCiphertextSize {
		return nil, fmt.Errorf("%w: CiphertextBlob must be 1 to %d bytes", ErrInvalidCiphertext, MaxCiphertextSize)
	}
	if a.alg == "" || a.alg == SymmetricDefaultAlgorithm {
		return r.open(ctx, c, op, a)
	}
	if a.keyID == "" {
		return nil, fmt.Errorf("%w: decrypting with %s needs the KeyID", ErrInvalidArgument, a.alg)
	}
	e, err := r.resolve(ctx, c, a.keyID)
	if err != nil {
		return nil, err
	}
	c.key(e)
	if _, err := r.checkEncryption(e, a.alg, a.ec); err != nil {
		return nil, err
	}
	if err := c.authorize(op, e, nil, string(a.alg)); err != nil {
		return nil, err
	}
	h := oaepHash[a.alg]
	var pt []byte
	v, err := r.eachVersion(e, a.version, func(k *keys.Key) bool {
		pt, err = k.DecryptOAEP(h, a.blob)
		return err == nil
	})
	if err == errNoVersion {
		return nil, ErrInvalidCiphertext
	}
	if err != nil {
		return nil, err
	}
	c.ev.KeyVersion = v
	return &DecryptOutput{Plaintext: pt, KeyID: e.arn, KeyVersion: v, EncryptionAlgorithm: a.alg}, nil
}

// eachVersion calls try with the pinned version, or with the primary and
// then every other usable version, newest first, until try returns true.
// It returns the version that succeeded.
func (r *KeyRing) eachVersion(e *keyEntry, pinned uint32, try func(*keys.Key) bool) (uint32, error) {
	if pinned != 0 {
		k, err := e.usableVersion(pinned)
		if err == errNoSuchVersion {
			return 0, fmt.Errorf("%w: key has no version %d", ErrInvalidArgument, pinned)
		} else if err != nil {
			return 0, err
		}
		if try(k) {
			return pinned, nil
		}
		return 0, errNoVersion
	}
	if k := e.primary(); k != nil && try(k) {
		return e.rec.Primary, nil
	}
	for v := uint32(len(e.vers)); v >= 1; v-- {
		if v == e.rec.Primary {
			continue
		}
		if k, err := e.usableVersion(v); err == nil && try(k) {
			return v, nil
		}
	}
	return 0, errNoVersion
}

var errNoVersion = fmt.Errorf("no version matched")

// open decrypts a symmetric ciphertext blob.
func (r *KeyRing) open(ctx context.Context, c *call, op Op, a decryptArgs) (*DecryptOutput, error) {
	pt, e, version, err := r.openBlob(ctx, c, op, a)
	if err != nil {
		return nil, err
	}
	return &DecryptOutput{Plaintext: pt, KeyID: e.arn, KeyVersion: version, EncryptionAlgorithm: SymmetricDefaultAlgorithm}, nil
}

// openBlob is open returning the plaintext, the key and the version.
func (r *KeyRing) openBlob(ctx context.Context, c *call, op Op, a decryptArgs) ([]byte, *keyEntry, uint32, error) {
	if len(a.blob) == 0 || len(a.blob) > MaxCiphertextSize {
		return nil, nil, 0, fmt.Errorf("%w: CiphertextBlob must be 1 to %d bytes", ErrInvalidCiphertext, MaxCiphertextSize)
	}
	keyID, version, header, sealed, err := format.SplitBlob(a.blob)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: not a ciphertext blob", ErrInvalidCiphertext)
	}
	e := a.entry
	if e != nil || a.keyID != "" {
		if e == nil {
			if e, err = r.resolve(ctx, c, a.keyID); err != nil {
				return nil, nil, 0, err
			}
		}
		c.key(e)
		if e.rec.KeyID != string(keyID) {
			return nil, nil, 0, ErrIncorrectKey
		}
	} else {
		c.name = string(keyID)
		if e, err = live(r.load(ctx, c.name)); err != nil {
			return nil, nil, 0, err
		}
		c.key(e)
	}
	if int(version) > len(e.vers) && r.cfg.CacheTTL != never {
		// A version this ring has not seen: another ring sharing the Store
		// may have rotated the key since it was cached.
		if fresh, err := r.reload(ctx, e.rec.KeyID, e); err == nil {
			e = fresh
		}
	}
	if _, err := r.checkEncryption(e, SymmetricDefaultAlgorithm, a.ec); err != nil {
		return nil, nil, 0, err
	}
	if err := c.authorize(op, e, a.ec, string(SymmetricDefaultAlgorithm)); err != nil {
		return nil, nil, 0, err
	}
	c.ev.KeyVersion = version
	k, err := e.usableVersion(version)
	if err == errNoSuchVersion {
		return nil, nil, 0, fmt.Errorf("%w: key has no version %d", ErrInvalidCiphertext, version)
	} else if err != nil {
		return nil, nil, 0, err
	}
	// The plaintext and the associated data share one allocation; the
	// plaintext's capacity is cut so that appends cannot reach the rest.
	ecEnc := a.enc
	if ecEnc == nil {
		var ecBuf [256]byte
		if ecEnc, err = format.AppendContext(ecBuf[:0], a.ec); err != nil {
			return nil, nil, 0, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
	}
	n := len(sealed) - format.TagSize
	buf := make([]byte, n, n+len(header)+len(ecEnc))
	aad := append(append(buf[n:], header...), ecEnc...)
	nonce := header[len(header)-format.NonceSize:]
	pt, err := k.AEAD().Open(buf[:0:n], nonce, sealed, aad)
	if err != nil {
		return nil, nil, 0, ErrInvalidCiphertext
	}
	return pt, e, version, nil
}

// ReEncryptInput is the input of ReEncrypt.
type ReEncryptInput struct {
	CiphertextBlob []byte
	// SourceKeyID is optional for symmetric blobs and required for RSA.
	SourceKeyID               string
	SourceKeyVersion          uint32
	SourceEncryptionContext   EncryptionContext
	SourceEncryptionAlgorithm EncryptionAlgorithm
	// DestinationKeyID is required; it may be the source key, which moves
	// the ciphertext to the key's primary version.
	DestinationKeyID               string
	DestinationEncryptionContext   EncryptionContext
	DestinationEncryptionAlgorithm EncryptionAlgorithm
}

// ReEncryptOutput is the result of ReEncrypt.
type ReEncryptOutput struct {
	CiphertextBlob                 []byte
	SourceKeyID                    string // ARN
	SourceKeyVersion               uint32
	KeyID                          string // destination ARN
	KeyVersion                     uint32
	SourceEncryptionAlgorithm      EncryptionAlgorithm
	DestinationEncryptionAlgorithm EncryptionAlgorithm
}

// ReEncrypt decrypts a ciphertext and encrypts the plaintext again under
// the destination key's primary version, with a new encryption context if
// wanted, without returning the plaintext. The Policy is asked for
// ReEncryptFrom on the source key and ReEncryptTo on the destination; one
// ReEncrypt event is audited.
func (r *KeyRing) ReEncrypt(ctx context.Context, in ReEncryptInput) (*ReEncryptOutput, error) {
	c := r.begin(ctx, OpReEncrypt)
	in.SourceEncryptionContext = c.snapshot(in.SourceEncryptionContext)
	in.DestinationEncryptionContext = c.snapshot(in.DestinationEncryptionContext)
	c.ev.EncryptionContext = in.DestinationEncryptionContext
	out, err := r.reEncrypt(ctx, &c, in)
	if err := c.end(err); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *KeyRing) reEncrypt(ctx context.Context, c *call, in ReEncryptInput) (*ReEncryptOutput, error) {
	if in.DestinationKeyID == "" {
		return nil, fmt.Errorf("%w: DestinationKeyID is required", ErrInvalidArgument)
	}
	src, err := r.decrypt(ctx, c, OpReEncryptFrom, decryptArgs{blob: in.CiphertextBlob, keyID: in.SourceKeyID, version: in.SourceKeyVersion, ec: in.SourceEncryptionContext, alg: in.SourceEncryptionAlgorithm})
	// The event's KeyID is the destination's; what decrypt recorded is the source.
	c.ev.SourceKeyID, c.ev.SourceKeyVersion = c.ev.KeyID, c.ev.KeyVersion
	c.ev.KeyID, c.ev.KeyARN, c.ev.KeyVersion = "", "", 0
	if err != nil {
		return nil, err
	}
	defer clear(src.Plaintext)
	c.name, c.alias = "", ""
	dst, err := r.encrypt(ctx, c, OpReEncryptTo, EncryptInput{
		KeyID: in.DestinationKeyID, Plaintext: src.Plaintext,
		EncryptionContext: in.DestinationEncryptionContext, EncryptionAlgorithm: in.DestinationEncryptionAlgorithm,
	})
	if err != nil {
		return nil, err
	}
	return &ReEncryptOutput{
		CiphertextBlob: dst.CiphertextBlob, SourceKeyID: src.KeyID, SourceKeyVersion: src.KeyVersion,
		KeyID: dst.KeyID, KeyVersion: dst.KeyVersion,
		SourceEncryptionAlgorithm: src.EncryptionAlgorithm, DestinationEncryptionAlgorithm: dst.EncryptionAlgorithm,
	}, nil
}

// GenerateDataKeyInput is the input of GenerateDataKey and
// GenerateDataKeyWithoutPlaintext. Exactly one of NumberOfBytes and KeySpec
// must be set.
type GenerateDataKeyInput struct {
	// KeyID names a SYMMETRIC_DEFAULT key.
	KeyID string
	// NumberOfBytes is 1 to 1,024.
	NumberOfBytes int
	// KeySpec is AES_128 or AES_256.
	KeySpec           DataKeySpec
	EncryptionContext EncryptionContext
}

// GenerateDataKeyOutput is the result of GenerateDataKey. Formatting it
// never prints the plaintext key.
type GenerateDataKeyOutput struct {
	// CiphertextBlob is the data key encrypted under the key, a ciphertext
	// blob that Decrypt opens with the same encryption context.
	CiphertextBlob []byte
	// Plaintext is the data key; nil from GenerateDataKeyWithoutPlaintext.
	// It must be kept secret and cleared after use.
	Plaintext  Secret
	KeyID      string // the key's ARN
	KeyVersion uint32
}

// GenerateDataKey returns a fresh random data key, in plaintext and
// encrypted under the primary version of a symmetric key.
func (r *KeyRing) GenerateDataKey(ctx context.Context, in GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	return r.generateDataKey(ctx, OpGenerateDataKey, in)
}

// GenerateDataKeyWithoutPlaintext is GenerateDataKey without the plaintext
// data key, for a component that stores the encrypted key and leaves the
// decryption to another.
func (r *KeyRing) GenerateDataKeyWithoutPlaintext(ctx context.Context, in GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	out, err := r.generateDataKey(ctx, OpGenerateDataKeyWithoutPlaintext, in)
	if out != nil {
		clear(out.Plaintext)
		out.Plaintext = nil
	}
	return out, err
}

func (r *KeyRing) generateDataKey(ctx context.Context, op Op, in GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	c := r.begin(ctx, op)
	in.EncryptionContext = c.snapshot(in.EncryptionContext)
	c.ev.EncryptionContext = in.EncryptionContext
	d, err := r.newDataKey(ctx, &c, op, in, nil)
	if err := c.end(err); err != nil {
		clear(d.plaintext)
		return nil, err
	}
	return &GenerateDataKeyOutput{CiphertextBlob: d.blob, Plaintext: d.plaintext, KeyID: d.entry.arn, KeyVersion: d.version}, nil
}

// dataKey is a data key made by newDataKey.
type dataKey struct {
	blob, plaintext []byte
	entry           *keyEntry
	version         uint32
}

// newDataKey is GenerateDataKey within call c; enc is the canonical
// encoding of the context, or nil.
func (r *KeyRing) newDataKey(ctx context.Context, c *call, op Op, in GenerateDataKeyInput, enc []byte) (dataKey, error) {
	n := in.NumberOfBytes
	switch {
	case n != 0 && in.KeySpec != "":
		return dataKey{}, fmt.Errorf("%w: set NumberOfBytes or KeySpec, not both", ErrInvalidArgument)
	case in.KeySpec == AES128:
		n = 16
	case in.KeySpec == AES256:
		n = 32
	case in.KeySpec != "":
		return dataKey{}, fmt.Errorf("%w: KeySpec must be AES_128 or AES_256", ErrInvalidArgument)
	case n < 1 || n > MaxDataKeyBytes:
		return dataKey{}, fmt.Errorf("%w: NumberOfBytes must be 1 to %d", ErrInvalidArgument, MaxDataKeyBytes)
	}
	e, err := r.symmetricKey(ctx, c, op, in.KeyID, in.EncryptionContext)
	if err != nil {
		return dataKey{}, err
	}
	dk := make([]byte, n)
	if _, err := io.ReadFull(r.cfg.Rand, dk); err != nil {
		return dataKey{}, fmt.Errorf("%w: reading random data key failed", ErrInternal)
	}
	blob, err := r.seal(e, dk, in.EncryptionContext, enc)
	if err != nil {
		clear(dk)
		return dataKey{}, err
	}
	c.ev.KeyVersion = e.rec.Primary
	return dataKey{blob: blob, plaintext: dk, entry: e, version: e.rec.Primary}, nil
}

// symmetricKey resolves and checks a key for an operation that seals
// under a SYMMETRIC_DEFAULT key, and authorizes op.
func (r *KeyRing) symmetricKey(ctx context.Context, c *call, op Op, keyID string, ec EncryptionContext) (*keyEntry, error) {
	e, err := r.usableKey(ctx, c, keyID)
	if err != nil {
		return nil, err
	}
	if e.rec.Spec != SymmetricDefault {
		return nil, fmt.Errorf("%w: %s needs a SYMMETRIC_DEFAULT key", ErrInvalidUsage, op)
	}
	if err := c.authorize(op, e, ec, string(SymmetricDefaultAlgorithm)); err != nil {
		return nil, err
	}
	return e, nil
}

// GenerateRandom returns 1 to 1,024 random bytes from Config.Rand.
func (r *KeyRing) GenerateRandom(ctx context.Context, numberOfBytes int) (Secret, error) {
	c := r.begin(ctx, OpGenerateRandom)
	out, err := func() (Secret, error) {
		if numberOfBytes < 1 || numberOfBytes > MaxRandomBytes {
			return nil, fmt.Errorf("%w: NumberOfBytes must be 1 to %d", ErrInvalidArgument, MaxRandomBytes)
		}
		if err := c.authorize(OpGenerateRandom, nil, nil, ""); err != nil {
			return nil, err
		}
		b := make([]byte, numberOfBytes)
		if _, err := io.ReadFull(r.cfg.Rand, b); err != nil {
			return nil, fmt.Errorf("%w: reading random bytes failed", ErrInternal)
		}
		return b, nil
	}()
	if err := c.end(err); err != nil {
		clear(out)
		return nil, err
	}
	return out, nil
}

// hashOf returns the digest of msg with h.
func hashOf(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}
