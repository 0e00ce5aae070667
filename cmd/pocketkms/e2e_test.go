package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests drive the built binary, as a user's shell would.

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// goCommand is the go command: the one on PATH (go test puts its own
// GOROOT/bin first there), else $GOROOT/bin/go.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// binary builds the command once and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pocketkms-e2e-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "pocketkms")
		out, err := exec.Command(goCommand(), "build", "-o", buildPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return buildPath
}

// childEnv is the environment of the binary: the test's, without any
// pocketkms settings, with XDG_DATA_HOME in dir (so that a command that
// omits --store never touches the user's store), plus extra.
func childEnv(dir string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "POCKETKMS_") || strings.HasPrefix(kv, "XDG_DATA_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "XDG_DATA_HOME="+filepath.Join(dir, "xdg"))
	return append(env, extra...)
}

// proc runs the binary in an environment.
type proc struct {
	t    *testing.T
	exe  string
	env  []string
	base []string
}

func newProc(t *testing.T, env []string, base ...string) *proc {
	return &proc{t: t, exe: binary(t), env: env, base: base}
}

// with returns p for a subtest.
func (p *proc) with(t *testing.T) *proc {
	q := *p
	q.t = t
	return &q
}

func (p *proc) runIn(stdin io.Reader, args ...string) result {
	p.t.Helper()
	cmd := exec.Command(p.exe, append(append([]string{}, p.base...), args...)...)
	cmd.Env = p.env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(p.t, err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func (p *proc) run(args ...string) result {
	p.t.Helper()
	return p.runIn(nil, args...)
}

func (p *proc) ok(args ...string) string {
	p.t.Helper()
	r := p.run(args...)
	require.Equal(p.t, exitOK, r.code, "pocketkms %s: stderr %q", strings.Join(args, " "), r.stderr)
	require.Empty(p.t, r.stderr, "pocketkms %s prints nothing on stderr (not a terminal)", strings.Join(args, " "))
	return r.stdout
}

func (p *proc) fails(code int, args []string, want ...string) result {
	p.t.Helper()
	r := p.run(args...)
	requireFailure(p.t, r, code, want...)
	require.Empty(p.t, r.stdout)
	return r
}

// writeRandomFile writes size pseudo-random bytes, streamed, and returns
// their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64, seed uint64) [32]byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	require.NoError(t, err)
	defer f.Close()
	var s [32]byte
	s[0] = byte(seed)
	src := mrand.NewChaCha8(s)
	h := sha256.New()
	w := io.MultiWriter(f, h)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		_, _ = src.Read(buf[:n])
		_, err := w.Write(buf[:n])
		require.NoError(t, err)
		left -= n
	}
	require.NoError(t, f.Close())
	return [32]byte(h.Sum(nil))
}

// fileSHA256 hashes a file, streamed.
func fileSHA256(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return [32]byte(h.Sum(nil))
}

// auditRecords parses the last n records of the audit log.
func (p *proc) auditRecords(n int) []map[string]any {
	p.t.Helper()
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(p.ok("audit", "tail", "-n", fmt.Sprint(n))), "\n") {
		var rec map[string]any
		require.NoError(p.t, json.Unmarshal([]byte(l), &rec), l)
		recs = append(recs, rec)
	}
	return recs
}

// lastVersion is the key version of the last audit record of op.
func (p *proc) lastVersion(op string) float64 {
	p.t.Helper()
	recs := p.auditRecords(50)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i]["op"] == op {
			v, _ := recs[i]["key_version"].(float64)
			return v
		}
	}
	p.t.Fatalf("no %s record in the audit log", op)
	return 0
}

