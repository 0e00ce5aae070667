package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms/store/sqlstore"
)

// These tests run command lines in process with run, on a store whose root
// key is in a --key-file (the passphrase's argon2id is left to the few
// tests about passphrases).

// result is what one command line did.
type result struct {
	code           int
	stdout, stderr string
}

// cli is a store in a temporary directory and the flags that name it.
type cli struct {
	t    *testing.T
	dir  string
	base []string // --store and --key-file
}

// writeKeyFile writes a new random root key, 64 hex characters, mode 0600.
func writeKeyFile(t *testing.T, path string) {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600))
}

// newCLI makes a directory with a root key file; the store is not yet
// initialized.
func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	writeKeyFile(t, filepath.Join(dir, "root.key"))
	return &cli{t: t, dir: dir, base: []string{"--store", filepath.Join(dir, "keys.db"), "--key-file", filepath.Join(dir, "root.key")}}
}

// initCLI is newCLI with the store initialized.
func initCLI(t *testing.T) *cli {
	t.Helper()
	c := newCLI(t)
	c.ok("init")
	return c
}

// with returns c for a subtest.
func (c *cli) with(t *testing.T) *cli {
	d := *c
	d.t = t
	return &d
}

// path names a file in the test's directory.
func (c *cli) path(name string) string { return filepath.Join(c.dir, name) }

// runIn runs a command line on the store, with stdin.
func (c *cli) runIn(stdin []byte, args ...string) result {
	c.t.Helper()
	return runCmd(c.t, stdin, append(append([]string{}, c.base...), args...)...)
}

// run runs a command line on the store.
func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runIn(nil, args...)
}

// ok runs a command line that must succeed and print nothing on stderr.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	require.Equal(c.t, exitOK, r.code, "pocketkms %s: stderr %q", strings.Join(args, " "), r.stderr)
	require.Empty(c.t, r.stderr, "pocketkms %s", strings.Join(args, " "))
	return r.stdout
}

// fails runs a command line that must fail with code and a one-line error
// containing each of want.
func (c *cli) fails(code int, args []string, want ...string) result {
	c.t.Helper()
	r := c.run(args...)
	requireFailure(c.t, r, code, want...)
	return r
}

// runCmd runs one command line in process.
func runCmd(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, bytes.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// requireOneLineError checks that stderr is exactly one line, starting
// "pocketkms: ".
func requireOneLineError(t *testing.T, stderr string) {
	t.Helper()
	require.True(t, strings.HasPrefix(stderr, "pocketkms: "), "stderr does not start with \"pocketkms: \": %q", stderr)
	require.True(t, strings.HasSuffix(stderr, "\n"), "stderr does not end its line: %q", stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "stderr is not one line: %q", stderr)
}

// requireFailure checks the exit code and the one-line error.
func requireFailure(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	require.Equal(t, code, r.code, "exit code; stderr %q", r.stderr)
	requireOneLineError(t, r.stderr)
	for _, w := range want {
		require.Contains(t, r.stderr, w)
	}
}

// createKey makes a key and returns its ID.
func (c *cli) createKey(args ...string) string {
	c.t.Helper()
	var row keyRow
	require.NoError(c.t, json.Unmarshal([]byte(c.ok(append([]string{"create-key", "--json"}, args...)...)), &row))
	require.NotEmpty(c.t, row.KeyID)
	return row.KeyID
}

// write writes a file in the test's directory and returns its path.
func (c *cli) write(name string, data []byte) string {
	c.t.Helper()
	p := c.path(name)
	require.NoError(c.t, os.MkdirAll(filepath.Dir(p), 0o700))
	require.NoError(c.t, os.WriteFile(p, data, 0o600))
	return p
}

func (c *cli) read(path string) []byte {
	c.t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(c.t, err)
	return b
}

// tempLeftovers lists the atomic writer's temporary files in dir.
func tempLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".*.pocketkms-*"))
	require.NoError(t, err)
	return m
}

// flip returns a copy of b with one bit of byte i changed.
func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x01
	return b
}

// ------------------------------------------------------------------ exit codes

