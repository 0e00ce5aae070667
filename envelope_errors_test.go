package kms_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms"
	"github.com/pocketkms/kms/kmstest"
)

// This file feeds the read side of the Envelope (Open, AppendOpen, NewReader
// and ParseHeader) messages that are wrong in one precise way, built from
// real messages by editing their bytes, and asserts through the public API
// that each gives a typed error: never a panic, never plaintext that was not
// authenticated, and never io.EOF from a stream. Bit flips, truncation at a
// few offsets, one trailing byte on Open, a wrong context value and a
// missing recipient on Open are TestEnvelopeOpenFailures' (envelope_test.go)
// and are not repeated here.

const (
	errFrameLen   = 16  // small frames, so that a message has several
	errPayloadLen = 100 // six regular frames and a final frame of 4 bytes
	errFill       = 0xA5
	maxFrameLen   = 1 << 30 // esdk.MaxFrameLength
)

// errPayload is ASCII, so that it holds neither 0 nor errFill, and each of
// its frames differs from the others.
func errPayload() []byte {
	pt := make([]byte, errPayloadLen)
	for i := range pt {
		pt[i] = 'A' + byte(i%58)
	}
	return pt
}

// Never use a literal key like this outside tests.
var errRawKey = bytes.Repeat([]byte{0x42}, 32)

// errFixture is a ring with a KeyRing key and a raw AES recipient whose
// wrapping key the test holds (so that it can authenticate an edited
// header), and an Envelope of small frames for both.
type errFixture struct {
	r   *kmstest.Ring
	key *kms.KeyMetadata
	raw kms.Recipient
	ec  kms.EncryptionContext
	pt  []byte
}

func newErrFixture(t *testing.T) *errFixture {
	t.Helper()
	r := kmstest.New(t)
	raw, err := kms.RawAESRecipient("tests", "frames", errRawKey)
	require.NoError(t, err)
	return &errFixture{
		r: r, key: r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt), raw: raw,
		ec: kms.EncryptionContext{"purpose": "errors", "tenant": "7"}, pt: errPayload(),
	}
}

func (f *errFixture) envelope(t *testing.T, suite uint16) *kms.Envelope {
	t.Helper()
	env, err := kms.NewEnvelope(f.r.KeyRing, kms.EnvelopeConfig{
		Recipients: []kms.Recipient{kms.KeyRecipient(f.key.KeyID), f.raw}, Suite: suite, FrameLength: errFrameLen,
	})
	require.NoError(t, err)
	return env
}

func (f *errFixture) seal(t *testing.T, env *kms.Envelope) []byte {
	t.Helper()
	msg, err := env.Seal(context.Background(), f.pt, f.ec)
	require.NoError(t, err)
	return msg
}

var errSuites = []struct {
	name string
	id   uint16
}{{"committed", kms.SuiteCommitted}, {"committed-signed", kms.SuiteCommittedSigned}}

// bodyLayout locates the frames of a framed message of format 2.
type bodyLayout struct {
	regular    [][2]int // [start, end) of each regular frame
	final      [2]int   // [start, end) of the final frame
	finalLenAt int      // the final frame's content length field
	end        int      // where the body ends: the footer, or the end
}

// layoutBody walks the body the way docs/FORMAT.md §4 step 6 lays it out,
// and checks the message is what the tests expect to edit.
func layoutBody(t *testing.T, msg []byte, signed bool) bodyLayout {
	t.Helper()
	h, err := kms.ParseHeader(msg)
	require.NoError(t, err)
	require.Equal(t, errFrameLen, h.FrameLength)
	var l bodyLayout
	at := h.Size
	for {
		require.LessOrEqual(t, at+4, len(msg))
		if binary.BigEndian.Uint32(msg[at:]) == 0xFFFFFFFF {
			require.Equal(t, uint32(len(l.regular)+1), binary.BigEndian.Uint32(msg[at+4:]))
			l.finalLenAt = at + 4 + 4 + 12
			n := int(binary.BigEndian.Uint32(msg[l.finalLenAt:]))
			l.final = [2]int{at, l.finalLenAt + 4 + n + 16}
			l.end = l.final[1]
			break
		}
		require.Equal(t, uint32(len(l.regular)+1), binary.BigEndian.Uint32(msg[at:]))
		end := at + 4 + 12 + errFrameLen + 16
		l.regular = append(l.regular, [2]int{at, end})
		at = end
	}
	require.Len(t, l.regular, errPayloadLen/errFrameLen)
	require.Equal(t, uint32(errPayloadLen%errFrameLen), binary.BigEndian.Uint32(msg[l.finalLenAt:]))
	if signed {
		require.Equal(t, len(msg)-l.end-2, int(binary.BigEndian.Uint16(msg[l.end:])), "footer length")
	} else {
		require.Equal(t, len(msg), l.end)
	}
	return l
}

