// Command ratio reads `go test -bench` output on stdin and writes, as
// Markdown tables, the median of every benchmark and the median ns/op ratio
// of BenchmarkEncrypt to BenchmarkRawAESGCM (and of BenchmarkTinkEnvelope to
// BenchmarkRawAESGCM, when present) at each size, from that same run.
//
// It checks the target "Encrypt plus Decrypt of 1 KiB stays within 2x of the
// raw AES-256-GCM seal plus open in the same run" and says PASS or FAIL;
// with -strict, a FAIL (or a missing benchmark) exits with status 1.
//
// Usage:
//
//	go test -run '^$' -bench . -count 5 ./bench/ | go run ./bench/cmd/ratio
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// sample is one result line of one benchmark.
type sample struct {
	ns, mbs, bytes, allocs float64
	hasMBs, hasMem         bool
}

// result holds a benchmark's samples, in the order they were read.
type result struct {
	name    string
	samples []sample
}

// run is everything read from one benchmark output.
type run struct {
	header  []string // goos, goarch, pkg and cpu lines
	order   []string // benchmark names in first-seen order
	results map[string]*result
}

// procSuffix is the -GOMAXPROCS suffix go test adds to benchmark names.
var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads benchmark output. Lines that are not results are kept only
// if they are the goos/goarch/pkg/cpu header.
func parse(r io.Reader) (*run, error) {
	out := &run{results: map[string]*result{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, h := range []string{"goos:", "goarch:", "pkg:", "cpu:"} {
			if strings.HasPrefix(line, h) && !slices.Contains(out.header, line) {
				out.header = append(out.header, line)
			}
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a name printed alone, or a log line
		}
		var s sample
		ok := false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bad value %q in %q", f[i], line)
			}
			switch f[i+1] {
			case "ns/op":
				s.ns, ok = v, true
			case "MB/s":
				s.mbs, s.hasMBs = v, true
			case "B/op":
				s.bytes, s.hasMem = v, true
			case "allocs/op":
				s.allocs = v
			}
		}
		if !ok {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		res := out.results[name]
		if res == nil {
			res = &result{name: name}
			out.results[name] = res
			out.order = append(out.order, name)
		}
		res.samples = append(res.samples, s)
	}
	return out, sc.Err()
}

// median returns the median of the values get picks from ss.
func median(ss []sample, get func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = get(s)
	}
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func extent(ss []sample) (lo, hi float64) {
	for i, s := range ss {
		if i == 0 || s.ns < lo {
			lo = s.ns
		}
		if i == 0 || s.ns > hi {
			hi = s.ns
		}
	}
	return lo, hi
}

func ns(s sample) float64 { return s.ns }

