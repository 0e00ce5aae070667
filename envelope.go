package kms

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pocketkms/kms/internal/esdk"
	"github.com/pocketkms/kms/internal/format"
)

// Envelope suites: pocketkms writes format 2 of the AWS Encryption SDK
// message format, with key commitment.
const (
	// SuiteCommitted is AES-256-GCM with HKDF-SHA-512 and key commitment
	// (0x0478), the default.
	SuiteCommitted uint16 = 0x0478
	// SuiteCommittedSigned adds an ECDSA P-384 signature (0x0578), for
	// messages with many readers who must not be able to forge each
	// other's messages.
	SuiteCommittedSigned uint16 = 0x0578
)

// Envelope defaults.
const (
	// DefaultFrameLength is 64 KiB: framing costs 36 bytes and one AES-GCM
	// call per frame (0.05% at this size), frames are large enough to be
	// worth handing to another core, and a reader holds at most one frame
	// of unreleased plaintext per core. The SDK's default is 4 KiB.
	DefaultFrameLength = 64 << 10
	// DefaultMaxRecipients bounds the encrypted data keys written and read.
	DefaultMaxRecipients = 10
)

// EnvelopeConfig configures an Envelope. Every field but Recipients may be
// left zero.
type EnvelopeConfig struct {
	// Recipients can open the envelopes: the first makes the data key (a
	// KeyRing key through GenerateDataKey; otherwise Config.Rand) and every
	// one receives a wrapped copy. Open tries each in turn.
	Recipients []Recipient
	// OpenWith are more recipients that Open tries, after Recipients, and
	// that Seal never wraps to: with them, Rewrap moves messages from old
	// recipients to new ones.
	OpenWith []Recipient
	// Suite is SuiteCommitted (the default) or SuiteCommittedSigned.
	Suite uint16
	// FrameLength is the plaintext bytes per frame, 1 to 1 GiB;
	// 0 means DefaultFrameLength.
	FrameLength int
	// MaxRecipients bounds the recipients written and the encrypted data
	// keys read; 0 means DefaultMaxRecipients.
	MaxRecipients int
	// AllowNonCommitting lets Open read messages of format 1 (suites
	// without key commitment), as the SDK's REQUIRE_ENCRYPT_ALLOW_DECRYPT.
	AllowNonCommitting bool
	// Cache, if set, shares data keys between messages within its limits.
	// Read its warning first.
	Cache *CacheConfig
}

// Envelope seals payloads under fresh data keys wrapped for its
// recipients, in the AWS Encryption SDK message format (docs/FORMAT.md,
// section 4). It is safe for concurrent use.
type Envelope struct {
	ring    *KeyRing
	cfg     EnvelopeConfig
	openers []Recipient   // Recipients, then OpenWith
	cache   *dataKeyCache // nil without caching
}

// NewEnvelope returns an Envelope that uses ring for its KeyRing
// recipients and its Rand.
func NewEnvelope(ring *KeyRing, cfg EnvelopeConfig) (*Envelope, error) {
	if cfg.Suite == 0 {
		cfg.Suite = SuiteCommitted
	}
	if cfg.FrameLength == 0 {
		cfg.FrameLength = DefaultFrameLength
	}
	if cfg.MaxRecipients == 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	switch {
	case ring == nil:
		return nil, fmt.Errorf("%w: an Envelope needs a KeyRing", ErrInvalidArgument)
	case cfg.Suite != SuiteCommitted && cfg.Suite != SuiteCommittedSigned:
		return nil, fmt.Errorf("%w: Suite must be 0x0478 or 0x0578", ErrInvalidArgument)
	case cfg.FrameLength < 1 || cfg.FrameLength > esdk.MaxFrameLength:
		return nil, fmt.Errorf("%w: FrameLength must be 1 to %d", ErrInvalidArgument, esdk.MaxFrameLength)
	case len(cfg.Recipients) == 0 || len(cfg.Recipients) > cfg.MaxRecipients:
		return nil, fmt.Errorf("%w: an Envelope needs 1 to %d recipients", ErrInvalidArgument, cfg.MaxRecipients)
	}
	if len(cfg.OpenWith) > cfg.MaxRecipients {
		return nil, fmt.Errorf("%w: at most %d OpenWith recipients", ErrInvalidArgument, cfg.MaxRecipients)
	}
	for _, rc := range append(cfg.Recipients[:len(cfg.Recipients):len(cfg.Recipients)], cfg.OpenWith...) {
		if rc == nil {
			return nil, fmt.Errorf("%w: nil recipient", ErrInvalidArgument)
		}
	}
	cfg.Recipients = append([]Recipient(nil), cfg.Recipients...)
	cfg.OpenWith = append([]Recipient(nil), cfg.OpenWith...)
	env := &Envelope{ring: ring, cfg: cfg, openers: append(append([]Recipient(nil), cfg.Recipients...), cfg.OpenWith...)}
	if cfg.Cache != nil {
		c, err := newDataKeyCache(*cfg.Cache, ring.cfg.Clock)
		if err != nil {
			return nil, err
		}
		env.cache = c
	}
	return env, nil
}

