package kms_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// TestRewrap: a message sealed under version 1 of a key, rewrapped after
// rotation, names version 2 and opens once version 1 is retired, in the
// one-shot, streaming and bulk forms, for both suites. Rewrapping
// re-encrypts (a new message ID, so new body bytes): see docs/FORMAT.md
// §4.6 for why the header is never rewritten alone.
func TestRewrap(t *testing.T) {
	ctx := context.Background()
	for _, suite := range []uint16{kms.SuiteCommitted, kms.SuiteCommittedSigned} {
		t.Run(fmt.Sprintf("%04x", suite), func(t *testing.T) {
			r := kmstest.New(t)
			key := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
			env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(key)}, Suite: suite, FrameLength: 1024})
			require.NoError(t, err)
			ec := kms.EncryptionContext{"tenant": "7"}
			pt := bytes.Repeat([]byte("rewrap me "), 500)
			msg, err := env.Seal(ctx, pt, ec)
			require.NoError(t, err)
			_, err = r.RotateKeyOnDemand(ctx, key)
			require.NoError(t, err)

			one, err := env.Rewrap(ctx, msg, ec)
			require.NoError(t, err)
			var streamed bytes.Buffer
			require.NoError(t, env.RewrapStream(ctx, &streamed, bytes.NewReader(msg), ec))
			var progress []int
			all := env.RewrapAll(ctx, kms.RewrapAllInput{
				Messages:          [][]byte{msg, []byte("not a message"), msg},
				EncryptionContext: ec,
				Progress:          func(done, total int) { progress = append(progress, done); assert.Equal(t, 3, total) },
			})
			assert.Equal(t, []int{1, 2, 3}, progress)
			require.Len(t, all.Failed, 1, "one bad message fails, the others go on")
			assert.Equal(t, 1, all.Failed[0].Index)
			require.ErrorIs(t, all.Failed[0].Err, kms.ErrInvalidCiphertext)
			assert.Nil(t, all.Messages[1])

			require.NoError(t, r.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: key, MinDecryptionVersion: 2}))
			_, err = env.Open(ctx, msg, ec)
			require.ErrorIs(t, err, kms.ErrKeyVersionRetired)
			for name, m := range map[string][]byte{"one-shot": one, "stream": streamed.Bytes(), "bulk 0": all.Messages[0], "bulk 2": all.Messages[2]} {
				h, err := kms.ParseHeader(m)
				require.NoError(t, err, name)
				assert.Equal(t, suite, h.Suite, name)
				require.Len(t, h.Recipients, 1)
				assert.Equal(t, uint32(2), h.Recipients[0].KeyVersion, "%s: wrapped under the new primary", name)
				assert.Equal(t, "7", h.EncryptionContext["tenant"], name)
				got, err := env.Open(ctx, m, ec)
				require.NoError(t, err, name)
				require.True(t, bytes.Equal(pt, got), name)
				old, _ := kms.ParseHeader(msg)
				assert.NotEqual(t, old.MessageID, h.MessageID, "%s: re-encrypted under a new message ID", name)
			}
		})
	}
}

// TestRewrapRefuses: a tampered or truncated message, a wrong context and
// a context pair the header does not store are refused with typed errors;
// a truncated stream leaves an output that opens nowhere.
func TestRewrapRefuses(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	key := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(key)}, FrameLength: 64})
	require.NoError(t, err)
	msg, err := env.Seal(ctx, bytes.Repeat([]byte{1}, 1000), kms.EncryptionContext{"a": "b"})
	require.NoError(t, err)

	bad := bytes.Clone(msg)
	bad[len(bad)-20] ^= 1
	_, err = env.Rewrap(ctx, bad, nil)
	require.ErrorIs(t, err, kms.ErrInvalidCiphertext)
	_, err = env.Rewrap(ctx, msg[:len(msg)-1], nil)
	require.ErrorIs(t, err, kms.ErrInvalidCiphertext)
	_, err = env.Rewrap(ctx, msg, kms.EncryptionContext{"a": "c"})
	require.ErrorIs(t, err, kms.ErrInvalidCiphertext)
	_, err = env.Rewrap(ctx, msg, kms.EncryptionContext{"unstored": "x"})
	require.Error(t, err, "a pair the header does not store")

	var out bytes.Buffer
	err = env.RewrapStream(ctx, &out, bytes.NewReader(msg[:len(msg)-30]), nil)
	require.ErrorIs(t, err, kms.ErrInvalidCiphertext)
	_, err = env.Open(ctx, out.Bytes(), nil)
	require.Error(t, err, "the unfinished output of a failed stream rewrap opens nowhere")
}

// TestAppendSealOpen: AppendSeal and AppendOpen keep what dst held, write
// the same message format as Seal and Open, reuse dst's capacity (fewer
// allocations than the allocating forms), and on failure return nil
// without leaving plaintext in dst's spare room.
func TestAppendSealOpen(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	key := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID
	for _, suite := range []uint16{kms.SuiteCommitted, kms.SuiteCommittedSigned} {
		env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(key)}, Suite: suite, FrameLength: 256})
		require.NoError(t, err)
		for _, size := range []int{0, 100, 256, 5000, 1 << 20} {
			pt := bytes.Repeat([]byte{0xA5}, size)
			prefix := []byte("prefix:")
			msg, err := env.AppendSeal(ctx, bytes.Clone(prefix), pt, nil)
			require.NoError(t, err)
			require.True(t, bytes.HasPrefix(msg, prefix))
			got, err := env.Open(ctx, msg[len(prefix):], nil)
			require.NoError(t, err, "suite %04x size %d", suite, size)
			require.True(t, bytes.Equal(pt, got))

			opened, err := env.AppendOpen(ctx, bytes.Clone(prefix), msg[len(prefix):], nil)
			require.NoError(t, err)
			require.True(t, bytes.Equal(append(bytes.Clone(prefix), pt...), opened))

			bad := bytes.Clone(msg[len(prefix):])
			bad[len(bad)-1] ^= 1
			buf := make([]byte, 3, 2*len(bad)+64)
			out, err := env.AppendOpen(ctx, buf, bad, nil)
			require.ErrorIs(t, err, kms.ErrInvalidCiphertext)
			require.Nil(t, out)
			if size > 0 {
				assert.False(t, bytes.Contains(buf[:cap(buf)], pt[:min(size, 64)]), "plaintext left in dst's spare room")
			}
		}
	}

	env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(key)}})
	require.NoError(t, err)
	pt := bytes.Repeat([]byte{1}, 1024)
	msg, err := env.Seal(ctx, pt, nil)
	require.NoError(t, err)
	buf := make([]byte, 0, 4096)
	appendAllocs := testing.AllocsPerRun(50, func() { _, _ = env.AppendOpen(ctx, buf[:0], msg, nil) })
	openAllocs := testing.AllocsPerRun(50, func() { _, _ = env.Open(ctx, msg, nil) })
	assert.Less(t, appendAllocs, openAllocs, "AppendOpen into a buffer with room saves the plaintext's allocation")
	appendAllocs = testing.AllocsPerRun(50, func() { _, _ = env.AppendSeal(ctx, buf[:0], pt, nil) })
	sealAllocs := testing.AllocsPerRun(50, func() { _, _ = env.Seal(ctx, pt, nil) })
	assert.Less(t, appendAllocs, sealAllocs, "AppendSeal into a buffer with room saves the message's allocation")
}
