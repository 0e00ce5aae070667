package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progress draws a progress bar on stderr while a long job runs, when
// stderr is a terminal (and not with --quiet); otherwise it is silent.
type progress struct {
	w     io.Writer
	label string
	total int64 // bytes or items; 0 when unknown
	unit  string
	done  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// newProgress starts a bar, or returns nil (whose methods do nothing).
func (a *app) newProgress(label string, total int64, unit string) *progress {
	f, ok := a.stderr.(*os.File)
	if a.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := &progress{w: f, label: label, total: total, unit: unit, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-p.stop:
			fmt.Fprint(p.w, "\r\033[K")
			return
		case <-t.C:
			p.draw(time.Since(start))
		}
	}
}

func (p *progress) draw(elapsed time.Duration) {
	n := p.done.Load()
	var b strings.Builder
	fmt.Fprintf(&b, "\r%s ", p.label)
	if p.total > 0 {
		frac := min(float64(n)/float64(p.total), 1)
		const width = 30
		fill := int(frac * width)
		b.WriteString("[" + strings.Repeat("=", fill) + strings.Repeat(" ", width-fill) + "]")
		fmt.Fprintf(&b, " %3.0f%%", frac*100)
	}
	if p.unit == "B" {
		fmt.Fprintf(&b, " %s", mib(n))
		if p.total > 0 {
			fmt.Fprintf(&b, " / %s", mib(p.total))
		}
		if s := elapsed.Seconds(); s > 0 {
			fmt.Fprintf(&b, "  %s/s", mib(int64(float64(n)/s)))
		}
	} else {
		fmt.Fprintf(&b, " %d", n)
		if p.total > 0 {
			fmt.Fprintf(&b, " / %d", p.total)
		}
		fmt.Fprintf(&b, " %s", p.unit)
	}
	b.WriteString("\033[K")
	fmt.Fprint(p.w, b.String())
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// add counts progress.
func (p *progress) add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

// finish stops the bar and clears its line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
	})
}

// reader counts the bytes read through r.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, p: p}
}

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}

// ctxReader stops reading when ctx ends (Ctrl-C), so that a long copy
// ends with ctx's error and no output file.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
