package kms_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// Appending many messages to one growing buffer must reallocate it a
// logarithmic number of times, as append does: esdk.grow's exact-size make
// reallocates (and copies all earlier plaintext, leaving the old copy
// uncleared) on every call.
func TestEnvelopeAppendAmortizedGrowth(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	env := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}})
	msg, err := env.Seal(ctx, bytes.Repeat([]byte("p"), 1024), nil)
	require.NoError(t, err)
	var pt, ct []byte
	openGrew, sealGrew := 0, 0
	for range 200 {
		c := cap(pt)
		pt, err = env.AppendOpen(ctx, pt, msg, nil)
		require.NoError(t, err)
		if cap(pt) != c {
			openGrew++
		}
		c = cap(ct)
		ct, err = env.AppendSeal(ctx, ct, []byte("x"), nil)
		require.NoError(t, err)
		if cap(ct) != c {
			sealGrew++
		}
	}
	assert.Less(t, openGrew, 40, "AppendOpen reallocated dst on %d of 200 appends", openGrew)
	assert.Less(t, sealGrew, 40, "AppendSeal reallocated dst on %d of 200 appends", sealGrew)
}

// TestEnvelopeOpenEmpty: an empty plaintext opens to an empty, non-nil
// slice, since AppendOpen and Open return nil only with an error.
func TestEnvelopeOpenEmpty(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	env := newEnvelope(t, r, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)}})
	msg, err := env.Seal(ctx, nil, nil)
	require.NoError(t, err)
	pt, err := env.Open(ctx, msg, nil)
	require.NoError(t, err)
	assert.NotNil(t, pt)
	assert.Empty(t, pt)
	pt, err = env.AppendOpen(ctx, nil, msg, nil)
	require.NoError(t, err)
	assert.NotNil(t, pt)
	assert.Empty(t, pt)
}

// TestEnvelopeCacheCallerChangesMap: with the data-key cache, what the
// caller does to its context map after Seal must not reach later messages
// that share the data key: each opens under the context it was sealed
// with.
func TestEnvelopeCacheCallerChangesMap(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	for _, change := range []struct {
		name string
		do   func(kms.EncryptionContext)
	}{
		{"emptied", func(m kms.EncryptionContext) { delete(m, "a") }},
		{"another value", func(m kms.EncryptionContext) { m["a"] = "2" }},
		{"another pair", func(m kms.EncryptionContext) { m["b"] = "3" }},
	} {
		t.Run(change.name, func(t *testing.T) {
			env := newEnvelope(t, r, kms.EnvelopeConfig{
				Recipients: []kms.Recipient{kms.KeyRecipient(k.KeyID)},
				Cache:      &kms.CacheConfig{MaxAge: time.Minute},
			})
			m1 := kms.EncryptionContext{"a": "1"}
			first, err := env.Seal(ctx, []byte("one"), m1)
			require.NoError(t, err)
			change.do(m1)
			r.Events.Reset()
			second, err := env.Seal(ctx, []byte("two"), kms.EncryptionContext{"a": "1"})
			require.NoError(t, err)
			require.Empty(t, r.Events.ByOp(kms.OpGenerateDataKey), "the second Seal was to hit the cache")
			for _, msg := range [][]byte{first, second} {
				h, err := kms.ParseHeader(msg)
				require.NoError(t, err)
				assert.Equal(t, kms.EncryptionContext{"a": "1"}, h.EncryptionContext)
				_, err = env.Open(ctx, msg, kms.EncryptionContext{"a": "1"})
				require.NoError(t, err)
			}
		})
	}
}
