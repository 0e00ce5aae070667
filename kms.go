// Package kms is an embeddable key management service: customer master keys
// with versioned backing keys and the operations of AWS KMS, in process.
//
// A [KeyRing] holds customer master keys (CMKs). Each key has a fixed
// [KeySpec] and [KeyUsage] and one or more versions of backing key material;
// the primary version encrypts, signs and computes MACs, and every enabled
// version still decrypts and verifies, so rotation never breaks old data.
// The methods carry the AWS KMS operation names and limits: [KeyRing.CreateKey],
// [KeyRing.Encrypt], [KeyRing.Decrypt], [KeyRing.GenerateDataKey],
// [KeyRing.Sign], [KeyRing.GenerateMac], [KeyRing.ScheduleKeyDeletion] and the
// rest.
//
// A zero [Config] gives a working in-memory ring:
//
//	ring, err := kms.NewKeyRing(kms.Config{})
//	key, err := ring.CreateKey(ctx, kms.CreateKeyInput{Description: "orders"})
//	out, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: key.KeyID, Plaintext: secret})
//
// # Naming keys
//
// Wherever an operation takes a key, it accepts the key ID (a UUID), the key
// ARN (arn:aws:kms:<region>:<account>:key/<id>), an alias name (alias/<name>)
// or an alias ARN. Region and account come from [Config].
//
// # Versions
//
// Ciphertext blobs from [KeyRing.Encrypt] and [KeyRing.GenerateDataKey] name
// the key and the version that made them, and [KeyRing.Decrypt] uses that
// version. Signatures, MACs and RSA ciphertexts are the raw bytes AWS KMS
// returns, so they carry no version: [KeyRing.Sign] and [KeyRing.GenerateMac]
// use the primary version and report it in their output;
// [KeyRing.Verify], [KeyRing.VerifyMac] and asymmetric [KeyRing.Decrypt]
// accept a KeyVersion and, when it is zero, try the primary version first and
// then every other enabled version, newest first. [KeyRing.GetPublicKey]
// returns the primary version's public key unless a version is named.
//
// # Encryption context
//
// Every symmetric operation takes an [EncryptionContext]: non-secret
// key-value pairs bound to the ciphertext as associated data through a
// canonical encoding (sorted, length-prefixed; docs/FORMAT.md). Decrypt
// succeeds only with exactly the pairs given to Encrypt.
//
// # The gate
//
// Every operation runs the same steps: resolve the key, check its state and
// usage, ask [Config.Policy], run, and hand exactly one [Event] to
// [Config.Auditor], whether the operation succeeded, was denied or failed.
//
// # Errors
//
// Errors are *[Error] values that name the operation and key and wrap one of
// the sentinels below; test them with [errors.Is]. A failed authentication
// (wrong context, tampered ciphertext) says only that it failed. No error,
// event or formatted value ever contains key material or plaintext.
//
// # Concurrency
//
// A KeyRing is safe for concurrent use. Cryptographic operations on existing
// keys take no exclusive lock; key management calls are serialized.
package kms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// KeySpec is the type of a key's material. Values are the AWS KMS names.
type KeySpec string

// The key specs.
const (
	SymmetricDefault    KeySpec = "SYMMETRIC_DEFAULT" // AES-256-GCM
	RSA2048             KeySpec = "RSA_2048"
	RSA3072             KeySpec = "RSA_3072"
	RSA4096             KeySpec = "RSA_4096"
	ECCNISTP256         KeySpec = "ECC_NIST_P256"
	ECCNISTP384         KeySpec = "ECC_NIST_P384"
	ECCNISTP521         KeySpec = "ECC_NIST_P521"
	ECCNISTEdwards25519 KeySpec = "ECC_NIST_EDWARDS25519"
	HMAC224             KeySpec = "HMAC_224"
	HMAC256             KeySpec = "HMAC_256"
	HMAC384             KeySpec = "HMAC_384"
	HMAC512             KeySpec = "HMAC_512"
)

// KeyUsage is the cryptographic use a key is fixed to at creation.
type KeyUsage string

// The key usages.
const (
	EncryptDecrypt    KeyUsage = "ENCRYPT_DECRYPT"
	SignVerify        KeyUsage = "SIGN_VERIFY"
	GenerateVerifyMac KeyUsage = "GENERATE_VERIFY_MAC"
	KeyAgreement      KeyUsage = "KEY_AGREEMENT"
)

// VersionState is the state of one version of a key's material.
type VersionState string

// The version states. The zero value is Enabled.
const (
	VersionEnabled   VersionState = "Enabled"
	VersionDisabled  VersionState = "Disabled"
	VersionDestroyed VersionState = "Destroyed"
)

