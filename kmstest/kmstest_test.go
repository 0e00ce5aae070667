package kmstest_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

func TestClock(t *testing.T) {
	var c kmstest.Clock
	require.Equal(t, kmstest.Epoch, c.Now())
	c.Advance(36 * time.Hour)
	require.Equal(t, kmstest.Epoch.Add(36*time.Hour), c.Now())
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Set(at)
	require.Equal(t, at, kmstest.NewClock(at).Now())
	require.Equal(t, at, c.Now())
}

func TestRingUsesFakeClockAndRecorder(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	require.Equal(t, kmstest.Epoch, k.CreationDate)
	r.Clock.Advance(48 * time.Hour)
	m, err := r.ScheduleKeyDeletion(ctx, k.KeyID, 7)
	require.NoError(t, err)
	require.Equal(t, kmstest.Epoch.Add(48*time.Hour+7*24*time.Hour), m.DeletionDate)
	require.Len(t, r.Events.ByOp(kms.OpCreateKey), 1)
	e, ok := r.Events.Last()
	require.True(t, ok)
	require.Equal(t, kms.OpScheduleKeyDeletion, e.Op)
	require.Equal(t, kmstest.Epoch.Add(48*time.Hour), e.Time)
}

func TestImportKey(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	// Never use a literal key like this outside tests.
	secret := []byte("0123456789abcdef0123456789abcdef")
	k := r.ImportKey(kms.HMAC256, kms.GenerateVerifyMac, secret)
	require.Equal(t, kms.OriginExternal, k.Origin)
	require.Equal(t, kms.KeyStateEnabled, k.KeyState)
	out, err := r.GenerateMac(ctx, kms.GenerateMacInput{KeyID: k.KeyID, Message: []byte("m"), MacAlgorithm: kms.HMACSHA256})
	require.NoError(t, err)
	want := hmac.New(sha256.New, secret)
	want.Write([]byte("m"))
	require.True(t, hmac.Equal(want.Sum(nil), out.Mac))
}

func Example() {
	// A test passes its own t; an Example has none, so it makes one.
	r := kmstest.New(&testing.T{})
	ctx := context.Background()
	key := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	_, _ = r.Encrypt(ctx, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("x")})
	r.Clock.Advance(24 * time.Hour)
	_ = r.DisableKey(ctx, key.KeyID)
	for _, e := range r.Events.Events() {
		fmt.Println(e.Time.Format(time.DateOnly), e.Op, e.Outcome)
	}
	// Output:
	// 2025-01-01 CreateKey allowed
	// 2025-01-01 Encrypt allowed
	// 2025-01-02 DisableKey allowed
}
