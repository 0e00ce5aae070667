package kms_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// chainFixture is a ring whose auditor is a chained log in buf.
type chainFixture struct {
	ring  *kmstest.Ring
	buf   *bytes.Buffer
	log   *kms.ChainedLog
	cfg   kms.ChainConfig
	store *kms.MemoryStore
}

func newChainFixture(t *testing.T) *chainFixture {
	t.Helper()
	store := kms.NewMemoryStore()
	root, err := kms.NewAESRootKey(bytes.Repeat([]byte{9}, 32), nil)
	require.NoError(t, err)
	cfg := kms.ChainConfig{Store: store, RootKey: root}
	buf := &bytes.Buffer{}
	log, err := kms.OpenChainedLog(t.Context(), buf, cfg)
	require.NoError(t, err)
	r := kmstest.New(t, kms.Config{Store: store, RootKey: root, Auditor: log, AuditRequired: true})
	return &chainFixture{ring: r, buf: buf, log: log, cfg: cfg, store: store}
}

// fill runs n operations, so that the log holds records.
func (f *chainFixture) fill(t *testing.T, n int) {
	t.Helper()
	k := f.ring.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	for i := 1; i < n; i++ {
		_, err := f.ring.Encrypt(t.Context(), kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("x"), EncryptionContext: kms.EncryptionContext{"n": string(rune('a' + i%26))}})
		require.NoError(t, err)
	}
}

func (f *chainFixture) lines() [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(f.buf.Bytes(), []byte("\n")), []byte("\n"))
}

func joinLines(lines [][]byte) []byte {
	var b []byte
	for _, l := range lines {
		b = append(b, bytes.TrimSuffix(l, []byte("\n"))...)
		b = append(b, '\n')
	}
	return b
}

func TestChainedLogVerifies(t *testing.T) {
	t.Parallel()
	f := newChainFixture(t)
	f.fill(t, 10)
	rep, err := kms.VerifyChainedLog(t.Context(), bytes.NewReader(f.buf.Bytes()), f.cfg)
	require.NoError(t, err)
	assert.Equal(t, uint64(10), rep.Records)
	sum := sha256.Sum256(f.lines()[9]) // the last line, without its newline
	assert.Equal(t, hex.EncodeToString(sum[:]), rep.Head)

	// Every record is one JSON object with the event's fields.
	var rec map[string]any
	require.NoError(t, json.Unmarshal(f.lines()[1], &rec))
	assert.Equal(t, "Encrypt", rec["op"])
	assert.Equal(t, "allowed", rec["outcome"])
	assert.EqualValues(t, 2, rec["seq"])
	assert.NotEmpty(t, rec["key_arn"])
	assert.Equal(t, map[string]any{"n": "b"}, rec["encryption_context"])
	assert.Len(t, rec["mac"], 64)
	assert.Len(t, rec["prev"], 64)
}