// RotationType says how a rotation happened. The values are AWS's.
type RotationType string

// The rotation types.
const (
	RotationAutomatic RotationType = "AUTOMATIC"
	RotationOnDemand  RotationType = "ON_DEMAND"
)

// KeyState is the lifecycle state of a key. The values are the AWS KMS names.
type KeyState string

// The key states.
const (
	KeyStateEnabled         KeyState = "Enabled"
	KeyStateDisabled        KeyState = "Disabled"
	KeyStatePendingDeletion KeyState = "PendingDeletion"
	KeyStatePendingImport   KeyState = "PendingImport"
	// KeyStateDeleted is a pocketkms tombstone, not an AWS state: the
	// key's material was destroyed when its deletion date passed. Stores
	// keep the record so that the key ID is never reused and data under it
	// fails with ErrKeyDeleted; DescribeKey and ListKeys no longer show it.
	KeyStateDeleted KeyState = "Deleted"
)

// Origin says where a key's material came from.
type Origin string

// The origins.
const (
	OriginAWSKMS   Origin = "AWS_KMS"  // generated by the KeyRing
	OriginExternal Origin = "EXTERNAL" // imported with ImportKeyMaterial
)

// EncryptionAlgorithm names an algorithm for Encrypt and Decrypt.
type EncryptionAlgorithm string

// The encryption algorithms.
const (
	SymmetricDefaultAlgorithm EncryptionAlgorithm = "SYMMETRIC_DEFAULT"
	RSAESOAEPSHA1             EncryptionAlgorithm = "RSAES_OAEP_SHA_1"
	RSAESOAEPSHA256           EncryptionAlgorithm = "RSAES_OAEP_SHA_256"
)

// SigningAlgorithm names an algorithm for Sign and Verify.
type SigningAlgorithm string

// The signing algorithms.
const (
	RSASSAPSSSHA256      SigningAlgorithm = "RSASSA_PSS_SHA_256"
	RSASSAPSSSHA384      SigningAlgorithm = "RSASSA_PSS_SHA_384"
	RSASSAPSSSHA512      SigningAlgorithm = "RSASSA_PSS_SHA_512"
	RSASSAPKCS1V15SHA256 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_256"
	RSASSAPKCS1V15SHA384 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_384"
	RSASSAPKCS1V15SHA512 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_512"
	ECDSASHA256          SigningAlgorithm = "ECDSA_SHA_256"
	ECDSASHA384          SigningAlgorithm = "ECDSA_SHA_384"
	ECDSASHA512          SigningAlgorithm = "ECDSA_SHA_512"
	ED25519SHA512        SigningAlgorithm = "ED25519_SHA_512"
	ED25519PHSHA512      SigningAlgorithm = "ED25519_PH_SHA_512"
)

// MacAlgorithm names an algorithm for GenerateMac and VerifyMac.
type MacAlgorithm string

// The MAC algorithms.
const (
	HMACSHA224 MacAlgorithm = "HMAC_SHA_224"
	HMACSHA256 MacAlgorithm = "HMAC_SHA_256"
	HMACSHA384 MacAlgorithm = "HMAC_SHA_384"
	HMACSHA512 MacAlgorithm = "HMAC_SHA_512"
)

// KeyAgreementAlgorithm names an algorithm for DeriveSharedSecret.
type KeyAgreementAlgorithm string

// ECDH is elliptic-curve Diffie-Hellman, the only key agreement algorithm.
const ECDH KeyAgreementAlgorithm = "ECDH"

// MessageType says whether Sign and Verify receive a message or its digest.
type MessageType string

// The message types.
const (
	MessageRaw    MessageType = "RAW"
	MessageDigest MessageType = "DIGEST"
)

// DataKeySpec is the length of a symmetric data key.
type DataKeySpec string

// The data key specs.
const (
	AES128 DataKeySpec = "AES_128"
	AES256 DataKeySpec = "AES_256"
)

// DataKeyPairSpec is the type of an asymmetric data key pair.
type DataKeyPairSpec string

// The data key pair specs.
const (
	PairRSA2048     DataKeyPairSpec = "RSA_2048"
	PairRSA3072     DataKeyPairSpec = "RSA_3072"
	PairRSA4096     DataKeyPairSpec = "RSA_4096"
	PairECCNISTP256 DataKeyPairSpec = "ECC_NIST_P256"
	PairECCNISTP384 DataKeyPairSpec = "ECC_NIST_P384"
	PairECCNISTP521 DataKeyPairSpec = "ECC_NIST_P521"
)

