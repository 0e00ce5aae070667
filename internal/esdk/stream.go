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

	"github.com/pocketkms/kms/internal/format"
)

// Streams run as a pipeline. The caller's goroutine moves the bytes
// (plaintext into a job's buffer, ciphertext out to the underlying writer,
// or in from the underlying reader), and each job, a run of whole frames,
// is sealed or opened in place on a goroutine of its own, so that frames
// are sealed and opened on all cores while the caller copies. At most
// inflight jobs exist at once, four per core within streamMemory: enough
// that a core is rarely left idle while the caller waits for the oldest
// job (two per core left a third of two cores idle when opening). The
// memory a stream holds depends on the frame length and the number of
// cores, never on the payload's size.
const (
	jobBytes     = 512 << 10 // plaintext per job, rounded down to whole frames (at least one)
	maxJobFrames = 256       // frames per job at most, so tiny frames make small jobs
	streamMemory = 4 << 20   // frame bytes in flight at most, unless one frame is larger
	maxInflight  = 16
)

// pipeline returns the frames per job and the jobs in flight for frames of
// flen bytes.
func pipeline(flen int) (frames, inflight int) {
	frames = min(maxJobFrames, max(1, jobBytes/flen))
	inflight = min(maxInflight, 4*max(1, runtime.GOMAXPROCS(0)))
	inflight = max(1, min(inflight, streamMemory/(frames*flen)))
	return frames, inflight
}

// frameOverhead is what a regular frame adds to its plaintext: sequence
// number, IV and tag. A final frame adds finalExtra more (the end marker
// and the content length).
const (
	frameOverhead = 4 + 12 + 16
	finalExtra    = 8
)

// Writer seals a message as it is written, in constant memory: it writes
// the header at once, then the frames as their jobs are sealed (several at
// once, in order), and the final frame and footer on Close.
type Writer struct {
	w        io.Writer
	in       SealInput
	aead     cipher.AEAD
	id       []byte
	flen     int
	frames   int // frames per job
	inflight int
	seq      uint32 // frames handed to jobs so far
	cur      *sealJob
	queue    []*sealJob // being sealed, oldest first
	free     []*sealJob
	sig      hash.Hash
	err      error
}

// sealJob is a run of frames laid out as they are written: frame i starts
// at i × (flen + frameOverhead), its plaintext is copied straight to where
// its ciphertext goes and is sealed there.
type sealJob struct {
	buf  []byte
	n    int // plaintext bytes held
	end  int // length of the encoded frames, once handed over
	done chan struct{}
}

// NewWriter writes the header of a message to w and returns the Writer of
// its body. in.Plaintext is ignored.
func NewWriter(w io.Writer, in SealInput) (*Writer, error) {
	hdr, aead, id, err := sealHeader(nil, in, 0)
	if err != nil {
		return nil, err
	}
	sw := &Writer{w: w, in: in, aead: aead, id: id, flen: int(in.FrameLen)}
	sw.frames, sw.inflight = pipeline(sw.flen)
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

// Write copies p into jobs and hands each full job over to be sealed. The
// last frame is always held back, so that Close can mark it final.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	n := 0
	for len(p) > 0 {
		if sw.cur == nil {
			sw.cur = sw.job()
		}
		j := sw.cur
		if j.n == sw.frames*sw.flen { // full, and more is coming
			if err := sw.submit(false); err != nil {
				return n, err
			}
			continue
		}
		i, off := j.n/sw.flen, j.n%sw.flen
		at := i*(sw.flen+frameOverhead) + 16 + off
		c := min(len(p), sw.flen-off)
		sw.reserve(j, at+c)
		copy(j.buf[at:at+c], p)
		j.n, p, n = j.n+c, p[c:], n+c
	}
	return n, nil
}

// ReadFrom reads r to its end straight into the Writer's jobs (io.Copy
// uses it), sealing as they fill. Close must still be called. If r fails,
// the Writer fails too: Close then returns the error rather than finish a
// message of part of the plaintext.
func (sw *Writer) ReadFrom(r io.Reader) (int64, error) {
	n, err := sw.readFrom(r)
	if err != nil && sw.err == nil {
		sw.err = err
	}
	return n, err
}