// headerLayout locates the length fields of a format 2 header.
type headerLayout struct {
	aadLenAt   int
	aad        []byte
	edks       []edkLayout
	frameLenAt int
	commitAt   int
	tagAt      int // the header body is msg[:tagAt]
	size       int
}

type edkLayout struct {
	lenAt        [3]int // provider ID, provider info, ciphertext length fields
	id, info, ct []byte
}

func layoutHeader(t *testing.T, msg []byte) headerLayout {
	t.Helper()
	h, err := kms.ParseHeader(msg)
	require.NoError(t, err)
	require.Equal(t, uint8(2), h.Version)
	field := func(at int) (int, []byte) {
		n := int(binary.BigEndian.Uint16(msg[at:]))
		return at + 2 + n, msg[at+2 : at+2+n]
	}
	var l headerLayout
	l.aadLenAt = 1 + 2 + 32
	at, aad := field(l.aadLenAt)
	l.aad = aad
	count := int(binary.BigEndian.Uint16(msg[at:]))
	at += 2
	for range count {
		var e edkLayout
		var parts [3][]byte
		for i := range parts {
			e.lenAt[i] = at
			at, parts[i] = field(at)
		}
		e.id, e.info, e.ct = parts[0], parts[1], parts[2]
		l.edks = append(l.edks, e)
	}
	require.Equal(t, byte(0x02), msg[at], "framed")
	l.frameLenAt = at + 1
	l.commitAt = l.frameLenAt + 4
	l.tagAt = l.commitAt + 32
	l.size = l.tagAt + 16
	require.Equal(t, h.Size, l.size)
	require.Equal(t, uint32(h.FrameLength), binary.BigEndian.Uint32(msg[l.frameLenAt:]))
	return l
}

// reauthenticate recomputes the header tag of msg (edited or not), as its
// writer would: the test holds the raw AES wrapping key, so it unwraps the
// data key, derives the content key (docs/FORMAT.md §4 step 4), checks the
// commitment and seals the header body. An edited header then fails for
// what was edited, not for its tag.
func reauthenticate(t *testing.T, msg []byte) []byte {
	t.Helper()
	l := layoutHeader(t, msg)
	var edk *edkLayout
	for i := range l.edks {
		if string(l.edks[i].id) == "tests" {
			edk = &l.edks[i]
		}
	}
	require.NotNil(t, edk, "the raw AES recipient's EDK")
	name := len("frames")
	require.Len(t, edk.info, name+4+4+12)
	wrap, err := aes.NewCipher(errRawKey)
	require.NoError(t, err)
	wrapGCM, err := cipher.NewGCM(wrap)
	require.NoError(t, err)
	dataKey, err := wrapGCM.Open(nil, edk.info[name+8:], edk.ct, l.aad)
	require.NoError(t, err)

	messageID := msg[3:35]
	info := append(bytes.Clone(msg[1:3]), "DERIVEKEY"...)
	contentKey, err := hkdf.Key(sha512.New, dataKey, messageID, string(info), 32)
	require.NoError(t, err)
	commit, err := hkdf.Key(sha512.New, dataKey, messageID, "COMMITKEY", 32)
	require.NoError(t, err)
	require.Equal(t, msg[l.commitAt:l.commitAt+32], commit, "the test derives the keys as the writer did")
	block, err := aes.NewCipher(contentKey)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	out := bytes.Clone(msg)
	copy(out[l.tagAt:l.size], gcm.Seal(nil, make([]byte, 12), nil, msg[:l.tagAt]))
	return out
}

