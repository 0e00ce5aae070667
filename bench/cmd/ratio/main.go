// Command ratio reads `go test -bench` output on stdin and writes Markdown
// tables of medians from that one run, then checks the performance targets.
//
// go test appends -N to a benchmark's name when it runs with GOMAXPROCS N
// other than 1 (-cpu 1,2 gives each benchmark once without the suffix and
// once with -2). The suffix is read as the number of cores, 1 without it,
// and samples at different core counts are never pooled.
//
// The tables:
//
//   - Medians: one row per benchmark and core count (the cores column),
//     with the number of samples, the median and the range of ns/op, and
//     the median MB/s, B/op and allocs/op.
//   - Encrypt / Raw: at each size and core count that
//     BenchmarkEncrypt/size=<X>/policy=none (the default AllowAll policy)
//     and BenchmarkRawAESGCM/size=<X> share, their median ns/op, the ratio
//     of the medians and the worst pair (slowest Encrypt sample over
//     fastest Raw sample); with the BenchmarkTinkEnvelope median and its
//     ratio to Raw when the run has it.
//   - Key policy / none: at each size and core count that
//     BenchmarkEncrypt/size=<X>/policy=none and policy=keypolicy10 (the
//     key-policy engine with a ten-statement key policy) share, their
//     median ns/op and the ratio of the medians keypolicy10/none.
//   - Peers: a table per benchmark family (BenchmarkEnvelope, ...) whose
//     names have an /impl=<X> element. Its rows are the names without that
//     element (op, size) at each core count; its columns the median ns/op of
//     each impl, then the family's ratios of medians:
//     BenchmarkEnvelope pocketkms/floor, pocketkms/awsesdk,
//     pocketkms/tink and pocketkms-append/tink (below 1 favours
//     pocketkms; impl=pocketkms-append is AppendSeal and AppendOpen into
//     a reused buffer); BenchmarkStream
//     tink/pocketkms, the pocketkms speed-up over Tink (above 1 favours
//     pocketkms); BenchmarkEnvelopeSigned (suite 0x0578) pocketkms/floor;
//     BenchmarkEnvelopeRSA (an RSA-3072 recipient, impl=cached with the
//     data-key cache and impl=uncached without) the symmetric time, that
//     is BenchmarkEnvelope's impl=pocketkms at the same op, size and core
//     count, and cached/symmetric. Any other family with an impl=pocketkms
//     gets pocketkms/<impl> for each of its other impls. Names without an
//     impl element, such as BenchmarkEnvelope's
//     op=seal/size=1KiB/store=memory|sqlite|postgres (impl=pocketkms's Seal
//     on a ring over each Store), are in no peers table: they appear in
//     the medians and in their targets.
//
// The targets, one line each after the tables, in the form
//
//	Target (<description>): PASS at <ratio>x
//	Target (<description>): FAIL at <ratio>x
//	Target (<description>): NO DATA (<what to run>)
//
// where <ratio> is the ratio of the medians with two decimals (more when
// two would print the limit itself), and a target whose core count is not
// given is taken at the highest core count that has both sides of its
// ratio (the default GOMAXPROCS in a run of bench/run.sh):
//
//   - Encrypt+Decrypt of -size (1 KiB) within -target (2x) of
//     RawAESGCM's seal+open: BenchmarkEncrypt/size=<-size>/policy=none
//     over BenchmarkRawAESGCM/size=<-size>.
//   - Encrypt with a 10-statement key policy of 1 KiB within 1.15x of no
//     policy: BenchmarkEncrypt/size=1KiB policy=keypolicy10/none <= 1.15.
//   - BenchmarkEnvelope seal, and open, of 1 KiB: pocketkms/floor <= 1.2.
//   - BenchmarkEnvelope seal, and open, of 1 MiB in the append forms
//     (AppendSeal, AppendOpen into a reused buffer), which the target
//     names as the way to save the allocation: pocketkms-append/tink <=
//     0.6. Seal and Open into a new 1 MiB buffer are in the peers table
//     beside them.
//   - BenchmarkStream seal, and open, of 256 MiB: tink/pocketkms >= 1.0 on
//     1 core and >= 1.5 on 2 cores (four targets; run it with -cpu 1,2).
//   - BenchmarkEnvelopeRSA seal, and open, of 1 KiB: impl=cached within
//     1.5x of BenchmarkEnvelope's impl=pocketkms (the symmetric time).
//   - BenchmarkEnvelopeSigned seal, and open, of 1 KiB: pocketkms/floor
//     <= 1.2.
//   - BenchmarkEnvelope seal of 1 KiB on a SQLite-, and on a
//     PostgreSQL-backed ring within 1.1x of the in-memory ring:
//     op=seal/size=1KiB store=sqlite/memory <= 1.1 and store=postgres/memory
//     <= 1.1 (two targets). The store=postgres benchmark runs only under
//     scripts/with-postgres.sh, as bench/run.sh runs it, and skips
//     otherwise.
//
// With -strict, a FAIL exits with status 1, and so does NO DATA for the
// Encrypt target (a run filtered with -bench still checks what it ran);
// -require-all (which implies -strict) also fails on any NO DATA.
//
// Usage, in the bench module (bench/run.sh does this):
//
//	(go test -run '^$' -bench . -skip '^BenchmarkStream$' -count 5 .
//	 go test -run '^$' -bench '^BenchmarkStream$' -cpu 1,2 -count 5 .) |
//	    go run ./cmd/ratio [-size 1KiB] [-target 2] [-strict] [-require-all]
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