func (sw *Writer) readFrom(r io.Reader) (int64, error) {
	var total int64
	for sw.err == nil {
		if sw.cur == nil {
			sw.cur = sw.job()
		}
		j := sw.cur
		if j.n == sw.frames*sw.flen {
			// Full: hand it over once a byte proves more is coming, read
			// into the next job.
			next := sw.job()
			c, err := sw.readInto(next, r)
			total += int64(c)
			if c == 0 {
				sw.free = append(sw.free, next)
				if err == io.EOF {
					return total, nil
				}
				if err != nil {
					return total, err
				}
				continue
			}
			if serr := sw.submit(false); serr != nil {
				clear(next.buf)
				return total, serr
			}
			sw.cur = next
			if err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
			continue
		}
		c, err := sw.readInto(j, r)
		total += int64(c)
		if err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
	}
	return total, sw.err
}

// readInto reads once from r into the free room of j's current frame.
func (sw *Writer) readInto(j *sealJob, r io.Reader) (int, error) {
	i, off := j.n/sw.flen, j.n%sw.flen
	at := i*(sw.flen+frameOverhead) + 16 + off
	if len(j.buf) <= at {
		sw.reserve(j, at+1)
	}
	c, err := r.Read(j.buf[at:min(at+sw.flen-off, len(j.buf))])
	j.n += c
	return c, err
}

// reserve grows j's buffer to at least end bytes: geometrically, from
// 4 KiB up to a whole job, so that a short message costs little.
func (sw *Writer) reserve(j *sealJob, end int) {
	if end <= len(j.buf) {
		return
	}
	full := sw.frames*(sw.flen+frameOverhead) + finalExtra
	nb := make([]byte, min(full, max(end, 2*len(j.buf), 4096)))
	copy(nb, j.buf)
	clear(j.buf) // it held plaintext
	j.buf = nb
}

// job returns an empty job, recycled if one is free. The first job grows
// as it fills; once one job has filled, the stream is long and new jobs
// get their whole size at once.
func (sw *Writer) job() *sealJob {
	if k := len(sw.free); k > 0 {
		j := sw.free[k-1]
		sw.free = sw.free[:k-1]
		j.n = 0
		return j
	}
	if sw.seq > 0 {
		return &sealJob{buf: make([]byte, sw.frames*(sw.flen+frameOverhead)+finalExtra)}
	}
	return &sealJob{}
}

// submit hands the current job over to be sealed (its last frame final if
// final is set), and writes the oldest job out once inflight are pending.
func (sw *Writer) submit(final bool) error {
	j := sw.cur
	sw.cur = nil
	frames := max(1, (j.n+sw.flen-1)/sw.flen)
	if uint64(sw.seq)+uint64(frames) >= endOfFrames {
		sw.err = errors.New("esdk: message needs too many frames")
		return sw.err
	}
	first, last := sw.seq+1, sw.flen
	sw.seq += uint32(frames)
	j.end = frames * (sw.flen + frameOverhead)
	if final {
		// The final frame's header is finalExtra bytes longer: move its
		// plaintext along.
		last = j.n - (frames-1)*sw.flen
		off := (frames-1)*(sw.flen+frameOverhead) + 16
		j.end = off + finalExtra + last + 16
		sw.reserve(j, j.end)
		copy(j.buf[off+finalExtra:off+finalExtra+last], j.buf[off:off+last])
	}
	sw.reserve(j, j.end)
	j.done = make(chan struct{})
	aead, id, flen := sw.aead, sw.id, sw.flen
	go func() {
		defer close(j.done)
		for i := range frames {
			n, fin := flen, final && i == frames-1
			if fin {
				n = last
			}
			sealFrameInPlace(j.buf[i*(flen+frameOverhead):], aead, id, first+uint32(i), n, fin)
		}
	}()
	sw.queue = append(sw.queue, j)
	if len(sw.queue) >= sw.inflight {
		return sw.writeOldest()
	}
	return nil
}

// writeOldest waits for the oldest job, writes its frames and frees it.
func (sw *Writer) writeOldest() error {
	j := sw.queue[0]
	<-j.done
	sw.queue = append(sw.queue[:0], sw.queue[1:]...)
	sw.free = append(sw.free, j)
	return sw.emit(j.buf[:j.end])
}

// Abort gives the message up: it clears the plaintext the Writer holds
// and fails every later call. Nothing more is written.
func (sw *Writer) Abort() { sw.drop(errors.New("esdk: writer aborted")) }

// drop clears the plaintext not yet sealed, lets the buffers go and makes
// err the Writer's error unless it already has one.
func (sw *Writer) drop(err error) {
	if sw.cur != nil {
		clear(sw.cur.buf)
	}
	sw.cur, sw.free = nil, nil
	if sw.err == nil {
		sw.err = err
	}
}