// TestExitCodes drives each documented exit code through the commands'
// failure modes and checks the one-line error.
func TestExitCodes(t *testing.T) {
	c := initCLI(t)
	key := c.createKey("--alias", "alias/files")
	sigKey := c.createKey("--spec", "ECC_NIST_P256", "--alias", "alias/sig")
	pt := c.write("pt.txt", []byte("some plaintext\n"))
	ct := c.path("pt.txt.enc")
	c.ok("encrypt", "--key", "alias/files", "--in", pt, "--out", ct, "--context", "dept=finance")
	ctBytes := c.read(ct)
	tampered := c.write("tampered.enc", flip(ctBytes, len(ctBytes)-20))
	truncated := c.write("truncated.enc", ctBytes[:len(ctBytes)-10])
	empty := c.write("empty.enc", nil)
	garbage := c.write("garbage.enc", []byte("this is not an encrypted file\n"))
	c.ok("sign", "--key", "alias/sig", "--in", pt, "--out", c.path("pt.sig"))
	badSig := c.write("bad.sig", flip(c.read(c.path("pt.sig")), 10))
	require.NoError(t, os.MkdirAll(c.path("tree"), 0o700))
	worldKey := c.path("world.key")
	writeKeyFile(t, worldKey)
	require.NoError(t, os.Chmod(worldKey, 0o644))
	wrongKey := c.path("wrong.key")
	writeKeyFile(t, wrongKey)
	badPolicy := c.write("bad-policy.json", []byte(`{"Version":"2012-10-17","Statement":[`))

	// A file for a key of another store.
	other := initCLI(t)
	other.createKey("--alias", "alias/elsewhere")
	foreign := other.path("foreign.enc")
	other.ok("encrypt", "--key", "alias/elsewhere", "--in", pt, "--out", foreign)

	missingStore := []string{"--store", c.path("missing.db"), "--key-file", c.path("root.key")}
	wrongRoot := []string{"--store", c.path("keys.db"), "--key-file", wrongKey}
	out := c.path("out.txt")

	cases := []struct {
		name string
		args []string
		raw  bool // args are the whole command line (no --store/--key-file added)
		code int
		want []string
	}{
		// 2: usage.
		{"unknown command", []string{"bogus"}, false, exitUsage, []string{`unknown command "bogus"`, "pocketkms help"}},
		{"unknown flag", []string{"list", "--bogus"}, false, exitUsage, []string{"unknown flag: --bogus"}},
		{"missing argument", []string{"describe"}, false, exitUsage, []string{"accepts 1 arg"}},
		{"too many arguments", []string{"rotate", "a", "b"}, false, exitUsage, []string{"accepts 1 arg"}},
		{"bad flag value", []string{"schedule-deletion", key, "--days", "soon"}, false, exitUsage, []string{"invalid argument"}},
		{"encrypt without --out", []string{"encrypt", "--key", key, "--in", pt}, false, exitUsage, []string{"encrypt needs --key, --in and --out"}},
		{"decrypt without --out", []string{"decrypt", "--in", ct}, false, exitUsage, []string{"decrypt needs --in and --out"}},
		{"context without =", []string{"encrypt", "--key", key, "--in", pt, "--out", out, "--context", "dept"}, false, exitUsage, []string{"--context takes key=value"}},
		{"context twice", []string{"decrypt", "--in", ct, "--out", out, "--context", "a=1", "--context", "a=2"}, false, exitUsage, []string{`--context names "a" twice`}},
		{"rewrap a directory without -r", []string{"rewrap", c.path("tree")}, false, exitUsage, []string{"is a directory: use -r"}},
		{"alias without prefix", []string{"create-key", "--alias", "files2"}, false, exitUsage, []string{"--alias takes alias/NAME"}},
		{"unknown key spec", []string{"create-key", "--spec", "NOPE"}, false, exitUsage, []string{`"NOPE"`}},
		{"deletion window", []string{"schedule-deletion", key, "--days", "3"}, false, exitUsage, []string{"7 to 30"}},
		{"rotation period", []string{"rotation", "enable", key, "--period-days", "10"}, false, exitUsage, []string{"90 to 2560"}},
		{"alias exists", []string{"alias", "create", "alias/files", key}, false, exitUsage, []string{"already exists"}},
		{"half a raw keyring name", []string{"import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", pt, "--raw-namespace", "ns"}, false, exitUsage, []string{"--raw-namespace and --raw-name"}},
		{"bad OAEP hash", []string{"import-key", "--spec", "RSA_2048", "--in", pt, "--raw-namespace", "ns", "--raw-name", "n", "--raw-oaep-hash", "MD5"}, false, exitUsage, []string{"--raw-oaep-hash"}},
		{"sign without --in", []string{"sign", "--key", "alias/sig"}, false, exitUsage, []string{"sign needs --key and --in"}},
		{"sign with an encryption key", []string{"sign", "--key", key, "--in", pt}, false, exitUsage, []string{"does not sign"}},
		{"verify without --signature", []string{"verify", "--key", "alias/sig", "--in", pt}, false, exitUsage, []string{"verify needs --key, --in and --signature"}},
		{"message too large to sign", []string{"sign", "--key", "alias/sig", "--in", c.write("big.txt", make([]byte, 5000))}, false, exitUsage, []string{"larger than 4096 bytes"}},
		{"encrypt to a signing key", []string{"encrypt", "--key", "alias/sig", "--in", pt, "--out", out}, false, exitUsage, []string{"SYMMETRIC_DEFAULT"}},
		{"bad frame length", []string{"encrypt", "--key", key, "--in", pt, "--out", out, "--frame-length", "-1"}, false, exitUsage, []string{"FrameLength"}},
		{"grant without grantee", []string{"grant", "create", key, "--operations", "Decrypt"}, false, exitUsage, []string{"GranteePrincipal"}},
		{"grant without operations", []string{"grant", "create", key, "--grantee", "arn:aws:iam::111122223333:user/bob"}, false, exitUsage, []string{"operation"}},
		{"policy put without --file", []string{"policy", "put", key}, false, exitUsage, []string{"policy put needs --file"}},
		{"malformed policy", []string{"policy", "put", key, "--file", badPolicy}, false, exitUsage, []string{"malformed policy"}},
		{"grant retire without token", []string{"grant", "retire"}, false, exitUsage, []string{"retire takes --token"}},
		{"init twice", []string{"init"}, false, exitUsage, []string{"already initialized"}},
		{"key file and key env", append(append([]string{}, c.base...), "--key-env", "POCKETKMS_TEST_KEY", "list"), true, exitUsage, []string{"not both"}},
		{"key file readable by others", []string{"--store", c.path("keys.db"), "--key-file", worldKey, "list"}, true, exitUsage, []string{"chmod 600"}},

		// 3: not found.
		{"no such key", []string{"describe", "alias/nope"}, false, exitNotFound, []string{"alias/nope", "not found"}},
		{"encrypt to no such key", []string{"encrypt", "--key", "alias/nope", "--in", pt, "--out", out}, false, exitNotFound, []string{"not found"}},
		{"no such input", []string{"decrypt", "--in", c.path("nope.enc"), "--out", out}, false, exitNotFound, []string{"nope.enc", "no such file"}},
		{"output directory missing", []string{"encrypt", "--key", key, "--in", pt, "--out", c.path("no/such/dir/out")}, false, exitNotFound, []string{"no such file"}},
		{"no such grant", []string{"grant", "revoke", key, strings.Repeat("ab", 32)}, false, exitNotFound, []string{"no grant"}},
		{"a file for a key of another store", []string{"decrypt", "--in", foreign, "--out", out}, false, exitNotFound, []string{"keys this store does not hold"}},
		{"store not initialized", append(append([]string{}, missingStore...), "list"), true, exitNotFound, []string{"run pocketkms init"}},

		// 4: refused.
		{"wrong root key", append(append([]string{}, wrongRoot...), "list"), true, exitRefused, []string{"wrong passphrase or root key", "--key-file"}},

		// 5: invalid data.
		{"tampered file", []string{"decrypt", "--in", tampered, "--out", out, "--context", "dept=finance"}, false, exitInvalid, []string{"invalid ciphertext"}},
		{"truncated file", []string{"decrypt", "--in", truncated, "--out", out}, false, exitInvalid, []string{"invalid ciphertext"}},
		{"empty file", []string{"decrypt", "--in", empty, "--out", out}, false, exitInvalid, []string{"not an encrypted file"}},
		{"not an encrypted file", []string{"decrypt", "--in", garbage, "--out", out}, false, exitInvalid, []string{"invalid ciphertext"}},
		{"wrong context value", []string{"decrypt", "--in", ct, "--out", out, "--context", "dept=sales"}, false, exitInvalid, []string{"--context"}},
		{"context key not in the file", []string{"decrypt", "--in", ct, "--out", out, "--context", "team=blue"}, false, exitInvalid, []string{"--context"}},
		{"one pair right, one missing", []string{"decrypt", "--in", ct, "--out", out, "--context", "dept=finance", "--context", "team=blue"}, false, exitInvalid, nil},
		{"tampered signature", []string{"verify", "--key", "alias/sig", "--in", pt, "--signature", badSig}, false, exitInvalid, []string{"signature is not valid"}},
		{"signature of another message", []string{"verify", "--key", sigKey, "--in", c.write("other.txt", []byte("other")), "--signature", c.path("pt.sig")}, false, exitInvalid, []string{"signature is not valid"}},

		// 1: failure.
		{"input is a directory", []string{"encrypt", "--key", key, "--in", c.path("tree"), "--out", out}, false, exitFailure, []string{"is a directory"}},
		{"store is a directory", []string{"--store", c.path("tree"), "--key-file", c.path("root.key"), "list"}, true, exitFailure, []string{"opening the store"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !tc.raw {
				args = append(append([]string{}, c.base...), args...)
			}
			r := runCmd(t, nil, args...)
			requireFailure(t, r, tc.code, tc.want...)
			_, err := os.Stat(out)
			require.ErrorIs(t, err, os.ErrNotExist, "a failed command left %s", out)
			require.Empty(t, tempLeftovers(t, c.dir))
		})
	}

	// 6: key state, and back.
	t.Run("disabled key", func(t *testing.T) {
		c := c.with(t)
		c.ok("disable", "alias/files")
		c.fails(exitState, []string{"encrypt", "--key", "alias/files", "--in", pt, "--out", out}, "key is disabled", "pocketkms enable KEY")
		c.fails(exitState, []string{"decrypt", "--in", ct, "--out", out}, "key is disabled")
		_, err := os.Stat(out)
		require.ErrorIs(t, err, os.ErrNotExist)
		c.ok("enable", "alias/files")
		c.ok("decrypt", "--in", ct, "--out", out)
		require.Equal(t, c.read(pt), c.read(out))
		require.NoError(t, os.Remove(out))
	})
	t.Run("pending deletion", func(t *testing.T) {
		c := c.with(t)
		doomed := c.createKey()
		c.ok("schedule-deletion", doomed, "--days", "7")
		c.fails(exitState, []string{"encrypt", "--key", doomed, "--in", pt, "--out", out}, "pending deletion")
		c.ok("cancel-deletion", doomed)
		c.fails(exitState, []string{"encrypt", "--key", doomed, "--in", pt, "--out", out}, "disabled")
		c.ok("enable", doomed)
		c.ok("encrypt", "--key", doomed, "--in", pt, "--out", out)
	})
}

// TestUsageExitCodesNeedNoStore: mistakes on the command line are found
// before the store is opened, so no store is created.
func TestUsageExitCodesNeedNoStore(t *testing.T) {
	c := newCLI(t)
	c.fails(exitUsage, []string{"encrypt", "--in", "x"}, "encrypt needs")
	c.fails(exitUsage, []string{"nope"}, "unknown command")
	_, err := os.Stat(c.path("keys.db"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestHelpExitsZero: help goes to stdout and exits 0.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"encrypt", "--help"}, {}} {
		r := runCmd(t, nil, args...)
		require.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
		require.Contains(t, r.stdout, "pocketkms", "%v", args)
	}
}