func splice(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func withUint16(msg []byte, at int, v uint16) []byte {
	out := bytes.Clone(msg)
	binary.BigEndian.PutUint16(out[at:], v)
	return out
}

func withUint32(msg []byte, at int, v uint32) []byte {
	out := bytes.Clone(msg)
	binary.BigEndian.PutUint32(out[at:], v)
	return out
}

// expectRejected asserts that every way of opening msg fails with want.
func expectRejected(t *testing.T, env *kms.Envelope, msg []byte, ec kms.EncryptionContext, pt []byte, want error) {
	t.Helper()
	expectOpenRejected(t, env, msg, ec, want)
	expectAppendOpenRejected(t, env, msg, ec, pt, want)
	expectStreamRejected(t, env, msg, ec, pt, want)
}

func expectOpenRejected(t *testing.T, env *kms.Envelope, msg []byte, ec kms.EncryptionContext, want error) {
	t.Helper()
	var got []byte
	var err error
	require.NotPanics(t, func() { got, err = env.Open(context.Background(), msg, ec) }, "Open")
	require.ErrorIs(t, err, want, "Open")
	require.Nil(t, got, "Open returned plaintext beside an error")
	var ke *kms.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kms.OpOpen, ke.Op)
}

// expectAppendOpenRejected: AppendOpen "returns nil, and no plaintext is
// left in dst's spare capacity". dst has room for the whole plaintext (so
// that AppendOpen would decrypt into it) and its spare capacity is filled
// with errFill: afterwards every spare byte must be errFill (untouched) or
// 0 (cleared), and what dst held is kept.
func expectAppendOpenRejected(t *testing.T, env *kms.Envelope, msg []byte, ec kms.EncryptionContext, pt []byte, want error) {
	t.Helper()
	prefix := []byte("held:")
	dst := make([]byte, len(prefix), len(prefix)+len(msg)+len(pt)+64)
	copy(dst, prefix)
	spare := dst[len(prefix):cap(dst)]
	for i := range spare {
		spare[i] = errFill
	}
	var got []byte
	var err error
	require.NotPanics(t, func() { got, err = env.AppendOpen(context.Background(), dst, msg, ec) }, "AppendOpen")
	require.ErrorIs(t, err, want, "AppendOpen")
	require.Nil(t, got, "AppendOpen returned a slice beside an error")
	require.Equal(t, prefix, dst[:len(prefix)], "AppendOpen changed what dst held")
	for i, b := range spare {
		if b != 0 && b != errFill {
			t.Fatalf("AppendOpen left %q in dst's spare capacity at %d", spare[i:min(i+16, len(spare))], i)
		}
	}
}

// expectStreamRejected reads a NewReader to its end, by Read and by
// WriteTo. The reader may release frames that authenticated before it
// fails, but only the message's own plaintext, in order; its last error
// must be want, never io.EOF, and it stays failed.
func expectStreamRejected(t *testing.T, env *kms.Envelope, msg []byte, ec kms.EncryptionContext, pt []byte, want error) {
	t.Helper()
	ctx := context.Background()
	newReader := func() io.Reader {
		var rd io.Reader
		var err error
		require.NotPanics(t, func() { rd, err = env.NewReader(ctx, bytes.NewReader(msg), ec) }, "NewReader")
		if err != nil {
			require.ErrorIs(t, err, want, "NewReader")
			require.NotErrorIs(t, err, io.EOF)
			require.Nil(t, rd)
			return nil
		}
		return rd
	}
	rd := newReader()
	if rd == nil {
		return
	}
	var got []byte
	var err error
	buf := make([]byte, 7)
	for i := 0; err == nil; i++ {
		require.Less(t, i, 10*len(msg), "the reader never ends")
		var n int
		require.NotPanics(t, func() { n, err = rd.Read(buf) }, "Read")
		got = append(got, buf[:n]...)
	}
	require.NotErrorIs(t, err, io.EOF, "a bad message must never end in io.EOF")
	require.ErrorIs(t, err, want, "Read")
	require.True(t, bytes.HasPrefix(pt, got), "released bytes that are not the message's plaintext: %q", got)
	n, err := rd.Read(buf)
	require.Zero(t, n, "Read after the error")
	require.ErrorIs(t, err, want, "Read after the error")

	var sink bytes.Buffer
	rd = newReader()
	require.NotPanics(t, func() { _, err = io.Copy(&sink, rd) }, "WriteTo")
	require.ErrorIs(t, err, want, "WriteTo")
	require.True(t, bytes.HasPrefix(pt, sink.Bytes()), "WriteTo released bytes that are not the message's plaintext")
}

