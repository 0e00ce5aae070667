package esdk

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pocketkms/kms/internal/format"
)

func sealInput(t testing.TB, id uint16, frameLen uint32, kr *RawAES) SealInput {
	suite, _ := format.SuiteByID(id)
	dk := make([]byte, 32)
	_, _ = rand.Read(dk)
	in := SealInput{Suite: suite, DataKey: dk, Context: map[string]string{"k": "v"}, FrameLen: frameLen, Rand: rand.Reader}
	if suite.SignatureHash != 0 {
		signer, pub, err := NewSigner(rand.Reader)
		require.NoError(t, err)
		in.Signer, in.Context = signer, WithPublicKey(in.Context, pub)
	}
	edk, err := kr.Wrap(dk, in.Context, rand.Reader)
	require.NoError(t, err)
	in.EDKs = []format.EDK{edk}
	return in
}

func streamSeal(t testing.TB, in SealInput, pt []byte, chunk int) []byte {
	var out bytes.Buffer
	w, err := NewWriter(&out, in)
	require.NoError(t, err)
	for len(pt) > 0 {
		n := min(chunk, len(pt))
		m, err := w.Write(pt[:n])
		require.NoError(t, err)
		require.Equal(t, n, m)
		pt = pt[n:]
	}
	require.NoError(t, w.Close())
	return out.Bytes()
}

func testKeyring(t testing.TB) *RawAES {
	kr, err := NewRawAES("ns", "k", bytes.Repeat([]byte{9}, 32))
	require.NoError(t, err)
	return kr
}

// TestStreamRoundTrip: what the Writer writes, Open and the Reader read,
// and what Seal writes, the Reader reads — whatever the sizes of the
// writes, the reads, the frames and the payload.
func TestStreamRoundTrip(t *testing.T) {
	kr := testKeyring(t)
	opt := Options{Reproduced: map[string]string{"k": "v"}}
	for _, id := range []uint16{0x0478, 0x0578} {
		for _, fl := range []uint32{1, 7, 64, 4096} {
			for _, size := range []int{0, 1, 63, 64, 65, 1000, 20000} {
				if fl == 1 && size > 1000 {
					continue
				}
				t.Run(fmt.Sprintf("%04x/frame=%d/size=%d", id, fl, size), func(t *testing.T) {
					pt := make([]byte, size)
					_, _ = rand.Read(pt)
					for _, chunk := range []int{1, 13, 4096, size + 1} {
						in := sealInput(t, id, fl, kr)
						msg := streamSeal(t, in, pt, chunk)
						got, _, err := Open(msg, Unwrappers(kr), opt)
						require.NoError(t, err, "Open of a streamed message, writes of %d", chunk)
						require.True(t, bytes.Equal(pt, got))

						r, err := NewReader(iotest.HalfReader(bytes.NewReader(msg)), Unwrappers(kr), opt)
						require.NoError(t, err)
						got, err = io.ReadAll(r)
						require.NoError(t, err)
						require.True(t, bytes.Equal(pt, got))
					}
					in := sealInput(t, id, fl, kr)
					in.Plaintext = pt
					msg, err := Seal(in)
					require.NoError(t, err)
					r, err := NewReader(iotest.OneByteReader(bytes.NewReader(msg)), Unwrappers(kr), opt)
					require.NoError(t, err)
					got, err := io.ReadAll(r)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got), "Reader of a one-shot message")
				})
			}
		}
	}
}

// readAll reads a stream to its end and returns what it released and the
// error that ended it; with viaWriteTo it reads through WriteTo (io.Copy)
// instead of Read.
func readAll(msg []byte, kr *RawAES, viaWriteTo bool) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(msg), Unwrappers(kr), Options{Reproduced: map[string]string{"k": "v"}})
	if err != nil {
		return nil, err
	}
	if viaWriteTo {
		var out bytes.Buffer
		_, err := r.WriteTo(&out)
		return out.Bytes(), err
	}
	return io.ReadAll(r)
}