// ------------------------------------------------------------------ JSON

func TestJSONOutput(t *testing.T) {
	c := initCLI(t)
	var created keyRow
	require.NoError(t, json.Unmarshal([]byte(c.ok("create-key", "--json", "--alias", "alias/j", "--description", "for JSON", "--tag", "team=blue")), &created))
	require.Equal(t, "SYMMETRIC_DEFAULT", created.Spec)
	require.Equal(t, "ENCRYPT_DECRYPT", created.Usage)
	require.Equal(t, "Enabled", created.State)
	require.Equal(t, []string{"alias/j"}, created.Aliases)
	require.Equal(t, "for JSON", created.Description)
	require.Contains(t, created.Arn, created.KeyID)

	ecc := c.createKey("--spec", "ECC_NIST_P384")

	var rows []keyRow
	require.NoError(t, json.Unmarshal([]byte(c.ok("list", "--json")), &rows))
	require.Len(t, rows, 2)
	ids := []string{rows[0].KeyID, rows[1].KeyID}
	require.ElementsMatch(t, []string{created.KeyID, ecc}, ids)

	var desc keyRow
	require.NoError(t, json.Unmarshal([]byte(c.ok("describe", "alias/j", "--json")), &desc))
	require.Equal(t, created.KeyID, desc.KeyID)
	require.Equal(t, []string{"alias/j"}, desc.Aliases)
	require.Equal(t, 1, desc.Versions)

	var eccRow keyRow
	require.NoError(t, json.Unmarshal([]byte(c.ok("describe", ecc, "--json")), &eccRow))
	require.Equal(t, "SIGN_VERIFY", eccRow.Usage, "an ECC key signs by default")

	var rot map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("rotate", "alias/j", "--json")), &rot))
	require.EqualValues(t, 2, rot["version"])

	var status map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("rotation", "status", "alias/j", "--json")), &status))
	require.Equal(t, false, status["enabled"])
	c.ok("rotation", "enable", "alias/j", "--period-days", "90")
	require.NoError(t, json.Unmarshal([]byte(c.ok("rotation", "status", "alias/j", "--json")), &status))
	require.Equal(t, true, status["enabled"])
	require.EqualValues(t, 90, status["period_days"])
	require.Contains(t, c.ok("rotation", "status", "alias/j"), "every 90 days")
	c.ok("rotation", "disable", "alias/j")
	require.Contains(t, c.ok("rotation", "status", "alias/j"), "automatic rotation: off")

	var hist []map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("rotation", "history", "alias/j", "--json")), &hist))
	require.Len(t, hist, 1)

	var grant map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("grant", "create", "alias/j", "--json", "--grantee", "arn:aws:iam::111122223333:user/bob", "--operations", "Encrypt,Decrypt")), &grant))
	require.NotEmpty(t, grant["grant_id"])
	require.NotEmpty(t, grant["grant_token"])

	var grants []map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("grant", "list", "alias/j", "--json")), &grants))
	require.Len(t, grants, 1)

	var aliases []map[string]string
	require.NoError(t, json.Unmarshal([]byte(c.ok("alias", "list", "--json")), &aliases))
	require.Equal(t, []map[string]string{{"alias": "alias/j", "key_id": created.KeyID}}, aliases)

	var verified map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("audit", "verify", "--json")), &verified))
	require.Greater(t, verified["records"], float64(5))
	require.Len(t, verified["head"], 64)

	var pub map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("public-key", ecc, "--json")), &pub))
	require.Contains(t, pub["public_key_pem"], "BEGIN PUBLIC KEY")

	var sched map[string]string
	require.NoError(t, json.Unmarshal([]byte(c.ok("schedule-deletion", ecc, "--days", "7", "--json")), &sched))
	require.Equal(t, ecc, sched["key_id"])
	_, err := time.Parse(time.RFC3339, sched["deletion_date"])
	require.NoError(t, err)

	var initOut map[string]string
	d := newCLI(t)
	require.NoError(t, json.Unmarshal([]byte(d.ok("init", "--json")), &initOut))
	require.Equal(t, d.path("keys.db"), initOut["store"])
	require.Equal(t, d.path("keys.db")+".audit.log", initOut["audit_log"])

	// Empty lists are [] in JSON, not null.
	require.JSONEq(t, "[]", d.ok("list", "--json"))
	require.JSONEq(t, "[]", d.ok("alias", "list", "--json"))
}

// ------------------------------------------------------------------ encrypt / decrypt

func TestEncryptDecryptContext(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/k")
	pt := c.write("pt", bytes.Repeat([]byte("0123456789abcdef"), 10000))
	ct := c.path("ct")
	c.ok("encrypt", "--key", "alias/k", "--in", pt, "--out", ct, "--context", "dept=finance", "--context", "year=2026", "--frame-length", "4096")
	info, err := os.Stat(ct)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), info.Mode().Perm())

	out := c.path("out")
	for _, pairs := range [][]string{
		nil,
		{"dept=finance"},
		{"year=2026", "dept=finance"},
	} {
		args := []string{"decrypt", "--in", ct, "--out", out}
		for _, p := range pairs {
			args = append(args, "--context", p)
		}
		c.ok(args...)
		require.Equal(t, c.read(pt), c.read(out), "%v", pairs)
		info, err := os.Stat(out)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "plaintext is private")
		require.NoError(t, os.Remove(out))
	}
	for _, pairs := range [][]string{
		{"dept=sales"},
		{"dept="},
		{"team=blue"},
		{"dept=finance", "year=2025"},
		{"dept=finance", "year=2026", "extra=1"},
	} {
		args := []string{"decrypt", "--in", ct, "--out", out}
		for _, p := range pairs {
			args = append(args, "--context", p)
		}
		c.fails(exitInvalid, args)
		_, err := os.Stat(out)
		require.ErrorIs(t, err, os.ErrNotExist, "%v", pairs)
		require.Empty(t, tempLeftovers(t, c.dir))
	}
}

// TestDecryptTamperedLeavesNothing: a file tampered late (after several
// frames of plaintext were written to the temporary file) leaves neither
// the output nor a temporary file, and an existing output file unchanged.
func TestDecryptTamperedLeavesNothing(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/k")
	plain := make([]byte, 300_000)
	_, err := rand.Read(plain)
	require.NoError(t, err)
	pt := c.write("pt", plain)
	for _, signed := range []bool{false, true} {
		ct := c.path("ct")
		args := []string{"encrypt", "--key", "alias/k", "--in", pt, "--out", ct, "--frame-length", "1024"}
		if signed {
			args = append(args, "--signed")
		}
		c.ok(args...)
		msg := c.read(ct)
		for _, at := range []int{len(msg) / 2, len(msg) - 1, len(msg) - 200} {
			bad := c.write("bad.enc", flip(msg, at))
			out := c.path("out.txt")
			c.fails(exitInvalid, []string{"decrypt", "--in", bad, "--out", out}, "invalid ciphertext")
			_, err := os.Stat(out)
			require.ErrorIs(t, err, os.ErrNotExist, "signed=%v at=%d", signed, at)
			require.Empty(t, tempLeftovers(t, c.dir), "signed=%v at=%d", signed, at)

			// An existing output file is left as it was.
			existing := c.write("existing.txt", []byte("keep me"))
			c.fails(exitInvalid, []string{"decrypt", "--in", bad, "--out", existing})
			require.Equal(t, "keep me", string(c.read(existing)))
			require.Empty(t, tempLeftovers(t, c.dir))
		}
		// Cut short at a frame boundary or mid-frame.
		for _, n := range []int{len(msg) - 1, len(msg) / 3} {
			short := c.write("short.enc", msg[:n])
			c.fails(exitInvalid, []string{"decrypt", "--in", short, "--out", c.path("out.txt")})
			require.Empty(t, tempLeftovers(t, c.dir))
		}
		c.ok("decrypt", "--in", ct, "--out", c.path("good.txt"))
		require.Equal(t, plain, c.read(c.path("good.txt")))
	}
}

