package esdk

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/pocketkms/kms/internal/format"
)

// batchFrames is how many frames a stream seals or opens at once, one per
// core: the memory a stream holds is about 2 × batchFrames × frame length.
func batchFrames() int { return max(1, runtime.GOMAXPROCS(0)) }

// parallel runs f(i) for i in [0, n), on up to n goroutines.
func parallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}

// Writer seals a message as it is written, in constant memory: it writes
// the header at once, then each batch of frames as they fill (sealed in
// parallel), and the final frame and footer on Close.
type Writer struct {
	w     io.Writer
	in    SealInput
	aead  cipher.AEAD
	id    []byte
	flen  int
	seq   uint32
	buf   []byte // pending plaintext: at most batch × flen bytes
	out   []byte // sealed frames of the batch being written
	batch int
	sig   hash.Hash
	err   error
}

// NewWriter writes the header of a message to w and returns the Writer of
// its body. in.Plaintext is ignored.
func NewWriter(w io.Writer, in SealInput) (*Writer, error) {
	hdr, aead, id, err := sealHeader(in, 0)
	if err != nil {
		return nil, err
	}
	sw := &Writer{w: w, in: in, aead: aead, id: id, flen: int(in.FrameLen), batch: batchFrames()}
	if in.Signer != nil {
		sw.sig = in.Suite.SignatureHash.New()
	}
	if err := sw.emit(hdr); err != nil {
		return nil, err
	}
	return sw, nil
}

func (sw *Writer) emit(b []byte) error {
	if sw.sig != nil {
		sw.sig.Write(b)
	}
	if _, err := sw.w.Write(b); err != nil {
		sw.err = err
		return err
	}
	return nil
}

