package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/store/sqlstore"
)

func openStore(ctx context.Context, dsn string) (*sqlstore.Store, error) {
	return sqlstore.Open(ctx, dsn)
}

func statFile(path string) (os.FileInfo, error) { return os.Stat(path) }

// readAll reads a file, or stdin for "-", up to limit bytes.
func (a *app) readAll(path string, limit int64) ([]byte, error) {
	src, _, err := a.input(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	b, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, usagef("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

func (a *app) signCommand() *cobra.Command {
	var key, in, out, alg string
	var digest bool
	c := &cobra.Command{
		Use:   "sign --key KEY --in FILE [--algorithm ECDSA_SHA_256] [--out SIGFILE]",
		Short: "Sign a message (up to 4 KiB) or, with --digest, its digest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" || in == "" {
				return usagef("sign needs --key and --in")
			}
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			msg, err := a.readAll(in, 4096)
			if err != nil {
				return err
			}
			sigAlg, err := signingAlgorithm(ctx, r, key, alg)
			if err != nil {
				return err
			}
			inp := kms.SignInput{KeyID: key, Message: msg, SigningAlgorithm: sigAlg}
			if digest {
				inp.MessageType = kms.MessageDigest
			}
			s, err := r.Sign(ctx, inp)
			if err != nil {
				return err
			}
			if out != "" {
				dst, commit, abort, err := a.output(out, 0o644)
				if err != nil {
					return err
				}
				defer abort()
				if _, err := dst.Write(s.Signature); err != nil {
					return err
				}
				return commit()
			}
			res := map[string]any{"key_id": s.KeyID, "key_version": s.KeyVersion, "algorithm": s.SigningAlgorithm, "signature": base64.StdEncoding.EncodeToString(s.Signature)}
			return a.print(res, func(w io.Writer) { fmt.Fprintln(w, base64.StdEncoding.EncodeToString(s.Signature)) })
		},
	}
	f := c.Flags()
	f.StringVar(&key, "key", "", "the signing key")
	f.StringVar(&in, "in", "", "the message (- for stdin)")
	f.StringVar(&out, "out", "", "write the raw signature to this file (default: base64 on stdout)")
	f.StringVar(&alg, "algorithm", "", "the signing algorithm (default: the key's first)")
	f.BoolVar(&digest, "digest", false, "--in holds the message's digest, not the message")
	return c
}

// signingAlgorithm returns alg, or the key's first signing algorithm.
func signingAlgorithm(ctx context.Context, r *kms.KeyRing, key, alg string) (kms.SigningAlgorithm, error) {
	if alg != "" {
		return kms.SigningAlgorithm(alg), nil
	}
	m, err := r.DescribeKey(ctx, key)
	if err != nil {
		return "", err
	}
	if len(m.SigningAlgorithms) == 0 {
		return "", fmt.Errorf("%w: key %s does not sign", kms.ErrInvalidUsage, m.KeyID)
	}
	return m.SigningAlgorithms[0], nil
}

func (a *app) verifyCommand() *cobra.Command {
	var key, in, sig, alg string
	var digest bool
	c := &cobra.Command{
		Use:   "verify --key KEY --in FILE --signature SIGFILE [--algorithm ...]",
		Short: "Verify a signature; exits 5 if it does not verify",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" || in == "" || sig == "" {
				return usagef("verify needs --key, --in and --signature")
			}
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			msg, err := a.readAll(in, 4096)
			if err != nil {
				return err
			}
			s, err := os.ReadFile(sig)
			if err != nil {
				return err
			}
			if d, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(s))); derr == nil {
				s = d
			}
			sigAlg, err := signingAlgorithm(ctx, r, key, alg)
			if err != nil {
				return err
			}
			inp := kms.VerifyInput{KeyID: key, Message: msg, Signature: s, SigningAlgorithm: sigAlg}
			if digest {
				inp.MessageType = kms.MessageDigest
			}
			if _, err := r.Verify(ctx, inp); err != nil {
				return err
			}
			return a.print(map[string]bool{"valid": true}, func(w io.Writer) { fmt.Fprintln(w, "signature is valid") })
		},
	}
	f := c.Flags()
	f.StringVar(&key, "key", "", "the signing key")
	f.StringVar(&in, "in", "", "the message (- for stdin)")
	f.StringVar(&sig, "signature", "", "the signature file (raw or base64)")
	f.StringVar(&alg, "algorithm", "", "the signing algorithm (default: the key's first)")
	f.BoolVar(&digest, "digest", false, "--in holds the message's digest")
	return c
}