func TestStdinStdout(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/k")
	plain := bytes.Repeat([]byte("stream me\n"), 20_000)

	// --in - and --out -: plaintext from stdin, ciphertext to stdout.
	r := c.runIn(plain, "encrypt", "--key", "alias/k", "--in", "-", "--out", "-", "--context", "via=pipe")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Empty(t, r.stderr)
	require.NotContains(t, r.stdout, "stream me")
	msg := []byte(r.stdout)

	// Ciphertext from stdin, plaintext to stdout.
	r = c.runIn(msg, "decrypt", "--in", "-", "--out", "-", "--context", "via=pipe")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Empty(t, r.stderr)
	require.Equal(t, plain, []byte(r.stdout))

	// Mixed: stdin to a file, a file to stdout.
	out := c.path("out")
	r = c.runIn(msg, "decrypt", "--in", "-", "--out", out)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Empty(t, r.stdout)
	require.Equal(t, plain, c.read(out))
	ct := c.write("ct", msg)
	r = c.run("decrypt", "--in", ct, "--out", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, plain, []byte(r.stdout))

	// Empty stdin is an empty message, which round-trips.
	r = c.runIn(nil, "encrypt", "--key", "alias/k", "--in", "-", "--out", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = c.runIn([]byte(r.stdout), "decrypt", "--in", "-", "--out", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Empty(t, r.stdout)

	// Bad data on stdin: exit 5, one line.
	r = c.runIn(flip(msg, len(msg)-5), "decrypt", "--in", "-", "--out", out)
	requireFailure(t, r, exitInvalid)
	require.Equal(t, plain, c.read(out), "the output file is unchanged")
	r = c.runIn(nil, "decrypt", "--in", "-", "--out", "-")
	requireFailure(t, r, exitInvalid, "empty")
}

// TestEncryptToSeveralKeys: each key alone decrypts; a disabled one is
// passed over for the other.
func TestEncryptToSeveralKeys(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/a")
	c.createKey("--alias", "alias/b")
	pt := c.write("pt", []byte("two keys"))
	ct := c.path("ct")
	c.ok("encrypt", "--key", "alias/a", "--key", "alias/b", "--in", pt, "--out", ct, "--signed")
	for _, off := range []string{"alias/a", "alias/b"} {
		c.ok("disable", off)
		c.ok("decrypt", "--in", ct, "--out", "-")
		c.ok("enable", off)
	}
	c.ok("disable", "alias/a")
	c.ok("disable", "alias/b")
	c.fails(exitState, []string{"decrypt", "--in", ct, "--out", c.path("out")}, "disabled")
}

// ------------------------------------------------------------------ rewrap

// TestRewrapTree: rewrap -r of a tree rewraps every file under the key's
// new version, keeps each file's context, frame length, signing and mode;
// a bad file among them is reported and left as it was.
func TestRewrapTree(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/k")
	files := map[string]string{
		"tree/a.enc":          "alpha",
		"tree/sub/b.enc":      "bravo",
		"tree/sub/deep/c.enc": "charlie",
	}
	before := map[string][]byte{}
	for name, text := range files {
		pt := c.write(name+".txt", []byte(text))
		args := []string{"encrypt", "--key", "alias/k", "--in", pt, "--out", c.path(name), "--context", "name=" + filepath.Base(name)}
		if strings.Contains(name, "deep") {
			args = append(args, "--signed", "--frame-length", "2")
		}
		c.ok(args...)
		require.NoError(t, os.Remove(pt))
		before[name] = c.read(c.path(name))
	}
	require.NoError(t, os.Chmod(c.path("tree/sub/b.enc"), 0o640))
	bad := c.write("tree/sub/notes.txt", []byte("not an encrypted file"))
	// A temporary file a crashed run left is not a file to rewrap.
	leftover := c.write("tree/.x.enc.pocketkms-123", []byte("half a file"))
	c.ok("rotate", "alias/k")

	r := c.run("rewrap", "-r", c.path("tree"))
	requireFailure(t, r, exitInvalid, "1 file failed", "notes.txt")
	require.Equal(t, "rewrapped 3 of 4 files\n", r.stdout)
	require.Equal(t, "not an encrypted file", string(c.read(bad)), "the bad file is left as it was")
	require.Equal(t, "half a file", string(c.read(leftover)))
	require.NoError(t, os.Remove(leftover))
	require.Empty(t, tempLeftovers(t, c.path("tree")))
	require.Empty(t, tempLeftovers(t, c.path("tree/sub")))

	for name, text := range files {
		after := c.read(c.path(name))
		require.NotEqual(t, before[name], after, "%s was not rewrapped", name)
		out := c.path("out")
		c.ok("decrypt", "--in", c.path(name), "--out", out, "--context", "name="+filepath.Base(name))
		require.Equal(t, text, string(c.read(out)))
		c.fails(exitInvalid, []string{"decrypt", "--in", c.path(name), "--out", out, "--context", "name=other"})
	}
	info, err := os.Stat(c.path("tree/sub/b.enc"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), info.Mode().Perm(), "rewrap keeps the mode")

	// The signed file is still signed: flipping its last byte (the
	// signature) breaks it.
	deep := c.read(c.path("tree/sub/deep/c.enc"))
	c.write("deep-bad.enc", flip(deep, len(deep)-1))
	c.fails(exitInvalid, []string{"decrypt", "--in", c.path("deep-bad.enc"), "--out", c.path("out2")})

	// Without the bad file, everything rewraps, with --json.
	require.NoError(t, os.Remove(bad))
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("rewrap", "-r", c.path("tree"), "--json")), &res))
	require.EqualValues(t, 3, res["rewrapped"])
}

// TestRewrapToAnotherKey: rewrap --key moves files to another key; the old
// key can then be disabled and the files still decrypt.
func TestRewrapToAnotherKey(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/old")
	newKey := c.createKey("--alias", "alias/new")
	var files []string
	for i, text := range []string{"one", "two", "three"} {
		pt := c.write("pt", []byte(text))
		ct := c.path("dir/" + text + ".enc")
		require.NoError(t, os.MkdirAll(filepath.Dir(ct), 0o700))
		args := []string{"encrypt", "--key", "alias/old", "--in", pt, "--out", ct}
		if i == 0 {
			args = append(args, "--context", "keep=me")
		}
		c.ok(args...)
		files = append(files, ct)
	}
	c.ok(append([]string{"rewrap", "--key", "alias/new"}, files[0], files[1], c.path("dir"), "-r")...)
	c.ok("disable", "alias/old")
	for i, text := range []string{"one", "two", "three"} {
		r := c.run("decrypt", "--in", files[i], "--out", "-")
		require.Equal(t, exitOK, r.code, r.stderr)
		require.Equal(t, text, r.stdout)
	}
	c.fails(exitInvalid, []string{"decrypt", "--in", files[0], "--out", c.path("x"), "--context", "keep=other"})
	c.ok("decrypt", "--in", files[0], "--out", c.path("x"), "--context", "keep=me")

	// The new key alone opens them: disabling it refuses.
	c.ok("disable", newKey)
	c.fails(exitState, []string{"decrypt", "--in", files[1], "--out", c.path("y")}, "disabled")
	// Rewrap to a key that does not exist changes nothing.
	c.ok("enable", newKey)
	before := c.read(files[2])
	c.fails(exitNotFound, []string{"rewrap", "--key", "alias/nope", files[2]})
	require.Equal(t, before, c.read(files[2]))
}

// ------------------------------------------------------------------ sign / verify / public key

