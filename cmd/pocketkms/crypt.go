package main

import (
	"bufio"
	"context"
	"crypto"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pocketkms/kms"
)

// Tags that mark a key imported as a raw keyring's wrapping key, so that
// files for (and from) the official Encryption SDKs' raw AES and RSA
// keyrings name it the same way: the keyring's namespace and key name.
const (
	tagRawNamespace = "pocketkms:raw-namespace"
	tagRawName      = "pocketkms:raw-name"
	tagRawOAEPHash  = "pocketkms:raw-oaep-hash" // SHA-1, SHA-256, SHA-384 or SHA-512
)

var oaepHashes = map[string]crypto.Hash{"SHA-1": crypto.SHA1, "SHA-256": crypto.SHA256, "SHA-384": crypto.SHA384, "SHA-512": crypto.SHA512}

func keyTags(ctx context.Context, r *kms.KeyRing, keyID string) (map[string]string, error) {
	out, err := r.ListResourceTags(ctx, kms.ListResourceTagsInput{KeyID: keyID})
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, t := range out.Tags {
		m[t.TagKey] = t.TagValue
	}
	return m, nil
}

// recipientFor returns the envelope recipient of a key: a raw keyring for
// keys imported as one, else the key itself (an aws-kms recipient).
func recipientFor(ctx context.Context, r *kms.KeyRing, name string) (kms.Recipient, error) {
	m, err := r.DescribeKey(ctx, name)
	if err != nil {
		return nil, err
	}
	tags, err := keyTags(ctx, r, m.KeyID)
	if err != nil {
		return nil, err
	}
	ns, nm := tags[tagRawNamespace], tags[tagRawName]
	if ns == "" {
		return kms.KeyRecipient(m.Arn), nil
	}
	if m.KeySpec == kms.SymmetricDefault {
		return kms.RawAESKeyRecipient(ns, nm, m.KeyID)
	}
	h, ok := oaepHashes[tags[tagRawOAEPHash]]
	if !ok {
		h = crypto.SHA256
	}
	return kms.RawRSAKeyRecipient(ns, nm, m.KeyID, h)
}