// expectOpens is the control: the message as sealed opens every way.
func expectOpens(t *testing.T, env *kms.Envelope, msg []byte, ec kms.EncryptionContext, pt []byte) {
	t.Helper()
	ctx := context.Background()
	got, err := env.Open(ctx, msg, ec)
	require.NoError(t, err)
	require.Equal(t, pt, got)
	got, err = env.AppendOpen(ctx, []byte("held:"), msg, ec)
	require.NoError(t, err)
	require.Equal(t, append([]byte("held:"), pt...), got)
	rd, err := env.NewReader(ctx, bytes.NewReader(msg), ec)
	require.NoError(t, err)
	got, err = io.ReadAll(rd)
	require.NoError(t, err)
	require.Equal(t, pt, got)
}

// TestEnvelopeFramesTampered: frames exchanged, repeated, dropped or
// missing, final frames and footers cut or lengthened, and bytes after the
// message are ErrInvalidCiphertext from Open, AppendOpen and NewReader.
func TestEnvelopeFramesTampered(t *testing.T) {
	f := newErrFixture(t)
	for _, suite := range errSuites {
		env := f.envelope(t, suite.id)
		msg := f.seal(t, env)
		signed := suite.id == kms.SuiteCommittedSigned
		l := layoutBody(t, msg, signed)
		frame := func(i int) []byte { return msg[l.regular[i][0]:l.regular[i][1]] }
		for _, tc := range []struct {
			name       string
			signedOnly bool
			edit       func() []byte
		}{
			{name: "regular frames 2 and 3 exchanged", edit: func() []byte {
				return splice(msg[:l.regular[1][0]], frame(2), frame(1), msg[l.regular[2][1]:])
			}},
			{name: "first two frames exchanged", edit: func() []byte {
				return splice(msg[:l.regular[0][0]], frame(1), frame(0), msg[l.regular[1][1]:])
			}},
			{name: "regular frame 3 repeated", edit: func() []byte {
				return splice(msg[:l.regular[2][1]], frame(2), msg[l.regular[2][1]:])
			}},
			{name: "regular frame 4 dropped", edit: func() []byte {
				return splice(msg[:l.regular[3][0]], msg[l.regular[3][1]:])
			}},
			{name: "last regular frame dropped", edit: func() []byte {
				last := len(l.regular) - 1
				return splice(msg[:l.regular[last][0]], msg[l.regular[last][1]:])
			}},
			{name: "final frame missing: cut after the last regular frame", edit: func() []byte {
				return bytes.Clone(msg[:l.final[0]])
			}},
			{name: "final frame missing: cut after regular frame 3", edit: func() []byte {
				return bytes.Clone(msg[:l.regular[2][1]])
			}},
			{name: "final frame dropped, footer kept", signedOnly: true, edit: func() []byte {
				return splice(msg[:l.final[0]], msg[l.end:])
			}},
			{name: "final frame repeated", edit: func() []byte {
				return splice(msg[:l.final[1]], msg[l.final[0]:l.final[1]], msg[l.end:])
			}},
			{name: "final frame content length over the frame length", edit: func() []byte {
				return withUint32(msg, l.finalLenAt, errFrameLen+1)
			}},
			{name: "final frame content length 0xFFFFFFFF", edit: func() []byte {
				return withUint32(msg, l.finalLenAt, 0xFFFFFFFF)
			}},
			{name: "final frame content length past its content", edit: func() []byte {
				return withUint32(msg, l.finalLenAt, errFrameLen)
			}},
			{name: "final frame tag changed", edit: func() []byte {
				out := bytes.Clone(msg)
				out[l.final[1]-1] ^= 1
				return out
			}},
			{name: "footer missing", signedOnly: true, edit: func() []byte {
				return bytes.Clone(msg[:l.end])
			}},
			{name: "footer signature length past the end", signedOnly: true, edit: func() []byte {
				return withUint16(msg, l.end, 0xFFFF)
			}},
			{name: "trailing zero byte", edit: func() []byte { return splice(msg, []byte{0}) }},
			{name: "trailing copy of the final frame", edit: func() []byte {
				return splice(msg, msg[l.final[0]:l.final[1]])
			}},
			{name: "trailing copy of the message", edit: func() []byte { return splice(msg, msg) }},
		} {
			if tc.signedOnly && !signed {
				continue
			}
			t.Run(suite.name+"/"+tc.name, func(t *testing.T) {
				bad := tc.edit()
				require.NotEqual(t, msg, bad)
				expectRejected(t, env, bad, f.ec, f.pt, kms.ErrInvalidCiphertext)
			})
		}
		t.Run(suite.name+"/as sealed", func(t *testing.T) { expectOpens(t, env, msg, f.ec, f.pt) })
	}
}