// key names one benchmark at one core count.
type key struct {
	name  string // the full name without the -N suffix
	cores int    // GOMAXPROCS: the -N suffix, 1 without one
}

// result holds a benchmark's samples, in the order they were read.
type result struct {
	key
	samples []sample
}

// run is everything read from one benchmark output.
type run struct {
	header  []string // goos, goarch, pkg and cpu lines
	order   []key    // benchmarks in first-seen order
	results map[key]*result
}

// procSuffix is the -GOMAXPROCS suffix go test adds to benchmark names.
var procSuffix = regexp.MustCompile(`^(.+)-(\d+)$`)

// splitProcs splits the -N suffix from a benchmark name and returns the
// name and N, or the name and 1 when it has no suffix.
func splitProcs(name string) (string, int) {
	m := procSuffix.FindStringSubmatch(name)
	if m == nil {
		return name, 1
	}
	n, err := strconv.Atoi(m[2])
	if err != nil || n < 1 {
		return name, 1
	}
	return m[1], n
}

// parse reads benchmark output. Lines that are not results are kept only
// if they are the goos/goarch/pkg/cpu header.
func parse(r io.Reader) (*run, error) {
	out := &run{results: map[key]*result{}}
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
		name, cores := splitProcs(f[0])
		k := key{name, cores}
		res := out.results[k]
		if res == nil {
			res = &result{key: k}
			out.results[k] = res
			out.order = append(out.order, k)
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

// fmtRatio prints a ratio of medians.
func fmtRatio(v float64) string { return fmt.Sprintf("%.2fx", v) }

// coresText returns "1 core" or "N cores".
func coresText(n int) string {
	if n == 1 {
		return "1 core"
	}
	return strconv.Itoa(n) + " cores"
}

// sizeOf returns the value of the "size=..." element of a benchmark name
// (without the elements after it), or "".
func sizeOf(name string) string {
	_, sz, ok := strings.Cut(name, "/size=")
	if !ok {
		return ""
	}
	sz, _, _ = strings.Cut(sz, "/")
	return sz
}

// encryptName returns the name of BenchmarkEncrypt at a size and policy.
func encryptName(size, policy string) string {
	return "BenchmarkEncrypt/size=" + size + "/policy=" + policy
}

// medianNs returns the median ns/op of a benchmark at a core count.
func (r *run) medianNs(name string, cores int) (float64, bool) {
	res := r.results[key{name, cores}]
	if res == nil || len(res.samples) == 0 {
		return 0, false
	}
	return median(res.samples, ns), true
}

// ratio returns the ratio of the median ns/op of num to that of den at a
// core count.
func (r *run) ratio(num, den string, cores int) (float64, bool) {
	n, ok1 := r.medianNs(num, cores)
	d, ok2 := r.medianNs(den, cores)
	if !ok1 || !ok2 || d <= 0 {
		return 0, false
	}
	return n / d, true
}

// highestCores returns the highest core count at which both a and b ran.
func (r *run) highestCores(a, b string) (int, bool) {
	best := 0
	for _, k := range r.order {
		if k.name == a && k.cores > best && r.results[key{b, k.cores}] != nil {
			best = k.cores
		}
	}
	return best, best > 0
}

// splitImpl returns name without its /impl=<X> element, and X.
func splitImpl(name string) (base, impl string, ok bool) {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		if v, found := strings.CutPrefix(parts[i], "impl="); found {
			return strings.Join(slices.Delete(parts, i, i+1), "/"), v, true
		}
	}
	return name, "", false
}

// group is the benchmarks that differ only in their impl element.
type group struct {
	family string // the top-level benchmark, e.g. BenchmarkEnvelope
	rest   string // the name without family and impl, e.g. op=seal/size=1KiB
	cores  int
}

// name returns the full name of the group's benchmark for impl.
func (g group) name(impl string) string {
	if g.rest == "" {
		return g.family + "/impl=" + impl
	}
	return g.family + "/" + g.rest + "/impl=" + impl
}

// column is a computed column of a peers table.
type column struct {
	header string
	ratio  bool // a ratio (printed as 1.23x), or else ns/op
	value  func(r *run, g group) (float64, bool)
}

// implRatio is the column num/den of two impls of the same group.
func implRatio(num, den, header string) column {
	if header == "" {
		header = num + " / " + den
	}
	return column{header: header, ratio: true, value: func(r *run, g group) (float64, bool) {
		return r.ratio(g.name(num), g.name(den), g.cores)
	}}
}

// symmetric is the BenchmarkEnvelope impl=pocketkms counterpart of a
// BenchmarkEnvelopeRSA group.
func symmetric(g group) string {
	return group{family: "BenchmarkEnvelope", rest: g.rest, cores: g.cores}.name("pocketkms")
}

// family says how to print the peers table of one benchmark family.
type family struct {
	note string
	cols []column
}

// families are the benchmark families whose ratios the tool knows.
var families = map[string]family{
	"BenchmarkEnvelope": {
		note: "a ratio below 1 favours pocketkms",
		cols: []column{
			implRatio("pocketkms", "floor", ""),
			implRatio("pocketkms", "awsesdk", ""),
			implRatio("pocketkms", "tink", ""),
			implRatio("pocketkms-append", "tink", ""),
		},
	},
	"BenchmarkStream": {
		note: "the speed-up is tink / pocketkms in ns/op; above 1 favours pocketkms",
		cols: []column{implRatio("tink", "pocketkms", "pocketkms speed-up over Tink")},
	},
	"BenchmarkEnvelopeSigned": {
		note: "suite 0x0578; a ratio below 1 favours pocketkms",
		cols: []column{implRatio("pocketkms", "floor", "")},
	},
	"BenchmarkEnvelopeRSA": {
		note: "an RSA-3072 recipient, cached with the data-key cache and uncached without; symmetric is BenchmarkEnvelope impl=pocketkms at the same op, size and cores",
		cols: []column{
			{header: "symmetric ns/op", value: func(r *run, g group) (float64, bool) {
				return r.medianNs(symmetric(g), g.cores)
			}},
			{header: "cached / symmetric", ratio: true, value: func(r *run, g group) (float64, bool) {
				return r.ratio(g.name("cached"), symmetric(g), g.cores)
			}},
		},
	},
}

// peers writes one table per family of benchmarks with an impl element.
func peers(w io.Writer, r *run) {
	var fams []string
	groups := map[string][]group{}
	impls := map[string][]string{}
	for _, k := range r.order {
		base, impl, ok := splitImpl(k.name)
		if !ok {
			continue
		}
		fam, rest, _ := strings.Cut(base, "/")
		if _, seen := groups[fam]; !seen {
			fams = append(fams, fam)
		}
		g := group{fam, rest, k.cores}
		if !slices.Contains(groups[fam], g) {
			groups[fam] = append(groups[fam], g)
		}
		if !slices.Contains(impls[fam], impl) {
			impls[fam] = append(impls[fam], impl)
		}
	}
	for _, fam := range fams {
		gs, is := groups[fam], impls[fam]
		spec, known := families[fam]
		if !known && slices.Contains(is, "pocketkms") {
			spec.note = "a ratio below 1 favours pocketkms"
			for _, impl := range is {
				if impl != "pocketkms" {
					spec.cols = append(spec.cols, implRatio("pocketkms", impl, ""))
				}
			}
		}

		// The name's other elements become columns when every row has
		// the same keys (op, size), or else one "case" column.
		keys, byKeys := restKeys(gs[0].rest)
		for _, g := range gs[1:] {
			if k, ok := restKeys(g.rest); !ok || !slices.Equal(keys, k) {
				byKeys = false
				break
			}
		}
		var head, align []string
		if !byKeys {
			keys = []string{"case"}
		}
		for _, k := range keys {
			head, align = append(head, k), append(align, "---")
		}
		head, align = append(head, "cores"), append(align, "---:")
		for _, impl := range is {
			head, align = append(head, impl+" ns/op"), append(align, "---:")
		}
		for _, c := range spec.cols {
			head, align = append(head, c.header), append(align, "---:")
		}

		fmt.Fprintln(w)
		title := "Peers of " + strings.TrimPrefix(fam, "Benchmark") + ", median ns/op"
		if spec.note != "" {
			title += " (" + spec.note + ")"
		}
		fmt.Fprintln(w, title+":")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
		fmt.Fprintf(w, "| %s |\n", strings.Join(align, " | "))
		for _, g := range gs {
			var cells []string
			if !byKeys {
				cells = append(cells, g.rest)
			} else {
				for _, el := range splitRest(g.rest) {
					_, v, _ := strings.Cut(el, "=")
					cells = append(cells, v)
				}
			}
			cells = append(cells, strconv.Itoa(g.cores))
			for _, impl := range is {
				cell := ""
				if v, ok := r.medianNs(g.name(impl), g.cores); ok {
					cell = fmtNs(v)
				}
				cells = append(cells, cell)
			}
			for _, c := range spec.cols {
				cell := ""
				if v, ok := c.value(r, g); ok {
					if c.ratio {
						cell = fmtRatio(v)
					} else {
						cell = fmtNs(v)
					}
				}
				cells = append(cells, cell)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		}
	}
}

func splitRest(rest string) []string {
	if rest == "" {
		return nil
	}
	return strings.Split(rest, "/")
}

// restKeys returns the keys of the key=value elements of rest, and false
// if one element is not key=value.
func restKeys(rest string) ([]string, bool) {
	var keys []string
	for _, el := range splitRest(rest) {
		k, _, ok := strings.Cut(el, "=")
		if !ok || k == "" {
			return nil, false
		}
		keys = append(keys, k)
	}
	return keys, true
}

// status is the outcome of one target.
type status int

const (
	noData status = iota
	pass
	fail
)

// check is one target's outcome.
type check struct {
	desc     string
	status   status
	value    float64 // the ratio, unless noData
	limit    float64 // the bound value is held to
	missing  string  // what to run, for noData
	required bool    // whether NO DATA fails -strict without -require-all
}

func (c check) String() string {
	// Two decimals, or more when two would print the limit itself for a
	// value that is not the limit (a FAIL at 1.20x against 1.2).
	digits := 2
	for ; digits < 6 && c.value != c.limit; digits++ {
		if strconv.FormatFloat(c.value, 'f', digits, 64) != strconv.FormatFloat(c.limit, 'f', digits, 64) {
			break
		}
	}
	v := strconv.FormatFloat(c.value, 'f', digits, 64) + "x"
	switch c.status {
	case pass:
		return fmt.Sprintf("Target (%s): PASS at %s", c.desc, v)
	case fail:
		return fmt.Sprintf("Target (%s): FAIL at %s", c.desc, v)
	}
	return fmt.Sprintf("Target (%s): NO DATA (%s)", c.desc, c.missing)
}

// judge returns a check of value against limit: at most limit, or at
// least limit when atLeast is set.
func judge(desc string, value float64, have bool, limit float64, atLeast bool, missing string) check {
	c := check{desc: desc, value: value, limit: limit, missing: missing}
	switch {
	case !have:
		c.status = noData
	case atLeast && value >= limit, !atLeast && value <= limit:
		c.status = pass
	default:
		c.status = fail
	}
	return c
}

// atHighest is a target on the ratio num/den at the highest core count
// that has both.
func (r *run) atHighest(desc, num, den string, limit float64, missing string) check {
	var v float64
	cores, ok := r.highestCores(num, den)
	if ok {
		v, ok = r.ratio(num, den, cores)
	}
	return judge(desc, v, ok, limit, false, missing)
}

// targets returns the checks of every target but the Encrypt one.
func (r *run) targets() []check {
	cs := []check{r.atHighest(
		"Encrypt with a 10-statement key policy of 1KiB within 1.15x of no policy",
		encryptName("1KiB", "keypolicy10"), encryptName("1KiB", "none"), 1.15,
		"run BenchmarkEncrypt/size=1KiB with policy=none and policy=keypolicy10")}
	for _, t := range []struct {
		size, impl, form, peer, peerDesc string
		limit                            float64
	}{
		{"1KiB", "pocketkms", "", "floor", "the floor", 1.2},
		{"1MiB", "pocketkms-append", " (append form)", "tink", "Tink", 0.6},
	} {
		for _, op := range []string{"seal", "open"} {
			base := "BenchmarkEnvelope/op=" + op + "/size=" + t.size + "/impl="
			cs = append(cs, r.atHighest(
				fmt.Sprintf("Envelope %s of %s%s within %gx of %s", op, t.size, t.form, t.limit, t.peerDesc),
				base+t.impl, base+t.peer, t.limit,
				fmt.Sprintf("run BenchmarkEnvelope/op=%s/size=%s with impl=%s and impl=%s", op, t.size, t.impl, t.peer)))
		}
	}
	for _, t := range []struct {
		cores int
		limit float64
	}{{1, 1.0}, {2, 1.5}} {
		for _, op := range []string{"seal", "open"} {
			base := "BenchmarkStream/op=" + op + "/size=256MiB/impl="
			v, ok := r.ratio(base+"tink", base+"pocketkms", t.cores)
			cs = append(cs, judge(
				fmt.Sprintf("Stream %s of 256MiB at least %.1fx Tink's speed on %s", op, t.limit, coresText(t.cores)),
				v, ok, t.limit, true,
				fmt.Sprintf("run BenchmarkStream/op=%s/size=256MiB with impl=pocketkms and impl=tink, with -cpu %d", op, t.cores)))
		}
	}
	for _, op := range []string{"seal", "open"} {
		cs = append(cs, r.atHighest(
			fmt.Sprintf("EnvelopeRSA cached %s of 1KiB within 1.5x of the symmetric Envelope %s", op, op),
			"BenchmarkEnvelopeRSA/op="+op+"/size=1KiB/impl=cached",
			"BenchmarkEnvelope/op="+op+"/size=1KiB/impl=pocketkms", 1.5,
			fmt.Sprintf("run BenchmarkEnvelopeRSA/op=%s/size=1KiB/impl=cached and BenchmarkEnvelope/op=%s/size=1KiB/impl=pocketkms at the same core count", op, op)))
	}
	for _, op := range []string{"seal", "open"} {
		base := "BenchmarkEnvelopeSigned/op=" + op + "/size=1KiB/impl="
		cs = append(cs, r.atHighest(
			fmt.Sprintf("EnvelopeSigned %s of 1KiB within 1.2x of the floor", op),
			base+"pocketkms", base+"floor", 1.2,
			fmt.Sprintf("run BenchmarkEnvelopeSigned/op=%s/size=1KiB with impl=pocketkms and impl=floor", op)))
	}
	for _, st := range []struct{ store, desc, how string }{
		{"sqlite", "SQLite", ""},
		{"postgres", "PostgreSQL", ", under scripts/with-postgres.sh (bench/run.sh does), which starts PostgreSQL and sets POCKETKMS_TEST_POSTGRES"},
	} {
		base := "BenchmarkEnvelope/op=seal/size=1KiB/store="
		cs = append(cs, r.atHighest(
			fmt.Sprintf("Envelope seal of 1KiB on %s within 1.1x of memory", st.desc),
			base+st.store, base+"memory", 1.1,
			fmt.Sprintf("run BenchmarkEnvelope/op=seal/size=1KiB with store=memory and store=%s%s", st.store, st.how)))
	}
	return cs
}

// options are the command's settings for the Encrypt target.
type options struct {
	size   string  // the size the Encrypt target applies to
	target float64 // the largest Encrypt/RawAESGCM ratio allowed at size
}

// report writes the tables and the targets and returns the checks, the
// Encrypt one first.
func report(w io.Writer, r *run, o options) ([]check, error) {
	bw := bufio.NewWriter(w)
	for _, h := range r.header {
		fmt.Fprintf(bw, "%s  \n", h)
	}
	if len(r.header) > 0 {
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, "| benchmark | cores | runs | median ns/op | min..max ns/op | median MB/s | median B/op | median allocs/op |")
	fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, k := range r.order {
		res := r.results[k]
		lo, hi := extent(res.samples)
		mbs, mem, allocs := "", "", ""
		if res.samples[0].hasMBs {
			mbs = strconv.FormatFloat(median(res.samples, func(s sample) float64 { return s.mbs }), 'f', 1, 64)
		}
		if res.samples[0].hasMem {
			mem = strconv.FormatFloat(median(res.samples, func(s sample) float64 { return s.bytes }), 'f', 0, 64)
			allocs = strconv.FormatFloat(median(res.samples, func(s sample) float64 { return s.allocs }), 'f', 0, 64)
		}
		fmt.Fprintf(bw, "| %s | %d | %d | %s | %s..%s | %s | %s | %s |\n",
			strings.TrimPrefix(k.name, "Benchmark"), k.cores, len(res.samples), fmtNs(median(res.samples, ns)), fmtNs(lo), fmtNs(hi), mbs, mem, allocs)
	}

	// The Encrypt / Raw table, one row per size and core count that
	// Encrypt (policy=none) and RawAESGCM share.
	var rows []key
	coreCounts := map[int]bool{}
	for _, k := range r.order {
		if sz := sizeOf(k.name); sz != "" && k.name == encryptName(sz, "none") && r.results[key{"BenchmarkRawAESGCM/size=" + sz, k.cores}] != nil {
			rows = append(rows, k)
			coreCounts[k.cores] = true
		}
	}
	haveTink := false
	for _, k := range r.order {
		if k.name == "BenchmarkTinkEnvelope/size="+o.size {
			haveTink = true
		}
	}
	if len(rows) > 0 {
		fmt.Fprintln(bw)
		if haveTink {
			fmt.Fprintln(bw, "| size | Encrypt+Decrypt (policy=none) median ns/op | RawAESGCM median ns/op | **Encrypt / Raw** | worst pair (max Encrypt / min Raw) | TinkEnvelope median ns/op | Tink / Raw |")
			fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
		} else {
			fmt.Fprintln(bw, "| size | Encrypt+Decrypt (policy=none) median ns/op | RawAESGCM median ns/op | **Encrypt / Raw** | worst pair (max Encrypt / min Raw) |")
			fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | ---: |")
		}
	}
	for _, k := range rows {
		sz := sizeOf(k.name)
		e := r.results[k].samples
		raw := r.results[key{"BenchmarkRawAESGCM/size=" + sz, k.cores}].samples
		me, mr := median(e, ns), median(raw, ns)
		_, ehi := extent(e)
		rlo, _ := extent(raw)
		label := sz
		if len(coreCounts) > 1 {
			label = fmt.Sprintf("%s (%s)", sz, coresText(k.cores))
		}
		fmt.Fprintf(bw, "| %s | %s | %s | **%.2fx** | %.2fx |", label, fmtNs(me), fmtNs(mr), me/mr, ehi/rlo)
		if haveTink {
			if mt, ok := r.medianNs("BenchmarkTinkEnvelope/size="+sz, k.cores); ok {
				fmt.Fprintf(bw, " %s | %.2fx |", fmtNs(mt), mt/mr)
			} else {
				fmt.Fprint(bw, " | |")
			}
		}
		fmt.Fprintln(bw)
	}

	policies(bw, r)
	peers(bw, r)

	enc := r.atHighest(
		fmt.Sprintf("Encrypt+Decrypt of %s within %.2gx of raw AES-256-GCM seal+open", o.size, o.target),
		encryptName(o.size, "none"), "BenchmarkRawAESGCM/size="+o.size, o.target,
		fmt.Sprintf("run BenchmarkEncrypt/size=%s/policy=none and BenchmarkRawAESGCM/size=%s", o.size, o.size))
	enc.required = true
	checks := append([]check{enc}, r.targets()...)
	fmt.Fprintln(bw)
	for _, c := range checks {
		fmt.Fprintln(bw, c)
	}
	return checks, bw.Flush()
}

// policies writes the Key policy / none table: one row per size and core
// count at which BenchmarkEncrypt ran with both policy=none and
// policy=keypolicy10.
func policies(w io.Writer, r *run) {
	var rows []key
	coreCounts := map[int]bool{}
	for _, k := range r.order {
		if sz := sizeOf(k.name); sz != "" && k.name == encryptName(sz, "none") && r.results[key{encryptName(sz, "keypolicy10"), k.cores}] != nil {
			rows = append(rows, k)
			coreCounts[k.cores] = true
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| size | Encrypt+Decrypt policy=none median ns/op | policy=keypolicy10 median ns/op | **keypolicy10 / none** |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	for _, k := range rows {
		sz := sizeOf(k.name)
		none, _ := r.medianNs(k.name, k.cores)
		kp, _ := r.medianNs(encryptName(sz, "keypolicy10"), k.cores)
		label := sz
		if len(coreCounts) > 1 {
			label = fmt.Sprintf("%s (%s)", sz, coresText(k.cores))
		}
		fmt.Fprintf(w, "| %s | %s | %s | **%.2fx** |\n", label, fmtNs(none), fmtNs(kp), kp/none)
	}
}

// passed reports whether the checks pass -strict: no target FAILs, and no
// required target (any target, with requireAll) has NO DATA.
func passed(checks []check, requireAll bool) bool {
	for _, c := range checks {
		if c.status == fail || c.status == noData && (c.required || requireAll) {
			return false
		}
	}
	return true
}

func main() {
	targetSize := flag.String("size", "1KiB", "the size the Encrypt target applies to")
	target := flag.Float64("target", 2, "the largest Encrypt/RawAESGCM median ratio allowed at -size")
	strict := flag.Bool("strict", false, "exit 1 when a target is missed or the Encrypt target cannot be checked")
	requireAll := flag.Bool("require-all", false, "like -strict, and also exit 1 when any target has no data")
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
	checks, err := report(os.Stdout, r, options{size: *targetSize, target: *target})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratio:", err)
		os.Exit(2)
	}
	if (*strict || *requireAll) && !passed(checks, *requireAll) {
		os.Exit(1)
	}
}
