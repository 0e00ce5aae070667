package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/internal/storetest"
	"github.com/pocketkms/kms/store/sqlstore"
)

// newSQLite returns a store in a new file of the test's temporary
// directory.
func newSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// postgresDSN returns the test database's connection string from
// POCKETKMS_TEST_POSTGRES (make test starts a server and sets it). Without
// it the test skips, except under make test or in CI, where it fails: the
// suite must not pass without having run.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("POCKETKMS_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" || os.Getenv("POCKETKMS_REQUIRE_POSTGRES") != "" {
			t.Fatal("POCKETKMS_TEST_POSTGRES is not set: run the suite with `make test`, which starts PostgreSQL")
		}
		t.Skip("POCKETKMS_TEST_POSTGRES is not set (make test sets it)")
	}
	return dsn
}

// schemaDSN returns the connection string of a new, empty schema of the
// test database, dropped when the test ends.
func schemaDSN(t *testing.T) string {
	t.Helper()
	dsn := postgresDSN(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	return withSearchPath(dsn, schema)
}

// newPostgres returns a store in a new, empty schema of the test database.
func newPostgres(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenPostgres(context.Background(), schemaDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) kms.Store { return newSQLite(t) })
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	postgresDSN(t)
	storetest.Run(t, func(t *testing.T) kms.Store { return newPostgres(t) })
}

// withSearchPath adds search_path to a connection string, URL or
// key=value.
func withSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}