// EncryptionContext is a set of non-secret key-value pairs bound to a
// ciphertext. It is logged in audit events and may be used in policy
// conditions, so it must never hold secrets. Keys must be non-empty; keys
// and values must be valid UTF-8; the canonical encoding may not exceed
// 8,192 bytes.
type EncryptionContext map[string]string

// Tag is a key-value label on a key.
type Tag struct {
	TagKey   string
	TagValue string
}

// KeyMetadata describes a key, as DescribeKey returns it.
type KeyMetadata struct {
	AWSAccountID string
	KeyID        string
	Arn          string
	CreationDate time.Time
	Enabled      bool
	Description  string
	KeyUsage     KeyUsage
	KeyState     KeyState
	// DeletionDate is when a key in PendingDeletion is deleted; zero otherwise.
	DeletionDate time.Time
	// PendingDeletionWindowInDays is set while the key is PendingDeletion.
	PendingDeletionWindowInDays int
	Origin                      Origin
	KeyManager                  string // always "CUSTOMER"
	KeySpec                     KeySpec
	EncryptionAlgorithms        []EncryptionAlgorithm
	SigningAlgorithms           []SigningAlgorithm
	MacAlgorithms               []MacAlgorithm
	KeyAgreementAlgorithms      []KeyAgreementAlgorithm
	// ExpirationModel and ValidTo describe imported key material.
	ExpirationModel ExpirationModel
	ValidTo         time.Time
	// PrimaryVersion is the version that encrypts, signs and MACs; 0 while
	// the key is PendingImport. Versions counts the key's versions.
	PrimaryVersion uint32
	Versions       int
	// VerifyOnly is set on asymmetric keys imported as a public key alone:
	// they verify and give their public key but cannot sign.
	VerifyOnly bool
}

// ExpirationModel says whether imported key material expires.
type ExpirationModel string

// The expiration models.
const (
	KeyMaterialExpires       ExpirationModel = "KEY_MATERIAL_EXPIRES"
	KeyMaterialDoesNotExpire ExpirationModel = "KEY_MATERIAL_DOES_NOT_EXPIRE"
)

// Sentinel errors. Every error from a KeyRing operation is an *[Error]
// wrapping one of them; test with [errors.Is].
var (
	ErrNotFound          = errors.New("kms: not found")
	ErrAlreadyExists     = errors.New("kms: already exists")
	ErrInvalidArgument   = errors.New("kms: invalid argument")
	ErrInvalidState      = errors.New("kms: key is in an invalid state for this operation")
	ErrInvalidUsage      = errors.New("kms: key usage or algorithm does not allow this operation")
	ErrInvalidCiphertext = errors.New("kms: invalid ciphertext")
	ErrIncorrectKey      = errors.New("kms: ciphertext was not made by the key named")
	ErrLimitExceeded     = errors.New("kms: limit exceeded")
	ErrAccessDenied      = errors.New("kms: access denied")
	ErrInvalidSignature  = errors.New("kms: signature is not valid")
	ErrInvalidMac        = errors.New("kms: MAC is not valid")
	ErrUnsupported       = errors.New("kms: operation not supported for this key")
	ErrConflict          = errors.New("kms: concurrent modification")
	// ErrIncorrectKeyMaterial: re-imported material differs from the key's.
	ErrIncorrectKeyMaterial = errors.New("kms: key material does not match the key")
	// ErrInvalidImportToken: the import token is unknown, expired or for another key.
	ErrInvalidImportToken = errors.New("kms: import token is not valid")
	// ErrInvalidGrantToken: a grant token does not parse.
	ErrInvalidGrantToken = errors.New("kms: grant token is not valid")
	// ErrInvalidGrantID: a grant ID is not well formed.
	ErrInvalidGrantID = errors.New("kms: grant ID is not valid")
	// ErrAuditFailed: Config.AuditRequired is set and the Auditor failed.
	ErrAuditFailed = errors.New("kms: audit failed")
	// ErrInternal: the KeyRing, its Store or its RootKey failed, or a stored
	// record is invalid. It says nothing about the caller's input.
	ErrInternal = errors.New("kms: internal error")
)