// fmtNs prints a duration in ns/op with a precision that suits it.
func fmtNs(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// sizeOf returns the "size=..." part of a benchmark name, or "".
func sizeOf(name string) string {
	_, sz, ok := strings.Cut(name, "/size=")
	if !ok {
		return ""
	}
	return sz
}

// report writes the tables and returns whether the target held.
func report(w io.Writer, r *run, targetSize string, target float64) (bool, error) {
	bw := bufio.NewWriter(w)
	for _, h := range r.header {
		fmt.Fprintf(bw, "%s  \n", h)
	}
	if len(r.header) > 0 {
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, "| benchmark | runs | median ns/op | min..max ns/op | median MB/s | median B/op | median allocs/op |")
	fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, name := range r.order {
		res := r.results[name]
		lo, hi := extent(res.samples)
		mbs, mem, allocs := "", "", ""
		if res.samples[0].hasMBs {
			mbs = strconv.FormatFloat(median(res.samples, func(s sample) float64 { return s.mbs }), 'f', 1, 64)
		}
		if res.samples[0].hasMem {
			mem = strconv.FormatFloat(median(res.samples, func(s sample) float64 { return s.bytes }), 'f', 0, 64)
			allocs = strconv.FormatFloat(median(res.samples, func(s sample) float64 { return s.allocs }), 'f', 0, 64)
		}
		fmt.Fprintf(bw, "| %s | %d | %s | %s..%s | %s | %s | %s |\n",
			strings.TrimPrefix(name, "Benchmark"), len(res.samples), fmtNs(median(res.samples, ns)), fmtNs(lo), fmtNs(hi), mbs, mem, allocs)
	}

	// The ratio table, one row per size that Encrypt and RawAESGCM share.
	var sizes []string
	for _, name := range r.order {
		if strings.HasPrefix(name, "BenchmarkEncrypt/") {
			if sz := sizeOf(name); sz != "" && r.results["BenchmarkRawAESGCM/size="+sz] != nil {
				sizes = append(sizes, sz)
			}
		}
	}
	_, haveTink := r.results["BenchmarkTinkEnvelope/size="+targetSize]
	fmt.Fprintln(bw)
	if haveTink {
		fmt.Fprintln(bw, "| size | Encrypt+Decrypt median ns/op | RawAESGCM median ns/op | **Encrypt / Raw** | worst pair (max Encrypt / min Raw) | TinkEnvelope median ns/op | Tink / Raw |")
		fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	} else {
		fmt.Fprintln(bw, "| size | Encrypt+Decrypt median ns/op | RawAESGCM median ns/op | **Encrypt / Raw** | worst pair (max Encrypt / min Raw) |")
		fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | ---: |")
	}
	met, found := false, false
	var got float64
	for _, sz := range sizes {
		e := r.results["BenchmarkEncrypt/size="+sz].samples
		raw := r.results["BenchmarkRawAESGCM/size="+sz].samples
		me, mr := median(e, ns), median(raw, ns)
		_, ehi := extent(e)
		rlo, _ := extent(raw)
		ratio := me / mr
		fmt.Fprintf(bw, "| %s | %s | %s | **%.2fx** | %.2fx |", sz, fmtNs(me), fmtNs(mr), ratio, ehi/rlo)
		if haveTink {
			if t := r.results["BenchmarkTinkEnvelope/size="+sz]; t != nil {
				mt := median(t.samples, ns)
				fmt.Fprintf(bw, " %s | %.2fx |", fmtNs(mt), mt/mr)
			} else {
				fmt.Fprint(bw, " | |")
			}
		}
		fmt.Fprintln(bw)
		if sz == targetSize {
			found, got, met = true, ratio, ratio <= target
		}
	}
	fmt.Fprintln(bw)
	switch {
	case !found:
		fmt.Fprintf(bw, "Target (Encrypt+Decrypt of %s within %.2gx of raw AES-256-GCM seal+open): NO DATA (run BenchmarkEncrypt and BenchmarkRawAESGCM at size=%s)\n", targetSize, target, targetSize)
	case met:
		fmt.Fprintf(bw, "Target (Encrypt+Decrypt of %s within %.2gx of raw AES-256-GCM seal+open): PASS at %.2fx\n", targetSize, target, got)
	default:
		fmt.Fprintf(bw, "Target (Encrypt+Decrypt of %s within %.2gx of raw AES-256-GCM seal+open): FAIL at %.2fx\n", targetSize, target, got)
	}
	return found && met, bw.Flush()
}

func main() {
	targetSize := flag.String("size", "1KiB", "the size the target applies to")
	target := flag.Float64("target", 2, "the largest Encrypt/RawAESGCM median ratio allowed at -size")
	strict := flag.Bool("strict", false, "exit 1 when the target is missed or cannot be checked")
	flag.Parse()

	r, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratio:", err)
		os.Exit(2)
	}
	if len(r.order) == 0 {
		fmt.Fprintln(os.Stderr, "ratio: no benchmark results on stdin")
		os.Exit(2)
	}
	ok, err := report(os.Stdout, r, *targetSize, *target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratio:", err)
		os.Exit(2)
	}
	if *strict && !ok {
		os.Exit(1)
	}
}
