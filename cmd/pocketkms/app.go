package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/store/sqlstore"
)

// app is one run of the command: its flags and, once opened, its store,
// ring and audit log.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	storeFlag, keyFile, keyEnv, auditPath string
	jsonOut, quiet                        bool

	store    *sqlstore.Store
	raw      map[[2]string]rawKey // rawIndex, once read
	root     kms.RootKey
	ring     *kms.KeyRing
	auditLog *os.File
}

func (a *app) close() {
	if a.auditLog != nil {
		a.auditLog.Close()
	}
	if a.store != nil {
		a.store.Close()
	}
}

// dataDir is where the default store lives: $XDG_DATA_HOME/pocketkms or
// ~/.local/share/pocketkms.
func dataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "pocketkms"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", &hintError{exitFailure, "cannot find the home directory: set XDG_DATA_HOME or use --store", err}
	}
	return filepath.Join(home, ".local", "share", "pocketkms"), nil
}

// isPostgres reports whether a --store value names a PostgreSQL database:
// a postgres:// or postgresql:// URL (any case), or a key=value connection
// string.
func isPostgres(dsn string) bool {
	l := strings.ToLower(dsn)
	if strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://") {
		return true
	}
	return strings.Contains(l, "dbname=") || strings.Contains(l, "host=")
}

// redactDSN hides a connection string's password.
func redactDSN(dsn string) string {
	if !isPostgres(dsn) {
		return dsn
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	f := strings.Fields(dsn)
	for i, kv := range f {
		if strings.HasPrefix(strings.ToLower(kv), "password=") {
			f[i] = "password=xxxxx"
		}
	}
	return strings.Join(f, " ")
}

// paths returns the store's DSN and the audit log's path.
func (a *app) paths() (store, audit string, err error) {
	store = a.storeFlag
	if store == "" {
		dir, err := dataDir()
		if err != nil {
			return "", "", err
		}
		store = filepath.Join(dir, "keys.db")
	}
	if !isPostgres(store) {
		// One store, one log and one lock, however the path is spelled.
		if abs, err := filepath.Abs(store); err == nil {
			store = abs
		}
		if real, err := filepath.EvalSymlinks(store); err == nil {
			store = real
		}
	}
	audit = a.auditPath
	if audit == "" {
		if isPostgres(store) {
			// A log per database (and, through the data directory, per
			// user of this machine).
			dir, err := dataDir()
			if err != nil {
				return "", "", err
			}
			sum := sha256.Sum256([]byte(redactDSN(store)))
			audit = filepath.Join(dir, "audit-"+hex.EncodeToString(sum[:6])+".log")
		} else {
			audit = store + ".audit.log"
		}
	}
	return store, audit, nil
}

// principal is who the command acts as: POCKETKMS_PRINCIPAL, or the
// operating-system user in the ring's account.
func principal() kms.Principal {
	if arn := os.Getenv("POCKETKMS_PRINCIPAL"); arn != "" {
		return kms.Principal{ARN: arn}
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return kms.Principal{ARN: "arn:aws:iam::" + kms.DefaultAccount + ":user/" + name, Account: kms.DefaultAccount}
}

// open opens the store, its root key, the audit log and the ring. With
// create, it makes the store (and its directory) if there is none, and
// removes what it made if anything fails; otherwise a missing or
// uninitialized store is an error that says to run init.
func (a *app) open(ctx context.Context, create bool) (_ *kms.KeyRing, _ context.Context, err error) {
	ctx = kms.WithPrincipal(ctx, principal())
	if a.ring != nil {
		return a.ring, ctx, nil
	}
	dsn, auditPath, err := a.paths()
	if err != nil {
		return nil, ctx, err
	}
	if !isPostgres(dsn) {
		if _, serr := os.Stat(dsn); errors.Is(serr, os.ErrNotExist) {
			if !create {
				return nil, ctx, &hintError{exitNotFound, fmt.Sprintf("no store at %s: run pocketkms init first (or pass --store)", dsn), serr}
			}
			if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
				return nil, ctx, err
			}
			// Create the file exclusively: of two inits at once, only the
			// one that made it may remove it on failure.
			f, cerr := os.OpenFile(dsn, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if cerr != nil && !errors.Is(cerr, os.ErrExist) {
				return nil, ctx, cerr
			}
			if cerr == nil {
				f.Close()
				defer func() {
					if err != nil { // a failed init leaves nothing behind
						a.close()
						a.store = nil
						for _, f := range []string{dsn, dsn + "-wal", dsn + "-shm", auditPath} {
							os.Remove(f)
						}
					}
				}()
			}
		}
	}
	store, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		msg := strings.ReplaceAll(strings.TrimPrefix(err.Error(), "sqlstore: "), dsn, redactDSN(dsn))
		return nil, ctx, &hintError{exitFailure, "opening the store: " + msg, err}
	}
	a.store = store
	if !isPostgres(dsn) {
		_ = os.Chmod(dsn, 0o600)
	}
	root, err := a.rootKey(ctx, create)
	if err != nil {
		return nil, ctx, err
	}
	a.root = root
	if err := os.MkdirAll(filepath.Dir(auditPath), 0o700); err != nil {
		return nil, ctx, err
	}
	a.auditLog, err = os.OpenFile(auditPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, ctx, fmt.Errorf("opening the audit log: %w", err)
	}
	// One command at a time appends to a chain: commands run at once on
	// this machine wait for each other here, until the process ends.
	if err := a.lockFile(ctx, a.auditLog); err != nil {
		return nil, ctx, err
	}
	// The log so far: if a crash lost its last record, the chain records
	// the loss and goes on (ChainConfig.Resume).
	resume, err := os.Open(auditPath)
	if err != nil {
		return nil, ctx, fmt.Errorf("reading the audit log: %w", err)
	}
	chain, err := kms.OpenChainedLog(ctx, syncWriter{a.auditLog}, kms.ChainConfig{Store: store, RootKey: root, Chain: chainName(dsn), Resume: bufio.NewReader(resume)})
	resume.Close()
	if err != nil {
		return nil, ctx, err
	}
	a.ring, err = kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Auditor: chain, AuditRequired: true, Policy: kms.KeyPolicies{}})
	if err != nil {
		return nil, ctx, err
	}
	// Due work (automatic rotations, deletions whose date has passed)
	// happens whenever the store is used; each change is audited, and a
	// failure is retried next time.
	_, _ = a.ring.RunDue(ctx)
	return a.ring, ctx, nil
}