// The reasons a key refuses use. Each matches [ErrInvalidState] with errors.Is.
var (
	ErrDisabled        error = &stateError{"kms: key is disabled"}
	ErrPendingDeletion error = &stateError{"kms: key is pending deletion"}
	ErrPendingImport   error = &stateError{"kms: key is pending import"}
	// ErrKeyVersionDisabled: the version that made the data is disabled
	// (EnableKeyVersion restores it).
	ErrKeyVersionDisabled error = &stateError{"kms: key version is disabled"}
	// ErrKeyVersionDestroyed: the version that made the data was destroyed;
	// the data cannot be recovered.
	ErrKeyVersionDestroyed error = &stateError{"kms: key version was destroyed"}
	// ErrKeyVersionRetired: the version that made the data is below the
	// key's minimum decryption version.
	ErrKeyVersionRetired error = &stateError{"kms: key version is below the key's minimum decryption version"}
)

// ErrKeyDeleted: the key's deletion date passed and RunDue destroyed its
// material. It matches [ErrNotFound] with errors.Is, as AWS KMS reports a
// deleted key.
var ErrKeyDeleted error = &notFoundError{"kms: key was deleted"}

type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

type stateError struct{ msg string }

func (e *stateError) Error() string        { return e.msg }
func (e *stateError) Is(target error) bool { return target == ErrInvalidState }

// Error is the error every KeyRing operation returns. It names the operation
// and the key (as the caller named it, or as resolved) and wraps a sentinel.
// Its text never contains key material, plaintext or encryption context.
type Error struct {
	Op    Op
	KeyID string
	Err   error
}

func (e *Error) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "kms: ")
	if e.KeyID == "" {
		return fmt.Sprintf("kms: %s: %s", e.Op, msg)
	}
	return fmt.Sprintf("kms: %s %s: %s", e.Op, e.KeyID, msg)
}

// Unwrap returns the wrapped sentinel.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the AWS KMS exception name for err (for example
// "NotFoundException" or "DisabledException"), "" for nil, and
// "KMSInternalException" for an error that wraps no known sentinel.
func ErrorCode(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrInternal):
		// First: a Store's or RootKey's own error, wrapped inside, must not
		// pass for the caller's.
		return "KMSInternalException"
	case errors.Is(err, ErrAccessDenied):
		// Likewise for a Policy's own error.
		return "AccessDeniedException"
	case errors.Is(err, ErrDisabled):
		return "DisabledException"
	case errors.Is(err, ErrInvalidState):
		return "KMSInvalidStateException"
	case errors.Is(err, ErrNotFound):
		return "NotFoundException"
	case errors.Is(err, ErrAlreadyExists):
		return "AlreadyExistsException"
	case errors.Is(err, ErrInvalidArgument):
		return "ValidationException"
	case errors.Is(err, ErrInvalidUsage):
		return "InvalidKeyUsageException"
	case errors.Is(err, ErrInvalidCiphertext):
		return "InvalidCiphertextException"
	case errors.Is(err, ErrIncorrectKey):
		return "IncorrectKeyException"
	case errors.Is(err, ErrLimitExceeded):
		return "LimitExceededException"
	case errors.Is(err, ErrInvalidSignature):
		return "KMSInvalidSignatureException"
	case errors.Is(err, ErrInvalidMac):
		return "KMSInvalidMacException"
	case errors.Is(err, ErrUnsupported):
		return "UnsupportedOperationException"
	case errors.Is(err, ErrIncorrectKeyMaterial):
		return "IncorrectKeyMaterialException"
	case errors.Is(err, ErrInvalidImportToken):
		return "InvalidImportTokenException"
	case errors.Is(err, ErrConflict):
		return "ConflictException"
	case errors.Is(err, ErrMalformedPolicy):
		return "MalformedPolicyDocumentException"
	case errors.Is(err, ErrInvalidGrantToken):
		return "InvalidGrantTokenException"
	case errors.Is(err, ErrInvalidGrantID):
		return "InvalidGrantIdException"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "RequestCanceledException"
	default:
		return "KMSInternalException"
	}
}

// Op names an operation, with the AWS KMS action name.
type Op string