// Envelope operations, as they appear in errors.
const (
	OpSeal Op = "Envelope.Seal"
	OpOpen Op = "Envelope.Open"
)

// reservedPrefix starts the context keys the SDK reserves.
const reservedPrefix = "aws-crypto-"

// Seal encrypts plaintext into one message bound to ec. The encryption
// context is stored in the header in the clear; it must not hold secrets
// or keys beginning with "aws-crypto-".
func (e *Envelope) Seal(ctx context.Context, plaintext []byte, ec EncryptionContext) ([]byte, error) {
	return e.AppendSeal(ctx, nil, plaintext, ec)
}

// AppendSeal is Seal appending the message to dst and returning the
// extended slice, so that a caller who reuses a buffer saves the
// allocation of the message: for a large message, a new buffer costs
// about as much to clear and fault in as the encryption itself (see
// BENCHMARKS.md). dst must not overlap plaintext.
func (e *Envelope) AppendSeal(ctx context.Context, dst, plaintext []byte, ec EncryptionContext) ([]byte, error) {
	out, err := e.seal(ctx, dst, plaintext, ec)
	if err != nil {
		return nil, envelopeErr(OpSeal, err)
	}
	return out, nil
}

func (e *Envelope) seal(ctx context.Context, dst, plaintext []byte, ec EncryptionContext) ([]byte, error) {
	var (
		in       esdk.SealInput
		cacheKey string
		cached   bool
		err      error
	)
	if e.cache != nil {
		if cacheKey, err = sealKey(ec); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
		in, cached = e.cache.takeSeal(cacheKey, len(plaintext))
	}
	if !cached {
		if in, err = e.prepare(ctx, ec); err != nil {
			return nil, err
		}
	}
	defer clear(in.DataKey)
	in.Plaintext = plaintext
	out, err := esdk.AppendSeal(dst, in)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInternal, err)
	}
	if e.cache != nil && !cached {
		e.cache.putSeal(cacheKey, in, len(plaintext))
	}
	return out, nil
}

// prepare makes the data key and the encrypted data keys of a message. The
// caller clears in.DataKey.
func (e *Envelope) prepare(ctx context.Context, ec EncryptionContext) (in esdk.SealInput, err error) {
	for k := range ec {
		if strings.HasPrefix(k, reservedPrefix) {
			return in, fmt.Errorf("%w: encryption context keys beginning with %s are reserved", ErrInvalidArgument, reservedPrefix)
		}
	}
	suite, _ := format.SuiteByID(e.cfg.Suite)
	in = esdk.SealInput{Suite: suite, Context: ec, FrameLen: uint32(e.cfg.FrameLength), Rand: e.ring.cfg.Rand}
	if suite.SignatureHash != 0 {
		signer, pub, err := esdk.NewSigner(e.ring.cfg.Rand)
		if err != nil {
			return in, fmt.Errorf("%w: making the signing key failed", ErrInternal)
		}
		in.Signer, in.Context = signer, esdk.WithPublicKey(ec, pub)
	}
	// The context is encoded once, for the header and every recipient; a
	// context that cannot be encoded is left to fail in the first one.
	if len(in.Context) > 0 {
		in.RawContext, _ = format.AppendContext(nil, in.Context)
	}
	// A KeyRing key as first recipient makes the data key (GenerateDataKey);
	// otherwise it comes from Config.Rand.
	var dataKey []byte
	if _, ok := e.cfg.Recipients[0].(kmsRecipient); !ok {
		dataKey = make([]byte, suite.KeyLen)
		if _, err := io.ReadFull(e.ring.cfg.Rand, dataKey); err != nil {
			return in, fmt.Errorf("%w: reading random data key failed", ErrInternal)
		}
	}
	in.EDKs = make([]format.EDK, 0, len(e.cfg.Recipients))
	for _, rc := range e.cfg.Recipients {
		edk, dk, err := rc.wrap(ctx, e.ring, suite.KeyLen, dataKey, in.Context, in.RawContext)
		if err != nil {
			clear(dataKey)
			return in, err
		}
		dataKey = dk
		in.EDKs = append(in.EDKs, edk)
	}
	in.DataKey = dataKey
	return in, nil
}

