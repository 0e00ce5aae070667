package kms

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/pocketkms/kms/internal/esdk"
	"github.com/pocketkms/kms/internal/format"
)

// OpRewrap names Envelope.Rewrap, RewrapStream and RewrapAll in errors.
const OpRewrap Op = "Envelope.Rewrap"

// Rewrapping a message moves it to the Envelope's current recipients (for
// a KeyRing recipient, the key's current primary version), so that older
// key versions can be retired. The plaintext never reaches the caller.
//
// pocketkms rewraps by re-encrypting: it opens the message, checking
// everything Open checks, and seals the plaintext again under a fresh data
// key and message ID. It does not rewrite the header alone, although the
// format would seem to allow it (the body depends only on the data key and
// the message ID): the header's authentication tag is AES-GCM under the
// message's content key with an all-zero IV, so a second header for the
// same body is a second tag under the same key and nonce. Whoever sees
// both headers (a backup, a versioned bucket, a replica) can solve for
// GHASH's key and then forge frames of the body without detection. Signed
// messages (suite 0x0578) could not be rewritten in place anyway: their
// signing key is discarded by design. docs/FORMAT.md §4.6 has the details.

// Rewrap opens msg (demanding the pairs of ec, as Open does) and returns
// it sealed again to the Envelope's recipients, suite and frame length,
// with the message's stored encryption context. Messages whose header
// does not store every pair of ec (the SDK's required encryption context)
// are refused with ErrUnsupported: the new message would store them.
//
// It runs as RewrapStream does (frames opened and sealed again on all
// cores, no copy of the whole plaintext), and returns nothing unless the
// whole message, signature included, authenticated.
func (e *Envelope) Rewrap(ctx context.Context, msg []byte, ec EncryptionContext) ([]byte, error) {
	out := bytes.NewBuffer(make([]byte, 0, len(msg)+1024))
	if err := e.RewrapStream(ctx, out, bytes.NewReader(msg), ec); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// rewrapContext returns the context a rewrapped message carries: the
// stored pairs but the signed suite's public key.
func rewrapContext(h *format.MessageHeader, ec EncryptionContext) (EncryptionContext, error) {
	for k := range ec {
		if _, ok := h.ContextValue(k); !ok {
			// The pair is not named: error texts never carry the context.
			return nil, fmt.Errorf("%w: the message does not store every encryption context pair asked for; it cannot be rewrapped", ErrUnsupported)
		}
	}
	stored := maps.Clone(h.ContextMap())
	for k := range stored {
		if strings.HasPrefix(k, reservedPrefix) {
			delete(stored, k)
		}
	}
	return stored, nil
}

// RewrapStream reads a message from src and writes it, sealed again as
// Rewrap does, to dst, in constant memory. Frames are re-encrypted as they
// authenticate; if src turns out truncated or forged, RewrapStream returns
// the error without finishing the new message, which then opens nowhere:
// discard dst's bytes on error.
func (e *Envelope) RewrapStream(ctx context.Context, dst io.Writer, src io.Reader, ec EncryptionContext) error {
	sr, err := esdk.NewReader(src, e.unwrap(ctx), e.openOptions(ec))
	if err != nil {
		return envelopeErr(OpRewrap, err)
	}
	stored, err := rewrapContext(sr.Header(), ec)
	if err != nil {
		return envelopeErr(OpRewrap, err)
	}
	in, err := e.prepare(ctx, stored)
	if err != nil {
		return envelopeErr(OpRewrap, err)
	}
	defer clear(in.DataKey)
	sw, err := esdk.NewWriter(dst, in)
	if err != nil {
		return envelopeErr(OpRewrap, err)
	}
	if _, err := sr.WriteTo(sw); err != nil {
		sw.Abort() // never finish the new message; clear what it holds
		return envelopeErr(OpRewrap, err)
	}
	if err := sw.Close(); err != nil {
		return envelopeErr(OpRewrap, err)
	}
	return nil
}

// RewrapAllInput is the input of RewrapAll.
type RewrapAllInput struct {
	Messages [][]byte
	// EncryptionContext is demanded of every message, as by Open.
	EncryptionContext EncryptionContext
	// Progress, if set, is called after each message with the number done
	// (rewrapped or failed) and the total.
	Progress func(done, total int)
}

// RewrapAllOutput is the output of RewrapAll.
type RewrapAllOutput struct {
	// Messages[i] is Messages[i] rewrapped, or nil if it failed.
	Messages [][]byte
	Failed   []RewrapFailure
}

// RewrapFailure is a message RewrapAll could not rewrap.
type RewrapFailure struct {
	Index int
	Err   error
}

// RewrapAll rewraps many messages, reporting progress; a message that
// fails is recorded in Failed and the others go on. It stops early only
// when ctx ends (the messages not reached are failed with ctx's error).
func (e *Envelope) RewrapAll(ctx context.Context, in RewrapAllInput) *RewrapAllOutput {
	out := &RewrapAllOutput{Messages: make([][]byte, len(in.Messages))}
	for i, msg := range in.Messages {
		var err error
		if err = ctx.Err(); err == nil {
			out.Messages[i], err = e.Rewrap(ctx, msg, in.EncryptionContext)
		}
		if err != nil {
			out.Failed = append(out.Failed, RewrapFailure{Index: i, Err: err})
		}
		if in.Progress != nil {
			in.Progress(i+1, len(in.Messages))
		}
	}
	return out
}
