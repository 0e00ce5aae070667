package kms_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// nodePeer returns the path of the JavaScript interop peer, ready to run.
// In CI (CI set) a missing peer fails the test: `make test` installs it.
func nodePeer(t *testing.T) string {
	t.Helper()
	script := filepath.Join("interop", "node", "esdk.js")
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join("interop", "node", "node_modules", "@aws-crypto", "client-node"))
	if nodeErr != nil || modErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the node interop peer is not installed (node: %v, modules: %v); make test installs it", nodeErr, modErr)
		}
		t.Skip("the node interop peer is not installed: run `make interop-deps`")
	}
	return script
}

// TestInteropNode: messages pocketkms seals open in the official AWS
// Encryption SDK for JavaScript, and the SDK's messages open in pocketkms,
// for both suites, several frame lengths, empty and multi-frame payloads,
// and two recipients (each alone opens the message).
func TestInteropNode(t *testing.T) {
	script := nodePeer(t)
	ctx := context.Background()
	dir := t.TempDir()
	// Never use literal keys like these outside tests.
	k1, k2 := bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x22}, 32)
	spec1 := "pocketkms-interop:key-1:" + hex.EncodeToString(k1)
	spec2 := "pocketkms-interop:key-2:" + hex.EncodeToString(k2)

	r := kmstest.New(t)
	ringKey := r.ImportKey(kms.SymmetricDefault, kms.EncryptDecrypt, k1).KeyID
	rc1, err := kms.RawAESKeyRecipient("pocketkms-interop", "key-1", ringKey)
	require.NoError(t, err)
	rc2, err := kms.RawAESRecipient("pocketkms-interop", "key-2", k2)
	require.NoError(t, err)
	ec := kms.EncryptionContext{"tenant": "17", "purpose": "interop"}
	ecJSON, err := json.Marshal(ec)
	require.NoError(t, err)

	node := func(args ...string) {
		t.Helper()
		out, err := exec.Command("node", append([]string{script}, args...)...).CombinedOutput()
		require.NoError(t, err, "node: %s", out)
	}
	cases := []struct{ frame, size int }{{1, 300}, {1000, 0}, {1000, 2500}, {65536, 70000}}
	for _, suite := range []uint16{kms.SuiteCommitted, kms.SuiteCommittedSigned} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%04x/frame=%d/size=%d", suite, c.frame, c.size), func(t *testing.T) {
				pt := bytes.Repeat([]byte("interop!"), c.size/8+1)[:c.size]
				ptFile := filepath.Join(dir, "pt")
				require.NoError(t, os.WriteFile(ptFile, pt, 0o600))

				// pocketkms seals; node opens with each recipient's key alone.
				env, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{rc1, rc2}, Suite: suite, FrameLength: c.frame})
				require.NoError(t, err)
				msg, err := env.Seal(ctx, pt, ec)
				require.NoError(t, err)
				msgFile, outFile := filepath.Join(dir, "ours"), filepath.Join(dir, "out")
				require.NoError(t, os.WriteFile(msgFile, msg, 0o600))
				for _, spec := range []string{spec1, spec2} {
					node("decrypt", string(ecJSON), msgFile, outFile, spec)
					got, err := os.ReadFile(outFile)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got), "node decrypted other bytes")
				}

				// node seals; pocketkms opens with each recipient alone.
				theirs := filepath.Join(dir, "theirs")
				node("encrypt", fmt.Sprintf("%04x", suite), fmt.Sprint(c.frame), string(ecJSON), ptFile, theirs, spec1, spec2)
				msg, err = os.ReadFile(theirs)
				require.NoError(t, err)
				h, err := kms.ParseHeader(msg)
				require.NoError(t, err)
				require.Equal(t, suite, h.Suite)
				require.Equal(t, c.frame, h.FrameLength)
				for _, rc := range []kms.Recipient{rc1, rc2} {
					one, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{rc}})
					require.NoError(t, err)
					got, err := one.Open(ctx, msg, ec)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got), "pocketkms opened other bytes")
				}
			})
		}
	}
}