// recipientsFor returns the recipients of the keys named.
func recipientsFor(ctx context.Context, r *kms.KeyRing, names []string) ([]kms.Recipient, error) {
	var out []kms.Recipient
	for _, n := range names {
		rec, err := recipientFor(ctx, r, n)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// rawKey is a key imported as a raw keyring key.
type rawKey struct {
	id  string
	aes bool // raw AES (else raw RSA)
}

// rawIndex finds the keys imported as raw keyring keys, by namespace and
// name, once per command.
func (a *app) rawIndex(ctx context.Context, r *kms.KeyRing) (map[[2]string]rawKey, error) {
	if a.raw != nil {
		return a.raw, nil
	}
	idx := map[[2]string]rawKey{}
	marker := ""
	for {
		out, err := r.ListKeys(ctx, kms.ListKeysInput{Limit: 1000, Marker: marker})
		if err != nil {
			return nil, err
		}
		for _, k := range out.Keys {
			tags, err := keyTags(ctx, r, k.KeyID)
			if err != nil {
				continue
			}
			if ns := tags[tagRawNamespace]; ns != "" {
				m, err := r.DescribeKey(ctx, k.KeyID)
				if err != nil {
					continue
				}
				idx[[2]string{ns, tags[tagRawName]}] = rawKey{id: k.KeyID, aes: m.KeySpec == kms.SymmetricDefault}
			}
		}
		if !out.Truncated {
			a.raw = idx
			return idx, nil
		}
		marker = out.NextMarker
	}
}

// rawName returns the key name in a raw keyring's provider info: for raw
// AES, the name followed by the tag length, IV length and IV (20 bytes);
// for raw RSA, the name alone.
func rawNameMatches(info []byte, name string, aes bool) bool {
	if aes {
		return len(info) == len(name)+20 && string(info[:len(name)]) == name
	}
	return string(info) == name
}

// openRecipients returns the recipients of the ring that may open a
// message with this header, and how many of the message's recipients the
// store does not hold.
func (a *app) openRecipients(ctx context.Context, r *kms.KeyRing, h *kms.Header) ([]kms.Recipient, int, error) {
	var out []kms.Recipient
	unheld := 0
	for _, hr := range h.Recipients {
		if hr.ProviderID == "aws-kms" {
			// A key of this store: its ARN names it, and the store has it.
			if m, err := r.DescribeKey(ctx, hr.KeyARN); err == nil && m.Arn == hr.KeyARN {
				out = append(out, kms.KeyRecipient(hr.KeyARN))
			} else {
				unheld++
			}
			continue
		}
		raw, err := a.rawIndex(ctx, r)
		if err != nil {
			return nil, 0, err
		}
		found := false
		for k, key := range raw {
			if k[0] == hr.ProviderID && rawNameMatches(hr.ProviderInfo, k[1], key.aes) {
				rec, err := recipientFor(ctx, r, key.id)
				if err != nil {
					return nil, 0, err
				}
				out = append(out, rec)
				found = true
			}
		}
		if !found {
			unheld++
		}
	}
	if len(out) == 0 {
		return nil, 0, &hintError{exitNotFound, "no key of this store can open the file: it was encrypted for keys this store does not hold", kms.ErrNotFound}
	}
	return out, unheld, nil
}

// readHeader peeks at a message's header without consuming it.
func readHeader(br *bufio.Reader) (*kms.Header, error) {
	for _, n := range []int{64 << 10, 4 << 20} {
		b, err := br.Peek(n)
		if len(b) == 0 && err != nil {
			return nil, &hintError{exitInvalid, "the input is empty or unreadable: not an encrypted file", kms.ErrInvalidCiphertext}
		}
		h, herr := kms.ParseHeader(b)
		if herr == nil {
			return h, nil
		}
		if len(b) < n { // the whole input is there: the header is bad
			return nil, herr
		}
	}
	return nil, fmt.Errorf("%w: the header is larger than 4 MiB", kms.ErrInvalidCiphertext)
}

// input opens --in ("-" is stdin) and returns its size when known.
func (a *app) input(path string) (io.ReadCloser, int64, error) {
	if path == "-" {
		return io.NopCloser(a.stdin), 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, nil
}

// output returns --out ("-" is stdout) as a writer with commit and abort.
func (a *app) output(path string, perm os.FileMode) (io.Writer, func() error, func(), error) {
	if path == "-" {
		return a.stdout, func() error { return nil }, func() {}, nil
	}
	// An existing symbolic link is followed; an existing file that is not
	// a regular file (a device, a pipe) is written to as it is, like
	// stdout: it cannot be replaced atomically, and must not be replaced.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
		if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
			if st.IsDir() {
				return nil, nil, nil, usagef("%s is a directory", path)
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return nil, nil, nil, err
			}
			return f, f.Close, func() { f.Close() }, nil
		}
	}
	f, err := createAtomic(path, perm)
	if err != nil {
		return nil, nil, nil, err
	}
	return f, f.commit, f.abort, nil
}

func (a *app) encryptCommand() *cobra.Command {
	var keys, ctxPairs []string
	var in, out string
	var frame int
	var signed bool
	c := &cobra.Command{
		Use:   "encrypt --key KEY --in FILE --out FILE [--context k=v ...]",
		Short: "Encrypt a file (AWS Encryption SDK message format, streamed)",
		Long: `Encrypt a file, or stdin (--in -), to one or more keys (repeat --key; each
one alone can decrypt). The output is an AWS Encryption SDK message (suite
0x0478, or 0x0578 with --signed), written atomically; --out - writes to
stdout. --context pairs are bound to the file and stored in it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(keys) == 0 || in == "" || out == "" {
				return usagef("encrypt needs --key, --in and --out")
			}
			ec, err := parseContext(ctxPairs)
			if err != nil {
				return err
			}
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			recips, err := recipientsFor(ctx, r, keys)
			if err != nil {
				return err
			}
			cfg := kms.EnvelopeConfig{Recipients: recips, FrameLength: frame}
			if signed {
				cfg.Suite = kms.SuiteCommittedSigned
			}
			env, err := kms.NewEnvelope(r, cfg)
			if err != nil {
				return err
			}
			src, size, err := a.input(in)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, commit, abort, err := a.output(out, 0o666&^umask())
			if err != nil {
				return err
			}
			defer abort()
			p := a.newProgress("encrypting", size, "B")
			defer p.finish()
			w, err := env.NewWriter(ctx, dst, ec)
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, p.reader(ctxReader{ctx, src})); err != nil {
				if ab, ok := w.(interface{ Abort() }); ok {
					ab.Abort()
				}
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			return commit()
		},
	}
	f := c.Flags()
	f.StringArrayVar(&keys, "key", nil, "a key to encrypt to (repeatable)")
	f.StringVar(&in, "in", "", "the file to encrypt (- for stdin)")
	f.StringVar(&out, "out", "", "the encrypted file to write (- for stdout)")
	f.StringArrayVar(&ctxPairs, "context", nil, "an encryption context pair k=v (repeatable)")
	f.IntVar(&frame, "frame-length", 0, "plaintext bytes per frame (default 65536)")
	f.BoolVar(&signed, "signed", false, "use suite 0x0578: also sign the file with a one-time ECDSA P-384 key")
	return c
}

func (a *app) decryptCommand() *cobra.Command {
	var ctxPairs []string
	var in, out string
	c := &cobra.Command{
		Use:   "decrypt --in FILE --out FILE [--context k=v ...]",
		Short: "Decrypt a file, streamed; the output appears only if all of it verifies",
		Long: `Decrypt an AWS Encryption SDK message with whichever key of the store it was
encrypted to. --context pairs must be in the file's encryption context.
The output file is written under a temporary name and renamed only after
the whole message, signature included, has verified: a tampered, cut-short
or wrong-context file leaves no plaintext behind. With --out - (stdout),
plaintext is written as frames verify: do not act on it unless the
command exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" || out == "" {
				return usagef("decrypt needs --in and --out")
			}
			ec, err := parseContext(ctxPairs)
			if err != nil {
				return err
			}
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			src, size, err := a.input(in)
			if err != nil {
				return err
			}
			defer src.Close()
			p := a.newProgress("decrypting", size, "B")
			defer p.finish()
			br := bufio.NewReaderSize(p.reader(ctxReader{ctx, src}), 64<<10)
			h, err := readHeader(br)
			if err != nil {
				return err
			}
			recips, _, err := a.openRecipients(ctx, r, h)
			if err != nil {
				return err
			}
			env, err := kms.NewEnvelope(r, kms.EnvelopeConfig{Recipients: recips})
			if err != nil {
				return err
			}
			dst, commit, abort, err := a.output(out, 0o600)
			if err != nil {
				return err
			}
			defer abort()
			pr, err := env.NewReader(ctx, br, ec)
			if err != nil {
				return err
			}
			if _, err := io.Copy(dst, pr); err != nil {
				return err
			}
			return commit()
		},
	}
	f := c.Flags()
	f.StringVar(&in, "in", "", "the encrypted file (- for stdin)")
	f.StringVar(&out, "out", "", "the plaintext file to write (- for stdout)")
	f.StringArrayVar(&ctxPairs, "context", nil, "an encryption context pair the file must carry, k=v (repeatable)")
	return c
}