// TestE2ELargeFile: init, create-key, encrypt a 200 MiB file, rotate,
// decrypt, rewrap, decrypt, audit verify, on a passphrase store.
func TestE2ELargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MiB end to end")
	}
	dir := t.TempDir()
	p := newProc(t, childEnv(dir, "POCKETKMS_PASSPHRASE=e2e passphrase"), "--store", filepath.Join(dir, "keys.db"))
	step := func(name string, start time.Time) {
		t.Logf("%-10s %v", name, time.Since(start).Round(time.Millisecond))
	}

	start := time.Now()
	require.Contains(t, p.ok("init"), "initialized "+filepath.Join(dir, "keys.db"))
	step("init", start)
	var row keyRow
	require.NoError(t, json.Unmarshal([]byte(p.ok("create-key", "--alias", "alias/big", "--json")), &row))

	const size = 200 << 20
	plain, enc, dec := filepath.Join(dir, "big.bin"), filepath.Join(dir, "big.bin.enc"), filepath.Join(dir, "big.out")
	start = time.Now()
	want := writeRandomFile(t, plain, size, 1)
	step("generate", start)

	start = time.Now()
	p.ok("encrypt", "--key", "alias/big", "--in", plain, "--out", enc, "--context", "purpose=e2e")
	step("encrypt", start)
	encSum := fileSHA256(t, enc)
	info, err := os.Stat(enc)
	require.NoError(t, err)
	require.Greater(t, info.Size(), int64(size))
	require.Less(t, info.Size(), int64(size)+size/100, "framing overhead under 1%")
	require.NoError(t, os.Remove(plain)) // from here on, only the hash

	require.Equal(t, "rotated alias/big to version 2\n", p.ok("rotate", "alias/big"))

	start = time.Now()
	p.ok("decrypt", "--in", enc, "--out", dec, "--context", "purpose=e2e")
	step("decrypt", start)
	require.Equal(t, want, fileSHA256(t, dec), "decrypted bytes differ")
	require.EqualValues(t, 1, p.lastVersion("Decrypt"), "the file was made under version 1")
	require.NoError(t, os.Remove(dec))

	start = time.Now()
	require.Equal(t, "rewrapped 1 of 1 files\n", p.ok("rewrap", enc))
	step("rewrap", start)
	require.NotEqual(t, encSum, fileSHA256(t, enc), "rewrap changed nothing")
	require.Empty(t, tempLeftovers(t, dir))

	start = time.Now()
	p.ok("decrypt", "--in", enc, "--out", dec, "--context", "purpose=e2e")
	step("decrypt", start)
	require.Equal(t, want, fileSHA256(t, dec), "decrypted bytes differ after rewrap")
	require.EqualValues(t, 2, p.lastVersion("Decrypt"), "the rewrapped file is under version 2")
	require.NoError(t, os.Remove(dec))

	// The context is still bound to the rewrapped file.
	p.fails(exitInvalid, []string{"decrypt", "--in", enc, "--out", dec, "--context", "purpose=other"})
	_, err = os.Stat(dec)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Empty(t, tempLeftovers(t, dir))

	require.Regexp(t, `^audit log verified: \d+ records, head [0-9a-f]{64}\n$`, p.ok("audit", "verify"))
	require.NoError(t, json.Unmarshal([]byte(p.ok("describe", "alias/big", "--json")), &row))
	require.Equal(t, 2, row.Versions)
}