func TestSignVerifyPublicKey(t *testing.T) {
	c := initCLI(t)
	for _, spec := range []string{"ECC_NIST_P256", "RSA_2048"} {
		t.Run(spec, func(t *testing.T) {
			c := c.with(t)
			alias := "alias/" + strings.ToLower(spec)
			c.createKey("--spec", spec, "--usage", "SIGN_VERIFY", "--alias", alias)
			msg := c.write("msg-"+spec, []byte("sign this"))

			// Base64 on stdout, verified from a file holding it.
			b64 := c.ok("sign", "--key", alias, "--in", msg)
			sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
			require.NoError(t, err)
			sigFile := c.write("sig-b64-"+spec, []byte(b64))
			require.Equal(t, "signature is valid\n", c.ok("verify", "--key", alias, "--in", msg, "--signature", sigFile))

			// Raw to a file.
			raw := c.path("sig-raw-" + spec)
			c.ok("sign", "--key", alias, "--in", msg, "--out", raw)
			var v map[string]bool
			require.NoError(t, json.Unmarshal([]byte(c.ok("verify", "--key", alias, "--in", msg, "--signature", raw, "--json")), &v))
			require.True(t, v["valid"])

			// The message from stdin.
			r := c.runIn([]byte("sign this"), "verify", "--key", alias, "--in", "-", "--signature", raw)
			require.Equal(t, exitOK, r.code, r.stderr)

			// Tampered signature, tampered message.
			c.fails(exitInvalid, []string{"verify", "--key", alias, "--in", msg, "--signature", c.write("bad-"+spec, flip(sig, len(sig)/2))}, "signature is not valid")
			c.fails(exitInvalid, []string{"verify", "--key", alias, "--in", c.write("msg2-"+spec, []byte("sign thiz")), "--signature", raw}, "signature is not valid")

			// The public key parses, and verifies the signature itself.
			pemText := c.ok("public-key", alias)
			block, rest := pem.Decode([]byte(pemText))
			require.NotNil(t, block)
			require.Empty(t, bytes.TrimSpace(rest))
			require.Equal(t, "PUBLIC KEY", block.Type)
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			require.NoError(t, err)
			require.NotNil(t, pub)
			// Signatures verify with the public key outside pocketkms.
			var signed map[string]any
			require.NoError(t, json.Unmarshal([]byte(c.ok("sign", "--key", alias, "--in", msg, "--json")), &signed))
			jsig, err := base64.StdEncoding.DecodeString(signed["signature"].(string))
			require.NoError(t, err)
			digest := sha256.Sum256([]byte("sign this"))
			switch k := pub.(type) {
			case *ecdsa.PublicKey:
				require.Equal(t, "ECDSA_SHA_256", signed["algorithm"])
				require.True(t, ecdsa.VerifyASN1(k, digest[:], jsig))
				require.True(t, ecdsa.VerifyASN1(k, digest[:], sig))
			case *rsa.PublicKey:
				require.Equal(t, "RSASSA_PSS_SHA_256", signed["algorithm"])
				require.NoError(t, rsa.VerifyPSS(k, crypto.SHA256, digest[:], jsig, nil))
				pkcs := c.path("sig-pkcs1-" + spec)
				c.ok("sign", "--key", alias, "--in", msg, "--algorithm", "RSASSA_PKCS1_V1_5_SHA_256", "--out", pkcs)
				require.NoError(t, rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], c.read(pkcs)))
				c.ok("verify", "--key", alias, "--in", msg, "--algorithm", "RSASSA_PKCS1_V1_5_SHA_256", "--signature", pkcs)
				// The same signature under the other algorithm: invalid.
				c.fails(exitInvalid, []string{"verify", "--key", alias, "--in", msg, "--signature", pkcs})
			default:
				t.Fatalf("public key of type %T", pub)
			}

			pemFile := c.path("pub-" + spec + ".pem")
			c.ok("public-key", alias, "--out", pemFile)
			require.Equal(t, pemText, string(c.read(pemFile)))
		})
	}
	t.Run("digest", func(t *testing.T) {
		c := c.with(t)
		c.createKey("--spec", "ECC_NIST_P256", "--alias", "alias/digest")
		d := make([]byte, 32)
		digest := c.write("digest", d)
		raw := c.path("digest.sig")
		c.ok("sign", "--key", "alias/digest", "--in", digest, "--digest", "--out", raw)
		c.ok("verify", "--key", "alias/digest", "--in", digest, "--digest", "--signature", raw)
		c.fails(exitInvalid, []string{"verify", "--key", "alias/digest", "--in", digest, "--signature", raw})
	})
	t.Run("rotation", func(t *testing.T) {
		c := c.with(t)
		c.createKey("--spec", "ECC_NIST_P384", "--alias", "alias/rot")
		msg := c.write("rot-msg", []byte("before rotation"))
		sig := c.path("rot.sig")
		c.ok("sign", "--key", "alias/rot", "--in", msg, "--out", sig)
		pub1 := c.ok("public-key", "alias/rot")
		require.Equal(t, "rotated alias/rot to version 2\n", c.ok("rotate", "alias/rot"))
		require.NotEqual(t, pub1, c.ok("public-key", "alias/rot"), "a new key pair")
		c.ok("verify", "--key", "alias/rot", "--in", msg, "--signature", sig)
	})
	t.Run("symmetric key has no public key", func(t *testing.T) {
		c := c.with(t)
		k := c.createKey()
		r := c.run("public-key", k)
		require.NotEqual(t, exitOK, r.code)
		requireOneLineError(t, r.stderr)
	})
}

// ------------------------------------------------------------------ policy, grants, aliases

func TestPolicyPutGet(t *testing.T) {
	c := initCLI(t)
	k := c.createKey("--alias", "alias/p")
	def := c.ok("policy", "get", k)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(def), &doc), "the default policy is JSON")
	require.Equal(t, "2012-10-17", doc["Version"])

	policy := `{"Version":"2012-10-17","Id":"mine","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	c.ok("policy", "put", "alias/p", "--file", c.write("policy.json", []byte(policy)))
	require.JSONEq(t, policy, c.ok("policy", "get", "alias/p"))

	// From stdin.
	policy2 := strings.Replace(policy, `"mine"`, `"mine-2"`, 1)
	r := c.runIn([]byte(policy2), "policy", "put", k, "--file", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.JSONEq(t, policy2, c.ok("policy", "get", k))

	// Invalid documents are refused with 2 and leave the policy.
	for _, bad := range []string{
		`not json`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*","Resource":"*"}]}`,
	} {
		r := c.runIn([]byte(bad), "policy", "put", k, "--file", "-")
		requireFailure(t, r, exitUsage)
	}
	require.JSONEq(t, policy2, c.ok("policy", "get", k))
	c.fails(exitNotFound, []string{"policy", "get", "alias/nope"})
}

