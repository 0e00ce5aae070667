package kms_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// sameRootKey reports whether b unwraps what a wraps.
func sameRootKey(t *testing.T, a, b kms.RootKey) bool {
	t.Helper()
	w, err := a.Wrap(t.Context(), []byte("probe"), []byte("ad"))
	require.NoError(t, err)
	got, err := b.Unwrap(t.Context(), w, []byte("ad"))
	return err == nil && string(got) == "probe"
}

func TestRootKeyFromFile(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0xab}, 32)
	ref, err := kms.NewAESRootKey(key, nil)
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name string, data []byte, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, perm))
		require.NoError(t, os.Chmod(p, perm))
		return p
	}
	for name, data := range map[string][]byte{
		"raw":    key,
		"hex":    []byte(hex.EncodeToString(key) + "\n"),
		"base64": []byte(base64.StdEncoding.EncodeToString(key) + "\n"),
	} {
		rk, err := kms.RootKeyFromFile(write(name, data, 0o600))
		require.NoError(t, err, name)
		assert.True(t, sameRootKey(t, ref, rk), name)
	}
	for name, c := range map[string]struct {
		data []byte
		perm os.FileMode
	}{
		"readable by others": {key, 0o644},
		"too short":          {key[:31], 0o600},
		"not a key":          {[]byte("hello\n"), 0o600},
		"hex of 16 bytes":    {[]byte(hex.EncodeToString(key[:16])), 0o600},
	} {
		_, err := kms.RootKeyFromFile(write(name, c.data, c.perm))
		require.ErrorIs(t, err, kms.ErrInvalidArgument, name)
		assert.NotContains(t, err.Error(), hex.EncodeToString(key), name)
	}
	_, err = kms.RootKeyFromFile(filepath.Join(dir, "absent"))
	require.ErrorIs(t, err, kms.ErrInvalidArgument)
}

func TestRootKeyFromEnv(t *testing.T) {
	key := bytes.Repeat([]byte{0x5c}, 32)
	ref, err := kms.NewAESRootKey(key, nil)
	require.NoError(t, err)
	t.Setenv("POCKETKMS_TEST_ROOT", base64.RawURLEncoding.EncodeToString(key))
	rk, err := kms.RootKeyFromEnv("POCKETKMS_TEST_ROOT")
	require.NoError(t, err)
	assert.True(t, sameRootKey(t, ref, rk))
	t.Setenv("POCKETKMS_TEST_ROOT", "short")
	_, err = kms.RootKeyFromEnv("POCKETKMS_TEST_ROOT")
	require.ErrorIs(t, err, kms.ErrInvalidArgument)
	assert.NotContains(t, err.Error(), "short", "the variable's value is not repeated")
	_, err = kms.RootKeyFromEnv("POCKETKMS_TEST_UNSET_VARIABLE")
	require.ErrorIs(t, err, kms.ErrInvalidArgument)
}

// cheapParams keep argon2id fast in tests.
var cheapParams = &kms.PassphraseParams{Time: 1, MemoryKiB: 1024, Threads: 1}

func TestPassphraseRootKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := kms.NewMemoryStore()
	rk1, err := kms.NewPassphraseRootKey(ctx, []byte("correct horse"), store, cheapParams)
	require.NoError(t, err)
	// Reopening reads the stored parameters (the ones given are ignored).
	rk2, err := kms.NewPassphraseRootKey(ctx, []byte("correct horse"), store, &kms.PassphraseParams{Time: 9, MemoryKiB: 9999, Threads: 2})
	require.NoError(t, err)
	assert.True(t, sameRootKey(t, rk1, rk2), "the same passphrase derives the same key")
	stored, err := store.GetSetting(ctx, "root.passphrase.argon2id")
	require.NoError(t, err)
	assert.Contains(t, stored, `"t":1,"m":1024,"p":1`)
	assert.NotContains(t, stored, "correct horse")

	_, err = kms.NewPassphraseRootKey(ctx, []byte("wrong horse"), store, nil)
	require.ErrorIs(t, err, kms.ErrWrongRootKey)
	_, err = kms.NewPassphraseRootKey(ctx, nil, store, nil)
	require.ErrorIs(t, err, kms.ErrInvalidArgument)

	// Another store gets another salt: the same passphrase, another key.
	other := kms.NewMemoryStore()
	rk3, err := kms.NewPassphraseRootKey(ctx, []byte("correct horse"), other, cheapParams)
	require.NoError(t, err)
	assert.False(t, sameRootKey(t, rk1, rk3))

	// Parameters out of range are refused, given or stored.
	_, err = kms.NewPassphraseRootKey(ctx, []byte("p"), kms.NewMemoryStore(), &kms.PassphraseParams{Time: 0, MemoryKiB: 1024, Threads: 1})
	require.ErrorIs(t, err, kms.ErrInvalidArgument)
	tampered := kms.NewMemoryStore()
	require.NoError(t, tampered.PutSetting(ctx, "root.passphrase.argon2id", `{"t":1,"m":4294967295,"p":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="}`, ""))
	_, err = kms.NewPassphraseRootKey(ctx, []byte("p"), tampered, nil)
	require.ErrorIs(t, err, kms.ErrInvalidArgument, "a stored memory cost of 4 TiB is refused, not attempted")

	// A ring on the passphrase key works, and a ring on the wrong one
	// cannot even be made.
	r := kmstest.New(t, kms.Config{Store: store, RootKey: rk1})
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	r2 := kmstest.New(t, kms.Config{Store: store, RootKey: rk2})
	_, err = r2.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
	require.NoError(t, err)
}

func TestCheckRootKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := kms.NewMemoryStore()
	a, err := kms.NewAESRootKey(bytes.Repeat([]byte{1}, 32), nil)
	require.NoError(t, err)
	b, err := kms.NewAESRootKey(bytes.Repeat([]byte{2}, 32), nil)
	require.NoError(t, err)
	require.NoError(t, kms.CheckRootKey(ctx, store, a), "the first check stores the check value")
	require.NoError(t, kms.CheckRootKey(ctx, store, a))
	require.ErrorIs(t, kms.CheckRootKey(ctx, store, b), kms.ErrWrongRootKey)
}