// NewWriter returns a writer that seals what is written to it into one
// message written to w, in constant memory whatever the size: the header
// at once, then frames in runs of about 512 KiB sealed on all cores while
// the next run fills (a few runs in flight, written to w in order), and
// the final frame and, for a signed suite, the signature when it is
// closed. Close must be called, or the message is incomplete; it does not
// close w. The writer implements io.ReaderFrom, so io.Copy reads straight
// into its buffers; when the writer reads the source itself that way and
// the source fails, Close fails too. Whatever the path, do not Close a
// writer after a failed copy: Close finishes the message with what it got.
func (e *Envelope) NewWriter(ctx context.Context, w io.Writer, ec EncryptionContext) (io.WriteCloser, error) {
	in, err := e.prepare(ctx, ec)
	if err != nil {
		return nil, envelopeErr(OpSeal, err)
	}
	defer clear(in.DataKey)
	sw, err := esdk.NewWriter(w, in)
	if err != nil {
		return nil, envelopeErr(OpSeal, err)
	}
	return sw, nil
}

// NewReader reads and authenticates a message's header from r and returns
// a reader of its plaintext, in constant memory whatever the size. The
// plaintext of each frame is released only after the frame authenticates;
// frames missing, repeated, reordered or cut short, and bytes after the
// message, are errors. io.EOF is returned only after the whole message,
// including the signature of a signed suite, has been verified.
//
// Frames are read ahead and opened on all cores; the reader implements
// io.WriterTo, so io.Copy writes straight from its buffers.
//
// Warning: a message can still turn out to be truncated or forged after
// some plaintext was released. Callers must not act on the data, or must
// be able to undo what they did, until Read has returned io.EOF. Use Open
// when the message fits in memory.
func (e *Envelope) NewReader(ctx context.Context, r io.Reader, ec EncryptionContext) (io.Reader, error) {
	sr, err := esdk.NewReader(r, e.unwrap(ctx), e.openOptions(ec))
	if err != nil {
		return nil, envelopeErr(OpOpen, err)
	}
	return envelopeReader{sr}, nil
}

type envelopeReader struct{ r *esdk.Reader }

func (er envelopeReader) Read(p []byte) (int, error) {
	n, err := er.r.Read(p)
	if err != nil && err != io.EOF {
		return n, envelopeErr(OpOpen, err)
	}
	return n, err
}

// WriteTo lets io.Copy take the plaintext straight from the reader's
// buffers.
func (er envelopeReader) WriteTo(w io.Writer) (int64, error) {
	n, err := er.r.WriteTo(w)
	if err != nil {
		return n, envelopeErr(OpOpen, err)
	}
	return n, nil
}

func (e *Envelope) openOptions(ec EncryptionContext) esdk.Options {
	return esdk.Options{AllowNonCommitting: e.cfg.AllowNonCommitting, MaxEDKs: e.cfg.MaxRecipients, Reproduced: ec}
}

// Open authenticates and decrypts a message with the first recipient that
// can unwrap its data key. Every pair of ec must be in the message: pairs
// stored in the header must have the same value, and pairs not stored (the
// SDK's required encryption context) must be the ones the message was
// authenticated with. Open never returns unauthenticated plaintext; any
// authentication failure is ErrInvalidCiphertext with no detail. The
// plaintext must be treated as sensitive.
func (e *Envelope) Open(ctx context.Context, msg []byte, ec EncryptionContext) ([]byte, error) {
	return e.AppendOpen(ctx, nil, msg, ec)
}

