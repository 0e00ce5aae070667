package kms

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tink-crypto/tink-go/v2/tink"
	"golang.org/x/crypto/argon2"
)

// SettingsStore keeps the few ring-wide settings a Store holds beside the
// keys: the passphrase root key's argon2id parameters and the root key
// check. The MemoryStore and the SQL stores implement it.
type SettingsStore interface {
	// GetSetting returns a setting's value, or an error wrapping
	// ErrNotFound.
	GetSetting(ctx context.Context, name string) (string, error)
	// PutSetting creates a setting (old "", failing with ErrAlreadyExists
	// if it exists) or replaces it if its value is still old (else
	// ErrConflict).
	PutSetting(ctx context.Context, name, value, old string) error
}

// ErrWrongRootKey: the root key (or passphrase) is not the one the Store's
// keys were wrapped under.
var ErrWrongRootKey = errors.New("kms: the root key is not the one this store was created with (wrong passphrase or key file?)")

// RootKeyFromFile reads a 256-bit root key from a file holding 32 raw
// bytes, or their hex or base64 encoding (a final newline is ignored). The
// file must not be readable or writable by group or others.
func RootKeyFromFile(path string) (RootKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: root key file: %w", ErrInvalidArgument, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: root key file %s is accessible to group or others (chmod 600 it)", ErrInvalidArgument, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: root key file: %w", ErrInvalidArgument, err)
	}
	defer clear(b)
	if len(b) == 32 && !printableASCII(b) {
		// 32 raw bytes. (32 printable characters are text: hex of 16 bytes,
		// say, which is too short, rather than a key that happens to be
		// printable, which random bytes almost never are.)
		return NewAESRootKey(b, nil)
	}
	return rootKeyFromText(string(b), "root key file "+path)
}

// RootKeyFromEnv reads a 256-bit root key, hex or base64, from an
// environment variable.
func RootKeyFromEnv(name string) (RootKey, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("%w: environment variable %s is not set", ErrInvalidArgument, name)
	}
	return rootKeyFromText(v, "environment variable "+name)
}

// rootKeyFromText decodes 32 bytes from hex or base64 text.
func rootKeyFromText(s, where string) (RootKey, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if k, err := dec(s); err == nil && len(k) == 32 {
			defer clear(k)
			return NewAESRootKey(k, nil)
		}
	}
	return nil, fmt.Errorf("%w: %s does not hold 32 bytes (raw, hex or base64)", ErrInvalidArgument, where)
}

// PassphraseParams are argon2id's parameters for a passphrase root key.
// They are stored with the data (SettingsStore), so that the same
// passphrase derives the same key later.
type PassphraseParams struct {
	Time      uint32 `json:"t"`
	MemoryKiB uint32 `json:"m"`
	Threads   uint8  `json:"p"`
	Salt      []byte `json:"salt"`
}

// DefaultPassphraseParams are RFC 9106's second recommended option for
// argon2id: 3 passes over 64 MiB with 4 lanes (the salt is made per store).
var DefaultPassphraseParams = PassphraseParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Limits on stored argon2id parameters, so that a tampered store cannot
// make opening it take forever or exhaust memory.
const (
	maxPassphraseTime      = 64
	maxPassphraseMemoryKiB = 4 << 20 // 4 GiB
)

const passphraseSetting = "root.passphrase.argon2id"

// NewPassphraseRootKey derives the root key from a passphrase with
// argon2id. The first time, for a store that has no parameters yet, it
// makes a random salt, stores params (nil means DefaultPassphraseParams)
// and a root key check; afterwards it reads the stored parameters (params
// is then ignored) and fails with ErrWrongRootKey for another passphrase.
func NewPassphraseRootKey(ctx context.Context, passphrase []byte, s SettingsStore, params *PassphraseParams) (RootKey, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("%w: empty passphrase", ErrInvalidArgument)
	}
	stored, err := s.GetSetting(ctx, passphraseSetting)
	var p PassphraseParams
	fresh := false
	switch {
	case err == nil:
		if json.Unmarshal([]byte(stored), &p) != nil {
			return nil, fmt.Errorf("%w: the stored passphrase parameters do not parse", ErrInternal)
		}
	case errors.Is(err, ErrNotFound):
		if params == nil {
			params = &DefaultPassphraseParams
		}
		p, fresh = *params, true
		p.Salt = make([]byte, 16)
		if _, err := io.ReadFull(cryptoRand{}, p.Salt); err != nil {
			return nil, fmt.Errorf("%w: reading a random salt failed", ErrInternal)
		}
	default:
		return nil, fmt.Errorf("%w: reading the passphrase parameters: %w", ErrInternal, err)
	}
	if p.Time == 0 || p.Time > maxPassphraseTime || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxPassphraseMemoryKiB ||
		p.Threads == 0 || len(p.Salt) < 16 || len(p.Salt) > 64 {
		return nil, fmt.Errorf("%w: argon2id parameters out of range", ErrInvalidArgument)
	}
	k := argon2.IDKey(passphrase, p.Salt, p.Time, p.MemoryKiB, p.Threads, 32)
	defer clear(k)
	rk, err := NewAESRootKey(k, nil)
	if err != nil {
		return nil, err
	}
	if fresh {
		doc, _ := json.Marshal(p)
		if err := s.PutSetting(ctx, passphraseSetting, string(doc), ""); err != nil {
			if errors.Is(err, ErrAlreadyExists) {
				// Another process initialized the store meanwhile: use its
				// parameters.
				return NewPassphraseRootKey(ctx, passphrase, s, nil)
			}
			return nil, fmt.Errorf("%w: storing the passphrase parameters: %w", ErrInternal, err)
		}
	}
	if err := CheckRootKey(ctx, s, rk); err != nil {
		return nil, err
	}
	return rk, nil
}