// TestEnvelopeMaxRecipientsOnRead: a message with more encrypted data keys
// than the reader's MaxRecipients is refused before any key is tried, as
// a header over its limits (envelopeErr maps the engine's ErrMalformed to
// ErrInvalidCiphertext), even by an Envelope holding one of its keys.
// ParseHeader has no such limit.
func TestEnvelopeMaxRecipientsOnRead(t *testing.T) {
	ctx := context.Background()
	r := kmstest.New(t)
	var rcs []kms.Recipient
	for range 11 {
		rcs = append(rcs, kms.KeyRecipient(r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt).KeyID))
	}
	pt := errPayload()
	ec := kms.EncryptionContext{"purpose": "limits"}
	for _, suite := range errSuites {
		t.Run(suite.name, func(t *testing.T) {
			writer, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: rcs, MaxRecipients: 12, Suite: suite.id, FrameLength: errFrameLen})
			require.NoError(t, err)
			msg, err := writer.Seal(ctx, pt, ec)
			require.NoError(t, err)
			h, err := kms.ParseHeader(msg)
			require.NoError(t, err)
			require.Len(t, h.Recipients, 11)

			for _, rc := range []kms.Recipient{rcs[0], rcs[10]} {
				reader, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: []kms.Recipient{rc}, MaxRecipients: 10})
				require.NoError(t, err)
				r.Events.Reset()
				expectRejected(t, reader, msg, ec, nil, kms.ErrInvalidCiphertext)
				assert.Empty(t, r.Events.ByOp(kms.OpDecrypt), "no key is tried on a header over the limit")
			}

			// The controls: the limit is what refuses it. A reader allowing
			// 11 opens it; a message of 10 opens with the default of 10.
			reader, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: rcs[:1], MaxRecipients: 11})
			require.NoError(t, err)
			expectOpens(t, reader, msg, ec, pt)
			writer10, err := kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: rcs[:10], Suite: suite.id, FrameLength: errFrameLen})
			require.NoError(t, err)
			msg10, err := writer10.Seal(ctx, pt, ec)
			require.NoError(t, err)
			reader, err = kms.NewEnvelope(r.KeyRing, kms.EnvelopeConfig{Recipients: rcs[9:10]})
			require.NoError(t, err)
			expectOpens(t, reader, msg10, ec, pt)
		})
	}
}

// TestEnvelopeOversizedHeaderFields: length fields of the header that
// claim more bytes than the message has, and frame lengths over what the
// body holds or over the 1 GiB limit, are typed errors from every reader.
func TestEnvelopeOversizedHeaderFields(t *testing.T) {
	f := newErrFixture(t)
	for _, suite := range errSuites {
		env := f.envelope(t, suite.id)
		msg := f.seal(t, env)
		l := layoutHeader(t, msg)
		require.Len(t, l.edks, 2)

		// Length prefixes past the end: the header does not parse, so
		// ParseHeader fails too.
		type field struct {
			name string
			at   int
		}
		fields := []field{{"context length", l.aadLenAt}}
		for i, e := range l.edks {
			for j, part := range []string{"provider ID", "provider info", "ciphertext"} {
				fields = append(fields, field{fmt.Sprintf("EDK %d %s length", i+1, part), e.lenAt[j]})
			}
		}
		for _, fl := range fields {
			rest := len(msg) - fl.at - 2
			require.Less(t, rest, 0xFFFF)
			for _, v := range []int{rest + 1, 0xFFFF} {
				t.Run(fmt.Sprintf("%s/%s %d", suite.name, fl.name, v), func(t *testing.T) {
					bad := withUint16(msg, fl.at, uint16(v))
					h, err := kms.ParseHeader(bad)
					require.ErrorIs(t, err, kms.ErrInvalidCiphertext, "ParseHeader")
					require.Nil(t, h)
					expectRejected(t, env, bad, f.ec, f.pt, kms.ErrInvalidCiphertext)
				})
			}
		}

		// The frame length is a plain number to the parser: an edited one
		// parses, unauthenticated, and fails the header tag on opening.
		for _, v := range []uint32{uint32(len(msg)), maxFrameLen, maxFrameLen + 1, 0xFFFFFFFF} {
			t.Run(fmt.Sprintf("%s/frame length %d, header not authenticated", suite.name, v), func(t *testing.T) {
				bad := withUint32(msg, l.frameLenAt, v)
				h, err := kms.ParseHeader(bad)
				require.NoError(t, err, "ParseHeader authenticates nothing")
				require.Equal(t, int(v), h.FrameLength)
				expectRejected(t, env, bad, f.ec, f.pt, kms.ErrInvalidCiphertext)
			})
		}

		// The same with the header authenticated again, as a writer holding
		// the data key could: the frame length itself must be refused.
		require.Equal(t, msg, reauthenticate(t, msg), "re-authenticating an unedited header changes nothing")
		for _, v := range []uint32{uint32(len(msg)), 1 << 20, maxFrameLen} {
			t.Run(fmt.Sprintf("%s/frame length %d, header authenticated", suite.name, v), func(t *testing.T) {
				bad := reauthenticate(t, withUint32(msg, l.frameLenAt, v))
				expectRejected(t, env, bad, f.ec, f.pt, kms.ErrInvalidCiphertext)
			})
		}
		for _, v := range []uint32{maxFrameLen + 1, 0xFFFFFFFF} {
			t.Run(fmt.Sprintf("%s/frame length %d over 1 GiB, header authenticated", suite.name, v), func(t *testing.T) {
				bad := reauthenticate(t, withUint32(msg, l.frameLenAt, v))
				// The format allows frames up to 4 GiB; no reader here takes
				// frames over 1 GiB, and every one says so the same way.
				expectOpenRejected(t, env, bad, f.ec, kms.ErrUnsupported)
				expectAppendOpenRejected(t, env, bad, f.ec, f.pt, kms.ErrUnsupported)
				expectStreamRejected(t, env, bad, f.ec, f.pt, kms.ErrUnsupported)
			})
		}
	}
}

