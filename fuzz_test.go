package kms_test

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/pocketkms/kms"
)

// FuzzDecrypt feeds arbitrary blobs, with and without a named key, to
// Decrypt over the vector keys: it must never panic, never return
// plaintext with an error, and fail only with a typed error.
func FuzzDecrypt(f *testing.F) {
	vs := loadVectors(f)
	var keys map[string]map[string]string
	for _, v := range vs {
		b, err := hex.DecodeString(v.Blob)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
		keys = v.Keys
	}
	ring := ringFor(f, &vector{Keys: keys})
	ec := kms.EncryptionContext{"purpose": "test vectors", "tenant": "17"}
	f.Fuzz(func(t *testing.T, blob []byte, named bool) {
		in := kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec}
		if named {
			in.KeyID = vkA
		}
		out, err := ring.Decrypt(context.Background(), in)
		if err != nil {
			if out != nil {
				t.Fatal("Decrypt returned output with an error")
			}
			var ke *kms.Error
			if !errors.As(err, &ke) || !(errors.Is(err, kms.ErrInvalidCiphertext) || errors.Is(err, kms.ErrNotFound) ||
				errors.Is(err, kms.ErrIncorrectKey) || errors.Is(err, kms.ErrInvalidArgument)) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(out.Plaintext) == 0 {
			t.Fatal("success with no plaintext")
		}
	})
}