func TestGrants(t *testing.T) {
	c := initCLI(t)
	k := c.createKey("--alias", "alias/g")
	require.Equal(t, "GRANT ID  GRANTEE  OPERATIONS  NAME\n", c.ok("grant", "list", k))

	out := c.ok("grant", "create", "alias/g", "--grantee", "arn:aws:iam::111122223333:user/bob",
		"--operations", "Encrypt, Decrypt", "--operations", "GenerateDataKey", "--name", "bobs",
		"--context-subset", "dept=finance", "--retiring", "arn:aws:iam::111122223333:user/alice")
	require.Regexp(t, `^grant [0-9a-f]{64}\ntoken \S+\n$`, out)
	id := strings.TrimPrefix(strings.Split(out, "\n")[0], "grant ")

	list := c.ok("grant", "list", "alias/g")
	require.Contains(t, list, id)
	require.Contains(t, list, "user/bob")
	require.Contains(t, list, "Encrypt,Decrypt,GenerateDataKey")
	require.Contains(t, list, "bobs")
	var grants []map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("grant", "list", k, "--json")), &grants))
	require.Len(t, grants, 1)
	require.Equal(t, id, grants[0]["grant_id"])

	// The same name and parameters make no second grant.
	again := c.ok("grant", "create", "alias/g", "--grantee", "arn:aws:iam::111122223333:user/bob",
		"--operations", "Encrypt, Decrypt", "--operations", "GenerateDataKey", "--name", "bobs",
		"--context-subset", "dept=finance", "--retiring", "arn:aws:iam::111122223333:user/alice")
	require.Contains(t, again, id)
	require.NoError(t, json.Unmarshal([]byte(c.ok("grant", "list", k, "--json")), &grants))
	require.Len(t, grants, 1)

	c.ok("grant", "revoke", k, id)
	require.NoError(t, json.Unmarshal([]byte(c.ok("grant", "list", k, "--json")), &grants))
	require.Empty(t, grants)
	c.fails(exitNotFound, []string{"grant", "revoke", k, id})

	// Retire by token and by key and ID, as the account's root (key
	// policies apply: the creator of a grant is not its retiring principal).
	t.Setenv("POCKETKMS_PRINCIPAL", "arn:aws:iam::111122223333:root")
	out = c.ok("grant", "create", k, "--grantee", "arn:aws:iam::111122223333:user/carol", "--operations", "Decrypt")
	tok := strings.TrimPrefix(strings.Split(out, "\n")[1], "token ")
	c.ok("grant", "retire", "--token", tok)
	out = c.ok("grant", "create", k, "--grantee", "arn:aws:iam::111122223333:user/carol", "--operations", "Decrypt")
	gid := strings.TrimPrefix(strings.Split(out, "\n")[0], "grant ")
	c.ok("grant", "retire", k, gid)
	require.NoError(t, json.Unmarshal([]byte(c.ok("grant", "list", k, "--json")), &grants))
	require.Empty(t, grants)

	c.fails(exitUsage, []string{"grant", "create", k, "--grantee", "arn:aws:iam::111122223333:user/bob", "--operations", "Fly"})
	c.fails(exitUsage, []string{"grant", "create", k, "--grantee", "arn:aws:iam::111122223333:user/bob", "--operations", "Decrypt", "--context-equals", "nopair"}, "--context takes key=value")
	c.fails(exitNotFound, []string{"grant", "list", "alias/nope"})
}

func TestAliases(t *testing.T) {
	c := initCLI(t)
	a := c.createKey()
	b := c.createKey()
	c.ok("alias", "create", "alias/x", a)
	c.ok("alias", "create", "alias/y", b)
	require.Contains(t, c.ok("describe", "alias/x"), a)
	// A key by ID, ARN, alias and alias ARN.
	var row keyRow
	require.NoError(t, json.Unmarshal([]byte(c.ok("describe", a, "--json")), &row))
	for _, name := range []string{row.Arn, "alias/x", "arn:aws:kms:us-east-1:111122223333:alias/x"} {
		require.Contains(t, c.ok("describe", name), a, name)
	}
	c.ok("alias", "update", "alias/x", b)
	require.Contains(t, c.ok("describe", "alias/x"), b)
	list := c.ok("alias", "list")
	require.Contains(t, list, "alias/x")
	require.Contains(t, list, "alias/y")
	require.NoError(t, json.Unmarshal([]byte(c.ok("describe", b, "--json")), &row))
	require.ElementsMatch(t, []string{"alias/x", "alias/y"}, row.Aliases)
	c.ok("alias", "delete", "alias/x")
	c.fails(exitNotFound, []string{"describe", "alias/x"})
	c.fails(exitNotFound, []string{"alias", "delete", "alias/x"})
	require.Contains(t, c.ok("list"), "alias/y")
}

// ------------------------------------------------------------------ audit

func TestAuditTailAndVerify(t *testing.T) {
	c := initCLI(t)
	k := c.createKey("--alias", "alias/a")
	pt := c.write("pt", []byte("audited"))
	c.ok("encrypt", "--key", k, "--in", pt, "--out", c.path("ct"))
	c.ok("decrypt", "--in", c.path("ct"), "--out", c.path("out"))

	tail := c.ok("audit", "tail", "-n", "3")
	lines := strings.Split(strings.TrimSuffix(tail, "\n"), "\n")
	require.Len(t, lines, 3)
	for _, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "a record is a JSON line: %s", l)
		require.NotEmpty(t, rec["op"])
		require.NotEmpty(t, rec["mac"])
	}
	all := c.ok("audit", "tail", "-n", "100000")
	require.Contains(t, all, `"op":"CreateKey"`)
	require.Contains(t, all, `"op":"Decrypt"`)
	require.Contains(t, c.ok("audit", "tail"), `"op":`)

	verified := c.ok("audit", "verify")
	require.Regexp(t, `^audit log verified: \d+ records, head [0-9a-f]{64}\n$`, verified)

	// Edit one line: exit 5, naming the line.
	logPath := c.path("keys.db.audit.log")
	orig := c.read(logPath)
	recs := strings.SplitAfter(string(orig), "\n")
	require.Greater(t, len(recs), 4)
	recs[2] = strings.Replace(recs[2], `"outcome":"allowed"`, `"outcome":"denied"`, 1)
	require.NotEqual(t, string(orig), strings.Join(recs, ""), "the edit changed nothing")
	require.NoError(t, os.WriteFile(logPath, []byte(strings.Join(recs, "")), 0o600))
	c.fails(exitInvalid, []string{"audit", "verify"}, "audit log does not verify", "line 3")

	// Remove a line: also exit 5.
	recs = strings.SplitAfter(string(orig), "\n")
	require.NoError(t, os.WriteFile(logPath, []byte(strings.Join(append(recs[:1:1], recs[2:]...), "")), 0o600))
	c.fails(exitInvalid, []string{"audit", "verify"}, "audit log does not verify", "line 2")

	// Cut the last records off: the store remembers the head.
	require.NoError(t, os.WriteFile(logPath, []byte(strings.Join(recs[:len(recs)-3], "")), 0o600))
	c.fails(exitInvalid, []string{"audit", "verify"}, "audit log does not verify")

	// The original verifies again.
	require.NoError(t, os.WriteFile(logPath, orig, 0o600))
	c.ok("audit", "verify")

	// --audit-log names another file.
	d := newCLI(t)
	other := d.path("elsewhere/audit.jsonl")
	d.base = append(d.base, "--audit-log", other)
	d.ok("init")
	d.createKey()
	require.FileExists(t, other)
	require.NoFileExists(t, d.path("keys.db.audit.log"))
	d.ok("audit", "verify")
	d.fails(exitNotFound, []string{"--audit-log", d.path("none.log"), "audit", "tail"})
}

// ------------------------------------------------------------------ import-key