// TestChainedLogTampering checks that the verifier catches each kind of
// tampering and names the first bad record.
func TestChainedLogTampering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tamper  func(lines [][]byte) [][]byte
		line    int
		problem kms.ChainProblem
	}{
		{"edit a field", func(l [][]byte) [][]byte {
			l[4] = bytes.Replace(l[4], []byte(`"outcome":"allowed"`), []byte(`"outcome":"denied"`), 1)
			return l
		}, 5, kms.ChainBadMAC},
		{"edit the context", func(l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte(`{"n":"`), []byte(`{"m":"`), 1)
			return l
		}, 7, kms.ChainBadMAC},
		{"delete a record", func(l [][]byte) [][]byte { return append(l[:3], l[4:]...) }, 4, kms.ChainGap},
		{"delete the first record", func(l [][]byte) [][]byte { return l[1:] }, 1, kms.ChainGap},
		{"swap two records", func(l [][]byte) [][]byte { l[2], l[3] = l[3], l[2]; return l }, 3, kms.ChainGap},
		{"repeat a record", func(l [][]byte) [][]byte {
			return append(append(append([][]byte{}, l[:5]...), l[4]), l[5:]...)
		}, 6, kms.ChainOutOfOrder},
		{"cut off the end", func(l [][]byte) [][]byte { return l[:7] }, 8, kms.ChainTruncated},
		{"cut off everything", func(l [][]byte) [][]byte { return nil }, 1, kms.ChainTruncated},
		{"cut a line short", func(l [][]byte) [][]byte { l[9] = l[9][:len(l[9])/2]; return l }, 10, kms.ChainBadRecord},
		{"forge a MAC", func(l [][]byte) [][]byte {
			// Edit a record and MAC it again under a key that is not the
			// chain's, keeping the hash links: the MAC still fails.
			l[5] = remac(bytes.Replace(l[5], []byte(`"outcome":"allowed"`), []byte(`"outcome":"failed"`), 1), bytes.Repeat([]byte{1}, 32))
			return l
		}, 6, kms.ChainBadMAC},
		{"a line that is not a record", func(l [][]byte) [][]byte {
			return append(append(append([][]byte{}, l[:2]...), []byte("hello\n")), l[2:]...)
		}, 3, kms.ChainBadRecord},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newChainFixture(t)
			f.fill(t, 10)
			bad := joinLines(tc.tamper(f.lines()))
			_, err := kms.VerifyChainedLog(t.Context(), bytes.NewReader(bad), f.cfg)
			var ce *kms.ChainError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.line, ce.Line, "the first bad record")
			assert.Equal(t, tc.problem, ce.Problem)
			assert.Contains(t, err.Error(), "line ")
		})
	}
}

// remac replaces a line's MAC with one under key.
func remac(line, key []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	i := bytes.LastIndex(line, []byte(`,"mac":"`))
	body := append(bytes.Clone(line[:i]), '}')
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pocketkms audit record v1\n"))
	m.Write(body)
	out := append(bytes.Clone(line[:i]), `,"mac":"`...)
	out = hex.AppendEncode(out, m.Sum(nil))
	return append(out, `"}`+"\n"...)
}

// TestChainedLogWrongKey: a log verified against another chain's key
// fails at its first record.
func TestChainedLogWrongKey(t *testing.T) {
	t.Parallel()
	f := newChainFixture(t)
	f.fill(t, 3)
	other := newChainFixture(t)
	other.fill(t, 3)
	_, err := kms.VerifyChainedLog(t.Context(), bytes.NewReader(f.buf.Bytes()), other.cfg)
	var ce *kms.ChainError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.Line)
	assert.Equal(t, kms.ChainBadMAC, ce.Problem)
}

// TestChainedLogReopen: a log opened again continues the chain where the
// Store's head says it stopped.
func TestChainedLogReopen(t *testing.T) {
	t.Parallel()
	f := newChainFixture(t)
	f.fill(t, 4)
	log2, err := kms.OpenChainedLog(t.Context(), f.buf, f.cfg)
	require.NoError(t, err)
	ring2 := kmstest.New(t, kms.Config{Store: f.store, RootKey: f.cfg.RootKey, Auditor: log2, AuditRequired: true})
	_, err = ring2.ListKeys(t.Context(), kms.ListKeysInput{})
	require.NoError(t, err)
	rep, err := kms.VerifyChainedLog(t.Context(), bytes.NewReader(f.buf.Bytes()), f.cfg)
	require.NoError(t, err)
	assert.Equal(t, uint64(5), rep.Records)
}

type failingWriter struct{ fail bool }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.fail {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestChainedLogFailsClosed: with AuditRequired, a log that cannot write
// fails the operation before its result is released, and stays failed.
func TestChainedLogFailsClosed(t *testing.T) {
	t.Parallel()
	store := kms.NewMemoryStore()
	root, err := kms.NewAESRootKey(bytes.Repeat([]byte{3}, 32), nil)
	require.NoError(t, err)
	w := &failingWriter{}
	log, err := kms.OpenChainedLog(t.Context(), w, kms.ChainConfig{Store: store, RootKey: root})
	require.NoError(t, err)
	ring, err := kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Auditor: log, AuditRequired: true})
	require.NoError(t, err)
	k, err := ring.CreateKey(t.Context(), kms.CreateKeyInput{})
	require.NoError(t, err)

	w.fail = true
	out, err := ring.Encrypt(t.Context(), kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("secret")})
	require.ErrorIs(t, err, kms.ErrAuditFailed)
	assert.Nil(t, out, "no result without its audit record")
	w.fail = false
	_, err = ring.Encrypt(t.Context(), kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("secret")})
	require.ErrorIs(t, err, kms.ErrAuditFailed, "a chain that lost a record cannot go on")
}