// TestE2EFailures: the failure cases through the binary, with their exit
// codes and messages.
func TestE2EFailures(t *testing.T) {
	dir := t.TempDir()
	storeFlag := []string{"--store", filepath.Join(dir, "keys.db")}
	p := newProc(t, childEnv(dir, "POCKETKMS_PASSPHRASE=right"), storeFlag...)
	p.ok("init")
	p.ok("create-key", "--alias", "alias/k")
	plain := filepath.Join(dir, "pt")
	require.NoError(t, os.WriteFile(plain, bytes.Repeat([]byte("failure cases\n"), 10_000), 0o600))
	enc, out := filepath.Join(dir, "ct"), filepath.Join(dir, "out")
	p.ok("encrypt", "--key", "alias/k", "--in", plain, "--out", enc, "--context", "app=e2e", "--frame-length", "4096")
	noOutput := func(t *testing.T) {
		t.Helper()
		_, err := os.Stat(out)
		require.ErrorIs(t, err, os.ErrNotExist)
		require.Empty(t, tempLeftovers(t, dir))
	}

	t.Run("wrong passphrase", func(t *testing.T) {
		wrong := newProc(t, childEnv(dir, "POCKETKMS_PASSPHRASE=wrong"), storeFlag...)
		wrong.fails(exitRefused, []string{"decrypt", "--in", enc, "--out", out}, "wrong passphrase", "POCKETKMS_PASSPHRASE")
		noOutput(t)
		none := newProc(t, childEnv(dir), storeFlag...)
		none.fails(exitUsage, []string{"list"}, "POCKETKMS_PASSPHRASE")
	})
	t.Run("tampered file", func(t *testing.T) {
		p := p.with(t)
		msg, err := os.ReadFile(enc)
		require.NoError(t, err)
		bad := filepath.Join(dir, "bad.enc")
		require.NoError(t, os.WriteFile(bad, flip(msg, len(msg)-100), 0o600))
		p.fails(exitInvalid, []string{"decrypt", "--in", bad, "--out", out, "--context", "app=e2e"}, "invalid ciphertext", "the file was changed")
		noOutput(t)
		// Through stdin and stdout too.
		f, err := os.Open(bad)
		require.NoError(t, err)
		defer f.Close()
		r := p.runIn(f, "decrypt", "--in", "-", "--out", out)
		requireFailure(t, r, exitInvalid, "invalid ciphertext")
		noOutput(t)
	})
	t.Run("wrong context", func(t *testing.T) {
		p := p.with(t)
		p.fails(exitInvalid, []string{"decrypt", "--in", enc, "--out", out, "--context", "app=other"}, "--context")
		p.fails(exitInvalid, []string{"decrypt", "--in", enc, "--out", out, "--context", "user=me"}, "--context")
		noOutput(t)
	})
	t.Run("disabled key", func(t *testing.T) {
		p := p.with(t)
		p.ok("disable", "alias/k")
		p.fails(exitState, []string{"decrypt", "--in", enc, "--out", out}, "key is disabled", "pocketkms enable KEY")
		p.fails(exitState, []string{"encrypt", "--key", "alias/k", "--in", plain, "--out", out}, "key is disabled")
		noOutput(t)
		p.ok("enable", "alias/k")
		p.ok("decrypt", "--in", enc, "--out", out, "--context", "app=e2e")
		require.Equal(t, fileSHA256(t, plain), fileSHA256(t, out))
		require.NoError(t, os.Remove(out))
	})
	t.Run("not initialized", func(t *testing.T) {
		p := p.with(t)
		fresh := newProc(t, childEnv(dir, "POCKETKMS_PASSPHRASE=right"), "--store", filepath.Join(dir, "new.db"))
		fresh.fails(exitNotFound, []string{"list"}, "run pocketkms init")
		p.fails(exitUsage, []string{"init"}, "already initialized")
	})
	t.Run("usage", func(t *testing.T) {
		p := p.with(t)
		p.fails(exitUsage, []string{"encrypt"}, "encrypt needs")
		p.fails(exitUsage, []string{"frobnicate"}, "unknown command")
	})
	t.Run("audit log edited", func(t *testing.T) {
		p := p.with(t)
		log := filepath.Join(dir, "keys.db.audit.log")
		orig, err := os.ReadFile(log)
		require.NoError(t, err)
		lines := strings.SplitAfter(string(orig), "\n")
		lines[1] = strings.Replace(lines[1], `"op":"`, `"op":"X`, 1)
		require.NoError(t, os.WriteFile(log, []byte(strings.Join(lines, "")), 0o600))
		p.fails(exitInvalid, []string{"audit", "verify"}, "line 2")
		require.NoError(t, os.WriteFile(log, orig, 0o600))
		p.ok("audit", "verify")
	})
}

