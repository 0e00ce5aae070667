// Package sqlstore is a kms.Store in a SQL database: a SQLite file, the
// embedded default (modernc.org/sqlite, no cgo), or PostgreSQL (pgx) when
// several instances of a service share one keyring.
//
// The store never sees plaintext key material: a KeyRing wraps every
// version under its RootKey before it reaches PutKey. Records are kept as
// JSON documents (docs/FORMAT.md §6) beside the columns the store queries,
// and every update is a compare-and-swap on the record's revision, so that
// rings in several processes never lose one another's changes.
//
// The schema is versioned; Open applies the migrations a database lacks,
// in a transaction, once even when several processes open it at once.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"           // registers the "sqlite" driver

	"github.com/pocketkms/kms"
)

// Store is a kms.Store, kms.AuditStore and kms.SettingsStore in a SQL
// database. It is safe
// for concurrent use, also by several processes on one database.
type Store struct {
	db *sql.DB
	d  dialect
	pg *pgx.ConnConfig // PostgreSQL: for Follow's own connection
}

var (
	_ kms.Store         = (*Store)(nil)
	_ kms.AuditStore    = (*Store)(nil)
	_ kms.SettingsStore = (*Store)(nil)
)

// dialect is what differs between SQLite and PostgreSQL.
type dialect struct {
	name     string
	blob     string // the column type of bytes
	dollar   bool   // placeholders are $1, $2, ... (else ?)
	lockStmt string // run first in the migration transaction
}

var (
	sqliteDialect   = dialect{name: "sqlite", blob: "BLOB"}
	postgresDialect = dialect{name: "postgres", blob: "BYTEA", dollar: true, lockStmt: "SELECT pg_advisory_xact_lock(7270011)"}
)

// q rewrites a query's ? placeholders for the dialect.
func (d dialect) q(query string) string {
	if !d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Open opens the store at dsn, creating and migrating it as needed:
// "postgres://..." or "postgresql://..." (a pgx connection string) for
// PostgreSQL, anything else a SQLite file path.
func Open(ctx context.Context, dsn string) (*Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return OpenPostgres(ctx, dsn)
	}
	return OpenSQLite(ctx, dsn)
}

// OpenSQLite opens (creating it if needed) the SQLite database file at
// path. The file is in WAL mode with full synchronous commits: a change is
// on disk when PutKey returns, and the file survives a crash at any point.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlstore: %q is not a SQLite file path", path)
	}
	// A new file is made readable by its owner alone; SQLite gives its
	// -wal and -shm files the same permissions.
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(10000)")
	v.Add("_pragma", "journal_mode(WAL)")
	v.Add("_pragma", "synchronous(FULL)")
	v.Add("_pragma", "foreign_keys(1)")
	v.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+v.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: opening %s: %w", path, err)
	}
	return open(ctx, db, sqliteDialect)
}

// OpenPostgres connects to the PostgreSQL database at dsn (a URL or
// key=value connection string, as pgx reads it).
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxConfig(dsn)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, stdlib.OpenDB(*cfg), postgresDialect)
	if err != nil {
		return nil, err
	}
	s.pg = cfg
	return s, nil
}