// TestChainedLogHoldsNoSecrets: records carry no plaintext, data key or
// key material, and the log's formatting shows no key.
func TestChainedLogHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	f := newChainFixture(t)
	k := f.ring.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	plaintext := []byte("the plaintext that must never be logged")
	enc, err := f.ring.Encrypt(t.Context(), kms.EncryptInput{KeyID: k.KeyID, Plaintext: plaintext})
	require.NoError(t, err)
	dec, err := f.ring.Decrypt(t.Context(), kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	require.NoError(t, err)
	dk, err := f.ring.GenerateDataKey(t.Context(), kms.GenerateDataKeyInput{KeyID: k.KeyID, KeySpec: kms.AES256})
	require.NoError(t, err)
	log := f.buf.String()
	assert.NotContains(t, log, string(plaintext))
	assert.NotContains(t, log, string(dec.Plaintext))
	for _, secret := range [][]byte{dk.Plaintext, plaintext} {
		assert.NotContains(t, log, hex.EncodeToString(secret))
		assert.False(t, bytes.Contains(f.buf.Bytes(), secret))
	}
	assert.Equal(t, "kms.ChainedLog(default, seq 4)", fmt.Sprint(f.log))
	assert.Equal(t, "kms.ChainedLog(default, seq 4)", fmt.Sprintf("%+v", f.log))
}

func TestSlogAuditor(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	r := kmstest.New(t, kms.Config{Auditor: kms.MultiAuditor{kms.SlogAuditor{Logger: logger}, &kms.Recorder{}}})
	k := r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	out.Reset()
	ctx := kms.WithPrincipal(t.Context(), kms.Principal{ARN: "arn:aws:iam::111122223333:role/app", Tags: map[string]string{"secret-tag": "x"}})
	_, err := r.Encrypt(ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte("do not log me"), EncryptionContext: kms.EncryptionContext{"tenant": "7"}})
	require.NoError(t, err)
	_, err = r.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/none", Plaintext: []byte("x")})
	require.Error(t, err)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	var ok, failed struct {
		Level string
		Msg   string
		Event map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &ok))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &failed))
	assert.Equal(t, "INFO", ok.Level)
	assert.Equal(t, "kms", ok.Msg)
	assert.Equal(t, "Encrypt", ok.Event["op"])
	assert.Equal(t, "allowed", ok.Event["outcome"])
	assert.Equal(t, k.KeyID, ok.Event["key_id"])
	assert.Equal(t, "arn:aws:iam::111122223333:role/app", ok.Event["principal_arn"])
	assert.Equal(t, map[string]any{"tenant": "7"}, ok.Event["encryption_context"])
	assert.Equal(t, "WARN", failed.Level)
	assert.Equal(t, "NotFoundException", failed.Event["error_code"])
	assert.NotContains(t, out.String(), "do not log me")
	assert.NotContains(t, out.String(), "secret-tag", "principal tags stay out of logs")
}

func TestMultiAuditorJoinsErrors(t *testing.T) {
	t.Parallel()
	rec := &kms.Recorder{}
	boom := errors.New("sink down")
	m := kms.MultiAuditor{kms.AuditorFunc(func(context.Context, kms.Event) error { return boom }), rec}
	err := m.Audit(t.Context(), kms.Event{Op: kms.OpListKeys})
	require.ErrorIs(t, err, boom)
	assert.Len(t, rec.Events(), 1, "a failing auditor does not stop the others")
}