const rootCheckSetting = "root.check"

// rootCheckAD and rootCheckText make the root key check: a fixed text
// wrapped by the root key. Unwrapping it proves the key is the store's.
var (
	rootCheckAD   = []byte("pocketkms/v1/root-check")
	rootCheckText = []byte("pocketkms root key check v1")
)

// CheckRootKey verifies that rk is the store's root key, by unwrapping the
// check value stored beside the keys, and fails with ErrWrongRootKey if it
// is not. A store without a check value gets one, wrapped by rk. Use it
// when opening a store with a key from a file, an environment variable or
// a remote KMS; NewPassphraseRootKey calls it.
func CheckRootKey(ctx context.Context, s SettingsStore, rk RootKey) error {
	stored, err := s.GetSetting(ctx, rootCheckSetting)
	if errors.Is(err, ErrNotFound) {
		w, err := rk.Wrap(ctx, rootCheckText, rootCheckAD)
		if err != nil {
			return fmt.Errorf("%w: root key could not wrap its check value: %w", ErrInternal, err)
		}
		err = s.PutSetting(ctx, rootCheckSetting, base64.StdEncoding.EncodeToString(w), "")
		if errors.Is(err, ErrAlreadyExists) {
			return CheckRootKey(ctx, s, rk)
		}
		if err != nil {
			return fmt.Errorf("%w: storing the root key check: %w", ErrInternal, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: reading the root key check: %w", ErrInternal, err)
	}
	w, err := base64.StdEncoding.DecodeString(stored)
	if err != nil {
		return fmt.Errorf("%w: the stored root key check does not parse", ErrInternal)
	}
	got, err := rk.Unwrap(ctx, w, rootCheckAD)
	if err != nil || !bytes.Equal(got, rootCheckText) {
		return ErrWrongRootKey
	}
	return nil
}

// tinkRootKey wraps with a Tink AEAD.
type tinkRootKey struct{ a tink.AEAD }

// NewTinkRootKey returns a RootKey that wraps with a Tink AEAD: a local
// keyset, or a KMS-held key through Tink's KMS clients (AWS KMS, GCP KMS,
// HashiCorp Vault), so that the root key never leaves that KMS.
func NewTinkRootKey(a tink.AEAD) RootKey { return tinkRootKey{a} }

func (k tinkRootKey) Wrap(_ context.Context, plaintext, ad []byte) ([]byte, error) {
	return k.a.Encrypt(plaintext, ad)
}

func (k tinkRootKey) Unwrap(_ context.Context, wrapped, ad []byte) ([]byte, error) {
	pt, err := k.a.Decrypt(wrapped, ad)
	if err != nil {
		return nil, errUnwrap
	}
	return pt, nil
}

// Format prints the kind of root key, never a key.
func (k tinkRootKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, "kms.RootKey(Tink AEAD)") }

// RootKeys is the RootKey of a root key rotation: it wraps with Current
// and unwraps with Current or, failing that, each of Previous in turn. Run
// the rings with it while RewrapRootKey moves the store to Current; then
// drop Previous.
type RootKeys struct {
	Current  RootKey
	Previous []RootKey
}

// Wrap wraps with Current.
func (k RootKeys) Wrap(ctx context.Context, plaintext, ad []byte) ([]byte, error) {
	return k.Current.Wrap(ctx, plaintext, ad)
}

// Unwrap tries Current, then each of Previous.
func (k RootKeys) Unwrap(ctx context.Context, wrapped, ad []byte) ([]byte, error) {
	pt, err := k.Current.Unwrap(ctx, wrapped, ad)
	if err == nil {
		return pt, nil
	}
	for _, p := range k.Previous {
		if pt, perr := p.Unwrap(ctx, wrapped, ad); perr == nil {
			return pt, nil
		}
	}
	return nil, err
}

// RewrapReport says what RewrapRootKey did.
type RewrapReport struct {
	Keys        int // key records rewritten
	Versions    int // versions' material re-wrapped
	AuditChains int // audit chain keys re-wrapped
}

// RewrapRootKey re-wraps everything the store holds under keys.Current:
// every key version's material, pending import keys, the audit chains'
// keys and the root key check. It works online: rings running with keys
// (as their RootKey) keep serving, and every update is a compare-and-swap,
// so a record changed meanwhile is read and re-wrapped again. Running it
// again is harmless. The store must implement SettingsStore and
// AuditStore, as the MemoryStore and the SQL stores do.
func RewrapRootKey(ctx context.Context, s Store, keys RootKeys) (*RewrapReport, error) {
	as, ok1 := s.(AuditStore)
	ss, ok2 := s.(SettingsStore)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: the store keeps no settings or audit chains", ErrInvalidArgument)
	}
	rep := &RewrapReport{}
	for after := ""; ; {
		ids, err := s.ListKeys(ctx, after, 100)
		if err != nil {
			return rep, storeErr(err)
		}
		for _, id := range ids {
			n, err := rewrapKey(ctx, s, keys, id)
			if err != nil {
				return rep, err
			}
			if n > 0 {
				rep.Keys++
				rep.Versions += n
			}
		}
		if len(ids) < 100 {
			break
		}
		after = ids[len(ids)-1]
	}
	chains, err := as.ListAuditChains(ctx)
	if err != nil {
		return rep, storeErr(err)
	}
	for _, name := range chains {
		for {
			st, err := as.GetAuditState(ctx, name)
			if err != nil {
				return rep, storeErr(err)
			}
			raw, err := keys.Unwrap(ctx, st.WrappedKey, chainKeyAD(name))
			if err != nil {
				return rep, fmt.Errorf("%w: audit chain %q: no root key unwraps its key", ErrWrongRootKey, name)
			}
			w, err := keys.Current.Wrap(ctx, raw, chainKeyAD(name))
			clear(raw)
			if err != nil {
				return rep, fmt.Errorf("%w: root key could not wrap: %w", ErrInternal, err)
			}
			st.WrappedKey = w
			err = as.PutAuditState(ctx, st)
			if errors.Is(err, ErrConflict) {
				continue // the chain moved on: read it again
			}
			if err != nil {
				return rep, storeErr(err)
			}
			rep.AuditChains++
			break
		}
	}
	for {
		old, err := ss.GetSetting(ctx, rootCheckSetting)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return rep, storeErr(err)
		}
		w, err := keys.Current.Wrap(ctx, rootCheckText, rootCheckAD)
		if err != nil {
			return rep, fmt.Errorf("%w: root key could not wrap: %w", ErrInternal, err)
		}
		err = ss.PutSetting(ctx, rootCheckSetting, base64.StdEncoding.EncodeToString(w), old)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return rep, storeErr(err)
		}
		break
	}
	return rep, nil
}