// Close seals what is left as the final frames, writes the footer of a
// signed suite, and clears the buffers. It does not close the underlying
// writer.
func (sw *Writer) Close() error {
	defer sw.drop(errors.New("esdk: writer closed"))
	if sw.err != nil {
		return sw.err
	}
	if sw.cur == nil {
		sw.cur = sw.job() // nothing was written: one empty final frame
	}
	if err := sw.submit(true); err != nil {
		return err
	}
	for len(sw.queue) > 0 {
		if err := sw.writeOldest(); err != nil {
			return err
		}
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

// ErrUnsupportedStream: NewReader reads framed messages only; Open reads
// non-framed ones.
var ErrUnsupportedStream = errors.New("esdk: a non-framed message cannot be streamed; use Open")

// ErrFrameTooLong: frames over MaxFrameLength (1 GiB), which the format
// allows up to 4 GiB, are read neither by Open nor by NewReader.
var ErrFrameTooLong = errors.New("esdk: frames over 1 GiB are not supported")

// MaxHeaderSize bounds the header a Reader reads.
const MaxHeaderSize = 4 << 20

// Reader opens a message as it is read. It releases the plaintext of each
// frame only once the frame has authenticated, opens frames in parallel,
// and returns io.EOF only after the final frame, the footer signature of a
// signed suite and the absence of trailing bytes have been checked.
type Reader struct {
	br       *bufio.Reader
	h        *format.MessageHeader
	aead     cipher.AEAD
	seq      uint32 // frames read so far
	frames   int    // frames per job
	inflight int
	sig      hash.Hash
	queue    []*openJob // being opened, oldest first
	free     []*openJob
	cur      *openJob // the job whose plaintext is being read
	next     int      // the frame of cur to read next
	pending  []byte   // authenticated plaintext not yet read
	readAll  bool     // the final frame has been read
	done     bool
	err      error
}

// openJob is a run of frames as read, content and tag back to back in
// buf, each opened in place.
type openJob struct {
	buf    []byte
	frames []openFrame
	final  bool // the last frame is the final frame
	failed bool // a frame did not authenticate
	done   chan struct{}
}

type openFrame struct {
	seq   uint32
	final bool
	iv    [12]byte
	off   int // the frame's content and tag are buf[off : off+n+16]
	n     int
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
	switch {
	case !h.Framed:
		return nil, ErrUnsupportedStream
	case h.FrameLength > MaxFrameLength:
		return nil, ErrFrameTooLong
	}
	sr := &Reader{h: h, aead: aead}
	sr.frames, sr.inflight = pipeline(int(h.FrameLength))
	// A small buffer: frame headers come through it, and the contents of
	// larger frames mostly bypass it, read straight into a job.
	sr.br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(raw[n:]), r), 4<<10)
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
	if err := sr.fill(); err != nil {
		return 0, err
	}
	n := copy(p, sr.pending)
	sr.pending = sr.pending[n:]
	return n, nil
}

// WriteTo writes the authenticated plaintext to w straight from the
// Reader's buffers (io.Copy uses it), and returns nil at the end of a
// verified message.
func (sr *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := sr.fill(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := w.Write(sr.pending)
		sr.pending, total = sr.pending[n:], total+int64(n)
		if err != nil {
			return total, err
		}
	}
}

// fill makes authenticated plaintext pending, or returns io.EOF at the
// end of a verified message, or the stream's error.
func (sr *Reader) fill() error {
	for len(sr.pending) == 0 {
		switch {
		case sr.err != nil:
			return sr.err
		case sr.cur != nil && sr.next < len(sr.cur.frames):
			f := sr.cur.frames[sr.next]
			sr.pending, sr.next = sr.cur.buf[f.off:f.off+f.n], sr.next+1
		case sr.cur != nil && sr.cur.final:
			// The end: clear the plaintext every job buffer held.
			sr.done = true
			for _, j := range append(sr.free, sr.cur) {
				clear(j.buf)
			}
			sr.free, sr.cur = nil, nil
		case sr.done:
			return io.EOF
		default:
			if sr.cur != nil {
				sr.free, sr.cur = append(sr.free, sr.cur), nil
			}
			if err := sr.advance(); err != nil {
				sr.fail(err)
				return err
			}
		}
	}
	return nil
}