// FuzzVerifyChainedLog feeds arbitrary logs, seeded with a real one and
// tampered copies, to the verifier: it must never panic, and must either
// verify or name a bad line within the log.
func FuzzVerifyChainedLog(f *testing.F) {
	store := kms.NewMemoryStore()
	root, err := kms.NewAESRootKey(bytes.Repeat([]byte{5}, 32), nil)
	if err != nil {
		f.Fatal(err)
	}
	cfg := kms.ChainConfig{Store: store, RootKey: root}
	var buf bytes.Buffer
	log, err := kms.OpenChainedLog(context.Background(), &buf, cfg)
	if err != nil {
		f.Fatal(err)
	}
	ring, err := kms.NewKeyRing(kms.Config{Store: store, RootKey: root, Auditor: log})
	if err != nil {
		f.Fatal(err)
	}
	k, err := ring.CreateKey(context.Background(), kms.CreateKeyInput{})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		_, _ = ring.Encrypt(context.Background(), kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte{byte(i)}, EncryptionContext: kms.EncryptionContext{"i": "x"}})
	}
	good := bytes.Clone(buf.Bytes())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte(`"allowed"`), []byte(`"denied"`), 1))
	f.Add([]byte{})
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := kms.VerifyChainedLog(context.Background(), bytes.NewReader(data), cfg)
		if err != nil {
			var ce *kms.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("untyped error: %v", err)
			}
			if lines := bytes.Count(data, []byte("\n")) + 2; ce.Line < 1 || ce.Line > lines {
				t.Fatalf("line %d outside a log of %d lines", ce.Line, lines)
			}
			return
		}
		if !bytes.Equal(data, good) && !bytes.Equal(bytes.TrimSuffix(data, []byte("\n")), bytes.TrimSuffix(good, []byte("\n"))) {
			// Only the log itself (or a copy that differs in line endings
			// the scanner ignores) may verify.
			if rep.Records != 4 {
				t.Fatalf("a different log verified with %d records", rep.Records)
			}
		}
	})
}

