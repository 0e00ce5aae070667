// Streaming: the Envelope's NewWriter/NewReader beside Tink's streaming
// AEAD, on payloads generated as they are read so that nothing of the
// payload's size sits in memory on the sealing side.

package bench

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// streamSizes are the payload sizes of BenchmarkStream.
var streamSizes = []struct {
	name string
	n    int64
}{{"16MiB", 16 << 20}, {"256MiB", 256 << 20}}

// pattern is an endless reader over a 1 MiB random block, cut at n bytes:
// a payload of any size without holding it.
type pattern struct {
	block []byte
	off   int64
	n     int64
}

func newPattern(tb testing.TB, n int64) *pattern { return &pattern{block: message(tb, 1<<20), n: n} }

// again returns a reader of the same payload from its start.
func (p *pattern) again() *pattern { return &pattern{block: p.block, n: p.n} }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	done := 0
	for done < len(b) {
		done += copy(b[done:], p.block[(p.off+int64(done))%int64(len(p.block)):])
	}
	p.off += int64(done)
	return done, nil
}

// copyBuf is the buffer both implementations are fed through: what io.Copy
// would use.
const copyBuf = 32 << 10

// newTinkStream returns Tink's streaming AEAD with AES-256-GCM-HKDF and
// 1 MiB segments, Tink's template for large payloads.
func newTinkStream(tb testing.TB) tink.StreamingAEAD {
	tb.Helper()
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := streamingaead.New(h)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// streamImpl seals a payload from src to dst, or opens one.
type streamImpl struct {
	seal func(dst io.Writer, src io.Reader) error
	open func(dst io.Writer, src io.Reader) error
}

func pocketkmsStream(tb testing.TB) streamImpl {
	ctx := context.Background()
	env := newKMSEnvelope(tb)
	return streamImpl{
		seal: func(dst io.Writer, src io.Reader) error {
			w, err := env.NewWriter(ctx, dst, benchContext)
			if err != nil {
				return err
			}
			if _, err := io.CopyBuffer(w, src, make([]byte, copyBuf)); err != nil {
				return err
			}
			return w.Close()
		},
		open: func(dst io.Writer, src io.Reader) error {
			r, err := env.NewReader(ctx, src, benchContext)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(dst, r, make([]byte, copyBuf))
			return err
		},
	}
}

func tinkStream(tb testing.TB) streamImpl {
	s := newTinkStream(tb)
	return streamImpl{
		seal: func(dst io.Writer, src io.Reader) error {
			w, err := s.NewEncryptingWriter(dst, tinkAD)
			if err != nil {
				return err
			}
			if _, err := io.CopyBuffer(w, src, make([]byte, copyBuf)); err != nil {
				return err
			}
			return w.Close()
		},
		open: func(dst io.Writer, src io.Reader) error {
			r, err := s.NewDecryptingReader(src, tinkAD)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(dst, r, make([]byte, copyBuf))
			return err
		},
	}
}

// onlyWriter hides io.ReaderFrom and friends so that every copy goes
// through the same buffer.
type onlyWriter struct{ io.Writer }

// BenchmarkStream seals (payload generated on the fly, ciphertext
// discarded) or opens (ciphertext from memory, plaintext discarded) one
// stream per op: impl=pocketkms (NewWriter/NewReader, default suite and
// frame length, one KeyRing recipient) and impl=tink (Tink's streaming
// AEAD, AES-256-GCM-HKDF with 1 MiB segments). Run with -cpu 1,2 for the
// one- and two-core targets.
func BenchmarkStream(b *testing.B) {
	impls := map[string]streamImpl{"pocketkms": pocketkmsStream(b), "tink": tinkStream(b)}
	for _, op := range []string{"seal", "open"} {
		for _, s := range streamSizes {
			for _, name := range []string{"pocketkms", "tink"} {
				impl := impls[name]
				b.Run("op="+op+"/size="+s.name+"/impl="+name, func(b *testing.B) {
					var sealed []byte
					src := newPattern(b, s.n)
					if op == "open" {
						buf := bytes.NewBuffer(make([]byte, 0, s.n+s.n/64+4096))
						if err := impl.seal(buf, src.again()); err != nil {
							b.Fatal(err)
						}
						sealed = buf.Bytes()
						defer runtime.GC()
					}
					b.SetBytes(s.n)
					b.ReportAllocs()
					for b.Loop() {
						var err error
						if op == "seal" {
							err = impl.seal(onlyWriter{io.Discard}, src.again())
						} else {
							err = impl.open(onlyWriter{io.Discard}, bytes.NewReader(sealed))
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// TestStreamRoundTrip keeps both stream implementations honest.
func TestStreamRoundTrip(t *testing.T) {
	for name, impl := range map[string]streamImpl{"pocketkms": pocketkmsStream(t), "tink": tinkStream(t)} {
		var sealed, opened bytes.Buffer
		src := newPattern(t, 3<<20+5)
		want, _ := io.ReadAll(src.again())
		if err := impl.seal(&sealed, src); err != nil {
			t.Fatalf("%s: seal: %v", name, err)
		}
		if err := impl.open(&opened, bytes.NewReader(sealed.Bytes())); err != nil {
			t.Fatalf("%s: open: %v", name, err)
		}
		if !bytes.Equal(want, opened.Bytes()) {
			t.Fatalf("%s: the round trip changed the payload", name)
		}
	}
}
