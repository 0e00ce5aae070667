package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/pocketkms/kms"
)

// envelopeSizes are the payload sizes of BenchmarkEnvelope.
var envelopeSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"1KiB", 1024}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// newKMSEnvelope returns an Envelope of the default suite (0x0478) with one
// KeyRing recipient, on a zero-Config ring.
func newKMSEnvelope(tb testing.TB) *kms.Envelope {
	ring, keyID := newRing(tb, kms.SymmetricDefault, kms.EncryptDecrypt)
	env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(keyID)}})
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// floor is the cryptographic work suite 0x0478 cannot avoid for one
// message, written directly on the standard library: a data key and a
// message ID from crypto/rand, the data key wrapped under a local
// AES-256-GCM key-encryption key, HKDF-SHA-512 extract and two expands
// (content key, commitment key), AES key setup, the header tag, and one
// frame. It writes no real header: only bytes of the same size are
// authenticated.
type floor struct{ kek cipher.AEAD }

const floorHeader = 200 // about the size of a one-recipient header

func (f floor) seal(pt []byte) []byte {
	var dk, id [32]byte
	var iv [12]byte
	rand.Read(dk[:])
	rand.Read(id[:])
	rand.Read(iv[:])
	out := make([]byte, 0, 32+12+48+floorHeader+16+12+len(pt)+16)
	out = append(out, id[:]...)
	out = append(out, iv[:]...)
	out = f.kek.Seal(out, iv[:], dk[:], nil)
	key, commit := floorKeys(dk[:], id[:])
	out = append(out, commit...)
	g := floorGCM(key)
	hdr := make([]byte, floorHeader)
	var zero [12]byte
	out = g.Seal(out, zero[:], nil, hdr)
	return g.Seal(out, zero[:], pt, id[:])
}

func (f floor) open(msg []byte) ([]byte, error) {
	id, iv, wrapped, commit := msg[:32], msg[32:44], msg[44:92], msg[92:124]
	dk, err := f.kek.Open(nil, iv, wrapped, nil)
	if err != nil {
		return nil, err
	}
	key, want := floorKeys(dk, id)
	if !hmac.Equal(commit, want) {
		return nil, errors.New("commitment")
	}
	g := floorGCM(key)
	hdr := make([]byte, floorHeader)
	var zero [12]byte
	if _, err := g.Open(nil, zero[:], msg[124:140], hdr); err != nil {
		return nil, err
	}
	return g.Open(nil, zero[:], msg[140:], id)
}

// floorKeys is HKDF-SHA-512 extract and two single-block expands, one
// HMAC for the extract and one, reset, for both expands, with one
// allocation for the keys and the scratch (crypto/hkdf as is costs about
// 1.7x more).
func floorKeys(dk, id []byte) ([]byte, []byte) {
	buf := make([]byte, 64+32+32)
	scratch, key, commit := buf[:64], buf[64:96:96], buf[96:]
	ext := hmac.New(sha512.New, id)
	ext.Write(dk)
	exp := hmac.New(sha512.New, ext.Sum(scratch[:0]))
	exp.Write(append(scratch[:0], "\x04\x78DERIVEKEY\x01"...))
	copy(key, exp.Sum(scratch[:0]))
	exp.Reset()
	exp.Write(append(scratch[:0], "COMMITKEY\x01"...))
	copy(commit, exp.Sum(scratch[:0]))
	clear(scratch)
	return key, commit
}

func floorGCM(key []byte) cipher.AEAD {
	b, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(b)
	return g
}