// TestEnvelopeWrongContextAndKeyEveryReader extends TestEnvelopeOpenFailures
// (envelope_test.go), which checks a wrong context value, a required pair
// never stored and a missing recipient through Open on the unsigned suite:
// here the same through AppendOpen and NewReader, Open on the signed suite,
// a raw AES recipient of the right name with the wrong key, and the signed
// suite's verification key asked for with another value.
func TestEnvelopeWrongContextAndKeyEveryReader(t *testing.T) {
	f := newErrFixture(t)
	other := f.r.CreateKey(kms.SymmetricDefault, kms.EncryptDecrypt)
	wrongRaw, err := kms.RawAESRecipient("tests", "frames", bytes.Repeat([]byte{0x43}, 32))
	require.NoError(t, err)
	for _, suite := range errSuites {
		env := f.envelope(t, suite.id)
		msg := f.seal(t, env)
		signed := suite.id == kms.SuiteCommittedSigned
		with := func(rcs ...kms.Recipient) *kms.Envelope {
			e, err := kms.NewEnvelope(f.r.KeyRing, kms.EnvelopeConfig{Recipients: rcs})
			require.NoError(t, err)
			return e
		}
		for _, tc := range []struct {
			name        string
			env         *kms.Envelope
			ec          kms.EncryptionContext
			want        error
			openCovered bool // Open on the unsigned suite is TestEnvelopeOpenFailures'
		}{
			{"stored pair with another value", env, kms.EncryptionContext{"tenant": "8"}, kms.ErrInvalidCiphertext, true},
			{"stored pair with another value, raw recipient", with(f.raw), kms.EncryptionContext{"tenant": "8"}, kms.ErrInvalidCiphertext, false},
			{"required pair never stored", env, kms.EncryptionContext{"tenant": "7", "extra": "x"}, kms.ErrInvalidCiphertext, true},
			{"required pair never stored, raw recipient", with(f.raw), kms.EncryptionContext{"extra": "x"}, kms.ErrInvalidCiphertext, false},
			{"no recipient of the message", with(kms.KeyRecipient(other.KeyID)), f.ec, kms.ErrIncorrectKey, true},
			{"raw AES recipient of the same name, another key", with(wrongRaw), f.ec, kms.ErrInvalidCiphertext, false},
			{"another verification key asked for", env, kms.EncryptionContext{"aws-crypto-public-key": "AAAA"}, kms.ErrInvalidCiphertext, false},
		} {
			t.Run(suite.name+"/"+tc.name, func(t *testing.T) {
				if signed || !tc.openCovered {
					expectOpenRejected(t, tc.env, msg, tc.ec, tc.want)
				}
				expectAppendOpenRejected(t, tc.env, msg, tc.ec, f.pt, tc.want)
				expectStreamRejected(t, tc.env, msg, tc.ec, f.pt, tc.want)
			})
		}
	}
}