// AppendOpen is Open appending the plaintext to dst and returning the
// extended slice, so that a caller who reuses a buffer saves the
// allocation of the plaintext (for a large message, about the cost of the
// decryption). dst must not overlap msg. On error it
// returns nil, and no plaintext is left in dst's spare capacity.
func (e *Envelope) AppendOpen(ctx context.Context, dst, msg []byte, ec EncryptionContext) ([]byte, error) {
	pt, _, err := esdk.AppendOpen(dst, msg, e.unwrap(ctx), e.openOptions(ec))
	if err != nil {
		return nil, envelopeErr(OpOpen, err)
	}
	return pt, nil
}

// unwrap returns the unwrapper of Open: through the cache, if there is one.
func (e *Envelope) unwrap(ctx context.Context) esdk.Unwrapper {
	if e.cache != nil {
		return e.cachedUnwrapper(ctx)
	}
	return e.unwrapper(ctx)
}

// unwrapper tries every recipient on every encrypted data key.
func (e *Envelope) unwrapper(ctx context.Context) esdk.Unwrapper {
	return func(edks []format.EDK, ec esdk.Context) ([]byte, error) {
		var refused, failed error
		for _, edk := range edks {
			for _, rc := range e.openers {
				dk, err := rc.unwrap(ctx, e.ring, edk, ec)
				switch {
				case err == nil:
					return dk, nil
				case err == errNotMine:
				case errors.Is(err, ErrInvalidCiphertext):
					failed = err // ours, but it does not authenticate (e.g. another context)
				default:
					refused = err // ours, but refused: disabled, denied, ...
				}
			}
		}
		switch {
		case refused != nil:
			return nil, refused
		case failed != nil:
			return nil, esdk.ErrOpen
		}
		return nil, esdk.ErrNoKey
	}
}