// chainName names the audit chain of a log file. A SQLite store has one
// log, beside it; a PostgreSQL store shared by several machines and users
// has a log, and a chain, per machine and user.
func chainName(dsn string) string {
	if !isPostgres(dsn) {
		return "default"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return "host/" + host + "/uid/" + strconv.Itoa(os.Getuid())
}

// lockFile takes an exclusive lock on f, waiting for other commands to
// release theirs, or until ctx ends.
func (a *app) lockFile(ctx context.Context, f *os.File) error {
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		return nil
	}
	fmt.Fprintln(a.stderr, "pocketkms: waiting for another pocketkms command on this store to finish...")
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("locking the audit log: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// syncWriter makes each audit record durable before the operation's
// result is released.
type syncWriter struct{ f *os.File }

func (w syncWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err == nil {
		err = w.f.Sync()
	}
	return n, err
}

const passphraseSetting = "root.passphrase.argon2id"

// rootKey returns the store's root key: from --key-file, --key-env, or a
// passphrase (POCKETKMS_PASSPHRASE, or asked on the terminal).
func (a *app) rootKey(ctx context.Context, create bool) (kms.RootKey, error) {
	var rk kms.RootKey
	var err error
	_, perr := a.store.GetSetting(ctx, passphraseSetting)
	usesPassphrase := perr == nil
	_, cerr := a.store.GetSetting(ctx, "root.check")
	initialized := cerr == nil
	switch {
	case a.keyFile != "" && a.keyEnv != "":
		return nil, usagef("give --key-file or --key-env, not both")
	case (a.keyFile != "" || a.keyEnv != "") && usesPassphrase:
		return nil, &hintError{exitRefused, "this store's root key is a passphrase: drop --key-file/--key-env and set POCKETKMS_PASSPHRASE", nil}
	case (a.keyFile != "" || a.keyEnv != "") && !initialized && !create:
		return nil, &hintError{exitNotFound, "the store is not initialized: run pocketkms init first", cerr}
	case a.keyFile != "":
		rk, err = kms.RootKeyFromFile(a.keyFile)
	case a.keyEnv != "":
		rk, err = kms.RootKeyFromEnv(a.keyEnv)
	default:
		if !usesPassphrase && !create {
			if initialized {
				return nil, &hintError{exitRefused, "this store's root key is not a passphrase: pass --key-file or --key-env", nil}
			}
			return nil, &hintError{exitNotFound, "the store is not initialized: run pocketkms init first", perr}
		}
		pass, perr := a.passphrase(!usesPassphrase)
		if perr != nil {
			return nil, perr
		}
		defer clear(pass)
		return kms.NewPassphraseRootKey(ctx, pass, a.store, nil)
	}
	if err != nil {
		return nil, &hintError{exitUsage, strings.TrimPrefix(err.Error(), "kms: invalid argument: "), err}
	}
	if err := kms.CheckRootKey(ctx, a.store, rk); err != nil {
		return nil, err
	}
	return rk, nil
}

// passphrase reads POCKETKMS_PASSPHRASE, or asks on the terminal (twice
// for a new store).
func (a *app) passphrase(confirm bool) ([]byte, error) {
	if p, ok := os.LookupEnv("POCKETKMS_PASSPHRASE"); ok {
		if p == "" {
			return nil, usagef("POCKETKMS_PASSPHRASE is empty")
		}
		return []byte(p), nil
	}
	in, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, &hintError{exitUsage, "no passphrase: set POCKETKMS_PASSPHRASE, or run on a terminal to be asked", nil}
	}
	fmt.Fprint(a.stderr, "Passphrase: ")
	p, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, usagef("empty passphrase")
	}
	if confirm {
		fmt.Fprint(a.stderr, "Again: ")
		q, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, err
		}
		same := string(p) == string(q)
		clear(q)
		if !same {
			clear(p)
			return nil, usagef("the passphrases differ")
		}
	}
	return p, nil
}

