// Package bench measures pocketkms beside its peers and its floors in one
// run. It is its own Go module (replacing the library with the repository
// root), so that the peers' dependencies stay out of the library's go.mod.
//
// The package has no exported API; the benchmarks are in the _test files:
//
//   - BenchmarkEnvelope/op=seal|open/size=64B|1KiB|64KiB|1MiB/impl=...:
//     one message per op. impl=pocketkms is an Envelope of the default
//     suite (0x0478) with one KeyRing recipient, sealing and opening into
//     a new buffer (Seal, Open); impl=pocketkms-append the same into one
//     reused buffer (AppendSeal, AppendOpen); impl=awsesdk the official
//     AWS Encryption SDK for Go (same suite, a raw AES keyring, the same
//     frame length); impl=tink Tink's KMS envelope AEAD
//     (aead.NewKMSEnvelopeAEAD2, a local AES-256-GCM key-encryption key);
//     impl=floor the work suite 0x0478 cannot avoid, on the standard
//     library (data key, message ID, wrap, HKDF-SHA-512 extract and two
//     expands, key setup, header tag, one frame).
//   - BenchmarkEnvelope/op=seal/size=1KiB/store=memory|sqlite|postgres:
//     impl=pocketkms's Seal on a ring whose keys live in a Store (a
//     MemoryStore, a SQLite file, a PostgreSQL schema; sqlstore), under one
//     RootKey and the default CacheTTL, so that a SQL-backed ring re-reads
//     its key at most once a second. store=postgres needs
//     POCKETKMS_TEST_POSTGRES, which scripts/with-postgres.sh sets (run.sh
//     runs under it when it can), and skips without it.
//   - BenchmarkEnvelopeSigned/op=seal|open/size=1KiB/impl=pocketkms|floor:
//     suite 0x0578 beside its floor (the same plus an ECDSA P-384 key per
//     message, signing, decoding the public key and verifying).
//   - BenchmarkEnvelopeRSA/op=seal|open/size=1KiB/impl=cached|uncached: an
//     RSA-3072 ring key as recipient, with and without the data-key cache.
//   - BenchmarkStream/op=seal|open/size=16MiB|256MiB/impl=pocketkms|tink:
//     NewWriter/NewReader beside Tink's streaming AEAD (AES-256-GCM-HKDF,
//     1 MiB segments), payload generated as it is read; run with -cpu 1,2.
//   - BenchmarkEncrypt/size=64B|1KiB|4KiB/policy=none|keypolicy10
//     (KeyRing.Encrypt then Decrypt, under AllowAll and under KeyPolicies
//     with a ten-statement key policy) beside BenchmarkRawAESGCM (a reused AES-256-GCM cipher.AEAD) and
//     BenchmarkTinkEnvelope; BenchmarkGenerateDataKey, BenchmarkSign and
//     BenchmarkGenerateMac.
//
// run.sh runs them all and cmd/ratio prints the medians, the ratios and
// whether each target of BENCHMARKS.md holds. BENCHMARKS.md at the
// repository root has the method, the machine and the numbers.
//
// Without -bench, `go test` here runs the interoperability tests with the
// Go SDK (TestInteropGoESDK*), the peak-heap test of streaming
// (TestStreamPeakHeap) and a round trip of every benchmarked path
// (TestStoreRoundTrip's store=postgres only with POCKETKMS_TEST_POSTGRES).
package bench