// advance reads jobs of frames until inflight are being opened (or the
// final frame is read), then waits for the oldest and makes it current;
// after the final frame it checks the footer and that nothing follows.
func (sr *Reader) advance() error {
	for len(sr.queue) < sr.inflight && !sr.readAll {
		j := sr.job()
		if err := sr.readJob(j); err != nil {
			sr.free = append(sr.free, j)
			return err
		}
		j.done = make(chan struct{})
		go sr.open(j)
		sr.queue = append(sr.queue, j)
		sr.readAll = j.final
	}
	j := sr.queue[0]
	<-j.done
	sr.queue = append(sr.queue[:0], sr.queue[1:]...)
	sr.cur, sr.next = j, 0
	if j.failed {
		return ErrOpen
	}
	if j.final {
		return sr.finish()
	}
	return nil
}

// job returns an empty job, recycled if one is free.
func (sr *Reader) job() *openJob {
	if k := len(sr.free); k > 0 {
		j := sr.free[k-1]
		sr.free = sr.free[:k-1]
		j.frames, j.final, j.failed = j.frames[:0], false, false
		return j
	}
	return &openJob{}
}

// open opens the frames of j in place.
func (sr *Reader) open(j *openJob) {
	defer close(j.done)
	for _, f := range j.frames {
		content := frameString
		if f.final {
			content = finalString
		}
		ct := j.buf[f.off : f.off+f.n+16]
		if _, err := sr.aead.Open(ct[:0], f.iv[:], ct, bodyAAD(sr.h.MessageID, content, f.seq, uint64(f.n))); err != nil {
			j.failed = true
			return
		}
	}
}

// fail clears every buffer that may hold plaintext, once no job is still
// writing to it, and makes err the stream's error.
func (sr *Reader) fail(err error) {
	for _, j := range sr.queue {
		<-j.done
		clear(j.buf)
	}
	for _, j := range append(sr.free, sr.cur) {
		if j != nil {
			clear(j.buf)
		}
	}
	sr.queue, sr.free, sr.cur, sr.pending, sr.err = nil, nil, nil, nil, err
}

// readJob reads up to a job's worth of frames into j, checking their
// sequence numbers, and stops after the final frame.
func (sr *Reader) readJob(j *openJob) error {
	// Once a whole job of frames has arrived, the message is long: later
	// jobs of small frames get their whole size at once. Before that, and
	// for frames larger than a job, the buffer grows only as bytes arrive,
	// so that a header announcing huge frames costs the sender the bytes
	// before it costs us memory.
	if size := sr.frames * (int(sr.h.FrameLength) + 16); j.buf == nil && sr.seq >= uint32(sr.frames) && size <= 2*jobBytes {
		j.buf = make([]byte, 0, size)
	}
	used := 0
	for len(j.frames) < sr.frames && !j.final {
		f, err := sr.readFrameHeader()
		if err != nil {
			return err
		}
		f.off = used
		for need := f.n + 16; need > 0; {
			step := min(need, 1<<20)
			if cap(j.buf) < used+step {
				// Double, so that a job costs a few allocations, but never
				// past what this frame still needs.
				j.buf = slices.Grow(j.buf[:used], min(need, max(step, cap(j.buf), 4096)))
			}
			j.buf = j.buf[:used+step] // keeps what was read
			if err := sr.read(j.buf[used:]); err != nil {
				return err
			}
			used, need = used+step, need-step
		}
		j.frames = append(j.frames, f)
		j.final = f.final
	}
	return nil
}

// readFrameHeader reads the header of the next frame and checks its
// sequence number and length.
func (sr *Reader) readFrameHeader() (openFrame, error) {
	var f openFrame
	var head [4]byte
	if err := sr.read(head[:]); err != nil {
		return f, err
	}
	f.seq, f.n = binary.BigEndian.Uint32(head[:]), int(sr.h.FrameLength)
	if f.seq == endOfFrames {
		f.final = true
		if err := sr.read(head[:]); err != nil {
			return f, err
		}
		f.seq = binary.BigEndian.Uint32(head[:])
	}
	if f.seq != sr.seq+1 || f.seq == endOfFrames {
		return f, ErrMalformed // frames missing, repeated or out of order
	}
	sr.seq = f.seq
	if err := sr.read(f.iv[:]); err != nil {
		return f, err
	}
	if f.final {
		if err := sr.read(head[:]); err != nil {
			return f, err
		}
		l := binary.BigEndian.Uint32(head[:])
		if l > sr.h.FrameLength {
			return f, ErrMalformed
		}
		f.n = int(l)
	}
	return f, nil
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