// TestE2EDefaultStore: without --store, the store is
// $XDG_DATA_HOME/pocketkms/keys.db, or ~/.local/share/pocketkms/keys.db
// when XDG_DATA_HOME is not an absolute path.
func TestE2EDefaultStore(t *testing.T) {
	dir := t.TempDir()
	xdg := filepath.Join(dir, "data")
	key := filepath.Join(dir, "root.key")
	writeKeyFile(t, key)
	p := newProc(t, append(childEnv(dir), "XDG_DATA_HOME="+xdg), "--key-file", key)
	out := p.ok("init")
	store := filepath.Join(xdg, "pocketkms", "keys.db")
	require.Contains(t, out, "initialized "+store)
	require.Contains(t, out, store+".audit.log")
	info, err := os.Stat(store)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(filepath.Dir(store))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
	id := p.ok("create-key", "--alias", "alias/default")
	require.Contains(t, id, "alias/default")
	require.Contains(t, p.ok("list"), "alias/default")
	require.FileExists(t, store+".audit.log")
	// The same store named explicitly.
	explicit := newProc(t, childEnv(dir), "--key-file", key, "--store", store)
	require.Contains(t, explicit.ok("list"), "alias/default")

	// A relative XDG_DATA_HOME is ignored, per the XDG specification.
	home := filepath.Join(dir, "home")
	require.NoError(t, os.MkdirAll(home, 0o700))
	rel := newProc(t, append(childEnv(dir), "XDG_DATA_HOME=relative/data", "HOME="+home), "--key-file", key)
	require.Contains(t, rel.ok("init"), filepath.Join(home, ".local", "share", "pocketkms", "keys.db"))
	require.FileExists(t, filepath.Join(home, ".local", "share", "pocketkms", "keys.db"))
	require.NoDirExists(t, "relative")
}

// ------------------------------------------------------------------ interop

// nodePeer returns the path of the JavaScript interop peer (the
// repository's interop/node/esdk.js, the official AWS Encryption SDK for
// JavaScript), ready to run. As in the root package's interop test, a
// missing peer fails in CI (CI set; make test installs it) and skips
// elsewhere.
func nodePeer(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "interop", "node", "esdk.js"))
	require.NoError(t, err)
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "@aws-crypto", "client-node"))
	if nodeErr != nil || modErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the node interop peer is not installed (node: %v, modules: %v); make test installs it", nodeErr, modErr)
		}
		t.Skip("the node interop peer is not installed: run `make interop-deps`")
	}
	return script
}