// BenchmarkEnvelope seals or opens one message per op, beside its peers:
// impl=pocketkms (Envelope, default suite, one KeyRing recipient: Seal
// and Open, each into a new buffer), impl=pocketkms-append (the same with
// AppendSeal and AppendOpen into one reused buffer), impl=awsesdk (the official AWS Encryption SDK for Go, suite 0x0478, a
// raw AES keyring), impl=tink (Tink's KMS envelope AEAD, local AES-256-GCM
// KEK) and impl=floor (the format's unavoidable work on the standard
// library). Beside impl=pocketkms at op=seal/size=1KiB, store=memory,
// store=sqlite and store=postgres seal on a ring whose keys live in a
// MemoryStore, a SQLite file and a PostgreSQL database (benchStoreSeals;
// postgres skips without POCKETKMS_TEST_POSTGRES).
func BenchmarkEnvelope(b *testing.B) {
	ctx := context.Background()
	env := newKMSEnvelope(b)
	aws := newAWSESDK(b, rawAESKeyring(b, newMPL(b), "bench", "key", message(b, 32)))
	tk := newTinkEnvelope(b)
	fl := floor{newGCM(b)}
	ec := benchContext
	for _, op := range []string{"seal", "open"} {
		for _, s := range envelopeSizes {
			pt := message(b, s.n)
			ours, err := env.Seal(ctx, pt, ec)
			if err != nil {
				b.Fatal(err)
			}
			theirs, err := tk.Encrypt(pt, tinkAD)
			if err != nil {
				b.Fatal(err)
			}
			base := fl.seal(pt)
			sdk, err := aws.seal(ctx, pt, ec, awsSuite, awsFrame)
			if err != nil {
				b.Fatal(err)
			}
			// pocketkms-append reuses one buffer, as a caller of the
			// append-style forms does.
			var reuse []byte
			impls := map[string]func() error{
				"pocketkms-append": func() error {
					var err error
					if op == "seal" {
						reuse, err = env.AppendSeal(ctx, reuse[:0], pt, ec)
						return err
					}
					reuse, err = env.AppendOpen(ctx, reuse[:0], ours, ec)
					return err
				},
				"awsesdk": func() error {
					if op == "seal" {
						_, err := aws.seal(ctx, pt, ec, awsSuite, awsFrame)
						return err
					}
					_, err := aws.open(ctx, sdk, ec)
					return err
				},
				"pocketkms": func() error {
					if op == "seal" {
						_, err := env.Seal(ctx, pt, ec)
						return err
					}
					_, err := env.Open(ctx, ours, ec)
					return err
				},
				"tink": func() error {
					if op == "seal" {
						_, err := tk.Encrypt(pt, tinkAD)
						return err
					}
					_, err := tk.Decrypt(theirs, tinkAD)
					return err
				},
				"floor": func() error {
					if op == "seal" {
						fl.seal(pt)
						return nil
					}
					_, err := fl.open(base)
					return err
				},
			}
			for _, impl := range []string{"pocketkms", "pocketkms-append", "awsesdk", "tink", "floor"} {
				run := impls[impl]
				b.Run("op="+op+"/size="+s.name+"/impl="+impl, func(b *testing.B) {
					b.SetBytes(int64(s.n))
					b.ReportAllocs()
					for b.Loop() {
						if err := run(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			if op == "seal" && s.name == "1KiB" {
				benchStoreSeals(b, s.name, pt)
			}
		}
	}
}

// TestFloorRoundTrip keeps the floor honest: it must open what it seals.
func TestFloorRoundTrip(t *testing.T) {
	f := floor{newGCM(t)}
	pt := message(t, 1000)
	got, err := f.open(f.seal(pt))
	if err != nil || !bytes.Equal(pt, got) {
		t.Fatalf("floor round trip: %v", err)
	}
	dk, id := message(t, 32), message(t, 32)
	key, commit := floorKeys(dk, id)
	wantKey, _ := hkdf.Key(sha512.New, dk, id, "\x04\x78DERIVEKEY", 32)
	wantCommit, _ := hkdf.Key(sha512.New, dk, id, "COMMITKEY", 32)
	if !bytes.Equal(key, wantKey) || !bytes.Equal(commit, wantCommit) {
		t.Fatal("the floor's key derivation is not HKDF-SHA-512")
	}
}

// newRSAEnvelope returns an Envelope of the default suite whose one
// recipient is an RSA-3072 ring key (the SDK's raw RSA keyring, OAEP with
// SHA-256), with the data-key cache when cached is set.
func newRSAEnvelope(tb testing.TB, cached bool) *kms.Envelope {
	ring, keyID := newRing(tb, kms.RSA3072, kms.EncryptDecrypt)
	rc, err := kms.RawRSAKeyRecipient("bench", "rsa-3072", keyID, crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := kms.EnvelopeConfig{Recipients: []kms.Recipient{rc}}
	if cached {
		cfg.Cache = &kms.CacheConfig{MaxAge: time.Hour}
	}
	env, err := kms.NewEnvelope(ring, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// BenchmarkEnvelopeRSA seals or opens 1 KiB per op with an RSA-3072
// recipient: impl=cached with the data-key cache (the RSA work happens
// once per data key, not per message), impl=uncached without (every seal
// encrypts and every open decrypts the data key with RSA-OAEP). The
// target compares impl=cached with BenchmarkEnvelope's impl=pocketkms.
func BenchmarkEnvelopeRSA(b *testing.B) {
	ctx := context.Background()
	pt := message(b, 1024)
	for _, op := range []string{"seal", "open"} {
		for _, impl := range []string{"cached", "uncached"} {
			env := newRSAEnvelope(b, impl == "cached")
			msg, err := env.Seal(ctx, pt, benchContext)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("op="+op+"/size=1KiB/impl="+impl, func(b *testing.B) {
				b.SetBytes(int64(len(pt)))
				b.ReportAllocs()
				for b.Loop() {
					if op == "seal" {
						_, err = env.Seal(ctx, pt, benchContext)
					} else {
						_, err = env.Open(ctx, msg, benchContext)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// signedFloor is the floor of suite 0x0578: the work of floor plus an
// ECDSA P-384 key made per message and the SHA-384 signature over the
// message when sealing; decoding the compressed public key and verifying
// the signature when opening.
type signedFloor struct{ floor }

func (f signedFloor) seal(pt []byte) ([]byte, []byte) {
	priv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pub, _ := priv.PublicKey.Bytes()
	comp := append([]byte{2 | pub[len(pub)-1]&1}, pub[1:49]...)
	msg := f.floor.seal(pt)
	d := sha512.Sum384(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, priv, d[:])
	return append(msg, sig...), comp
}

func (f signedFloor) open(msg, comp []byte, sigLen int) ([]byte, error) {
	x, y := elliptic.UnmarshalCompressed(elliptic.P384(), comp)
	if x == nil {
		return nil, errors.New("public key")
	}
	point := make([]byte, 97)
	point[0] = 4
	x.FillBytes(point[1:49])
	y.FillBytes(point[49:])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point)
	if err != nil {
		return nil, err
	}
	body, sig := msg[:len(msg)-sigLen], msg[len(msg)-sigLen:]
	d := sha512.Sum384(body)
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		return nil, errors.New("signature")
	}
	return f.floor.open(body)
}

// BenchmarkEnvelopeSigned seals or opens 1 KiB per op in suite 0x0578:
// impl=pocketkms (Envelope, one KeyRing recipient) beside impl=floor
// (signedFloor).
func BenchmarkEnvelopeSigned(b *testing.B) {
	ctx := context.Background()
	ring, keyID := newRing(b, kms.SymmetricDefault, kms.EncryptDecrypt)
	env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(keyID)}, Suite: kms.SuiteCommittedSigned})
	if err != nil {
		b.Fatal(err)
	}
	fl := signedFloor{floor{newGCM(b)}}
	pt := message(b, 1024)
	ours, err := env.Seal(ctx, pt, benchContext)
	if err != nil {
		b.Fatal(err)
	}
	base, comp := fl.seal(pt)
	sigLen := len(base) - len(fl.floor.seal(pt))
	for _, op := range []string{"seal", "open"} {
		for _, impl := range []string{"pocketkms", "floor"} {
			b.Run("op="+op+"/size=1KiB/impl="+impl, func(b *testing.B) {
				b.SetBytes(int64(len(pt)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					switch op + "/" + impl {
					case "seal/pocketkms":
						_, err = env.Seal(ctx, pt, benchContext)
					case "open/pocketkms":
						_, err = env.Open(ctx, ours, benchContext)
					case "seal/floor":
						fl.seal(pt)
					case "open/floor":
						_, err = fl.open(base, comp, sigLen)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRewrap moves one message per op to the key's new primary
// version: form=bytes (Envelope.Rewrap), form=stream (RewrapStream,
// message from memory, output discarded) and form=reseal (Open then Seal
// by the caller). Rewrap re-encrypts (docs/FORMAT.md 4.6), so all three
// cost about the same; there is no header-only form.
func BenchmarkRewrap(b *testing.B) {
	ctx := context.Background()
	ring, keyID := newRing(b, kms.SymmetricDefault, kms.EncryptDecrypt)
	env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(keyID)}})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"64MiB", 64 << 20}} {
		pt := message(b, s.n)
		msg, err := env.Seal(ctx, pt, benchContext)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ring.RotateKeyOnDemand(ctx, keyID); err != nil {
			b.Fatal(err)
		}
		forms := map[string]func() error{
			"bytes": func() error { _, err := env.Rewrap(ctx, msg, benchContext); return err },
			"stream": func() error {
				return env.RewrapStream(ctx, io.Discard, bytes.NewReader(msg), benchContext)
			},
			"reseal": func() error {
				pt, err := env.Open(ctx, msg, benchContext)
				if err == nil {
					_, err = env.Seal(ctx, pt, benchContext)
				}
				return err
			},
		}
		for _, form := range []string{"bytes", "stream", "reseal"} {
			run := forms[form]
			b.Run("form="+form+"/size="+s.name, func(b *testing.B) {
				b.SetBytes(int64(s.n))
				b.ReportAllocs()
				for b.Loop() {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