// envelopeErr maps the engine's errors to the package's sentinels.
func envelopeErr(op Op, err error) error {
	var ke *Error
	if errors.As(err, &ke) {
		return &Error{Op: op, KeyID: ke.KeyID, Err: err}
	}
	switch {
	case errors.Is(err, esdk.ErrMalformed), errors.Is(err, esdk.ErrOpen), errors.Is(err, esdk.ErrContextMissing):
		err = fmt.Errorf("%w: %v", ErrInvalidCiphertext, err)
	case errors.Is(err, esdk.ErrNoKey):
		err = fmt.Errorf("%w: %v", ErrIncorrectKey, err)
	case errors.Is(err, esdk.ErrNonCommitting), errors.Is(err, esdk.ErrUnsupportedStream), errors.Is(err, esdk.ErrFrameTooLong):
		err = fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return &Error{Op: op, Err: err}
}

var errNotMine = errors.New("kms: encrypted data key is for another recipient")

// Recipient is a key that receives a wrapped copy of each envelope's data
// key. The set is closed: KeyRecipient; RawAESKeyRecipient and
// RawRSAKeyRecipient (raw keyrings whose wrapping key is a KeyRing key);
// RawAESRecipient and RawRSARecipient (raw keyrings whose wrapping key the
// caller holds).
type Recipient interface {
	// wrap returns the encrypted data key for dataKey and the data key;
	// only a KeyRing recipient is given a nil dataKey, and makes it. enc is
	// the canonical encoding of a non-empty ec, or nil.
	wrap(ctx context.Context, r *KeyRing, keyLen int, dataKey []byte, ec map[string]string, enc []byte) (format.EDK, []byte, error)
	// unwrap returns the data key of edk, or errNotMine.
	unwrap(ctx context.Context, r *KeyRing, edk format.EDK, ec esdk.Context) ([]byte, error)
}

// KeyRecipient is a SYMMETRIC_DEFAULT key of the KeyRing, written as the
// SDK's AWS KMS keyring writes it: provider ID "aws-kms", provider info the
// key ARN, and the KeyRing's ciphertext blob of the data key under the
// message's encryption context. keyID may be any name of the key; Open
// matches recipients by ARN.
func KeyRecipient(keyID string) Recipient { return kmsRecipient{keyID} }

type kmsRecipient struct{ keyID string }

func (k kmsRecipient) wrap(ctx context.Context, r *KeyRing, keyLen int, dataKey []byte, ec map[string]string, enc []byte) (format.EDK, []byte, error) {
	if dataKey == nil {
		return r.generateEnvelopeKey(ctx, k.keyID, keyLen, ec, enc)
	}
	out, err := r.Encrypt(ctx, EncryptInput{KeyID: k.keyID, Plaintext: dataKey, EncryptionContext: ec})
	if err != nil {
		return format.EDK{}, nil, err
	}
	return format.EDK{ProviderID: "aws-kms", ProviderInfo: []byte(out.KeyID), Ciphertext: out.CiphertextBlob}, dataKey, nil
}

// generateEnvelopeKey is GenerateDataKey for an Envelope's first
// recipient, returning the encrypted data key and the data key; enc is the
// canonical encoding of ec, or nil.
func (r *KeyRing) generateEnvelopeKey(ctx context.Context, keyID string, n int, ec EncryptionContext, enc []byte) (format.EDK, []byte, error) {
	c := r.begin(ctx, OpGenerateDataKey)
	ec = c.snapshot(ec)
	c.ev.EncryptionContext = ec
	d, err := r.newDataKey(ctx, &c, OpGenerateDataKey, GenerateDataKeyInput{KeyID: keyID, NumberOfBytes: n, EncryptionContext: ec}, enc)
	if err := c.end(err); err != nil {
		clear(d.plaintext)
		return format.EDK{}, nil, err
	}
	return format.EDK{ProviderID: "aws-kms", ProviderInfo: d.entry.providerInfo, Ciphertext: d.blob}, d.plaintext, nil
}

func (k kmsRecipient) unwrap(ctx context.Context, r *KeyRing, edk format.EDK, ec esdk.Context) ([]byte, error) {
	if edk.ProviderID != "aws-kms" {
		return nil, errNotMine
	}
	return r.unwrapDataKey(ctx, k.keyID, edk, ec)
}

// unwrapDataKey decrypts an "aws-kms" encrypted data key for the recipient
// key named keyID. Unless keyID names the key whose ARN the encrypted data
// key gives, it returns errNotMine: bookkeeping, with no Policy call and no
// event. Otherwise it is a Decrypt naming the key by its ARN, authorized
// and audited as such. The blob's associated data is the context's
// encoding from the header; its map is built only for a Policy or an
// Auditor.
func (r *KeyRing) unwrapDataKey(ctx context.Context, keyID string, edk format.EDK, ec esdk.Context) ([]byte, error) {
	e, err := r.resolve(ctx, &call{}, keyID)
	if err != nil || string(edk.ProviderInfo) != e.arn {
		return nil, errNotMine
	}
	c := r.begin(ctx, OpDecrypt)
	c.name = e.arn
	// Without an encoding (a context that cannot be encoded), the blob
	// must be opened with the map, which then fails as Decrypt would: never
	// with a nil map, which would stand for the empty context.
	var m EncryptionContext
	enc := ec.Encoding()
	if r.audited || !r.allowAll || enc == nil {
		m = c.snapshot(ec.Map())
	}
	c.ev.EncryptionContext = m
	dk, _, _, err := r.openBlob(ctx, &c, OpDecrypt, decryptArgs{blob: edk.Ciphertext, keyID: e.arn, ec: m, entry: e, enc: enc})
	if err := c.end(err); err != nil {
		clear(dk)
		return nil, err
	}
	return dk, nil
}

// RawAESRecipient is the SDK's raw AES keyring: a 128, 192 or 256-bit
// wrapping key held by the caller, named by a namespace and a name that
// are written in the header. Messages it seals open in the official SDKs
// given the same namespace, name and key, and theirs open here.
//
// Warning: the caller keeps the wrapping key; the KeyRing does not manage,
// rotate or audit it.
func RawAESRecipient(namespace, name string, key []byte) (Recipient, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, err
	}
	k, err := esdk.NewRawAES(namespace, name, append([]byte(nil), key...))
	if err != nil {
		return nil, fmt.Errorf("%w: the wrapping key must be 16, 24 or 32 bytes", ErrInvalidArgument)
	}
	return rawRecipient{k}, nil
}

// rawKeyring is the esdk raw keyring behind RawAESRecipient and
// RawRSARecipient.
type rawKeyring interface {
	Wrap(dataKey []byte, ec map[string]string, rand io.Reader) (format.EDK, error)
	Unwrap(edk format.EDK, ec map[string]string) ([]byte, error)
}

