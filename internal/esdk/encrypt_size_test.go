package esdk

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms/internal/format"
)

// TestAppendSealSize checks AppendSeal's size estimate against what it
// writes: headerSize is the exact length of the header AppendHeader makes,
// the message is allocated once (no growth past the estimate), the footer
// fits maxSignatureLen, and the message opens, whatever dst held before.
func TestAppendSealSize(t *testing.T) {
	dk := make([]byte, 32)
	_, _ = rand.Read(dk)
	edks := []format.EDK{
		{ProviderID: "aws-kms", ProviderInfo: []byte("arn:aws:kms:r:1:key/k"), Ciphertext: bytes.Repeat([]byte{1}, 90)},
		{ProviderID: "raw", ProviderInfo: []byte("i"), Ciphertext: []byte{2}},
	}
	unwrap := func([]format.EDK, Context) ([]byte, error) { return bytes.Clone(dk), nil }
	big := map[string]string{"k": strings.Repeat("v", 1000), "a": "", "z": "é"}
	for _, id := range []uint16{0x0478, 0x0578} {
		suite, _ := format.SuiteByID(id)
		for _, ctxCase := range []struct {
			name string
			ec   map[string]string
			raw  bool // give RawContext
		}{
			{"empty", nil, false},
			{"empty map", map[string]string{}, false},
			{"map", big, false},
			{"raw", big, true},
		} {
			for _, n := range []int{0, 1, 63, 64, 65, 1000, 4096} {
				for _, prefix := range []int{0, 7} {
					t.Run(fmt.Sprintf("%04x/%s/%d/%d", id, ctxCase.name, n, prefix), func(t *testing.T) {
						in := SealInput{Suite: suite, DataKey: dk, EDKs: edks[:1+n%2], Context: ctxCase.ec,
							FrameLen: 64, Plaintext: bytes.Repeat([]byte("p"), n), Rand: rand.Reader}
						if suite.SignatureHash != 0 {
							signer, pub, err := NewSigner(rand.Reader)
							require.NoError(t, err)
							in.Signer, in.Context = signer, WithPublicKey(in.Context, pub)
						}
						if ctxCase.raw {
							var err error
							in.RawContext, err = format.AppendContext(nil, in.Context)
							require.NoError(t, err)
						}
						h := &format.MessageHeader{Suite: suite, MessageID: make([]byte, 32), Context: in.Context,
							EDKs: in.EDKs, Framed: true, FrameLength: 64, Commitment: make([]byte, 32), Tag: make([]byte, 16)}
						hdr, err := h.AppendHeader(nil)
						require.NoError(t, err)
						assert.Equal(t, len(hdr), headerSize(in), "headerSize")

						dst := bytes.Repeat([]byte{0xEE}, prefix)
						out, err := AppendSeal(dst[:prefix:prefix], in)
						require.NoError(t, err)
						require.Equal(t, dst, out[:prefix], "dst kept")
						msg := out[prefix:]
						// The estimate AppendSeal allocates: header, frames and, signed,
						// room for the longest signature. (The allocator may round
						// the capacity up, so the estimate is checked, not cap.)
						frames := max(1, (n+63)/64)
						est := headerSize(in) + (frames-1)*frameSize(64, false) + frameSize(n-(frames-1)*64, true)
						if in.Signer == nil {
							assert.Equal(t, est, len(msg), "exact size")
						} else {
							slack := est + 2 + maxSignatureLen - len(msg)
							assert.True(t, slack >= 0 && slack <= maxSignatureLen-8, "signature room, slack %d", slack)
						}
						assert.GreaterOrEqual(t, cap(out)-prefix, len(msg))
						pt, _, err := Open(msg, unwrap, Options{})
						require.NoError(t, err)
						assert.Equal(t, string(in.Plaintext), string(pt))
					})
				}
			}
		}
	}
}