func open(ctx context.Context, db *sql.DB, d dialect) (*Store, error) {
	s := &Store{db: db, d: d}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// migrations are the schema's versions, applied in order. A released
// migration never changes; a change is a new one.
func (d dialect) migrations() []string {
	return []string{
		// 1: keys, aliases, audit chains, and settings.
		`CREATE TABLE pocketkms_keys (
			key_id   TEXT PRIMARY KEY,
			revision BIGINT NOT NULL,
			state    TEXT NOT NULL,
			record   TEXT NOT NULL
		);
		CREATE TABLE pocketkms_aliases (
			name          TEXT PRIMARY KEY,
			target_key_id TEXT NOT NULL,
			created_at    TEXT NOT NULL,
			updated_at    TEXT NOT NULL
		);
		CREATE INDEX pocketkms_aliases_target ON pocketkms_aliases (target_key_id, name);
		CREATE TABLE pocketkms_audit_chains (
			chain       TEXT PRIMARY KEY,
			revision    BIGINT NOT NULL,
			wrapped_key ` + d.blob + ` NOT NULL,
			seq         BIGINT NOT NULL,
			head        ` + d.blob + `
		);
		CREATE TABLE pocketkms_settings (
			name  TEXT PRIMARY KEY,
			value TEXT NOT NULL
		)`,
	}
}

// SchemaVersion is the schema version this package writes.
const SchemaVersion = 1

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	defer tx.Rollback()
	if s.d.lockStmt != "" {
		if _, err := tx.ExecContext(ctx, s.d.lockStmt); err != nil {
			return fmt.Errorf("sqlstore: locking for migration: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS pocketkms_schema (version BIGINT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("sqlstore: creating the schema table: %w", err)
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM pocketkms_schema`).Scan(&have); err != nil {
		return fmt.Errorf("sqlstore: reading the schema version: %w", err)
	}
	ms := s.d.migrations()
	if have > len(ms) {
		return fmt.Errorf("sqlstore: the database has schema version %d; this version of pocketkms knows %d: upgrade pocketkms", have, len(ms))
	}
	for v := have + 1; v <= len(ms); v++ {
		for _, stmt := range strings.Split(ms[v-1], ";\n") {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("sqlstore: migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO pocketkms_schema (version, applied_at) VALUES (?, ?)`), v, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("sqlstore: migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: committing migrations: %w", err)
	}
	return nil
}

// GetKey implements kms.Store.
func (s *Store) GetKey(ctx context.Context, keyID string) (*kms.KeyRecord, error) {
	var rev uint64
	var doc string
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT revision, record FROM pocketkms_keys WHERE key_id = ?`), keyID).Scan(&rev, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, kms.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading key %s: %w", keyID, err)
	}
	r, err := decodeKey(doc)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: key %s: %w", keyID, err)
	}
	r.Revision = rev
	return r, nil
}

// PutKey implements kms.Store: an insert for revision 0, else an update
// that succeeds only if the stored revision is the one the caller read.
func (s *Store) PutKey(ctx context.Context, r *kms.KeyRecord) error {
	doc, err := encodeKey(r)
	if err != nil {
		return fmt.Errorf("sqlstore: encoding key %s: %w", r.KeyID, err)
	}
	var res sql.Result
	if r.Revision == 0 {
		res, err = s.db.ExecContext(ctx, s.d.q(`INSERT INTO pocketkms_keys (key_id, revision, state, record) VALUES (?, 1, ?, ?) ON CONFLICT (key_id) DO NOTHING`),
			r.KeyID, string(r.State), doc)
	} else {
		res, err = s.db.ExecContext(ctx, s.d.q(`UPDATE pocketkms_keys SET revision = revision + 1, state = ?, record = ? WHERE key_id = ? AND revision = ?`),
			string(r.State), doc, r.KeyID, r.Revision)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: writing key %s: %w", r.KeyID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: writing key %s: %w", r.KeyID, err)
	}
	if n == 0 {
		if r.Revision == 0 {
			return kms.ErrAlreadyExists
		}
		return kms.ErrConflict
	}
	s.notify(ctx, r.KeyID)
	return nil
}

// ListKeys implements kms.Store.
func (s *Store) ListKeys(ctx context.Context, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return []string{}, nil
	}
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT key_id FROM pocketkms_keys WHERE key_id > ? ORDER BY key_id LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: listing keys: %w", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlstore: listing keys: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: listing keys: %w", err)
	}
	return ids, nil
}

// PutAlias implements kms.Store.
func (s *Store) PutAlias(ctx context.Context, a kms.AliasRecord, create bool) error {
	var res sql.Result
	var err error
	if create {
		res, err = s.db.ExecContext(ctx, s.d.q(`INSERT INTO pocketkms_aliases (name, target_key_id, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`),
			a.Name, a.TargetKeyID, fmtTime(a.CreatedAt), fmtTime(a.UpdatedAt))
	} else {
		res, err = s.db.ExecContext(ctx, s.d.q(`UPDATE pocketkms_aliases SET target_key_id = ?, created_at = ?, updated_at = ? WHERE name = ?`),
			a.TargetKeyID, fmtTime(a.CreatedAt), fmtTime(a.UpdatedAt), a.Name)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: writing alias %s: %w", a.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: writing alias %s: %w", a.Name, err)
	}
	if n == 0 {
		if create {
			return kms.ErrAlreadyExists
		}
		return kms.ErrNotFound
	}
	s.notify(ctx, a.Name)
	return nil
}

// GetAlias implements kms.Store.
func (s *Store) GetAlias(ctx context.Context, name string) (kms.AliasRecord, error) {
	a := kms.AliasRecord{Name: name}
	var created, updated string
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT target_key_id, created_at, updated_at FROM pocketkms_aliases WHERE name = ?`), name).Scan(&a.TargetKeyID, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return kms.AliasRecord{}, kms.ErrNotFound
	}
	if err != nil {
		return kms.AliasRecord{}, fmt.Errorf("sqlstore: reading alias %s: %w", name, err)
	}
	if a.CreatedAt, err = parseTime(created); err == nil {
		a.UpdatedAt, err = parseTime(updated)
	}
	if err != nil {
		return kms.AliasRecord{}, fmt.Errorf("sqlstore: alias %s: %w", name, err)
	}
	return a, nil
}