// ---------------------------------------------------------------- output

// print writes v as JSON with --json, else calls human.
func (a *app) print(v any, human func(w io.Writer)) error {
	if a.jsonOut {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	bw := bufio.NewWriter(a.stdout)
	human(bw)
	return bw.Flush()
}

// table writes rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// parseContext reads k=v pairs.
func parseContext(pairs []string) (kms.EncryptionContext, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	ec := kms.EncryptionContext{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--context takes key=value, not %q", p)
		}
		if _, dup := ec[k]; dup {
			return nil, usagef("--context names %q twice", k)
		}
		ec[k] = v
	}
	return ec, nil
}

// ---------------------------------------------------------- atomic files

// atomicFile is an output file written under a temporary name in the same
// directory and renamed into place only by commit: a failure leaves
// nothing behind.
type atomicFile struct {
	*os.File
	path string
	done bool
}

func createAtomic(path string, perm os.FileMode) (*atomicFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".pocketkms-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // name the output, not the temporary file
		}
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &atomicFile{File: f, path: path}, nil
}

// commit makes the file durable and gives it its name.
func (f *atomicFile) commit() error {
	if err := f.Sync(); err != nil {
		f.abort()
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), f.path); err != nil {
		os.Remove(f.Name())
		return err
	}
	f.done = true
	if d, err := os.Open(filepath.Dir(f.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// abort removes the temporary file, unless commit ran.
func (f *atomicFile) abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}