func TestTinkRootKey(t *testing.T) {
	t.Parallel()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	require.NoError(t, err)
	a, err := aead.New(h)
	require.NoError(t, err)
	rk := kms.NewTinkRootKey(a)
	w, err := rk.Wrap(t.Context(), []byte("material"), []byte("ad"))
	require.NoError(t, err)
	_, err = rk.Unwrap(t.Context(), w, []byte("other ad"))
	require.Error(t, err, "the associated data binds")
	assert.Equal(t, "kms.RootKey(Tink AEAD)", fmt.Sprint(rk))

	store := kms.NewMemoryStore()
	r := kmstest.New(t, kms.Config{Store: store, RootKey: rk})
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	enc, err := r.Encrypt(t.Context(), kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x")})
	require.NoError(t, err)
	r2 := kmstest.New(t, kms.Config{Store: store, RootKey: rk})
	dec, err := r2.Decrypt(t.Context(), kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	assert.Equal(t, "x", string(dec.Plaintext))
}

// TestRewrapRootKeyOnline moves a store from one root key to another while
// a ring keeps encrypting and decrypting, then checks that the new key
// alone opens everything and the old one nothing.
func TestRewrapRootKeyOnline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := kms.NewMemoryStore()
	oldKey, err := kms.NewAESRootKey(bytes.Repeat([]byte{1}, 32), nil)
	require.NoError(t, err)
	newKey, err := kms.NewAESRootKey(bytes.Repeat([]byte{2}, 32), nil)
	require.NoError(t, err)
	require.NoError(t, kms.CheckRootKey(ctx, store, oldKey))

	before := kmstest.New(t, kms.Config{Store: store, RootKey: oldKey})
	var ids []string
	var blobs [][]byte
	for range 5 {
		k := before.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
		_, err := before.RotateKeyOnDemand(ctx, k.KeyID)
		require.NoError(t, err)
		enc, err := before.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte(k.KeyID)})
		require.NoError(t, err)
		ids, blobs = append(ids, k.KeyID), append(blobs, enc.CiphertextBlob)
	}
	sig := before.CreateKey(kms.ECCNISTP256, kms.SignVerify)
	pending, err := before.KeyRing.CreateKey(ctx, kms.CreateKeyInput{Origin: kms.OriginExternal})
	require.NoError(t, err)
	_, err = before.GetParametersForImport(ctx, kms.GetParametersForImportInput{KeyID: pending.KeyID, WrappingAlgorithm: kms.WrapRSAESOAEPSHA256, WrappingKeySpec: kms.WrappingRSA2048})
	require.NoError(t, err)
	var logBuf bytes.Buffer
	chain := kms.ChainConfig{Store: store, RootKey: oldKey}
	audit, err := kms.OpenChainedLog(ctx, &logBuf, chain)
	require.NoError(t, err)
	require.NoError(t, audit.Audit(ctx, kms.Event{Op: kms.OpListKeys, Outcome: kms.OutcomeAllowed}))

	// The rotation: rings run with both keys while the store is rewrapped.
	both := kms.RootKeys{Current: newKey, Previous: []kms.RootKey{oldKey}}
	during := kmstest.New(t, kms.Config{Store: store, RootKey: both, CacheTTL: -1})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var served atomic.Int64
	for w := range 2 {
		wg.Go(func() {
			for i := w; !stop.Load(); i++ {
				id := ids[i%len(ids)]
				if _, err := during.Encrypt(ctx, kms.EncryptInput{KeyID: id, Plaintext: []byte("x")}); !assert.NoError(t, err) {
					return
				}
				dec, err := during.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blobs[i%len(blobs)]})
				if !assert.NoError(t, err) || !assert.Equal(t, ids[i%len(ids)], string(dec.Plaintext)) {
					return
				}
				served.Add(1)
			}
		})
	}
	// The ring is serving before the rewrap starts, and goes on after it
	// ends, on the rewrapped records.
	waitServed := func(n int64) {
		deadline := time.Now().Add(20 * time.Second)
		for served.Load() < n && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		if served.Load() < n {
			stop.Store(true)
			wg.Wait()
			t.Fatal("the ring stopped serving")
		}
	}
	waitServed(1)
	rep, err := kms.RewrapRootKey(ctx, store, both)
	waitServed(served.Load() + 10)
	stop.Store(true)
	wg.Wait()
	require.NoError(t, err)
	assert.Equal(t, 7, rep.Keys, "5 symmetric keys, 1 signing key, 1 pending import")
	assert.Equal(t, 5*2+1+1, rep.Versions, "two versions each, one, and the import key")
	assert.Equal(t, 1, rep.AuditChains)

	// Only the new key now: everything opens.
	after := kmstest.New(t, kms.Config{Store: store, RootKey: newKey})
	for i, id := range ids {
		dec, err := after.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blobs[i]})
		require.NoError(t, err)
		assert.Equal(t, id, string(dec.Plaintext))
	}
	_, err = after.Sign(ctx, kms.SignInput{KeyID: sig.KeyID, Message: []byte("m"), SigningAlgorithm: kms.ECDSASHA256})
	require.NoError(t, err)
	require.NoError(t, kmstest.ImportMaterial(ctx, after.KeyRing, pending.KeyID, bytes.Repeat([]byte{7}, 32)))
	require.NoError(t, kms.CheckRootKey(ctx, store, newKey))
	require.ErrorIs(t, kms.CheckRootKey(ctx, store, oldKey), kms.ErrWrongRootKey)
	_, err = kms.VerifyChainedLog(ctx, bytes.NewReader(logBuf.Bytes()), kms.ChainConfig{Store: store, RootKey: newKey})
	require.NoError(t, err, "the audit chain's key moved too")

	// And the old key opens nothing any more.
	stale := kmstest.New(t, kms.Config{Store: store, RootKey: oldKey})
	_, err = stale.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blobs[0]})
	require.ErrorIs(t, err, kms.ErrInternal)

	// A second run finds everything under the new key already.
	_, err = kms.RewrapRootKey(ctx, store, kms.RootKeys{Current: newKey})
	require.NoError(t, err)
}