// TestE2EInteropNode: a file the CLI encrypts to a raw AES key imported
// into the ring decrypts with the official JavaScript Encryption SDK
// holding the same key, namespace and name, and the reverse.
func TestE2EInteropNode(t *testing.T) {
	script := nodePeer(t)
	dir := t.TempDir()
	rootKey := filepath.Join(dir, "root.key")
	writeKeyFile(t, rootKey)
	p := newProc(t, childEnv(dir), "--store", filepath.Join(dir, "keys.db"), "--key-file", rootKey)
	p.ok("init")

	material := make([]byte, 32)
	_, err := rand.Read(material)
	require.NoError(t, err)
	keyBin := filepath.Join(dir, "key.bin")
	require.NoError(t, os.WriteFile(keyBin, material, 0o600))
	const ns, name = "pocketkms-cli-interop", "shared-key"
	spec := ns + ":" + name + ":" + hex.EncodeToString(material)
	var row keyRow
	require.NoError(t, json.Unmarshal([]byte(p.ok("import-key", "--spec", "SYMMETRIC_DEFAULT", "--in", keyBin,
		"--raw-namespace", ns, "--raw-name", name, "--alias", "alias/shared", "--json")), &row))
	require.Equal(t, "EXTERNAL", row.Origin)
	p.ok("create-key", "--alias", "alias/local")

	node := func(args ...string) error {
		t.Helper()
		out, err := exec.Command("node", append([]string{script}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("node: %v: %s", err, out)
		}
		return nil
	}

	plain := filepath.Join(dir, "plain.bin")
	want := writeRandomFile(t, plain, 300_000, 2)
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("cli-to-node/signed=%v", signed), func(t *testing.T) {
			p := p.with(t)
			enc, out := filepath.Join(dir, "cli.enc"), filepath.Join(dir, "node.out")
			defer os.Remove(out)
			args := []string{"encrypt", "--key", "alias/shared", "--key", "alias/local", "--in", plain, "--out", enc,
				"--context", "tenant=17", "--context", "purpose=interop", "--frame-length", "4096"}
			if signed {
				args = append(args, "--signed")
			}
			p.ok(args...)
			require.NoError(t, node("decrypt", `{"tenant":"17","purpose":"interop"}`, enc, out, spec))
			require.Equal(t, want, fileSHA256(t, out), "node decrypted other bytes")
			if signed {
				// The SDK checks the context pocketkms stored.
				require.Error(t, node("decrypt", `{"tenant":"18"}`, enc, out, spec))
			} else {
				// Another key name does not open it.
				require.Error(t, node("decrypt", `{}`, enc, out, ns+":other-name:"+hex.EncodeToString(material)))
			}
		})
	}
	for _, suite := range []string{"0478", "0578"} {
		t.Run("node-to-cli/suite="+suite, func(t *testing.T) {
			p := p.with(t)
			enc, out := filepath.Join(dir, "node.enc"), filepath.Join(dir, "cli.out")
			defer os.Remove(out)
			require.NoError(t, node("encrypt", suite, "1000", `{"origin":"node","n":"1"}`, plain, enc, spec))
			p.ok("decrypt", "--in", enc, "--out", out, "--context", "origin=node", "--context", "n=1")
			require.Equal(t, want, fileSHA256(t, out), "pocketkms decrypted other bytes")
			require.NoError(t, os.Remove(out))
			p.fails(exitInvalid, []string{"decrypt", "--in", enc, "--out", out, "--context", "origin=go"})
			_, err := os.Stat(out)
			require.ErrorIs(t, err, os.ErrNotExist)

			// Rewrapped by the CLI, the file still opens in node.
			p.ok("rewrap", enc)
			require.NoError(t, node("decrypt", `{"origin":"node"}`, enc, out, spec))
			require.Equal(t, want, fileSHA256(t, out))
		})
	}
	t.Run("disabled raw key", func(t *testing.T) {
		p := p.with(t)
		enc := filepath.Join(dir, "raw-only.enc")
		p.ok("encrypt", "--key", "alias/shared", "--in", plain, "--out", enc)
		p.ok("disable", "alias/shared")
		p.fails(exitState, []string{"decrypt", "--in", enc, "--out", filepath.Join(dir, "x")}, "disabled")
		p.ok("enable", "alias/shared")
	})
}

// ------------------------------------------------------------------ terminals

// scriptCommand returns util-linux script, which runs a command on a
// pseudo-terminal. In CI a missing script fails; elsewhere it skips.
func scriptCommand(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("script")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/script"); serr == nil {
			p, err = "/usr/bin/script", nil
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("util-linux script is not installed: %v", err)
		}
		t.Skip("util-linux script is not installed")
	}
	return p
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// onTerminal runs a shell command line on a pseudo-terminal and returns
// what the terminal showed (stdout and stderr) and the exit code.
func onTerminal(t *testing.T, env []string, stdin io.Reader, line string) (string, int) {
	t.Helper()
	cmd := exec.Command(scriptCommand(t), "-qfec", line, "/dev/null")
	cmd.Env = append(append([]string{}, env...), "SHELL=/bin/sh", "TERM=xterm")
	cmd.Stdin = stdin
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return string(out), code
}

// slowFixture is a key-file store with a key, and a 16 MiB file whose
// encryption with --frame-length 32 (half a million frames), and
// decryption, take over a second here.
type slowFixture struct {
	dir, plain, enc string
	env             []string
	flags           []string // --store, --key-file
	line            func(args ...string) string
}

func newSlowFixture(t *testing.T) *slowFixture {
	dir := t.TempDir()
	key := filepath.Join(dir, "root.key")
	writeKeyFile(t, key)
	f := &slowFixture{dir: dir, plain: filepath.Join(dir, "plain"), enc: filepath.Join(dir, "plain.enc"), env: childEnv(dir),
		flags: []string{"--store", filepath.Join(dir, "keys.db"), "--key-file", key}}
	exe := binary(t)
	f.line = func(args ...string) string {
		q := []string{shellQuote(exe)}
		for _, a := range append(append([]string{}, f.flags...), args...) {
			q = append(q, shellQuote(a))
		}
		return strings.Join(q, " ")
	}
	p := newProc(t, f.env, f.flags...)
	p.ok("init")
	p.ok("create-key", "--alias", "alias/slow")
	writeRandomFile(t, f.plain, 16<<20, 3)
	return f
}