func TestImportKeyRaw(t *testing.T) {
	c := initCLI(t)
	material := make([]byte, 32)
	_, err := rand.Read(material)
	require.NoError(t, err)
	keyBin := c.write("key.bin", material)
	var row keyRow
	require.NoError(t, json.Unmarshal([]byte(c.ok("import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", keyBin,
		"--raw-namespace", "ns", "--raw-name", "name", "--alias", "alias/raw", "--json")), &row))
	require.Equal(t, "EXTERNAL", row.Origin)
	require.Equal(t, "Enabled", row.State)
	require.Equal(t, []string{"alias/raw"}, row.Aliases)

	pt := c.write("pt", []byte("raw keyring"))
	c.ok("encrypt", "--key", "alias/raw", "--in", pt, "--out", c.path("ct"))
	r := c.run("decrypt", "--in", c.path("ct"), "--out", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "raw keyring", r.stdout)

	// Another store holding the same material under the same namespace
	// and name opens it; under another name it does not.
	d := initCLI(t)
	d.ok("import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", keyBin, "--raw-namespace", "ns", "--raw-name", "other")
	d.fails(exitNotFound, []string{"decrypt", "--in", c.path("ct"), "--out", d.path("out")}, "no key of this store")
	d.ok("import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", keyBin, "--raw-namespace", "ns", "--raw-name", "name")
	r = d.run("decrypt", "--in", c.path("ct"), "--out", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "raw keyring", r.stdout)

	// Disabled: 6.
	c.ok("disable", "alias/raw")
	c.fails(exitState, []string{"decrypt", "--in", c.path("ct"), "--out", c.path("out")})

	// A raw RSA keyring key: a PKCS#8 private key, PEM.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(rk)
	require.NoError(t, err)
	pemFile := c.write("rsa.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	c.ok("import-key", "--spec", "RSA_2048", "--in", pemFile, "--raw-namespace", "rsa-ns", "--raw-name", "rsa-name", "--raw-oaep-hash", "SHA-1", "--alias", "alias/rsa")
	c.ok("encrypt", "--key", "alias/rsa", "--in", pt, "--out", c.path("rsa.enc"), "--signed")
	r = c.run("decrypt", "--in", c.path("rsa.enc"), "--out", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "raw keyring", r.stdout)
	// Imported keys do not rotate; rewrap still makes a new data key.
	c.fails(exitUsage, []string{"rotate", "alias/rsa"}, "imported material")
	before := c.read(c.path("rsa.enc"))
	c.ok("rewrap", c.path("rsa.enc"))
	require.NotEqual(t, before, c.read(c.path("rsa.enc")))
	c.ok("decrypt", "--in", c.path("rsa.enc"), "--out", c.path("rsa.out"))
	require.Equal(t, "raw keyring", string(c.read(c.path("rsa.out"))))
}

// ------------------------------------------------------------------ root keys, init, passphrases

func TestPassphrase(t *testing.T) {
	dir := t.TempDir()
	store := []string{"--store", filepath.Join(dir, "keys.db")}
	t.Setenv("POCKETKMS_PASSPHRASE", "correct horse battery staple")
	r := runCmd(t, nil, append(store, "init")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "initialized "+filepath.Join(dir, "keys.db"))
	info, err := os.Stat(filepath.Join(dir, "keys.db"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	r = runCmd(t, nil, append(store, "list")...)
	require.Equal(t, exitOK, r.code, r.stderr)

	r = runCmd(t, nil, append(store, "init")...)
	requireFailure(t, r, exitUsage, "already initialized")

	t.Setenv("POCKETKMS_PASSPHRASE", "wrong horse")
	r = runCmd(t, nil, append(store, "list")...)
	requireFailure(t, r, exitRefused, "wrong passphrase", "POCKETKMS_PASSPHRASE")

	t.Setenv("POCKETKMS_PASSPHRASE", "")
	r = runCmd(t, nil, append(store, "list")...)
	requireFailure(t, r, exitUsage, "POCKETKMS_PASSPHRASE is empty")

	// A key file on a passphrase store: refused, saying why.
	writeKeyFile(t, filepath.Join(dir, "root.key"))
	r = runCmd(t, nil, append(store, "--key-file", filepath.Join(dir, "root.key"), "list")...)
	requireFailure(t, r, exitRefused, "root key is a passphrase", "POCKETKMS_PASSPHRASE")

	// Without the variable and not on a terminal: usage, naming it.
	os.Unsetenv("POCKETKMS_PASSPHRASE")
	r = runCmd(t, nil, append(store, "list")...)
	requireFailure(t, r, exitUsage, "POCKETKMS_PASSPHRASE")
}

func TestNotInitialized(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("POCKETKMS_PASSPHRASE", "pass")
	// No file at all.
	r := runCmd(t, nil, "--store", filepath.Join(dir, "keys.db"), "list")
	requireFailure(t, r, exitNotFound, "run pocketkms init")
	_, err := os.Stat(filepath.Join(dir, "keys.db"))
	require.ErrorIs(t, err, os.ErrNotExist, "a command other than init creates no store")

	// A store file left by an init that failed (empty passphrase).
	t.Setenv("POCKETKMS_PASSPHRASE", "")
	r = runCmd(t, nil, "--store", filepath.Join(dir, "keys.db"), "init")
	requireFailure(t, r, exitUsage, "POCKETKMS_PASSPHRASE")
	t.Setenv("POCKETKMS_PASSPHRASE", "pass")
	r = runCmd(t, nil, "--store", filepath.Join(dir, "keys.db"), "list")
	requireFailure(t, r, exitNotFound, "run pocketkms init")
	// ... and init then works on it.
	r = runCmd(t, nil, "--store", filepath.Join(dir, "keys.db"), "init")
	require.Equal(t, exitOK, r.code, r.stderr)

	// A key-file store created by init with the key in an environment
	// variable opens with --key-env and with the file.
	c := newCLI(t)
	key := strings.TrimSpace(string(c.read(c.path("root.key"))))
	t.Setenv("POCKETKMS_TEST_ROOT_KEY", key)
	r = runCmd(t, nil, "--store", c.path("keys.db"), "--key-env", "POCKETKMS_TEST_ROOT_KEY", "init")
	require.Equal(t, exitOK, r.code, r.stderr)
	c.ok("list")
	r = runCmd(t, nil, "--store", c.path("keys.db"), "--key-env", "POCKETKMS_TEST_NO_SUCH_VAR", "list")
	requireFailure(t, r, exitUsage, "POCKETKMS_TEST_NO_SUCH_VAR")
	// A passphrase on a key-file store is refused, saying what to pass.
	r = runCmd(t, nil, "--store", c.path("keys.db"), "list")
	requireFailure(t, r, exitRefused, "--key-file")
}

// ------------------------------------------------------------------ demo

func TestDemo(t *testing.T) {
	start := time.Now()
	r := runCmd(t, nil, "demo")
	elapsed := time.Since(start)
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	require.Empty(t, r.stderr)
	require.Less(t, elapsed, 30*time.Second)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	require.Equal(t, "decrypted: Quarterly report: revenue up, costs down.", lines[len(lines)-2])
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "done in "), "last line: %q", last)
	for _, step := range []string{"init", "create-key", "encrypt", "rotate", "decrypt", "rewrap", "list", "audit verify"} {
		require.Contains(t, r.stdout, "$ pocketkms "+step)
	}
	require.Contains(t, r.stdout, "rotated alias/reports to version 2")
	require.Contains(t, r.stdout, "rewrapped 1 of 1 files")
	require.Contains(t, r.stdout, "audit log verified: ")
	// The temporary store is gone.
	_, after, ok := strings.Cut(last, "the store was ")
	require.True(t, ok, last)
	dir, _, _ := strings.Cut(after, " (now removed)")
	require.NoDirExists(t, dir)
	t.Logf("demo took %v", elapsed)
}

// ------------------------------------------------------------------ describe()

// TestDescribeMapsErrors covers the mapping from error to exit code.
func TestDescribeMapsErrors(t *testing.T) {
	code, msg := describe(&hintError{exitState, "advice", nil})
	assert.Equal(t, exitState, code)
	assert.Equal(t, "advice", msg)
	code, msg = describe(usagef("bad %s", "thing"))
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, "bad thing (see pocketkms help)", msg)
	code, msg = describe(context.Canceled)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, msg, "interrupted")
	code, _ = describe(os.ErrNotExist)
	assert.Equal(t, exitNotFound, code)
}

// ------------------------------------------------------------------ known bugs

// TestKeyPolicyEnforced: a key policy that denies an operation refuses it
// (exit 4), and grants are what give access.
func TestKeyPolicyEnforced(t *testing.T) {
	c := initCLI(t)
	k := c.createKey("--alias", "alias/p")
	pt := c.write("pt", []byte("guarded"))
	c.ok("encrypt", "--key", k, "--in", pt, "--out", c.path("ct"))
	deny := `{"Version":"2012-10-17","Statement":[
{"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
{"Sid":"no-decrypt","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}]}`
	c.ok("policy", "put", k, "--file", c.write("deny.json", []byte(deny)))
	c.fails(exitRefused, []string{"decrypt", "--in", c.path("ct"), "--out", c.path("out")}, "access denied")
	require.NoFileExists(t, c.path("out"))

	// A principal of another account may not use the key.
	t.Setenv("POCKETKMS_PRINCIPAL", "arn:aws:iam::444455556666:user/mallory")
	c.fails(exitRefused, []string{"encrypt", "--key", k, "--in", pt, "--out", c.path("ct2")}, "access denied")
}

// TestErrorsAreOneLine: an error is one line even when a path in it holds
// a newline.
func TestErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "root.key")
	writeKeyFile(t, key)
	r := runCmd(t, nil, "--store", filepath.Join(dir, "new\nline.db"), "--key-file", key, "list")
	requireFailure(t, r, exitNotFound, "run pocketkms init")
	c := initCLI(t)
	require.NoError(t, os.MkdirAll(c.path("a\nb"), 0o700))
	c.fails(exitUsage, []string{"rewrap", c.path("a\nb")}, "use -r")
}