// FuzzRetireGrantToken feeds arbitrary grant tokens to RetireGrant: it
// must never panic and fail with a typed error.
func FuzzRetireGrantToken(f *testing.F) {
	ring, err := kms.NewKeyRing(kms.Config{})
	if err != nil {
		f.Fatal(err)
	}
	k, err := ring.CreateKey(context.Background(), kms.CreateKeyInput{})
	if err != nil {
		f.Fatal(err)
	}
	g, err := ring.CreateGrant(context.Background(), kms.CreateGrantInput{KeyID: k.KeyID, GranteePrincipal: "arn:aws:iam::111122223333:role/a", Operations: []kms.Op{kms.OpEncrypt}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(g.GrantToken)
	f.Add(g.GrantToken[:20])
	f.Add("pkgt1")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == g.GrantToken {
			return // retiring the real grant is not the point
		}
		err := ring.RetireGrant(context.Background(), kms.RetireGrantInput{GrantToken: tok})
		if err == nil {
			t.Fatal("a fuzzed token retired a grant")
		}
		var ke *kms.Error
		if !errors.As(err, &ke) || kms.ErrorCode(err) == "KMSInternalException" {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

// TestChainedLogReviewFindings: a huge context is recorded without it, and
// a RewrapRootKey under a running log does not break it.
func TestChainedLogReviewFindings(t *testing.T) {
	t.Parallel()
	f := newChainFixture(t)
	huge := kms.EncryptionContext{"k": strings.Repeat("<", 200<<10)}
	_, err := f.ring.Decrypt(t.Context(), kms.DecryptInput{CiphertextBlob: []byte("x"), EncryptionContext: huge})
	require.Error(t, err)
	f.fill(t, 3)
	_, err = kms.VerifyChainedLog(t.Context(), bytes.NewReader(f.buf.Bytes()), f.cfg)
	require.NoError(t, err, "an oversized context does not break the log")
	assert.Contains(t, string(f.lines()[0]), `"encryption_context_omitted":true`)

	// The root key moves while the log runs: the log goes on.
	newRoot, err := kms.NewAESRootKey(bytes.Repeat([]byte{8}, 32), nil)
	require.NoError(t, err)
	both := kms.RootKeys{Current: newRoot, Previous: []kms.RootKey{f.cfg.RootKey}}
	_, err = kms.RewrapRootKey(t.Context(), f.store, both)
	require.NoError(t, err)
	f.fill(t, 2)
	_, err = kms.VerifyChainedLog(t.Context(), bytes.NewReader(f.buf.Bytes()), kms.ChainConfig{Store: f.store, RootKey: newRoot})
	require.NoError(t, err)

	require.NoError(t, f.log.Close())
	require.Error(t, f.log.Audit(t.Context(), kms.Event{Op: kms.OpListKeys}), "a closed log takes no more events")
}

// TestChainedLogLineEndings: the log's bytes are authenticated exactly: a
// carriage return or a missing last newline does not verify.
func TestChainedLogLineEndings(t *testing.T) {
	t.Parallel()
	f := newChainFixture(t)
	f.fill(t, 3)
	for name, bad := range map[string][]byte{
		"CRLF":            bytes.ReplaceAll(f.buf.Bytes(), []byte("\n"), []byte("\r\n")),
		"no last newline": bytes.TrimSuffix(f.buf.Bytes(), []byte("\n")),
	} {
		_, err := kms.VerifyChainedLog(t.Context(), bytes.NewReader(bad), f.cfg)
		var ce *kms.ChainError
		require.ErrorAs(t, err, &ce, name)
	}
}

// TestChainedLogResume: a record lost between saving the head and writing
// its line (a crash) is recorded as lost when the log is opened again with
// Resume, and the chain verifies again, with the loss counted.
func TestChainedLogResume(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := kms.NewMemoryStore()
	root, err := kms.NewAESRootKey(bytes.Repeat([]byte{4}, 32), nil)
	require.NoError(t, err)
	var file bytes.Buffer
	w := &failingWriter{}
	cfg := kms.ChainConfig{Store: store, RootKey: root}
	log1, err := kms.OpenChainedLog(ctx, io.MultiWriter(&file, w), cfg)
	require.NoError(t, err)
	require.NoError(t, log1.Audit(ctx, kms.Event{Op: kms.OpListKeys, Outcome: kms.OutcomeAllowed}))
	w.fail = true // the "crash": the head is saved, the line never written
	require.Error(t, log1.Audit(ctx, kms.Event{Op: kms.OpListKeys, Outcome: kms.OutcomeAllowed}))
	file.Truncate(bytes.LastIndexByte(file.Bytes()[:file.Len()-1], '\n') + 1) // MultiWriter stopped at w; keep whole lines only
	_, err = kms.VerifyChainedLog(ctx, bytes.NewReader(file.Bytes()), cfg)
	var ce *kms.ChainError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, kms.ChainTruncated, ce.Problem)

	// Without Resume the restarted chain cannot be verified past the loss;
	// with it, the loss is on record and the chain goes on.
	resume := cfg
	resume.Resume = bytes.NewReader(bytes.Clone(file.Bytes()))
	log2, err := kms.OpenChainedLog(ctx, &file, resume)
	require.NoError(t, err)
	require.NoError(t, log2.Audit(ctx, kms.Event{Op: kms.OpListKeys, Outcome: kms.OutcomeAllowed}))
	rep, err := kms.VerifyChainedLog(ctx, bytes.NewReader(file.Bytes()), cfg)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), rep.Records)
	assert.Equal(t, 1, rep.Lost)
	assert.Contains(t, file.String(), `"outcome":"lost"`)

	// Opening again with Resume on a log that is whole changes nothing.
	resume.Resume = bytes.NewReader(bytes.Clone(file.Bytes()))
	_, err = kms.OpenChainedLog(ctx, &file, resume)
	require.NoError(t, err)
	rep, err = kms.VerifyChainedLog(ctx, bytes.NewReader(file.Bytes()), cfg)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), rep.Records)
}