// TestE2EProgressBar: the bar is drawn on a terminal, and nothing is
// written to stderr when it is a pipe or a file, or with --quiet.
func TestE2EProgressBar(t *testing.T) {
	scriptCommand(t)
	f := newSlowFixture(t)
	p := newProc(t, f.env, f.flags...)

	start := time.Now()
	shown, code := onTerminal(t, f.env, nil, f.line("encrypt", "--key", "alias/slow", "--in", f.plain, "--out", f.enc, "--frame-length", "32"))
	took := time.Since(start)
	require.Equal(t, exitOK, code, shown)
	t.Logf("encrypt on a terminal took %v", took)
	require.Contains(t, shown, "\rencrypting [", "no bar in %v of encryption", took)
	require.Regexp(t, `encrypting \[=* *\] +\d+% [\d.]+ MiB / 16\.0 MiB`, shown)
	require.Contains(t, shown, "MiB/s")
	require.True(t, strings.HasSuffix(shown, "\r\x1b[K"), "the bar's line is cleared at the end: %q", shown[max(0, len(shown)-80):])
	require.FileExists(t, f.enc)

	dec := filepath.Join(f.dir, "plain.dec")
	shown, code = onTerminal(t, f.env, nil, f.line("decrypt", "--in", f.enc, "--out", dec))
	require.Equal(t, exitOK, code, shown)
	require.Contains(t, shown, "\rdecrypting [")
	require.Contains(t, shown, "%")
	require.Equal(t, fileSHA256(t, f.plain), fileSHA256(t, dec))
	require.NoError(t, os.Remove(dec))

	// --quiet: no bar on the terminal.
	shown, code = onTerminal(t, f.env, nil, f.line("--quiet", "decrypt", "--in", f.enc, "--out", dec))
	require.Equal(t, exitOK, code, shown)
	require.Empty(t, shown)
	require.NoError(t, os.Remove(dec))

	// stderr a file, on a terminal otherwise: nothing in the file.
	errFile := filepath.Join(f.dir, "stderr.txt")
	shown, code = onTerminal(t, f.env, nil, f.line("decrypt", "--in", f.enc, "--out", dec)+" 2>"+shellQuote(errFile))
	require.Equal(t, exitOK, code, shown)
	require.Empty(t, shown)
	b, err := os.ReadFile(errFile)
	require.NoError(t, err)
	require.Empty(t, b)
	require.NoError(t, os.Remove(dec))

	// stderr a pipe: nothing on it, in a run long enough to draw the bar
	// a few times.
	start = time.Now()
	r := p.run("encrypt", "--key", "alias/slow", "--in", f.plain, "--out", f.enc, "--frame-length", "32")
	took = time.Since(start)
	require.Greater(t, took, 300*time.Millisecond, "the file encrypts too fast for the test to mean anything; make it bigger")
	require.Equal(t, exitOK, r.code)
	require.Empty(t, r.stderr)
	require.Empty(t, r.stdout)
}

// TestE2ERewrapOnTerminal: rewrap with its progress bar on a terminal.
func TestE2ERewrapOnTerminal(t *testing.T) {
	scriptCommand(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "root.key")
	writeKeyFile(t, key)
	flags := []string{"--store", filepath.Join(dir, "keys.db"), "--key-file", key}
	p := newProc(t, childEnv(dir), flags...)
	p.ok("init")
	p.ok("create-key", "--alias", "alias/k")
	plain, enc := filepath.Join(dir, "pt"), filepath.Join(dir, "ct")
	require.NoError(t, os.WriteFile(plain, []byte("rewrap me"), 0o600))
	p.ok("encrypt", "--key", "alias/k", "--in", plain, "--out", enc)
	p.ok("rotate", "alias/k")

	line := []string{shellQuote(binary(t))}
	for _, a := range append(flags, "rewrap", enc) {
		line = append(line, shellQuote(a))
	}
	shown, code := onTerminal(t, childEnv(dir), nil, strings.Join(line, " "))
	require.NotContains(t, shown, "panic")
	require.Equal(t, exitOK, code, shown)
	require.Contains(t, shown, "rewrapped 1 of 1 files")
}