// TestStreamCopyPaths: io.Copy into a Writer (ReadFrom, straight into its
// jobs) and out of a Reader (WriteTo, straight from its buffers) give the
// same messages and plaintext as Write and Read, for frames smaller and
// larger than a job and payloads across several jobs, whatever the
// source's read sizes.
func TestStreamCopyPaths(t *testing.T) {
	kr := testKeyring(t)
	opt := Options{Reproduced: map[string]string{"k": "v"}}
	sources := map[string]func([]byte) io.Reader{
		"half":     func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"one byte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"data+EOF": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	for _, fl := range []int{7, 4096, 1 << 20} {
		frames, _ := pipeline(fl)
		job := frames * fl
		for _, size := range []int{0, 1, fl, fl + 1, job, job + 1, 3*job + 5} {
			if size > 8<<20 {
				continue
			}
			pt := make([]byte, size)
			_, _ = rand.Read(pt)
			for name, src := range sources {
				if name == "one byte" && size > 100_000 {
					continue
				}
				t.Run(fmt.Sprintf("frame=%d/size=%d/%s", fl, size, name), func(t *testing.T) {
					var msg bytes.Buffer
					w, err := NewWriter(&msg, sealInput(t, 0x0478, uint32(fl), kr))
					require.NoError(t, err)
					n, err := io.Copy(w, src(pt)) // Writer.ReadFrom
					require.NoError(t, err)
					require.Equal(t, int64(size), n)
					require.NoError(t, w.Close())

					got, _, err := Open(msg.Bytes(), Unwrappers(kr), opt)
					require.NoError(t, err)
					require.True(t, bytes.Equal(pt, got), "Open of a ReadFrom message")

					r, err := NewReader(bytes.NewReader(msg.Bytes()), Unwrappers(kr), opt)
					require.NoError(t, err)
					var out bytes.Buffer
					n, err = io.Copy(&out, r) // Reader.WriteTo
					require.NoError(t, err)
					require.Equal(t, int64(size), n)
					require.True(t, bytes.Equal(pt, out.Bytes()), "WriteTo released other bytes")
				})
			}
		}
	}
}

// TestStreamCopyErrors: a source's error stops ReadFrom and a
// destination's error stops WriteTo, each returned as is.
func TestStreamCopyErrors(t *testing.T) {
	kr := testKeyring(t)
	boom := errors.New("boom")
	w, err := NewWriter(io.Discard, sealInput(t, 0x0478, 4096, kr))
	require.NoError(t, err)
	_, err = w.ReadFrom(io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), iotest.ErrReader(boom)))
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, w.Close(), boom, "a failed source never becomes a finished message")

	in := sealInput(t, 0x0478, 4096, kr)
	in.Plaintext = make([]byte, 1<<20)
	msg, err := Seal(in)
	require.NoError(t, err)
	r, err := NewReader(bytes.NewReader(msg), Unwrappers(kr), Options{Reproduced: map[string]string{"k": "v"}})
	require.NoError(t, err)
	_, err = r.WriteTo(failingWriter{boom})
	require.ErrorIs(t, err, boom)

	// A sink that fails while the Writer emits: the error sticks.
	w, err = NewWriter(&limitedWriter{n: 100_000, err: boom}, sealInput(t, 0x0478, 4096, kr))
	require.NoError(t, err)
	_, err = w.Write(make([]byte, 4<<20))
	if err == nil {
		err = w.Close()
	}
	require.ErrorIs(t, err, boom)
	_, err = w.Write([]byte{1})
	require.ErrorIs(t, err, boom)

	// An aborted writer writes nothing more and refuses every call.
	var out bytes.Buffer
	w, err = NewWriter(&out, sealInput(t, 0x0478, 4096, kr))
	require.NoError(t, err)
	_, err = w.Write(make([]byte, 10_000))
	require.NoError(t, err)
	before := out.Len()
	w.Abort()
	require.Error(t, w.Close())
	_, err = w.Write([]byte{1})
	require.Error(t, err)
	assert.Equal(t, before, out.Len(), "an aborted writer wrote more")
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// limitedWriter takes n bytes, then fails.
type limitedWriter struct {
	n   int
	err error
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		k := l.n
		l.n = 0
		return k, l.err
	}
	l.n -= len(p)
	return len(p), nil
}