// Write buffers p and seals every batch of frames that fills. The last
// frame is always held back, so that Close can mark it final.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	n := 0
	limit := sw.batch * sw.flen
	for len(p) > 0 {
		take := min(len(p), limit+1-len(sw.buf)) // one byte past a full batch proves more is coming
		sw.buf = append(sw.buf, p[:take]...)
		p, n = p[take:], n+take
		if len(sw.buf) > limit {
			if err := sw.flush(sw.batch, false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush seals the first frames of the buffer (the last one final if final
// is set) in parallel and writes them in order.
func (sw *Writer) flush(frames int, final bool) error {
	if uint64(sw.seq)+uint64(frames) >= endOfFrames {
		sw.err = errors.New("esdk: message needs too many frames")
		return sw.err
	}
	type slot struct{ off, n int }
	slots := make([]slot, frames)
	size := 0
	for i := range frames {
		n := sw.flen
		if final && i == frames-1 {
			n = len(sw.buf) - i*sw.flen
		}
		slots[i] = slot{size, n}
		size += frameSize(n, final && i == frames-1)
	}
	sw.out = grow(sw.out, size)
	parallel(frames, func(i int) {
		s := slots[i]
		chunk := sw.buf[i*sw.flen : i*sw.flen+s.n]
		appendFrame(sw.out[s.off:s.off], sw.aead, sw.id, sw.seq+uint32(i)+1, chunk, final && i == frames-1)
	})
	sw.seq += uint32(frames)
	used := min(len(sw.buf), frames*sw.flen)
	sw.buf = append(sw.buf[:0], sw.buf[used:]...)
	return sw.emit(sw.out)
}

// Close seals what is left as the final frames, writes the footer of a
// signed suite, and clears the buffers. It does not close the underlying
// writer.
func (sw *Writer) Close() error {
	if sw.err != nil {
		return sw.err
	}
	defer func() { clear(sw.buf); sw.err = errors.New("esdk: writer closed") }()
	frames := max(1, (len(sw.buf)+sw.flen-1)/sw.flen)
	if err := sw.flush(frames, true); err != nil {
		return err
	}
	if sw.sig != nil {
		footer, err := appendSignature(nil, sw.in, sw.sig.Sum(nil))
		if err != nil {
			return err
		}
		if _, err := sw.w.Write(footer); err != nil {
			return err
		}
	}
	return nil
}

// ErrUnsupportedStream: NewReader reads framed messages with frames of at
// most MaxFrameLength; Open reads the rest.
var ErrUnsupportedStream = errors.New("esdk: a non-framed message, or frames over 1 GiB, cannot be streamed; use Open")

// MaxHeaderSize bounds the header a Reader reads.
const MaxHeaderSize = 4 << 20

// Reader opens a message as it is read. It releases the plaintext of each
// frame only once the frame has authenticated, opens frames in parallel,
// and returns io.EOF only after the final frame, the footer signature of a
// signed suite and the absence of trailing bytes have been checked.
type Reader struct {
	br      *bufio.Reader
	h       *format.MessageHeader
	aead    cipher.AEAD
	seq     uint32
	batch   int
	sig     hash.Hash
	pending []byte // authenticated plaintext not yet read
	pt      []byte // backing buffer of pending
	frames  []rawFrame
	done    bool
	err     error
}

// NewReader reads and authenticates the header of a message from r.
func NewReader(r io.Reader, unwrap Unwrapper, opt Options) (*Reader, error) {
	raw, h, n, err := readHeader(r, opt)
	if err != nil {
		return nil, err
	}
	aead, err := openHeader(h, unwrap, opt)
	if err != nil {
		return nil, err
	}
	if !h.Framed || h.FrameLength > MaxFrameLength {
		return nil, ErrUnsupportedStream
	}
	sr := &Reader{h: h, aead: aead, batch: batchFrames()}
	sr.br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(raw[n:]), r), 64<<10)
	if h.Suite.SignatureHash != 0 {
		sr.sig = h.Suite.SignatureHash.New()
		sr.sig.Write(raw[:n])
	}
	return sr, nil
}

// readHeader reads from r until a whole header parses, and returns the
// bytes read, the header and its length.
func readHeader(r io.Reader, opt Options) ([]byte, *format.MessageHeader, int, error) {
	buf := make([]byte, 0, 4096)
	for {
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		h, hn, perr := format.ParseMessageHeader(buf, format.HeaderLimits{MaxEDKs: opt.MaxEDKs})
		if perr == nil {
			return buf, h, hn, nil
		}
		if err != nil || len(buf) >= MaxHeaderSize {
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, nil, 0, err
			}
			return nil, nil, 0, ErrMalformed
		}
		buf = append(buf, make([]byte, min(cap(buf), MaxHeaderSize-len(buf)))...)[:len(buf)]
	}
}

// Read returns authenticated plaintext.
func (sr *Reader) Read(p []byte) (int, error) {
	for len(sr.pending) == 0 {
		if sr.err != nil {
			return 0, sr.err
		}
		if sr.done {
			return 0, io.EOF
		}
		if err := sr.next(); err != nil {
			clear(sr.pt)
			sr.pending, sr.err = nil, err
			return 0, err
		}
	}
	n := copy(p, sr.pending)
	sr.pending = sr.pending[n:]
	return n, nil
}

type rawFrame struct {
	seq   uint32
	final bool
	iv    [12]byte
	ct    []byte // content and tag
}

// grow returns b resliced to n bytes, reallocated only if too small.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// next reads up to a batch of frames, opens them in parallel and makes
// their plaintext pending; after the final frame it checks the footer and
// that nothing follows.
func (sr *Reader) next() error {
	if sr.frames == nil {
		sr.frames = make([]rawFrame, sr.batch)
	}
	frames := sr.frames[:0]
	final := false
	for len(frames) < sr.batch && !final {
		f := &sr.frames[len(frames)]
		if err := sr.readFrame(f); err != nil {
			return err
		}
		frames = frames[:len(frames)+1]
		final = f.final
	}
	size := 0
	offs := make([]int, len(frames))
	for i, f := range frames {
		offs[i] = size
		size += len(f.ct) - 16
	}
	clear(sr.pt)
	sr.pt = grow(sr.pt, size)
	errs := make([]error, len(frames))
	parallel(len(frames), func(i int) {
		f := frames[i]
		content := frameString
		if f.final {
			content = finalString
		}
		dst := sr.pt[offs[i]:offs[i]]
		_, errs[i] = sr.aead.Open(dst, f.iv[:], f.ct, bodyAAD(sr.h.MessageID, content, f.seq, uint64(len(f.ct)-16)))
	})
	for _, err := range errs {
		if err != nil {
			return ErrOpen
		}
	}
	if final {
		if err := sr.finish(); err != nil {
			return err
		}
		sr.done = true
	}
	sr.pending = sr.pt
	return nil
}

// readFrame reads one frame into f, reusing its buffer, and checks its
// sequence number.
func (sr *Reader) readFrame(f *rawFrame) error {
	var head [4]byte
	if err := sr.read(head[:]); err != nil {
		return err
	}
	f.seq, f.final = binary.BigEndian.Uint32(head[:]), false
	n := int(sr.h.FrameLength)
	if f.seq == endOfFrames {
		f.final = true
		if err := sr.read(head[:]); err != nil {
			return err
		}
		f.seq = binary.BigEndian.Uint32(head[:])
	}
	if f.seq != sr.seq+1 || f.seq == endOfFrames {
		return ErrMalformed // frames missing, repeated or out of order
	}
	sr.seq = f.seq
	if err := sr.read(f.iv[:]); err != nil {
		return err
	}
	if f.final {
		if err := sr.read(head[:]); err != nil {
			return err
		}
		l := binary.BigEndian.Uint32(head[:])
		if l > sr.h.FrameLength {
			return ErrMalformed
		}
		n = int(l)
	}
	// Grow the buffer only as bytes arrive, so that a header announcing
	// huge frames costs the sender the bytes before it costs us memory.
	f.ct = f.ct[:0]
	for need := n + 16; need > 0; {
		step := min(need, 1<<20)
		f.ct = slices.Grow(f.ct, step)[:len(f.ct)+step] // keeps what was read
		if err := sr.read(f.ct[len(f.ct)-step:]); err != nil {
			return err
		}
		need -= step
	}
	return nil
}

// read fills b from the body, feeding the signature hash; a message that
// ends early is malformed.
func (sr *Reader) read(b []byte) error {
	if _, err := io.ReadFull(sr.br, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrMalformed
		}
		return err
	}
	if sr.sig != nil {
		sr.sig.Write(b)
	}
	return nil
}

// finish checks the footer of a signed suite and that no byte follows.
func (sr *Reader) finish() error {
	if sr.sig != nil {
		digest := sr.sig.Sum(nil)
		sr.sig = nil // the footer is not signed
		var l [2]byte
		if err := sr.read(l[:]); err != nil {
			return err
		}
		sig := make([]byte, binary.BigEndian.Uint16(l[:]))
		if err := sr.read(sig); err != nil {
			return err
		}
		if err := verifySignature(sr.h, digest, sig); err != nil {
			return err
		}
	}
	if _, err := sr.br.ReadByte(); err == nil {
		return ErrMalformed // trailing bytes
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Header returns the parsed header.
func (sr *Reader) Header() *format.MessageHeader { return sr.h }
