package kms

import (
	"crypto"
	"crypto/elliptic"

	"github.com/pocketkms/kms/internal/keys"
)

// specInfo says what a key spec is and what it may be used for.
type specInfo struct {
	typ    keys.Type
	usages []KeyUsage
}

var specs = map[KeySpec]specInfo{
	SymmetricDefault:    {keys.Type{Kind: keys.Symmetric}, []KeyUsage{EncryptDecrypt}},
	RSA2048:             {keys.Type{Kind: keys.RSA, Bits: 2048}, []KeyUsage{EncryptDecrypt, SignVerify}},
	RSA3072:             {keys.Type{Kind: keys.RSA, Bits: 3072}, []KeyUsage{EncryptDecrypt, SignVerify}},
	RSA4096:             {keys.Type{Kind: keys.RSA, Bits: 4096}, []KeyUsage{EncryptDecrypt, SignVerify}},
	ECCNISTP256:         {keys.Type{Kind: keys.EC, Curve: elliptic.P256()}, []KeyUsage{SignVerify, KeyAgreement}},
	ECCNISTP384:         {keys.Type{Kind: keys.EC, Curve: elliptic.P384()}, []KeyUsage{SignVerify, KeyAgreement}},
	ECCNISTP521:         {keys.Type{Kind: keys.EC, Curve: elliptic.P521()}, []KeyUsage{SignVerify, KeyAgreement}},
	ECCNISTEdwards25519: {keys.Type{Kind: keys.Ed25519}, []KeyUsage{SignVerify}},
	HMAC224:             {keys.Type{Kind: keys.HMAC, Hash: crypto.SHA224}, []KeyUsage{GenerateVerifyMac}},
	HMAC256:             {keys.Type{Kind: keys.HMAC, Hash: crypto.SHA256}, []KeyUsage{GenerateVerifyMac}},
	HMAC384:             {keys.Type{Kind: keys.HMAC, Hash: crypto.SHA384}, []KeyUsage{GenerateVerifyMac}},
	HMAC512:             {keys.Type{Kind: keys.HMAC, Hash: crypto.SHA512}, []KeyUsage{GenerateVerifyMac}},
}

// signingInfo maps a signing algorithm to its scheme and hash.
type signingInfo struct {
	kind   keys.Kind
	scheme keys.SignScheme
	hash   crypto.Hash
}

var signing = map[SigningAlgorithm]signingInfo{
	RSASSAPSSSHA256:      {keys.RSA, keys.PSS, crypto.SHA256},
	RSASSAPSSSHA384:      {keys.RSA, keys.PSS, crypto.SHA384},
	RSASSAPSSSHA512:      {keys.RSA, keys.PSS, crypto.SHA512},
	RSASSAPKCS1V15SHA256: {keys.RSA, keys.PKCS1v15, crypto.SHA256},
	RSASSAPKCS1V15SHA384: {keys.RSA, keys.PKCS1v15, crypto.SHA384},
	RSASSAPKCS1V15SHA512: {keys.RSA, keys.PKCS1v15, crypto.SHA512},
	ECDSASHA256:          {keys.EC, keys.ECDSA, crypto.SHA256},
	ECDSASHA384:          {keys.EC, keys.ECDSA, crypto.SHA384},
	ECDSASHA512:          {keys.EC, keys.ECDSA, crypto.SHA512},
	ED25519SHA512:        {keys.Ed25519, keys.PureEd25519, crypto.SHA512},
	ED25519PHSHA512:      {keys.Ed25519, keys.Ed25519ph, crypto.SHA512},
}

var macs = map[MacAlgorithm]crypto.Hash{
	HMACSHA224: crypto.SHA224,
	HMACSHA256: crypto.SHA256,
	HMACSHA384: crypto.SHA384,
	HMACSHA512: crypto.SHA512,
}

// oaepHash maps an RSA encryption algorithm to its hash.
var oaepHash = map[EncryptionAlgorithm]crypto.Hash{
	RSAESOAEPSHA1:   crypto.SHA1,
	RSAESOAEPSHA256: crypto.SHA256,
}

// The algorithm lists DescribeKey reports, in the order AWS KMS lists them.
func (s specInfo) algorithms(m *KeyMetadata, usage KeyUsage) {
	switch {
	case usage == EncryptDecrypt && s.typ.Kind == keys.Symmetric:
		m.EncryptionAlgorithms = []EncryptionAlgorithm{SymmetricDefaultAlgorithm}
	case usage == EncryptDecrypt:
		m.EncryptionAlgorithms = []EncryptionAlgorithm{RSAESOAEPSHA1, RSAESOAEPSHA256}
	case usage == SignVerify:
		for _, a := range []SigningAlgorithm{
			RSASSAPSSSHA256, RSASSAPSSSHA384, RSASSAPSSSHA512,
			RSASSAPKCS1V15SHA256, RSASSAPKCS1V15SHA384, RSASSAPKCS1V15SHA512,
			ECDSASHA256, ECDSASHA384, ECDSASHA512, ED25519SHA512, ED25519PHSHA512,
		} {
			if s.allowsSigning(a) {
				m.SigningAlgorithms = append(m.SigningAlgorithms, a)
			}
		}
	case usage == GenerateVerifyMac:
		for a, h := range macs {
			if h == s.typ.Hash {
				m.MacAlgorithms = []MacAlgorithm{a}
			}
		}
	case usage == KeyAgreement:
		m.KeyAgreementAlgorithms = []KeyAgreementAlgorithm{ECDH}
	}
}

// allowsSigning reports whether a key of this spec signs with a. As in AWS
// KMS, each NIST curve signs with its own hash: P-256 with SHA-256, P-384
// with SHA-384, P-521 with SHA-512.
func (s specInfo) allowsSigning(a SigningAlgorithm) bool {
	si, ok := signing[a]
	if !ok || si.kind != s.typ.Kind {
		return false
	}
	if s.typ.Kind == keys.EC {
		switch s.typ.Curve {
		case elliptic.P256():
			return si.hash == crypto.SHA256
		case elliptic.P384():
			return si.hash == crypto.SHA384
		case elliptic.P521():
			return si.hash == crypto.SHA512
		}
		return false
	}
	return true
}