// TestBadArgumentsExitTwo: a malformed grant ID or token, or key material
// that does not fit the key spec, is a bad argument (exit 2), and messages
// carry no library "kms: " prefix or help hint meant for cobra's errors.
func TestBadArgumentsExitTwo(t *testing.T) {
	c := initCLI(t)
	k := c.createKey()
	t.Run("malformed grant ID", func(t *testing.T) {
		c := c.with(t)
		c.fails(exitUsage, []string{"grant", "revoke", k, "not-a-grant-id"}, "grant ID")
	})
	t.Run("malformed grant token", func(t *testing.T) {
		c := c.with(t)
		c.fails(exitUsage, []string{"grant", "retire", "--token", "not-a-token"}, "grant token")
	})
	t.Run("material of the wrong size", func(t *testing.T) {
		c := c.with(t)
		c.fails(exitUsage, []string{"import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", c.write("short.bin", make([]byte, 16))}, "not valid for SYMMETRIC_DEFAULT")
	})
	t.Run("material too short to wrap", func(t *testing.T) {
		c := c.with(t)
		c.fails(exitUsage, []string{"import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", c.write("tiny.bin", []byte("abc"))}, "cannot be wrapped")
	})
	t.Run("library prefix", func(t *testing.T) {
		c := c.with(t)
		r := c.fails(exitUsage, []string{"create-key", "--spec", "NOPE"}, "NOPE")
		require.False(t, strings.HasPrefix(r.stderr, "pocketkms: kms: "), r.stderr)
		require.NotContains(t, r.stderr, "see pocketkms help", "not a command-line mistake: %s", r.stderr)
	})
}

// TestKeyFileDoesNotInitialize: only init sets a store's root key; any
// other command on a store that was never initialized says to run init,
// with a key file as with a passphrase.
func TestKeyFileDoesNotInitialize(t *testing.T) {
	c := newCLI(t)
	t.Setenv("POCKETKMS_PASSPHRASE", "")
	r := runCmd(t, nil, "--store", c.path("keys.db"), "init")
	requireFailure(t, r, exitUsage)
	require.NoFileExists(t, c.path("keys.db"), "a failed init leaves no store behind")
	// A store made without a root key (by the library, say) is not
	// initialized by the first command given a key file either.
	s, err := sqlstore.OpenSQLite(t.Context(), c.path("keys.db"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	c.fails(exitNotFound, []string{"list"}, "run pocketkms init")
	c.ok("init")
	c.ok("list")
}

// TestRewrapSymlink: rewrap of a symbolic link rewraps the file it points
// to and leaves the link a link.
func TestRewrapSymlink(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/k")
	pt := c.write("pt", []byte("linked"))
	target := c.path("target.enc")
	c.ok("encrypt", "--key", "alias/k", "--in", pt, "--out", target)
	before := c.read(target)
	link := c.path("link.enc")
	require.NoError(t, os.Symlink("target.enc", link))
	c.ok("rotate", "alias/k")
	c.ok("rewrap", link)
	info, err := os.Lstat(link)
	require.NoError(t, err)
	require.Equal(t, os.ModeSymlink, info.Mode().Type(), "the link is still a link")
	require.NotEqual(t, before, c.read(target), "the file the link points to was rewrapped")
}

// TestRewrapJSONFailedIsAList: rewrap --json lists the failed files as a
// JSON array, empty when none failed, as the other commands print empty
// lists.
func TestRewrapJSONFailedIsAList(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/k")
	ct := c.path("ct")
	c.ok("encrypt", "--key", "alias/k", "--in", c.write("pt", []byte("x")), "--out", ct)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("rewrap", ct, "--json")), &res))
	require.Equal(t, []any{}, res["failed"])
}

// TestOutputErrorNamesTheOutput: an output file that cannot be created is
// named as the user gave it, not by its temporary name.
func TestOutputErrorNamesTheOutput(t *testing.T) {
	c := initCLI(t)
	k := c.createKey()
	r := c.run("encrypt", "--key", k, "--in", c.write("pt", []byte("x")), "--out", c.path("no/such/dir/out.enc"))
	requireFailure(t, r, exitNotFound, "out.enc")
	require.NotContains(t, r.stderr, ".pocketkms-")
}

// TestReviewFindings pins fixes from review: --out follows a symbolic link
// and writes to a non-regular file in place; rewrap never drops recipients
// the store does not hold, nor adds one whose raw key name only shares a
// prefix.
func TestReviewFindings(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/k")
	pt := c.write("pt", []byte("review"))

	// --out through a symbolic link writes the file it points to.
	target := c.path("target.enc")
	require.NoError(t, os.WriteFile(target, nil, 0o600))
	link := c.path("link.enc")
	require.NoError(t, os.Symlink("target.enc", link))
	c.ok("encrypt", "--key", "alias/k", "--in", pt, "--out", link)
	info, err := os.Lstat(link)
	require.NoError(t, err)
	require.Equal(t, os.ModeSymlink, info.Mode().Type(), "the link stays a link")
	require.NotEmpty(t, c.read(target))

	// --out to a named pipe writes into it, and never replaces it.
	fifo := c.path("fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	c.ok("decrypt", "--in", target, "--out", fifo)
	require.Equal(t, "review", string(<-got))
	info, err = os.Lstat(fifo)
	require.NoError(t, err)
	require.Equal(t, os.ModeNamedPipe, info.Mode().Type(), "the pipe is still a pipe")

	// Raw keys k1 and k10: a file for k10 alone is not rewrapped to k1 too.
	k1, k10 := c.write("k1.bin", bytes.Repeat([]byte{1}, 32)), c.write("k10.bin", bytes.Repeat([]byte{10}, 32))
	c.ok("import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", k1, "--raw-namespace", "ns", "--raw-name", "k1", "--alias", "alias/k1")
	c.ok("import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", k10, "--raw-namespace", "ns", "--raw-name", "k10", "--alias", "alias/k10")
	only10 := c.path("only10.enc")
	c.ok("encrypt", "--key", "alias/k10", "--in", pt, "--out", only10)
	c.ok("rewrap", only10)
	c.ok("disable", "alias/k10")
	c.fails(exitState, []string{"decrypt", "--in", only10, "--out", c.path("x")}, "disabled")
	c.ok("enable", "alias/k10")

	// A file also encrypted to a key of another store is not rewrapped
	// without --key: that would drop the other key.
	other := initCLI(t)
	other.createKey("--alias", "alias/o")
	both := c.path("both.enc")
	// Sealed by the other store to its key and to the same raw key k1.
	other.ok("import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", k1, "--raw-namespace", "ns", "--raw-name", "k1", "--alias", "alias/k1")
	other.ok("encrypt", "--key", "alias/o", "--key", "alias/k1", "--in", pt, "--out", both)
	c.fails(exitUsage, []string{"rewrap", both}, "does not hold", "--key")
	c.ok("decrypt", "--in", both, "--out", c.path("both.out"))
	c.ok("rewrap", "--key", "alias/k1", both)
}

// TestOutputModes: encrypt's output follows the umask, decrypt's is the
// owner's alone, and rewrap keeps a file's mode.
func TestOutputModes(t *testing.T) {
	c := initCLI(t)
	c.createKey("--alias", "alias/m")
	pt := c.write("pt", []byte("modes"))
	enc := c.path("pt.enc")
	c.ok("encrypt", "--key", "alias/m", "--in", pt, "--out", enc)
	st, err := os.Stat(enc)
	require.NoError(t, err)
	assert.Equal(t, 0o666&^umask(), st.Mode().Perm())
	out := c.path("pt.out")
	c.ok("decrypt", "--in", enc, "--out", out)
	st, err = os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.NoError(t, os.Chmod(enc, 0o640))
	c.ok("rewrap", enc)
	st, err = os.Stat(enc)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())
}