// TestE2EInterrupt: Ctrl-C (SIGINT) stops a long encryption, leaving no
// output file, and says so.
func TestE2EInterrupt(t *testing.T) {
	f := newSlowFixture(t)
	cmd := exec.Command(binary(t), append(append([]string{}, f.flags...), "encrypt", "--key", "alias/slow", "--in", f.plain, "--out", f.enc, "--frame-length", "32")...)
	cmd.Env = f.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	require.Equal(t, exitFailure, code, "stderr %q", stderr.String())
	requireOneLineError(t, stderr.String())
	require.Contains(t, stderr.String(), "interrupted")
	require.NoFileExists(t, f.enc)
	require.Empty(t, tempLeftovers(t, f.dir))
}

// TestE2EAuditVerifyAsksOnce: audit verify on a terminal asks for the
// passphrase once (it reuses the root key it opened the store with).
func TestE2EAuditVerifyAsksOnce(t *testing.T) {
	scriptCommand(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "keys.db")
	p := newProc(t, childEnv(dir, "POCKETKMS_PASSPHRASE=typed"), "--store", store)
	p.ok("init")
	p.ok("create-key")
	line := shellQuote(binary(t)) + " --store " + shellQuote(store) + " audit verify"
	shown, code := onTerminal(t, childEnv(dir), strings.NewReader("typed\ntyped\n"), line)
	require.Equal(t, exitOK, code, shown)
	require.Contains(t, shown, "audit log verified")
	require.Equal(t, 1, strings.Count(shown, "Passphrase:"), "prompts: %q", shown)
}

// TestE2EConcurrentCommands: commands run at the same time on one store
// (xargs -P, two terminals) all succeed, and the audit log verifies.
func TestE2EConcurrentCommands(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "root.key")
	writeKeyFile(t, key)
	p := newProc(t, childEnv(dir), "--store", filepath.Join(dir, "keys.db"), "--key-file", key)
	p.ok("init")
	p.ok("create-key", "--alias", "alias/k")
	plain := filepath.Join(dir, "pt")
	require.NoError(t, os.WriteFile(plain, []byte("in parallel"), 0o600))
	const n = 8
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(p.exe, append(append([]string{}, p.base...), "encrypt", "--key", "alias/k", "--in", plain, "--out", filepath.Join(dir, fmt.Sprintf("ct%d", i)))...)
			cmd.Env = p.env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				code = -1
			}
			results[i] = result{code: code, stderr: stderr.String()}
		}()
	}
	wg.Wait()
	for i, r := range results {
		require.Equal(t, exitOK, r.code, "process %d: %s", i, r.stderr)
	}
	require.Contains(t, p.ok("audit", "verify"), "audit log verified")
}

// TestE2EUmask: the binary's encrypted output follows the umask it runs
// with.
func TestE2EUmask(t *testing.T) {
	dir := t.TempDir()
	writeKeyFile(t, filepath.Join(dir, "root.key"))
	base := []string{"--store", filepath.Join(dir, "keys.db"), "--key-file", filepath.Join(dir, "root.key")}
	p := newProc(t, childEnv(dir), base...)
	p.ok("init")
	p.ok("create-key", "--alias", "alias/u")
	pt := filepath.Join(dir, "pt")
	require.NoError(t, os.WriteFile(pt, []byte("umask"), 0o600))
	enc := filepath.Join(dir, "pt.enc")
	args := append(append([]string{}, base...), "encrypt", "--key", "alias/u", "--in", pt, "--out", enc)
	cmd := exec.Command("sh", append([]string{"-c", `umask 077 && exec "$0" "$@"`, binary(t)}, args...)...)
	cmd.Env = childEnv(dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	st, err := os.Stat(enc)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "umask 077 leaves the owner alone")
}
