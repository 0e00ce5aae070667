// Streaming: the Envelope's NewWriter/NewReader beside Tink's streaming
// AEAD, on payloads generated as they are read so that nothing of the
// payload's size sits in memory on the sealing side.

package bench

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
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

// heapWatch samples the bytes of heap objects (live and not yet swept) at
// every call of sample and keeps the largest. Both ends of the pipe call it.
type heapWatch struct {
	mu   sync.Mutex
	s    []metrics.Sample
	peak uint64
}

func newHeapWatch() *heapWatch {
	return &heapWatch{s: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

func (h *heapWatch) sample() {
	h.mu.Lock()
	defer h.mu.Unlock()
	metrics.Read(h.s)
	h.peak = max(h.peak, h.s[0].Value.Uint64())
}

// watchedReader and watchedWriter sample the heap at every read and write.
type watchedReader struct {
	io.Reader
	h *heapWatch
}

func (w watchedReader) Read(p []byte) (int, error) { w.h.sample(); return w.Reader.Read(p) }

type watchedWriter struct {
	io.Writer
	h *heapWatch
}

func (w watchedWriter) Write(p []byte) (int, error) { w.h.sample(); return w.Writer.Write(p) }

// TestStreamPeakHeap streams 256 MiB through NewWriter into NewReader over
// a pipe, payload generated as it is read: the heap never holds more than
// 16 MiB, whatever the payload size (the target; the pipeline
// holds a few MiB of frames on each side).
func TestStreamPeakHeap(t *testing.T) {
	ctx := context.Background()
	env := newKMSEnvelope(t)
	const size = 256 << 20
	src := newPattern(t, size)
	h := newHeapWatch()
	runtime.GC()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		w, err := env.NewWriter(ctx, watchedWriter{pw, h}, benchContext)
		if err == nil {
			_, err = io.Copy(w, watchedReader{src, h})
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	r, err := env.NewReader(ctx, watchedReader{pr, h}, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(watchedWriter{io.Discard, h}, r)
	if err != nil || n != size {
		t.Fatalf("streamed %d bytes: %v", n, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("256 MiB sealed and opened through a pipe with a peak heap of %.1f MiB", float64(h.peak)/(1<<20))
	if h.peak > 16<<20 {
		t.Fatalf("peak heap %.1f MiB, want at most 16 MiB", float64(h.peak)/(1<<20))
	}
}