// DeleteAlias implements kms.Store.
func (s *Store) DeleteAlias(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM pocketkms_aliases WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("sqlstore: deleting alias %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: deleting alias %s: %w", name, err)
	} else if n == 0 {
		return kms.ErrNotFound
	}
	s.notify(ctx, name)
	return nil
}

// ListAliases implements kms.Store.
func (s *Store) ListAliases(ctx context.Context, keyID, after string, limit int) ([]kms.AliasRecord, error) {
	if limit <= 0 {
		return []kms.AliasRecord{}, nil
	}
	query := `SELECT name, target_key_id, created_at, updated_at FROM pocketkms_aliases WHERE name > ?`
	args := []any{after}
	if keyID != "" {
		query += ` AND target_key_id = ?`
		args = append(args, keyID)
	}
	query += ` ORDER BY name LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: listing aliases: %w", err)
	}
	defer rows.Close()
	out := []kms.AliasRecord{}
	for rows.Next() {
		var a kms.AliasRecord
		var created, updated string
		if err := rows.Scan(&a.Name, &a.TargetKeyID, &created, &updated); err != nil {
			return nil, fmt.Errorf("sqlstore: listing aliases: %w", err)
		}
		if a.CreatedAt, err = parseTime(created); err == nil {
			a.UpdatedAt, err = parseTime(updated)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlstore: alias %s: %w", a.Name, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: listing aliases: %w", err)
	}
	return out, nil
}

// GetAuditState implements kms.AuditStore.
func (s *Store) GetAuditState(ctx context.Context, chain string) (*kms.AuditState, error) {
	st := &kms.AuditState{Chain: chain}
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT revision, wrapped_key, seq, head FROM pocketkms_audit_chains WHERE chain = ?`), chain).
		Scan(&st.Revision, &st.WrappedKey, &st.Seq, &st.Head)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, kms.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading audit chain %s: %w", chain, err)
	}
	return st, nil
}

// PutAuditState implements kms.AuditStore.
func (s *Store) PutAuditState(ctx context.Context, st *kms.AuditState) error {
	var res sql.Result
	var err error
	if st.Revision == 0 {
		res, err = s.db.ExecContext(ctx, s.d.q(`INSERT INTO pocketkms_audit_chains (chain, revision, wrapped_key, seq, head) VALUES (?, 1, ?, ?, ?) ON CONFLICT (chain) DO NOTHING`),
			st.Chain, st.WrappedKey, st.Seq, st.Head)
	} else {
		res, err = s.db.ExecContext(ctx, s.d.q(`UPDATE pocketkms_audit_chains SET revision = revision + 1, wrapped_key = ?, seq = ?, head = ? WHERE chain = ? AND revision = ?`),
			st.WrappedKey, st.Seq, st.Head, st.Chain, st.Revision)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: writing audit chain %s: %w", st.Chain, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: writing audit chain %s: %w", st.Chain, err)
	}
	if n == 0 {
		if st.Revision == 0 {
			return kms.ErrAlreadyExists
		}
		return kms.ErrConflict
	}
	return nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("a stored time does not parse")
	}
	return t, nil
}

// decodeKey reads a stored record document.
func decodeKey(doc string) (*kms.KeyRecord, error) {
	var d keyDoc
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, errors.New("the stored record does not parse")
	}
	if d.Format != recordFormat {
		return nil, fmt.Errorf("the stored record has format %d; this version of pocketkms reads %d", d.Format, recordFormat)
	}
	return d.record(), nil
}

func encodeKey(r *kms.KeyRecord) (string, error) {
	b, err := json.Marshal(docOf(r))
	return string(b), err
}

// ListAuditChains implements kms.AuditStore.
func (s *Store) ListAuditChains(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT chain FROM pocketkms_audit_chains ORDER BY chain`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: listing audit chains: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("sqlstore: listing audit chains: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: listing audit chains: %w", err)
	}
	return out, nil
}

// GetSetting implements kms.SettingsStore.
func (s *Store) GetSetting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT value FROM pocketkms_settings WHERE name = ?`), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", kms.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: reading setting %s: %w", name, err)
	}
	return v, nil
}

// PutSetting implements kms.SettingsStore.
func (s *Store) PutSetting(ctx context.Context, name, value, old string) error {
	var res sql.Result
	var err error
	if old == "" {
		res, err = s.db.ExecContext(ctx, s.d.q(`INSERT INTO pocketkms_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, value)
	} else {
		res, err = s.db.ExecContext(ctx, s.d.q(`UPDATE pocketkms_settings SET value = ? WHERE name = ? AND value = ?`), value, name, old)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: writing setting %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: writing setting %s: %w", name, err)
	}
	if n == 0 {
		if old == "" {
			return kms.ErrAlreadyExists
		}
		return kms.ErrConflict
	}
	return nil
}
