package kms_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

func Example() {
	ctx := context.Background()
	ring, err := kms.NewKeyRing(kms.Config{}) // in memory; real programs set Store and RootKey
	if err != nil {
		log.Fatal(err)
	}
	key, err := ring.CreateKey(ctx, kms.CreateKeyInput{Description: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	if err := ring.CreateAlias(ctx, "alias/orders", key.KeyID); err != nil {
		log.Fatal(err)
	}
	ec := kms.EncryptionContext{"order": "17"}
	enc, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/orders", Plaintext: []byte("card 4242"), EncryptionContext: ec})
	if err != nil {
		log.Fatal(err)
	}
	dec, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(dec.Plaintext))
	fmt.Println(dec.Plaintext, dec.KeyVersion) // fmt never prints a Secret
	// Output:
	// card 4242
	// [redacted] 1
}

func ExampleKeyRing_Decrypt_wrongContext() {
	ctx := context.Background()
	ring, _ := kms.NewKeyRing(kms.Config{})
	key, _ := ring.CreateKey(ctx, kms.CreateKeyInput{})
	enc, _ := ring.Encrypt(ctx, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("secret"), EncryptionContext: kms.EncryptionContext{"tenant": "a"}})

	_, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: kms.EncryptionContext{"tenant": "b"}})
	fmt.Println(errors.Is(err, kms.ErrInvalidCiphertext), kms.ErrorCode(err))
	// Output: true InvalidCiphertextException
}

func ExampleKeyRing_RotateKeyOnDemand() {
	ctx := context.Background()
	ring, _ := kms.NewKeyRing(kms.Config{})
	key, _ := ring.CreateKey(ctx, kms.CreateKeyInput{})
	old, _ := ring.Encrypt(ctx, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("written before rotation")})

	v, err := ring.RotateKeyOnDemand(ctx, key.KeyID)
	if err != nil {
		log.Fatal(err)
	}
	fresh, _ := ring.Encrypt(ctx, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("written after")})
	dec, _ := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: old.CiphertextBlob})
	fmt.Println("primary version:", v)
	fmt.Println("old blob: version", old.KeyVersion, "still opens:", string(dec.Plaintext))
	fmt.Println("new blob: version", fresh.KeyVersion)
	// Output:
	// primary version: 2
	// old blob: version 1 still opens: written before rotation
	// new blob: version 2
}

func ExampleKeyRing_GenerateDataKey() {
	ctx := context.Background()
	ring, _ := kms.NewKeyRing(kms.Config{})
	key, _ := ring.CreateKey(ctx, kms.CreateKeyInput{})
	ec := kms.EncryptionContext{"bucket": "invoices"}

	dk, err := ring.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: key.KeyID, KeySpec: kms.AES256, EncryptionContext: ec})
	if err != nil {
		log.Fatal(err)
	}
	defer clear(dk.Plaintext)
	// Encrypt locally with dk.Plaintext; store dk.CiphertextBlob beside the data.
	again, _ := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	fmt.Println(len(dk.Plaintext), string(again.Plaintext) == string(dk.Plaintext))
	// Output: 32 true
}

func ExampleKeyRing_Sign() {
	ctx := context.Background()
	ring, _ := kms.NewKeyRing(kms.Config{})
	key, _ := ring.CreateKey(ctx, kms.CreateKeyInput{KeySpec: kms.ECCNISTP256, KeyUsage: kms.SignVerify})
	msg := []byte("release v1.2.3")

	sig, err := ring.Sign(ctx, kms.SignInput{KeyID: key.KeyID, Message: msg, SigningAlgorithm: kms.ECDSASHA256})
	if err != nil {
		log.Fatal(err)
	}
	// Anyone verifies with the public key and the standard library alone.
	pk, _ := ring.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: key.KeyID})
	pub, _ := x509.ParsePKIXPublicKey(pk.PublicKey)
	digest := sha256.Sum256(msg)
	fmt.Println(ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig.Signature))
	// Output: true
}

func ExampleEnvelope() {
	ctx := context.Background()
	ring, _ := kms.NewKeyRing(kms.Config{})
	key, _ := ring.CreateKey(ctx, kms.CreateKeyInput{})
	recovery, _ := ring.CreateKey(ctx, kms.CreateKeyInput{Description: "disaster recovery"})

	env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{
		Recipients: []kms.Recipient{kms.KeyRecipient(key.KeyID), kms.KeyRecipient(recovery.KeyID)},
	})
	if err != nil {
		log.Fatal(err)
	}
	ec := kms.EncryptionContext{"bucket": "invoices"}
	msg, err := env.Seal(ctx, []byte("a payload of any size"), ec)
	if err != nil {
		log.Fatal(err)
	}
	h, _ := kms.ParseHeader(msg) // no key needed
	fmt.Printf("suite %04x, %d recipients, context %v\n", h.Suite, len(h.Recipients), h.EncryptionContext)

	pt, err := env.Open(ctx, msg, ec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(pt))
	// Output:
	// suite 0478, 2 recipients, context map[bucket:invoices]
	// a payload of any size
}

