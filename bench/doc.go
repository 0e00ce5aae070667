// Package bench measures pocketkms beside its floor in one run.
//
// The benchmarks live in bench_test.go and tink_test.go; the package has no
// exported API.
//
//   - BenchmarkEncrypt/size=64B|1KiB|4KiB: KeyRing.Encrypt then
//     KeyRing.Decrypt of the result, per op, under a SYMMETRIC_DEFAULT key
//     with a one-pair encryption context, on a zero-Config ring made once.
//   - BenchmarkRawAESGCM/size=...: the floor. A reused AES-256-GCM
//     cipher.AEAD, a 12-byte nonce from crypto/rand, Seal into a new slice
//     and Open into a new slice: what a careful user of the standard library
//     does for one message.
//   - BenchmarkTinkEnvelope/size=...: Tink's envelope AEAD
//     (aead.NewKMSEnvelopeAEAD2, AES-256-GCM data keys under a local
//     AES-256-GCM key-encryption key), encrypt then decrypt, for comparison.
//   - BenchmarkGenerateDataKey, BenchmarkSign (ECC_NIST_P256, ECDSA_SHA_256)
//     and BenchmarkGenerateMac (HMAC_256, HMAC_SHA_256).
//
// Run them all with bench/run.sh, which also prints the median ns/op ratio
// Encrypt/RawAESGCM at each size (bench/cmd/ratio). BENCHMARKS.md at the
// repository root has the method, the machine, the numbers and the profile.
//
// Without -bench, `go test ./bench/` runs only a quick round-trip test of
// every benchmarked path.
package bench