func (a *app) publicKeyCommand() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "public-key KEY [--out FILE]",
		Short: "Print an asymmetric key's public key (PEM)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			p, err := r.GetPublicKey(ctx, kms.GetPublicKeyInput{KeyID: args[0]})
			if err != nil {
				return err
			}
			block := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p.PublicKey})
			if out != "" {
				dst, commit, abort, err := a.output(out, 0o644)
				if err != nil {
					return err
				}
				defer abort()
				if _, err := dst.Write(block); err != nil {
					return err
				}
				return commit()
			}
			return a.print(map[string]any{"key_id": p.KeyID, "key_version": p.KeyVersion, "public_key_pem": string(block)}, func(w io.Writer) {
				w.Write(block)
			})
		},
	}
	c.Flags().StringVar(&out, "out", "", "write the PEM to this file")
	return c
}

func (a *app) importKeyCommand() *cobra.Command {
	var spec, usage, in, alias, ns, name, hash, desc string
	c := &cobra.Command{
		Use:   "import-key --spec SPEC --in MATERIAL [--alias alias/NAME] [--raw-namespace NS --raw-name NAME]",
		Short: "Create a key from your own key material (for example a raw AES key shared with another Encryption SDK)",
		Long: `Create a key of origin EXTERNAL and import the material in --in: 32 raw
bytes for SYMMETRIC_DEFAULT, the secret for HMAC keys, a PKCS#8 private key
(DER or PEM) for RSA and ECC keys. The material is wrapped for the store
with the import protocol of AWS KMS and never written in the clear.

With --raw-namespace and --raw-name the key is also the wrapping key of an
AWS Encryption SDK raw keyring (raw AES for SYMMETRIC_DEFAULT, raw RSA for
RSA keys, OAEP hash --raw-oaep-hash): files encrypted to it open in the
official SDKs with the same key, namespace and name, and theirs open here.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" || spec == "" {
				return usagef("import-key needs --spec and --in")
			}
			if (ns == "") != (name == "") {
				return usagef("give both --raw-namespace and --raw-name, or neither")
			}
			if _, ok := oaepHashes[hash]; hash != "" && !ok {
				return usagef("--raw-oaep-hash is SHA-1, SHA-256, SHA-384 or SHA-512")
			}
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			material, err := a.readAll(in, 64<<10)
			if err != nil {
				return err
			}
			defer clear(material)
			if b, _ := pem.Decode(material); b != nil {
				material = b.Bytes
				defer clear(material)
				// openssl's traditional forms become PKCS#8.
				var key any
				switch b.Type {
				case "RSA PRIVATE KEY":
					key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
				case "EC PRIVATE KEY":
					key, err = x509.ParseECPrivateKey(b.Bytes)
				case "PRIVATE KEY", "PUBLIC KEY":
				default:
					return usagef("%s holds a PEM %q block: give a PRIVATE KEY (PKCS#8), RSA PRIVATE KEY, EC PRIVATE KEY or PUBLIC KEY, or raw bytes", in, b.Type)
				}
				if err != nil {
					return usagef("%s: the %s block does not parse", in, b.Type)
				}
				if key != nil {
					der, err := x509.MarshalPKCS8PrivateKey(key)
					if err != nil {
						return usagef("%s: the key cannot be converted to PKCS#8", in)
					}
					material = der
					defer clear(der)
				}
			}
			ks := kms.KeySpec(spec)
			u := kms.KeyUsage(usage)
			if u == "" {
				u = defaultUsage(ks)
			}
			cin := kms.CreateKeyInput{KeySpec: ks, KeyUsage: u, Origin: kms.OriginExternal, Description: desc}
			if ns != "" {
				cin.Tags = []kms.Tag{{TagKey: tagRawNamespace, TagValue: ns}, {TagKey: tagRawName, TagValue: name}}
				if hash != "" {
					cin.Tags = append(cin.Tags, kms.Tag{TagKey: tagRawOAEPHash, TagValue: hash})
				}
			}
			m, err := r.CreateKey(ctx, cin)
			if err != nil {
				return err
			}
			if err := importMaterial(ctx, r, m.KeyID, material); err != nil {
				_, _ = r.ScheduleKeyDeletion(ctx, m.KeyID, 7)
				return fmt.Errorf("importing the material failed (the empty key %s is scheduled for deletion): %w", m.KeyID, err)
			}
			if alias != "" {
				if err := r.CreateAlias(ctx, alias, m.KeyID); err != nil {
					return fmt.Errorf("key %s was imported, but its alias was not: %w", m.KeyID, err)
				}
			}
			m, err = r.DescribeKey(ctx, m.KeyID)
			if err != nil {
				return err
			}
			var aliases []string
			if alias != "" {
				aliases = []string{alias}
			}
			row := rowOf(m, aliases)
			return a.print(row, func(w io.Writer) { printKey(w, row) })
		},
	}
	f := c.Flags()
	f.StringVar(&spec, "spec", "", "the key spec of the material (SYMMETRIC_DEFAULT, RSA_2048, HMAC_256, ...)")
	f.StringVar(&usage, "usage", "", "the key usage (default: the spec's usual one)")
	f.StringVar(&in, "in", "", "the key material file (- for stdin)")
	f.StringVar(&alias, "alias", "", "an alias for the key, alias/NAME")
	f.StringVar(&desc, "description", "", "a description")
	f.StringVar(&ns, "raw-namespace", "", "the raw keyring namespace (provider ID) files name this key by")
	f.StringVar(&name, "raw-name", "", "the raw keyring key name files name this key by")
	f.StringVar(&hash, "raw-oaep-hash", "", "for a raw RSA keyring: SHA-1, SHA-256 (default), SHA-384 or SHA-512")
	return c
}

func (a *app) policyCommand() *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Get or put a key's policy (IAM JSON grammar)"}
	get := &cobra.Command{
		Use: "get KEY", Short: "Print the key policy", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			doc, err := r.GetKeyPolicy(ctx, args[0], "")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, doc)
			return err
		},
	}
	var file string
	var bypass bool
	put := &cobra.Command{
		Use: "put KEY --file POLICY.json", Short: "Replace the key policy", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usagef("policy put needs --file")
			}
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			doc, err := a.readAll(file, kms.MaxKeyPolicySize)
			if err != nil {
				return err
			}
			return r.PutKeyPolicy(ctx, kms.PutKeyPolicyInput{KeyID: args[0], Policy: string(doc), BypassPolicyLockoutSafetyCheck: bypass})
		},
	}
	put.Flags().StringVar(&file, "file", "", "the policy document (- for stdin)")
	put.Flags().BoolVar(&bypass, "bypass-lockout-check", false, "allow a policy that would stop you from changing it again")
	c.AddCommand(get, put)
	return c
}

func (a *app) grantCommand() *cobra.Command {
	c := &cobra.Command{Use: "grant", Short: "Create, list, retire and revoke grants"}
	var grantee, retiring, name string
	var ops, equals, subset []string
	create := &cobra.Command{
		Use: "create KEY --grantee ARN --operations Encrypt,Decrypt", Short: "Grant a principal some operations on a key", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			in := kms.CreateGrantInput{KeyID: args[0], GranteePrincipal: grantee, RetiringPrincipal: retiring, Name: name}
			for _, o := range ops {
				for _, p := range strings.Split(o, ",") {
					if p = strings.TrimSpace(p); p != "" {
						in.Operations = append(in.Operations, kms.Op(p))
					}
				}
			}
			eq, err := parseContext(equals)
			if err != nil {
				return err
			}
			sub, err := parseContext(subset)
			if err != nil {
				return err
			}
			if eq != nil || sub != nil {
				in.Constraints = &kms.GrantConstraints{EncryptionContextEquals: eq, EncryptionContextSubset: sub}
			}
			out, err := r.CreateGrant(ctx, in)
			if err != nil {
				return err
			}
			return a.print(map[string]string{"grant_id": out.GrantID, "grant_token": out.GrantToken}, func(w io.Writer) {
				fmt.Fprintf(w, "grant %s\ntoken %s\n", out.GrantID, out.GrantToken)
			})
		},
	}
	cf := create.Flags()
	cf.StringVar(&grantee, "grantee", "", "the principal ARN (or account) the grant is for")
	cf.StringVar(&retiring, "retiring", "", "the principal that may retire the grant")
	cf.StringVar(&name, "name", "", "a name: a retry with the same name and parameters makes no second grant")
	cf.StringArrayVar(&ops, "operations", nil, "operations, comma-separated (Encrypt,Decrypt,GenerateDataKey,...)")
	cf.StringArrayVar(&equals, "context-equals", nil, "allow only requests with exactly this encryption context, k=v (repeatable)")
	cf.StringArrayVar(&subset, "context-subset", nil, "allow only requests whose encryption context includes k=v (repeatable)")
	list := &cobra.Command{
		Use: "list KEY", Short: "List a key's grants", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			out, err := r.ListGrants(ctx, kms.ListGrantsInput{KeyID: args[0], Limit: 100})
			if err != nil {
				return err
			}
			grants := out.Grants
			type grantRow struct {
				GrantID        string            `json:"grant_id"`
				Name           string            `json:"name,omitempty"`
				Created        time.Time         `json:"created"`
				Grantee        string            `json:"grantee_principal"`
				Retiring       string            `json:"retiring_principal,omitempty"`
				Operations     []kms.Op          `json:"operations"`
				ContextEquals  map[string]string `json:"encryption_context_equals,omitempty"`
				ContextSubset  map[string]string `json:"encryption_context_subset,omitempty"`
				IssuingAccount string            `json:"issuing_account"`
			}
			rows := []grantRow{}
			for _, g := range grants {
				gr := grantRow{GrantID: g.GrantID, Name: g.Name, Created: g.CreationDate, Grantee: g.GranteePrincipal,
					Retiring: g.RetiringPrincipal, Operations: g.Operations, IssuingAccount: g.IssuingAccount}
				if g.Constraints != nil {
					gr.ContextEquals, gr.ContextSubset = g.Constraints.EncryptionContextEquals, g.Constraints.EncryptionContextSubset
				}
				rows = append(rows, gr)
			}
			return a.print(rows, func(w io.Writer) {
				var t [][]string
				for _, g := range grants {
					var ops []string
					for _, o := range g.Operations {
						ops = append(ops, string(o))
					}
					t = append(t, []string{g.GrantID, g.GranteePrincipal, strings.Join(ops, ","), g.Name})
				}
				table(w, []string{"GRANT ID", "GRANTEE", "OPERATIONS", "NAME"}, t)
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke KEY GRANT_ID", Short: "Revoke a grant", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			return r.RevokeGrant(ctx, args[0], args[1])
		},
	}
	var token string
	retire := &cobra.Command{
		Use: "retire --token TOKEN | retire KEY GRANT_ID", Short: "Retire a grant, as its retiring principal, its grantee or the account's root (POCKETKMS_PRINCIPAL)", Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := kms.RetireGrantInput{GrantToken: token}
			switch {
			case token == "" && len(args) == 2:
				in.KeyID, in.GrantID = args[0], args[1]
			case token == "" || len(args) != 0:
				return usagef("retire takes --token, or KEY and GRANT_ID")
			}
			r, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			return r.RetireGrant(ctx, in)
		},
	}
	retire.Flags().StringVar(&token, "token", "", "the grant token")
	c.AddCommand(create, list, revoke, retire)
	return c
}

func (a *app) auditCommand() *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "Read and verify the tamper-evident audit log"}
	var n int
	tail := &cobra.Command{
		Use: "tail [-n 20]", Short: "Print the last records of the audit log", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return usagef("-n takes a number of records, 1 or more")
			}
			_, path, err := a.paths()
			if err != nil {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			var lines [][]byte
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 0, 64<<10), kms.MaxChainLine)
			for sc.Scan() {
				lines = append(lines, bytes.Clone(sc.Bytes()))
				if len(lines) > n {
					lines = lines[1:]
				}
			}
			if err := sc.Err(); err != nil {
				return err
			}
			for _, l := range lines {
				fmt.Fprintf(a.stdout, "%s\n", l)
			}
			return nil
		},
	}
	tail.Flags().IntVarP(&n, "lines", "n", 20, "how many records")
	verify := &cobra.Command{
		Use: "verify", Short: "Verify the audit log: exits 5 and names the first bad record if it was changed", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, ctx, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			_, path, err := a.paths()
			if err != nil {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			dsn, _, err := a.paths()
			if err != nil {
				return err
			}
			rep, err := kms.VerifyChainedLog(ctx, f, kms.ChainConfig{Store: a.store, RootKey: a.root, Chain: chainName(dsn)})
			if err != nil {
				return err
			}
			return a.print(map[string]any{"verified": true, "records": rep.Records, "head": rep.Head, "lost": rep.Lost}, func(w io.Writer) {
				fmt.Fprintf(w, "audit log verified: %d records, head %s\n", rep.Records, rep.Head)
				if rep.Lost > 0 {
					fmt.Fprintf(w, "%d record(s) were lost in crashes and are marked \"lost\" in the log\n", rep.Lost)
				}
			})
		},
	}
	c.AddCommand(tail, verify)
	return c
}

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Walk the whole story on a temporary store: create a key, encrypt, rotate, decrypt, rewrap, verify the audit log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "pocketkms-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			keyFile := dir + "/root.key"
			rk := make([]byte, 32)
			if _, err := io.ReadFull(rand.Reader, rk); err != nil {
				return err
			}
			if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(rk)+"\n"), 0o600); err != nil {
				return err
			}
			clear(rk)
			base := []string{"--store", dir + "/keys.db", "--key-file", keyFile}
			plain, enc, dec := dir+"/report.txt", dir+"/report.txt.enc", dir+"/report.out.txt"
			if err := os.WriteFile(plain, []byte("Quarterly report: revenue up, costs down.\n"), 0o600); err != nil {
				return err
			}
			steps := []struct {
				say  string
				args []string
			}{
				{"create the store", []string{"init"}},
				{"create a key", []string{"create-key", "--alias", "alias/reports", "--description", "demo"}},
				{"encrypt a file to it", []string{"encrypt", "--key", "alias/reports", "--in", plain, "--out", enc, "--context", "dept=finance"}},
				{"rotate the key", []string{"rotate", "alias/reports"}},
				{"decrypt the file (its version still decrypts)", []string{"decrypt", "--in", enc, "--out", dec, "--context", "dept=finance"}},
				{"rewrap the file under the new version", []string{"rewrap", enc}},
				{"decrypt it again", []string{"decrypt", "--in", enc, "--out", dec}},
				{"list the keys", []string{"list"}},
				{"verify the audit log", []string{"audit", "verify"}},
			}
			start := time.Now()
			for i, s := range steps {
				fmt.Fprintf(a.stdout, "\n$ pocketkms %s\n# %d. %s\n", strings.Join(s.args, " "), i+1, s.say)
				var out bytes.Buffer
				code := run(cmd.Context(), append(append([]string{}, base...), s.args...), a.stdin, &out, a.stderr)
				a.stdout.Write(out.Bytes())
				if code != exitOK {
					return &hintError{code, fmt.Sprintf("demo step %d (%s) failed", i+1, s.say), nil}
				}
			}
			got, err := os.ReadFile(dec)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "\ndecrypted: %s", got)
			fmt.Fprintf(a.stdout, "done in %v; the store was %s (now removed)\n", time.Since(start).Round(time.Millisecond), dir)
			return nil
		},
	}
}

// importMaterial imports material into an EXTERNAL key: the import
// protocol of AWS KMS, client side and server side in one process (an
// RSA-3072 wrapping key, RSA_AES_KEY_WRAP_SHA_256).
func importMaterial(ctx context.Context, r *kms.KeyRing, keyID string, material []byte) error {
	p, err := r.GetParametersForImport(ctx, kms.GetParametersForImportInput{
		KeyID: keyID, WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, WrappingKeySpec: kms.WrappingRSA3072,
	})
	if err != nil {
		return err
	}
	enc, err := kms.WrapKeyMaterial(p.PublicKey, kms.WrapRSAAESKeyWrapSHA256, material, nil)
	if err != nil {
		return err
	}
	return r.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: p.ImportToken, EncryptedKeyMaterial: enc})
}