func (a *app) rewrapCommand() *cobra.Command {
	var keys []string
	var recursive bool
	c := &cobra.Command{
		Use:   "rewrap FILE...",
		Short: "Re-encrypt files in place under their keys' current versions (or --key), atomically",
		Long: `Re-encrypt each file (with -r, every file under each directory) under a
fresh data key wrapped by the current primary version of the keys it was
encrypted to, or by the keys given with --key, so that older key versions
can be retired. Each file is replaced atomically, only after all of it
has verified; a file that fails is left as it was and reported, and the
others go on.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			newRecips, err := recipientsFor(ctx, r, keys)
			if err != nil {
				return err
			}
			var files []string
			for _, arg := range args {
				st, err := os.Stat(arg)
				if err != nil {
					return err
				}
				if !st.IsDir() {
					files = append(files, arg)
					continue
				}
				if !recursive {
					return usagef("%s is a directory: use -r to rewrap every file under it", arg)
				}
				err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.Type().IsRegular() && !strings.Contains(d.Name(), ".pocketkms-") {
						files = append(files, p)
					}
					return err
				})
				if err != nil {
					return err
				}
			}
			p := a.newProgress("rewrapping", int64(len(files)), "files")
			defer p.finish()
			failed := []string{}
			var firstErr error
			for _, file := range files {
				if err := a.rewrapFile(ctx, r, file, newRecips); err != nil {
					failed = append(failed, file)
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: %w", file, err)
					}
				}
				p.add(1)
			}
			p.finish()
			result := map[string]any{"rewrapped": len(files) - len(failed), "failed": failed}
			if err := a.print(result, func(w io.Writer) {
				fmt.Fprintf(w, "rewrapped %d of %d files\n", len(files)-len(failed), len(files))
			}); err != nil {
				return err
			}
			if firstErr != nil {
				if len(failed) == 1 {
					return fmt.Errorf("1 file failed: %w", firstErr)
				}
				return fmt.Errorf("%d files failed, the first: %w", len(failed), firstErr)
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&keys, "key", nil, "encrypt to these keys instead of the file's own (repeatable)")
	c.Flags().BoolVarP(&recursive, "recursive", "r", false, "rewrap every file under the directories given")
	return c
}

// rewrapFile rewraps one file in place.
func (a *app) rewrapFile(ctx context.Context, r *kms.KeyRing, path string, to []kms.Recipient) error {
	// Rewrap what a symbolic link points to, and keep the link.
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(ctxReader{ctx, src}, 64<<10)
	h, err := readHeader(br)
	if err != nil {
		return err
	}
	from, unheld, err := a.openRecipients(ctx, r, h)
	if err != nil {
		return err
	}
	if len(to) == 0 {
		if unheld > 0 {
			// Rewrapping to the keys this store holds would drop the
			// others: their holders could no longer open the file.
			return &hintError{exitUsage, fmt.Sprintf("%s is also encrypted to %d key(s) this store does not hold; rewrapping would drop them: name the new recipients with --key", path, unheld), nil}
		}
		to = from
	}
	// The new message goes to the recipients in to; the file's own only
	// open it.
	cfg := kms.EnvelopeConfig{Recipients: to, OpenWith: from, FrameLength: h.FrameLength}
	if h.Signed {
		cfg.Suite = kms.SuiteCommittedSigned
	}
	if cfg.FrameLength == 0 {
		cfg.FrameLength = kms.DefaultFrameLength
	}
	env, err := kms.NewEnvelope(r, cfg)
	if err != nil {
		return err
	}
	dst, err := createAtomic(path, st.Mode().Perm())
	if err != nil {
		return err
	}
	defer dst.abort()
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		_ = dst.Chown(int(sys.Uid), int(sys.Gid)) // keep the owner, where allowed
	}
	if err := env.RewrapStream(ctx, dst, br, nil); err != nil {
		return err
	}
	return dst.commit()
}

// umask returns the process's file mode creation mask, read from
// /proc/self/status (changing it to read it would race with other
// goroutines); 022 where that cannot be read.
func umask() os.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return os.FileMode(m)
				}
			}
		}
	}
	return 0o022
}