// frames splits the body of a framed message into its frames.
func splitFrames(t *testing.T, msg []byte, frameLen int) (header []byte, frames [][]byte, rest []byte) {
	_, n, err := format.ParseMessageHeader(msg, format.HeaderLimits{})
	require.NoError(t, err)
	header, body := msg[:n], msg[n:]
	for {
		if binary.BigEndian.Uint32(body) == endOfFrames {
			l := int(binary.BigEndian.Uint32(body[4+4+12:]))
			size := frameSize(l, true)
			return header, append(frames, body[:size]), body[size:]
		}
		size := frameSize(frameLen, false)
		frames = append(frames, body[:size])
		body = body[size:]
	}
}

// TestReaderRejects: truncated, reordered, duplicated or dropped frames,
// trailing bytes, a bad signature and bit flips end the stream with an
// error, never io.EOF, and no plaintext of an unauthenticated frame.
func TestReaderRejects(t *testing.T) {
	kr := testKeyring(t)
	for _, id := range []uint16{0x0478, 0x0578} {
		t.Run(fmt.Sprintf("%04x", id), func(t *testing.T) {
			in := sealInput(t, id, 16, kr)
			in.Plaintext = bytes.Repeat([]byte("0123456789abcdef"), 5)[:70] // 4 full frames and a final one of 6
			msg, err := Seal(in)
			require.NoError(t, err)
			hdr, frames, footer := splitFrames(t, msg, 16)
			require.Len(t, frames, 5)
			join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
			cases := map[string][]byte{
				"frames swapped":        join(hdr, frames[1], frames[0], frames[2], frames[3], frames[4], footer),
				"frame repeated":        join(hdr, frames[0], frames[0], frames[1], frames[2], frames[3], frames[4], footer),
				"frame dropped":         join(hdr, frames[0], frames[2], frames[3], frames[4], footer),
				"final frame dropped":   join(hdr, frames[0], frames[1], frames[2], frames[3]),
				"trailing byte":         join(msg, []byte{0}),
				"header only":           hdr,
				"cut in the last frame": msg[:len(hdr)+4*frameSize(16, false)+10],
			}
			if id == 0x0578 {
				cases["footer dropped"] = join(hdr, frames[0], frames[1], frames[2], frames[3], frames[4])
				bad := bytes.Clone(msg)
				bad[len(bad)-3] ^= 1
				cases["signature flipped"] = bad
			}
			for _, viaWriteTo := range []bool{false, true} {
				for name, m := range cases {
					got, err := readAll(m, kr, viaWriteTo)
					require.Error(t, err, name)
					assert.NotErrorIs(t, err, io.EOF, name)
					assert.LessOrEqual(t, len(got), len(in.Plaintext), name)
					assert.True(t, bytes.HasPrefix(in.Plaintext, got), "%s: released bytes that are not the message's", name)
				}
				for i := range len(msg) * 8 {
					bad := bytes.Clone(msg)
					bad[i/8] ^= 1 << (i % 8)
					got, err := readAll(bad, kr, viaWriteTo)
					require.Error(t, err, "bit %d", i)
					assert.True(t, bytes.HasPrefix(in.Plaintext, got), "bit %d released other bytes", i)
				}
			}
		})
	}
}

// TestStreamConstantMemory streams 64 MiB through the Writer and the
// Reader: the bytes allocated do not grow with the payload.
func TestStreamConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MiB")
	}
	kr := testKeyring(t)
	const size = 64 << 20
	pr, pw := io.Pipe()
	in := sealInput(t, 0x0478, 64<<10, kr)
	errc := make(chan error, 1)
	go func() {
		w, err := NewWriter(pw, in)
		if err == nil {
			chunk := make([]byte, 1<<20)
			for sent := 0; sent < size && err == nil; sent += len(chunk) {
				_, err = w.Write(chunk)
			}
			if err == nil {
				err = w.Close()
			}
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := NewReader(pr, Unwrappers(kr), Options{Reproduced: map[string]string{"k": "v"}})
	require.NoError(t, err)
	n, err := io.CopyBuffer(io.Discard, r, make([]byte, 256<<10))
	require.NoError(t, err)
	require.NoError(t, <-errc)
	runtime.ReadMemStats(&after)
	require.Equal(t, int64(size), n)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("streamed %d MiB, allocated %d KiB", size>>20, allocated>>10)
	assert.Less(t, allocated, uint64(16<<20), "the stream allocates in proportion to the payload")
}