// The operations.
const (
	OpCreateKey                           Op = "CreateKey"
	OpDescribeKey                         Op = "DescribeKey"
	OpListKeys                            Op = "ListKeys"
	OpCreateAlias                         Op = "CreateAlias"
	OpUpdateAlias                         Op = "UpdateAlias"
	OpDeleteAlias                         Op = "DeleteAlias"
	OpListAliases                         Op = "ListAliases"
	OpTagResource                         Op = "TagResource"
	OpUntagResource                       Op = "UntagResource"
	OpListResourceTags                    Op = "ListResourceTags"
	OpUpdateKeyDescription                Op = "UpdateKeyDescription"
	OpEnableKey                           Op = "EnableKey"
	OpDisableKey                          Op = "DisableKey"
	OpScheduleKeyDeletion                 Op = "ScheduleKeyDeletion"
	OpCancelKeyDeletion                   Op = "CancelKeyDeletion"
	OpEncrypt                             Op = "Encrypt"
	OpDecrypt                             Op = "Decrypt"
	OpReEncrypt                           Op = "ReEncrypt"
	OpReEncryptFrom                       Op = "ReEncryptFrom" // policy only
	OpReEncryptTo                         Op = "ReEncryptTo"   // policy only
	OpGenerateDataKey                     Op = "GenerateDataKey"
	OpGenerateDataKeyWithoutPlaintext     Op = "GenerateDataKeyWithoutPlaintext"
	OpGenerateDataKeyPair                 Op = "GenerateDataKeyPair"
	OpGenerateDataKeyPairWithoutPlaintext Op = "GenerateDataKeyPairWithoutPlaintext"
	OpSign                                Op = "Sign"
	OpVerify                              Op = "Verify"
	OpGetPublicKey                        Op = "GetPublicKey"
	OpGenerateMac                         Op = "GenerateMac"
	OpVerifyMac                           Op = "VerifyMac"
	OpGenerateRandom                      Op = "GenerateRandom"
	OpDeriveSharedSecret                  Op = "DeriveSharedSecret"
	OpGetParametersForImport              Op = "GetParametersForImport"
	OpImportKeyMaterial                   Op = "ImportKeyMaterial"
	OpRotateKeyOnDemand                   Op = "RotateKeyOnDemand"
	OpEnableKeyRotation                   Op = "EnableKeyRotation"
	OpDisableKeyRotation                  Op = "DisableKeyRotation"
	OpGetKeyRotationStatus                Op = "GetKeyRotationStatus"
	OpListKeyRotations                    Op = "ListKeyRotations"
	// OpRotateKey is an automatic rotation by RunDue, and OpDeleteKey the
	// destruction of a key whose deletion date passed (CloudTrail's names
	// for these service-initiated events). They reach the Auditor, never
	// the Policy.
	OpRotateKey Op = "RotateKey"
	OpDeleteKey Op = "DeleteKey"
	// OpRunDue names RunDue in its errors.
	OpRunDue Op = "RunDue"
	// Version controls (pocketkms, after Vault Transit).
	OpListKeyVersions        Op = "ListKeyVersions"
	OpEnableKeyVersion       Op = "EnableKeyVersion"
	OpDisableKeyVersion      Op = "DisableKeyVersion"
	OpDestroyKeyVersion      Op = "DestroyKeyVersion"
	OpUpdateKeyVersionLimits Op = "UpdateKeyVersionLimits"
	// Key policies and grants.
	OpPutKeyPolicy        Op = "PutKeyPolicy"
	OpGetKeyPolicy        Op = "GetKeyPolicy"
	OpListKeyPolicies     Op = "ListKeyPolicies"
	OpCreateGrant         Op = "CreateGrant"
	OpListGrants          Op = "ListGrants"
	OpListRetirableGrants Op = "ListRetirableGrants"
	OpRetireGrant         Op = "RetireGrant"
	OpRevokeGrant         Op = "RevokeGrant"
)

// Principal is the caller of an operation, carried in its context with
// [WithPrincipal]. Policies and audit events see it.
type Principal struct {
	// ARN identifies the caller, for example arn:aws:iam::111122223333:role/app.
	ARN string
	// Account is the caller's account ID.
	Account string
	// Tags are the caller's attributes, for attribute-based policy rules.
	Tags map[string]string
}

type principalKey struct{}

// WithPrincipal returns a context that carries p as the caller.
// Calls whose context carries no principal are made by the zero Principal:
// AllowAll lets them through, KeyPolicies lets them match only statements
// whose Principal is "*" (and no grant, and no operation on no key), and
// audit events record an empty principal.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal carried by ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// redacted is what every formatting path prints for secret bytes.
const redacted = "[redacted]"

// Secret is key material or plaintext returned by an operation. It is a
// byte slice, usable wherever one is, but fmt, slog and encoding/json never
// print its contents. Treat it as sensitive and clear it when done.
type Secret []byte

// String returns a placeholder, never the bytes.
func (Secret) String() string { return redacted }

// GoString returns a placeholder, never the bytes.
func (Secret) GoString() string { return redacted }

// Format prints a placeholder for every verb, including %x and %#v.
func (Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }

// LogValue keeps the bytes out of slog records.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText refuses to serialize the bytes (encoding/json uses it).
func (Secret) MarshalText() ([]byte, error) {
	return nil, errors.New("kms: secret bytes are not serializable")
}
