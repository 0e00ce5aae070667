// Command pocketkms is a key management service in a file: keys in an
// embedded SQLite store (or PostgreSQL), files encrypted in the AWS
// Encryption SDK message format, and a tamper-evident audit log of every
// operation. Run `pocketkms demo` for the whole story in a few seconds, and
// `pocketkms help` for the commands.
//
// Exit codes:
//
//	0  success
//	1  failure (an I/O error, the store, anything else)
//	2  usage: unknown command or flag, missing or bad argument
//	3  not found: no such key, alias, grant or file
//	4  refused: wrong passphrase or root key, or a key policy denies it
//	5  invalid data: a file or signature that does not verify (tampered,
//	   truncated, wrong encryption context, wrong key)
//	6  key state: the key is disabled, pending deletion or pending import
//
// Errors are one line on stderr, "pocketkms: <what>: <what to do>".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pocketkms/kms"
)

// The exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
	exitRefused  = 4
	exitInvalid  = 5
	exitState    = 6
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	defer a.close()
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code, msg := describe(err)
	msg = strings.Join(strings.Fields(msg), " ") // one line, whatever the error held
	fmt.Fprintf(stderr, "pocketkms: %s\n", msg)
	return code
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// hintError carries its own exit code and advice.
type hintError struct {
	code int
	msg  string
	err  error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

// describe maps an error to an exit code and a one-line message that says
// what to do.
func describe(err error) (int, string) {
	var ue *usageError
	var he *hintError
	var ce *kms.ChainError
	var pe *kms.PolicyError
	one := func(s string) string { return strings.ReplaceAll(strings.TrimPrefix(s, "kms: "), "\n", " ") }
	switch {
	case errors.As(err, &he):
		return he.code, he.msg
	case errors.As(err, &ue):
		return exitUsage, ue.msg + " (see pocketkms help)"
	case !isLibraryError(err) && (strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") ||
		strings.HasPrefix(err.Error(), "unknown shorthand flag") || strings.Contains(err.Error(), "flag needs an argument") ||
		strings.Contains(err.Error(), "required flag") || strings.Contains(err.Error(), "invalid argument") ||
		strings.Contains(err.Error(), "accepts ") || strings.Contains(err.Error(), "requires at least")):
		return exitUsage, err.Error() + " (see pocketkms help)"
	case errors.Is(err, kms.ErrWrongRootKey):
		return exitRefused, "wrong passphrase or root key: this store was created with another one (check POCKETKMS_PASSPHRASE, --key-file or --key-env)"
	case errors.Is(err, kms.ErrAccessDenied):
		return exitRefused, one(err.Error())
	case errors.As(err, &ce):
		return exitInvalid, "audit log does not verify: " + strings.TrimPrefix(ce.Error(), "kms: audit log: ") + " (keep the original log; investigate who changed it)"
	case errors.As(err, &pe):
		return exitUsage, one(err.Error())
	case errors.Is(err, kms.ErrInvalidCiphertext), errors.Is(err, kms.ErrIncorrectKey), errors.Is(err, kms.ErrInvalidSignature),
		errors.Is(err, kms.ErrInvalidMac):
		return exitInvalid, one(err.Error()) + " (the file was changed, cut short, or needs another key or --context)"
	case errors.Is(err, kms.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return exitNotFound, one(err.Error())
	case errors.Is(err, kms.ErrInvalidState):
		return exitState, one(err.Error()) + " (pocketkms describe KEY shows its state; pocketkms enable KEY re-enables a disabled key)"
	case errors.Is(err, kms.ErrInvalidArgument), errors.Is(err, kms.ErrInvalidUsage), errors.Is(err, kms.ErrUnsupported),
		errors.Is(err, kms.ErrAlreadyExists), errors.Is(err, kms.ErrLimitExceeded), errors.Is(err, kms.ErrInvalidGrantID),
		errors.Is(err, kms.ErrInvalidGrantToken), errors.Is(err, kms.ErrIncorrectKeyMaterial), errors.Is(err, kms.ErrMalformedPolicy):
		return exitUsage, one(err.Error())
	case errors.Is(err, context.Canceled):
		return exitFailure, "interrupted; no output file was written"
	case errors.Is(err, kms.ErrAuditFailed):
		return exitFailure, one(err.Error()) + " (the operation took effect but its audit record was not written: check the audit log file and the disk, then pocketkms audit verify)"
	case errors.Is(err, kms.ErrConflict):
		return exitFailure, one(err.Error()) + " (another process changed the key at the same time: run the command again)"
	}
	return exitFailure, one(err.Error())
}

// isLibraryError reports whether err came from the library (whose texts
// may contain words cobra's errors are recognised by).
func isLibraryError(err error) bool {
	var ke *kms.Error
	return errors.As(err, &ke) || strings.HasPrefix(err.Error(), "kms: ")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pocketkms",
		Short: "A key management service in a file: keys, encrypted files, an audit log",
		Long: `pocketkms keeps customer master keys in an embedded SQLite store (or
PostgreSQL), encrypts files in the AWS Encryption SDK message format, and
records every operation in a tamper-evident audit log.

The store lives under $XDG_DATA_HOME/pocketkms (or ~/.local/share/pocketkms)
unless --store names a file or a postgres:// URL. Its root key comes from a
passphrase (POCKETKMS_PASSPHRASE, or a prompt on a terminal), or from
--key-file or --key-env.

KEY is a key ID, key ARN, alias (alias/NAME) or alias ARN.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.storeFlag, "store", "", "the store: a SQLite file or a postgres:// URL (default: the user's data directory)")
	f.StringVar(&a.keyFile, "key-file", "", "read the root key (32 bytes, raw, hex or base64) from this file instead of using a passphrase")
	f.StringVar(&a.keyEnv, "key-env", "", "read the root key (hex or base64) from this environment variable instead of using a passphrase")
	f.StringVar(&a.auditPath, "audit-log", "", "the audit log file (default: beside the SQLite store, or in the data directory)")
	f.BoolVar(&a.jsonOut, "json", false, "print results as JSON")
	f.BoolVarP(&a.quiet, "quiet", "q", false, "no progress bars")
	root.AddCommand(
		a.initCommand(), a.demoCommand(),
		a.createKeyCommand(), a.listCommand(), a.describeCommand(), a.aliasCommand(),
		a.stateCommand("enable", "Enable a disabled key", func(ctx context.Context, r *kms.KeyRing, id string) error { return r.EnableKey(ctx, id) }),
		a.stateCommand("disable", "Disable a key: it refuses every cryptographic operation until enabled", func(ctx context.Context, r *kms.KeyRing, id string) error { return r.DisableKey(ctx, id) }),
		a.scheduleDeletionCommand(), a.stateCommand("cancel-deletion", "Cancel a key's scheduled deletion (the key stays disabled)", func(ctx context.Context, r *kms.KeyRing, id string) error { return r.CancelKeyDeletion(ctx, id) }),
		a.rotateCommand(), a.rotationCommand(),
		a.encryptCommand(), a.decryptCommand(), a.rewrapCommand(),
		a.signCommand(), a.verifyCommand(), a.publicKeyCommand(), a.importKeyCommand(),
		a.policyCommand(), a.grantCommand(), a.auditCommand(),
	)
	return root
}