// rewrapKey re-wraps one key record, retrying on conflicts, and returns
// the number of versions re-wrapped.
func rewrapKey(ctx context.Context, s Store, keys RootKeys, id string) (int, error) {
	for attempt := 0; ; attempt++ {
		rec, err := s.GetKey(ctx, id)
		if err != nil {
			return 0, storeErr(err)
		}
		n := 0
		rewrap := func(w []byte, ad []byte) ([]byte, error) {
			raw, err := keys.Unwrap(ctx, w, ad)
			if err != nil {
				return nil, fmt.Errorf("%w: key %s: no root key unwraps its material", ErrWrongRootKey, id)
			}
			defer clear(raw)
			out, err := keys.Current.Wrap(ctx, raw, ad)
			if err != nil {
				return nil, fmt.Errorf("%w: root key could not wrap: %w", ErrInternal, err)
			}
			return out, nil
		}
		for i := range rec.Versions {
			v := &rec.Versions[i]
			if len(v.Wrapped) == 0 {
				continue
			}
			if v.Wrapped, err = rewrap(v.Wrapped, versionAD(id, v.Version)); err != nil {
				return 0, err
			}
			n++
		}
		if rec.Import != nil && len(rec.Import.Wrapped) > 0 {
			if rec.Import.Wrapped, err = rewrap(rec.Import.Wrapped, importAD(id, rec.Import.TokenID)); err != nil {
				return 0, err
			}
			n++
		}
		if n == 0 {
			return 0, nil
		}
		err = s.PutKey(ctx, rec)
		if errors.Is(err, ErrConflict) && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return 0, storeErr(err)
		}
		return n, nil
	}
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