// Automatic rotation happens in RunDue, on the ring's clock: here a fake
// one, moved a year and a day ahead.
func ExampleKeyRing_RunDue() {
	ctx := context.Background()
	clock := kmstest.NewClock(kmstest.Epoch)
	ring, err := kms.NewKeyRing(kms.Config{Clock: clock})
	if err != nil {
		log.Fatal(err)
	}
	key, err := ring.CreateKey(ctx, kms.CreateKeyInput{})
	if err != nil {
		log.Fatal(err)
	}
	if err := ring.EnableKeyRotation(ctx, kms.EnableKeyRotationInput{KeyID: key.KeyID, RotationPeriodInDays: 365}); err != nil {
		log.Fatal(err)
	}
	old, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("last year's data")})
	if err != nil {
		log.Fatal(err)
	}

	clock.Advance(366 * 24 * time.Hour)
	due, err := ring.RunDue(ctx) // in a service: go ring.RunDueEvery(ctx, time.Minute, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rotated to version", due.Rotated[0].KeyVersion)

	// Old data still opens; move it forward, then retire version 1.
	re, err := ring.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: old.CiphertextBlob, DestinationKeyID: key.KeyID})
	if err != nil {
		log.Fatal(err)
	}
	if err := ring.UpdateKeyVersionLimits(ctx, kms.UpdateKeyVersionLimitsInput{KeyID: key.KeyID, MinDecryptionVersion: 2}); err != nil {
		log.Fatal(err)
	}
	_, err = ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: old.CiphertextBlob})
	fmt.Println("old blob:", errors.Is(err, kms.ErrKeyVersionRetired))
	out, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: re.CiphertextBlob})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rewrapped blob: version %d, %q\n", out.KeyVersion, string(out.Plaintext))
	// Output:
	// rotated to version 2
	// old blob: true
	// rewrapped blob: version 2, "last year's data"
}

func ExampleKeyPolicies() {
	ctx := context.Background()
	ring, err := kms.NewKeyRing(kms.Config{Policy: kms.KeyPolicies{}})
	if err != nil {
		log.Fatal(err)
	}
	admin := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/admin"})
	app := kms.WithPrincipal(ctx, kms.Principal{ARN: "arn:aws:iam::111122223333:role/app"})
	key, err := ring.CreateKey(admin, kms.CreateKeyInput{Policy: `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/admin"},
	     "Action": "kms:*", "Resource": "*"},
	    {"Sid": "AppForTenant7", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app"},
	     "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
	     "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "7"}}}
	  ]
	}`})
	if err != nil {
		log.Fatal(err)
	}
	_, err = ring.Encrypt(app, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("x"), EncryptionContext: kms.EncryptionContext{"tenant": "7"}})
	fmt.Println("tenant 7:", err)
	_, err = ring.Encrypt(app, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("x"), EncryptionContext: kms.EncryptionContext{"tenant": "8"}})
	fmt.Println("tenant 8:", errors.Is(err, kms.ErrAccessDenied))

	// A grant lets the app encrypt for tenant 8 too, with exactly that context.
	_, err = ring.CreateGrant(admin, kms.CreateGrantInput{
		KeyID: key.KeyID, GranteePrincipal: "arn:aws:iam::111122223333:role/app", Operations: []kms.Op{kms.OpEncrypt},
		Constraints: &kms.GrantConstraints{EncryptionContextEquals: kms.EncryptionContext{"tenant": "8"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = ring.Encrypt(app, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("x"), EncryptionContext: kms.EncryptionContext{"tenant": "8"}})
	fmt.Println("tenant 8 with the grant:", err)
	// Output:
	// tenant 7: <nil>
	// tenant 8: true
	// tenant 8 with the grant: <nil>
}

func ExampleOpenChainedLog() {
	ctx := context.Background()
	store := kms.NewMemoryStore()
	root, err := kms.NewAESRootKey(make([]byte, 32), nil) // real programs load a secret root key
	if err != nil {
		log.Fatal(err)
	}
	var file bytes.Buffer // an append-only file in real programs
	chain := kms.ChainConfig{Store: store, RootKey: root}
	audit, err := kms.OpenChainedLog(ctx, &file, chain)
	if err != nil {
		log.Fatal(err)
	}
	ring, err := kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Auditor: audit, AuditRequired: true})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ring.CreateKey(ctx, kms.CreateKeyInput{}); err != nil {
		log.Fatal(err)
	}
	if _, err := ring.ListKeys(ctx, kms.ListKeysInput{}); err != nil {
		log.Fatal(err)
	}
	report, err := kms.VerifyChainedLog(ctx, bytes.NewReader(file.Bytes()), chain)
	fmt.Println(report.Records, err)

	edited := bytes.Replace(file.Bytes(), []byte(`"op":"ListKeys"`), []byte(`"op":"ListAliases"`), 1)
	_, err = kms.VerifyChainedLog(ctx, bytes.NewReader(edited), chain)
	fmt.Println(err)
	// Output:
	// 2 <nil>
	// kms: audit log: line 2 (record 2): MAC does not verify (edited or forged)
}
