// Command quickstart is the main job of pocketkms on its embedded default:
// an in-memory KeyRing with one key of each kind, used as a service would
// use it. It prints what it does and exits non-zero if anything fails.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log"
	"os"

	"github.com/pocketkms/kms"
)

func main() {
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run() error {
	ctx := kms.WithPrincipal(context.Background(), kms.Principal{ARN: "arn:aws:iam::111122223333:role/quickstart", Account: "111122223333"})
	var events kms.Recorder
	ring, err := kms.NewKeyRing(kms.Config{Auditor: &events})
	if err != nil {
		return err
	}

	// A symmetric key behind an alias, for secrets up to 4 KiB.
	key, err := ring.CreateKey(ctx, kms.CreateKeyInput{Description: "quickstart: orders"})
	if err != nil {
		return err
	}
	if err := ring.CreateAlias(ctx, "alias/orders", key.KeyID); err != nil {
		return err
	}
	fmt.Println("created", key.Arn, "as alias/orders")

	ec := kms.EncryptionContext{"order": "17", "tenant": "acme"}
	enc, err := ring.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/orders", Plaintext: []byte("card 4242 4242 4242 4242"), EncryptionContext: ec})
	if err != nil {
		return err
	}
	fmt.Printf("encrypted 24 bytes into a %d-byte blob under version %d\n", len(enc.CiphertextBlob), enc.KeyVersion)

	// Rotation: a new primary version; the old blob still opens.
	v, err := ring.RotateKeyOnDemand(ctx, "alias/orders")
	if err != nil {
		return err
	}
	dec, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		return err
	}
	fmt.Printf("rotated to version %d; the version-%d blob decrypts to %q\n", v, dec.KeyVersion, string(dec.Plaintext[:4])+"…")

	// The wrong context is refused.
	if _, err := ring.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: kms.EncryptionContext{"order": "18", "tenant": "acme"}}); err == nil {
		return fmt.Errorf("decrypt with the wrong context succeeded")
	} else {
		fmt.Println("wrong context refused:", kms.ErrorCode(err))
	}

	// Envelope encryption: a data key for bulk data, kept only encrypted.
	dk, err := ring.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: "alias/orders", KeySpec: kms.AES256, EncryptionContext: ec})
	if err != nil {
		return err
	}
	fmt.Printf("data key: %d bytes, stored as a %d-byte blob (printed: %v)\n", len(dk.Plaintext), len(dk.CiphertextBlob), dk.Plaintext)
	clear(dk.Plaintext)

	// Signing: verifiable with the public key and the standard library.
	signer, err := ring.CreateKey(ctx, kms.CreateKeyInput{KeySpec: kms.ECCNISTP256, KeyUsage: kms.SignVerify})
	if err != nil {
		return err
	}
	msg := []byte("release v1.0.0")
	sig, err := ring.Sign(ctx, kms.SignInput{KeyID: signer.KeyID, Message: msg, SigningAlgorithm: kms.ECDSASHA256})
	if err != nil {
		return err
	}
	pk, err := ring.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: signer.KeyID})
	if err != nil {
		return err
	}
	pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
	if err != nil {
		return err
	}
	d := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig.Signature) {
		return fmt.Errorf("signature does not verify with the standard library")
	}
	fmt.Println("signed with ECDSA P-256; verified with crypto/ecdsa")

	// MACs.
	mk, err := ring.CreateKey(ctx, kms.CreateKeyInput{KeySpec: kms.HMAC256, KeyUsage: kms.GenerateVerifyMac})
	if err != nil {
		return err
	}
	mac, err := ring.GenerateMac(ctx, kms.GenerateMacInput{KeyID: mk.KeyID, Message: msg, MacAlgorithm: kms.HMACSHA256})
	if err != nil {
		return err
	}
	if _, err := ring.VerifyMac(ctx, kms.VerifyMacInput{KeyID: mk.KeyID, Message: msg, Mac: mac.Mac, MacAlgorithm: kms.HMACSHA256}); err != nil {
		return err
	}
	fmt.Println("HMAC-SHA-256 generated and verified")

	// Lifecycle: a disabled key refuses use; deletion is scheduled, not immediate.
	if err := ring.DisableKey(ctx, "alias/orders"); err != nil {
		return err
	}
	_, err = ring.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/orders", Plaintext: []byte("x")})
	fmt.Println("disabled key refuses use:", kms.ErrorCode(err))
	m, err := ring.ScheduleKeyDeletion(ctx, "alias/orders", 7)
	if err != nil {
		return err
	}
	fmt.Println("deletion scheduled; state", m.KeyState, "for", m.PendingDeletionWindowInDays, "days")

	fmt.Printf("audit trail: %d events\n", len(events.Events()))
	for _, e := range events.Events() {
		fmt.Printf("  %-20s %-8s %-28s %s\n", e.Op, e.Outcome, e.ErrorCode, e.Principal.ARN)
	}
	return nil
}
