package kms_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// TestConcurrentUseWhileRotating runs 8 goroutines that encrypt and decrypt
// while others rotate one key and disable and enable another. Run it with
// -race. A key that is never disabled must decrypt every blob; the toggled
// key may refuse only with ErrDisabled; at the end every blob ever made
// decrypts.
func TestConcurrentUseWhileRotating(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	steady := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)  // rotated, never disabled
	toggled := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt) // rotated, disabled and enabled
	require.NoError(t, r.CreateAlias(ctx, "alias/steady", steady.KeyID))

	const workers, rounds = 8, 150
	type sealed struct {
		blob []byte
		ec   kms.EncryptionContext
		pt   string
	}
	var (
		mu       sync.Mutex
		all      []sealed
		stop     atomic.Bool
		disabled atomic.Int64
		wg       sync.WaitGroup
		admin    sync.WaitGroup
	)
	admin.Add(2)
	go func() { // rotate both keys
		defer admin.Done()
		for !stop.Load() {
			_, err := r.RotateKeyOnDemand(ctx, steady.KeyID)
			assert.NoError(t, err)
			if _, err := r.RotateKeyOnDemand(ctx, toggled.KeyID); err != nil {
				assert.ErrorIs(t, err, kms.ErrDisabled)
			}
		}
	}()
	go func() { // disable and enable the toggled key
		defer admin.Done()
		for !stop.Load() {
			assert.NoError(t, r.DisableKey(ctx, toggled.KeyID))
			disabled.Add(1)
			assert.NoError(t, r.EnableKey(ctx, toggled.KeyID))
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				ec := kms.EncryptionContext{"worker": fmt.Sprint(w), "round": fmt.Sprint(i)}
				pt := fmt.Sprintf("message %d/%d", w, i)

				out, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/steady", Plaintext: []byte(pt), EncryptionContext: ec})
				if !assert.NoError(t, err) {
					return
				}
				dec, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
				if assert.NoError(t, err) {
					assert.Equal(t, pt, string(dec.Plaintext))
				}
				mu.Lock()
				all = append(all, sealed{out.CiphertextBlob, ec, pt})
				mu.Unlock()

				out, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: toggled.KeyID, Plaintext: []byte(pt), EncryptionContext: ec})
				if err != nil {
					assert.ErrorIs(t, err, kms.ErrDisabled)
					continue
				}
				dec, err = r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, KeyID: toggled.Arn, EncryptionContext: ec})
				if err != nil {
					assert.ErrorIs(t, err, kms.ErrDisabled)
				} else {
					assert.Equal(t, pt, string(dec.Plaintext))
				}
				mu.Lock()
				all = append(all, sealed{out.CiphertextBlob, ec, pt})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	admin.Wait()
	require.NoError(t, r.EnableKey(ctx, toggled.KeyID))

	m, err := r.DescribeKey(ctx, steady.KeyID)
	require.NoError(t, err)
	require.Greater(t, m.PrimaryVersion, uint32(1), "no rotation happened during the test")
	require.Positive(t, disabled.Load(), "the key was never disabled during the test")
	require.GreaterOrEqual(t, len(all), workers*rounds)
	for _, s := range all {
		dec, err := r.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: s.blob, EncryptionContext: s.ec})
		require.NoError(t, err)
		require.Equal(t, s.pt, string(dec.Plaintext))
	}
}
