package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/store/sqlstore"
)

// stores are the Stores of BenchmarkEnvelope's store= sub-benchmarks, in
// the order they run.
var stores = []string{"memory", "sqlite", "postgres"}

// storeRootKey is the one RootKey of every store= ring, so that the rings
// differ only in their Store.
var storeRootKey = func() kms.RootKey {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	rk, err := kms.NewAESRootKey(k, nil)
	if err != nil {
		panic(err)
	}
	return rk
}()

// postgresEnv names the connection string of the test server, which
// scripts/with-postgres.sh starts and sets.
const postgresEnv = "POCKETKMS_TEST_POSTGRES"

// postgresSchema returns the connection string of a new, empty schema of
// the database at $POCKETKMS_TEST_POSTGRES, dropped when tb ends. Without
// the variable it skips, or fails under POCKETKMS_REQUIRE_POSTGRES (which
// scripts/with-postgres.sh sets, so that a run meant to measure PostgreSQL
// cannot pass without it).
func postgresSchema(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		msg := postgresEnv + " is not set: run under scripts/with-postgres.sh (bench/run.sh does), which starts PostgreSQL"
		if os.Getenv("POCKETKMS_REQUIRE_POSTGRES") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	schema := "bench_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			tb.Error(err)
		}
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// A key=value connection string.
		return strings.TrimSpace(dsn) + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openStore returns a new, empty Store of the kind given, closed when tb
// ends.
func openStore(tb testing.TB, kind string) kms.Store {
	tb.Helper()
	ctx := context.Background()
	var (
		s   *sqlstore.Store
		err error
	)
	switch kind {
	case "memory":
		return kms.NewMemoryStore()
	case "sqlite":
		s, err = sqlstore.OpenSQLite(ctx, filepath.Join(tb.TempDir(), "keys.db"))
	case "postgres":
		s, err = sqlstore.OpenPostgres(ctx, postgresSchema(tb))
	default:
		tb.Fatalf("no store %q", kind)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newStoreEnvelope returns an Envelope like impl=pocketkms's (the default
// suite, one KeyRing recipient) on a ring whose keys live in a Store of
// the kind given, under storeRootKey, with the default CacheTTL: a
// SQL-backed ring re-reads its key at most once a second, as it would in
// service.
func newStoreEnvelope(tb testing.TB, kind string) *kms.Envelope {
	tb.Helper()
	ring, err := kms.NewKeyRing(kms.Config{Store: openStore(tb, kind), RootKey: storeRootKey})
	if err != nil {
		tb.Fatal(err)
	}
	md, err := ring.CreateKey(context.Background(), kms.CreateKeyInput{Description: "bench", KeySpec: kms.SymmetricDefault, KeyUsage: kms.EncryptDecrypt})
	if err != nil {
		tb.Fatal(err)
	}
	env, err := kms.NewEnvelope(ring, kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(md.KeyID)}})
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// benchStoreSeals runs BenchmarkEnvelope's op=seal/size=<size>/store=...
// sub-benchmarks: impl=pocketkms's Seal on a ring over each Store. Each
// opens its Store inside its own sub-benchmark, so that a run filtered
// with -bench opens none it does not measure.
func benchStoreSeals(b *testing.B, size string, pt []byte) {
	ctx := context.Background()
	for _, kind := range stores {
		b.Run("op=seal/size="+size+"/store="+kind, func(b *testing.B) {
			env := newStoreEnvelope(b, kind)
			// The first Seal loads the key; the loop measures the hot
			// path, with the re-reads CacheTTL brings.
			if _, err := env.Seal(ctx, pt, benchContext); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := env.Seal(ctx, pt, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestStoreRoundTrip checks the rings of the store= sub-benchmarks: each
// opens what it seals, and a second ring on the same Store (a restart)
// opens it too, so that the key really lives in the Store.
func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	pt := message(t, 1024)
	for _, kind := range stores {
		t.Run("store="+kind, func(t *testing.T) {
			st := openStore(t, kind)
			ring, err := kms.NewKeyRing(kms.Config{Store: st, RootKey: storeRootKey})
			if err != nil {
				t.Fatal(err)
			}
			md, err := ring.CreateKey(ctx, kms.CreateKeyInput{Description: "bench", KeySpec: kms.SymmetricDefault, KeyUsage: kms.EncryptDecrypt})
			if err != nil {
				t.Fatal(err)
			}
			cfg := kms.EnvelopeConfig{Recipients: []kms.Recipient{kms.KeyRecipient(md.KeyID)}}
			env, err := kms.NewEnvelope(ring, cfg)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := env.Seal(ctx, pt, benchContext)
			if err != nil {
				t.Fatal(err)
			}
			again, err := kms.NewKeyRing(kms.Config{Store: st, RootKey: storeRootKey})
			if err != nil {
				t.Fatal(err)
			}
			env2, err := kms.NewEnvelope(again, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := env2.Open(ctx, msg, benchContext)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatal("round trip changed the plaintext")
			}
		})
	}
}