// rawRecipient is a raw keyring recipient whose wrapping key the caller holds.
type rawRecipient struct{ k rawKeyring }

func (a rawRecipient) wrap(_ context.Context, r *KeyRing, _ int, dataKey []byte, ec map[string]string, _ []byte) (format.EDK, []byte, error) {
	edk, err := a.k.Wrap(dataKey, ec, r.cfg.Rand)
	if err != nil {
		return format.EDK{}, nil, fmt.Errorf("%w: wrapping the data key failed", ErrInvalidArgument)
	}
	return edk, dataKey, nil
}

func (a rawRecipient) unwrap(_ context.Context, _ *KeyRing, edk format.EDK, ec esdk.Context) ([]byte, error) {
	dk, err := a.k.Unwrap(edk, ec.Map())
	if err != nil {
		if errors.Is(err, esdk.ErrOpen) {
			return nil, ErrInvalidCiphertext
		}
		return nil, errNotMine
	}
	return dk, nil
}

// RawRSARecipient is the SDK's raw RSA keyring with OAEP padding (hash
// SHA-1, SHA-256, SHA-384 or SHA-512, MGF1 over the same hash). key is an
// *rsa.PrivateKey, which seals and opens, or an *rsa.PublicKey, which only
// seals.
func RawRSARecipient(namespace, name string, key any, hash crypto.Hash) (Recipient, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, err
	}
	if err := checkOAEPHash(hash); err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return rawRecipient{esdk.NewRawRSA(namespace, name, k, hash)}, nil
	case *rsa.PublicKey:
		return rawRecipient{esdk.NewRawRSAPublic(namespace, name, k, hash)}, nil
	}
	return nil, fmt.Errorf("%w: key must be an *rsa.PrivateKey or *rsa.PublicKey", ErrInvalidArgument)
}

// Header is what ParseHeader reads from a message without any key.
type Header struct {
	// Version is the message format version, 1 or 2.
	Version uint8
	// Suite is the algorithm suite ID (0x0478, 0x0578, or a format-1 suite).
	Suite     uint16
	MessageID []byte
	// EncryptionContext is the context stored in the header, including the
	// verification key of a signed suite (aws-crypto-public-key).
	EncryptionContext EncryptionContext
	Recipients        []HeaderRecipient
	// FrameLength is 0 for a non-framed message.
	FrameLength int
	Signed      bool
	Committing  bool
	// Size is the length of the header, where the body starts.
	Size int
}

// HeaderRecipient is one encrypted data key of a message.
type HeaderRecipient struct {
	// ProviderID is "aws-kms" for a KMS key (a KeyRing key or an AWS KMS
	// key), or a raw keyring's namespace.
	ProviderID string
	// KeyARN is the key ARN of an "aws-kms" recipient, and KeyVersion the
	// version named by a KeyRing ciphertext blob (0 if the blob is not one).
	KeyARN     string
	KeyVersion uint32
	// ProviderInfo is the raw provider info (for raw keyrings, the key name
	// followed by wrapping parameters).
	ProviderInfo []byte
}

// ParseHeader reads a message's header with no key: suite, message ID,
// encryption context, recipients and frame length. Nothing in it is
// authenticated until the message is opened.
func ParseHeader(msg []byte) (*Header, error) {
	h, n, err := format.ParseMessageHeader(msg, format.HeaderLimits{})
	if err != nil {
		return nil, &Error{Op: "ParseHeader", Err: fmt.Errorf("%w: %v", ErrInvalidCiphertext, err)}
	}
	out := &Header{
		Version: h.Suite.Version, Suite: h.Suite.ID, MessageID: h.MessageID,
		EncryptionContext: EncryptionContext(h.ContextMap()), FrameLength: int(h.FrameLength),
		Signed: h.Suite.SignatureHash != 0, Committing: h.Suite.Committing, Size: n,
	}
	for _, edk := range h.EDKs {
		hr := HeaderRecipient{ProviderID: edk.ProviderID, ProviderInfo: edk.ProviderInfo}
		if edk.ProviderID == "aws-kms" {
			hr.KeyARN = string(edk.ProviderInfo)
			if bh, _, _, err := format.ParseBlob(edk.Ciphertext); err == nil {
				hr.KeyVersion = bh.KeyVersion
			}
		}
		out.Recipients = append(out.Recipients, hr)
	}
	return out, nil
}
