package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleOutput = `goos: linux
goarch: amd64
pkg: github.com/pocketkms/kms/bench
cpu: AMD EPYC
BenchmarkEncrypt/size=1KiB/policy=none-2         	  100000	      3000 ns/op	 341.33 MB/s	    4000 B/op	      40 allocs/op
BenchmarkEncrypt/size=1KiB/policy=none-2         	  100000	      5000 ns/op	 204.80 MB/s	    4000 B/op	      40 allocs/op
BenchmarkEncrypt/size=1KiB/policy=none-2         	  100000	      4000 ns/op	 256.00 MB/s	    4000 B/op	      40 allocs/op
BenchmarkRawAESGCM/size=1KiB-2       	  500000	      1000 ns/op	1024.00 MB/s	    2100 B/op	       3 allocs/op
BenchmarkRawAESGCM/size=1KiB-2       	  500000	      2500 ns/op	 409.60 MB/s	    2100 B/op	       3 allocs/op
BenchmarkRawAESGCM/size=1KiB-2       	  500000	      2000 ns/op	 512.00 MB/s	    2100 B/op	       3 allocs/op
BenchmarkSign-2                      	   20000	     60000 ns/op	    3000 B/op	      50 allocs/op
PASS
ok  	github.com/pocketkms/kms/bench	12.3s
`

// bench returns result lines of one benchmark at a core count, one per
// ns/op value, as go test prints them.
func bench(name string, cores int, nss ...float64) string {
	if cores != 1 {
		name += fmt.Sprintf("-%d", cores)
	}
	var b strings.Builder
	for _, v := range nss {
		fmt.Fprintf(&b, "%-50s\t  100000\t%10g ns/op\n", name, v)
	}
	return b.String()
}

// mustReport parses in and reports it with the default options.
func mustReport(t *testing.T, in string, o options) (string, []check) {
	t.Helper()
	r, err := parse(strings.NewReader(in))
	require.NoError(t, err)
	var b strings.Builder
	checks, err := report(&b, r, o)
	require.NoError(t, err)
	return b.String(), checks
}

var defaults = options{size: "1KiB", target: 2}

// find returns the check whose description is desc.
func find(t *testing.T, checks []check, desc string) check {
	t.Helper()
	for _, c := range checks {
		if c.desc == desc {
			return c
		}
	}
	t.Fatalf("no target %q", desc)
	return check{}
}

// The descriptions of the targets, as printed.
const (
	dEncrypt      = "Encrypt+Decrypt of 1KiB within 2x of raw AES-256-GCM seal+open"
	dPolicy       = "Encrypt with a 10-statement key policy of 1KiB within 1.15x of no policy"
	dEnvSeal1K    = "Envelope seal of 1KiB within 1.2x of the floor"
	dEnvOpen1K    = "Envelope open of 1KiB within 1.2x of the floor"
	dEnvSeal1M    = "Envelope seal of 1MiB (append form) within 0.6x of Tink"
	dEnvOpen1M    = "Envelope open of 1MiB (append form) within 0.6x of Tink"
	dStreamSeal1  = "Stream seal of 256MiB at least 1.0x Tink's speed on 1 core"
	dStreamOpen1  = "Stream open of 256MiB at least 1.0x Tink's speed on 1 core"
	dStreamSeal2  = "Stream seal of 256MiB at least 1.5x Tink's speed on 2 cores"
	dStreamOpen2  = "Stream open of 256MiB at least 1.5x Tink's speed on 2 cores"
	dRSASeal      = "EnvelopeRSA cached seal of 1KiB within 1.5x of the symmetric Envelope seal"
	dRSAOpen      = "EnvelopeRSA cached open of 1KiB within 1.5x of the symmetric Envelope open"
	dSignedSeal   = "EnvelopeSigned seal of 1KiB within 1.2x of the floor"
	dSignedOpen   = "EnvelopeSigned open of 1KiB within 1.2x of the floor"
	dSQLite       = "Envelope seal of 1KiB on SQLite within 1.1x of memory"
	dPostgres     = "Envelope seal of 1KiB on PostgreSQL within 1.1x of memory"
	nTargets      = 16
	encNone1K     = "BenchmarkEncrypt/size=1KiB/policy=none"
	encKP1K       = "BenchmarkEncrypt/size=1KiB/policy=keypolicy10"
	envelope      = "BenchmarkEnvelope/op="
	streamSeal256 = "BenchmarkStream/op=seal/size=256MiB/impl="
	streamOpen256 = "BenchmarkStream/op=open/size=256MiB/impl="
	storeSeal1K   = "BenchmarkEnvelope/op=seal/size=1KiB/store="
)

func TestSplitProcs(t *testing.T) {
	for _, tc := range []struct {
		in    string
		name  string
		cores int
	}{
		{"BenchmarkStream/op=seal/size=256MiB/impl=tink-2", "BenchmarkStream/op=seal/size=256MiB/impl=tink", 2},
		{"BenchmarkStream/op=seal/size=256MiB/impl=tink", "BenchmarkStream/op=seal/size=256MiB/impl=tink", 1},
		{"BenchmarkSign-16", "BenchmarkSign", 16},
		{"BenchmarkSign", "BenchmarkSign", 1},
		{"BenchmarkEncrypt/size=1KiB/policy=keypolicy10-2", "BenchmarkEncrypt/size=1KiB/policy=keypolicy10", 2},
		{"BenchmarkX-0", "BenchmarkX-0", 1},
		{"BenchmarkX-", "BenchmarkX-", 1},
		{"BenchmarkX-99999999999999999999999", "BenchmarkX-99999999999999999999999", 1},
	} {
		name, cores := splitProcs(tc.in)
		assert.Equal(t, tc.name, name, tc.in)
		assert.Equal(t, tc.cores, cores, tc.in)
	}
}

func TestSplitImpl(t *testing.T) {
	for _, tc := range []struct {
		in, base, impl string
		ok             bool
	}{
		{"BenchmarkEnvelope/op=seal/size=1KiB/impl=floor", "BenchmarkEnvelope/op=seal/size=1KiB", "floor", true},
		{"BenchmarkX/impl=a/size=1", "BenchmarkX/size=1", "a", true},
		{"BenchmarkEncrypt/size=1KiB/policy=none", "BenchmarkEncrypt/size=1KiB/policy=none", "", false},
		{"BenchmarkX/simpl=a", "BenchmarkX/simpl=a", "", false},
	} {
		base, impl, ok := splitImpl(tc.in)
		assert.Equal(t, tc.base, base, tc.in)
		assert.Equal(t, tc.impl, impl, tc.in)
		assert.Equal(t, tc.ok, ok, tc.in)
	}
}

func TestSizeOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"BenchmarkEncrypt/size=1KiB/policy=none", "1KiB"},
		{"BenchmarkEncrypt/size=64B/policy=keypolicy10", "64B"},
		{"BenchmarkEnvelope/op=seal/size=1MiB/impl=pocketkms", "1MiB"},
		{"BenchmarkRawAESGCM/size=4KiB", "4KiB"},
		{"BenchmarkEncrypt/size=1KiB", "1KiB"},
		{"BenchmarkSign", ""},
		{"BenchmarkX/policy=none", ""},
	} {
		assert.Equal(t, tc.want, sizeOf(tc.in), tc.in)
	}
}

// Samples at different core counts stay apart, and each gets its row.
func TestParseKeepsCoresApart(t *testing.T) {
	in := bench(streamSeal256+"tink", 1, 300, 100, 200) +
		bench(streamSeal256+"tink", 2, 50, 70) +
		bench("BenchmarkSign", 4, 9)
	r, err := parse(strings.NewReader(in))
	require.NoError(t, err)
	require.Equal(t, []key{
		{streamSeal256 + "tink", 1},
		{streamSeal256 + "tink", 2},
		{"BenchmarkSign", 4},
	}, r.order)
	m, ok := r.medianNs(streamSeal256+"tink", 1)
	assert.True(t, ok)
	assert.Equal(t, 200.0, m)
	m, ok = r.medianNs(streamSeal256+"tink", 2)
	assert.True(t, ok)
	assert.Equal(t, 60.0, m)
	_, ok = r.medianNs("BenchmarkSign", 1)
	assert.False(t, ok)

	var b strings.Builder
	_, err = report(&b, r, defaults)
	require.NoError(t, err)
	out := b.String()
	assert.Contains(t, out, "| Stream/op=seal/size=256MiB/impl=tink | 1 | 3 | 200 | 100..300 |  |  |  |\n")
	assert.Contains(t, out, "| Stream/op=seal/size=256MiB/impl=tink | 2 | 2 | 60.0 | 50.0..70.0 |  |  |  |\n")
	assert.Contains(t, out, "| Sign | 4 | 1 | 9.0 | 9.0..9.0 |  |  |  |\n")
}

// The existing tables and target: medians, Encrypt / Raw, -size, -target.
func TestReport(t *testing.T) {
	r, err := parse(strings.NewReader(sampleOutput))
	require.NoError(t, err)
	require.Len(t, r.results[key{encNone1K, 2}].samples, 3)
	assert.Equal(t, []string{"goos: linux", "goarch: amd64", "pkg: github.com/pocketkms/kms/bench", "cpu: AMD EPYC"}, r.header)

	var b strings.Builder
	checks, err := report(&b, r, defaults)
	require.NoError(t, err)
	out := b.String()
	// Medians 4000 and 2000: ratio 2.00, within the target.
	assert.Contains(t, out, "| benchmark | cores | runs | median ns/op | min..max ns/op | median MB/s | median B/op | median allocs/op |\n")
	assert.Contains(t, out, "| 1KiB | 4000 | 2000 | **2.00x** | 5.00x |\n")
	assert.Contains(t, out, "| Sign | 2 | 1 | 60000 | 60000..60000 |  | 3000 | 50 |\n")
	assert.Contains(t, out, "\nTarget ("+dEncrypt+"): PASS at 2.00x\n")
	require.Len(t, checks, nTargets)
	assert.Equal(t, pass, checks[0].status)
	assert.True(t, passed(checks, false))
	assert.False(t, passed(checks, true), "the Envelope targets have no data")
	assert.NotContains(t, out, "Peers of")
	assert.NotContains(t, out, "keypolicy10 / none", "no keypolicy10 rows, no table")

	out, checks = mustReport(t, sampleOutput, options{size: "1KiB", target: 1.5})
	assert.Equal(t, fail, checks[0].status)
	assert.Contains(t, out, "Target (Encrypt+Decrypt of 1KiB within 1.5x of raw AES-256-GCM seal+open): FAIL at 2.00x\n")
	assert.False(t, passed(checks, false))

	out, checks = mustReport(t, sampleOutput, options{size: "4KiB", target: 2})
	assert.Equal(t, noData, checks[0].status)
	assert.Contains(t, out, "Target (Encrypt+Decrypt of 4KiB within 2x of raw AES-256-GCM seal+open): NO DATA (run BenchmarkEncrypt/size=4KiB/policy=none and BenchmarkRawAESGCM/size=4KiB)\n")
	assert.False(t, passed(checks, false), "the Encrypt target's missing data fails -strict")
}

// The TinkEnvelope columns and one Encrypt / Raw row per core count, from
// the policy=none rows only.
func TestEncryptTable(t *testing.T) {
	in := bench(encNone1K, 1, 3000) + bench("BenchmarkRawAESGCM/size=1KiB", 1, 1000) +
		bench(encNone1K, 2, 2000) + bench("BenchmarkRawAESGCM/size=1KiB", 2, 1000) +
		bench(encKP1K, 2, 9000) +
		bench("BenchmarkTinkEnvelope/size=1KiB", 2, 7000)
	out, checks := mustReport(t, in, defaults)
	assert.Contains(t, out, "| 1KiB (1 core) | 3000 | 1000 | **3.00x** | 3.00x | | |\n")
	assert.Contains(t, out, "| 1KiB (2 cores) | 2000 | 1000 | **2.00x** | 2.00x | 7000 | 7.00x |\n")
	assert.NotContains(t, out, "| 1KiB (2 cores) | 9000 |", "keypolicy10 is not an Encrypt / Raw row")
	// The target is taken at the most cores.
	assert.Equal(t, pass, checks[0].status)
	assert.Equal(t, 2.0, checks[0].value)

	// The old name, without a policy element, is not policy=none.
	_, checks = mustReport(t, bench("BenchmarkEncrypt/size=1KiB", 2, 2000)+bench("BenchmarkRawAESGCM/size=1KiB", 2, 1000), defaults)
	assert.Equal(t, noData, checks[0].status)
}

// The Key policy / none table: one row per size and core count that has
// both policies, none without Raw needed.
func TestPolicyTable(t *testing.T) {
	in := bench(encNone1K, 1, 2000) + bench(encKP1K, 1, 2300) +
		bench(encNone1K, 2, 1000) + bench(encKP1K, 2, 1100, 1090, 1500) +
		bench("BenchmarkEncrypt/size=64B/policy=none", 2, 500) + // no keypolicy10: no row
		bench("BenchmarkEncrypt/size=4KiB/policy=keypolicy10", 2, 500) // no none: no row
	out, checks := mustReport(t, in, defaults)
	assert.Contains(t, out, "| size | Encrypt+Decrypt policy=none median ns/op | policy=keypolicy10 median ns/op | **keypolicy10 / none** |\n"+
		"| --- | ---: | ---: | ---: |\n"+
		"| 1KiB (1 core) | 2000 | 2300 | **1.15x** |\n"+
		"| 1KiB (2 cores) | 1000 | 1100 | **1.10x** |\n\n")
	assert.NotContains(t, out, "| 64B")
	assert.NotContains(t, out, "| 4KiB")
	assert.NotContains(t, out, "**Encrypt / Raw**", "no Raw, no Encrypt / Raw table")
	c := find(t, checks, dPolicy)
	assert.Equal(t, pass, c.status)
	assert.Equal(t, 1.1, c.value, "at the most cores")
}

// Each target passes at its limit and fails just past it.
func TestTargets(t *testing.T) {
	env := func(op, size, impl string, cores int, v float64) string {
		return bench(envelope+op+"/size="+size+"/impl="+impl, cores, v)
	}
	for _, tc := range []struct {
		name, desc, in string
		want           status
		value          string
	}{
		{"encrypt pass", dEncrypt, bench(encNone1K, 2, 2000) + bench("BenchmarkRawAESGCM/size=1KiB", 2, 1000), pass, "2.00x"},
		{"encrypt fail", dEncrypt, bench(encNone1K, 2, 2100) + bench("BenchmarkRawAESGCM/size=1KiB", 2, 1000), fail, "2.10x"},
		{"encrypt keypolicy10 does not count", dEncrypt, bench(encKP1K, 2, 1000) + bench("BenchmarkRawAESGCM/size=1KiB", 2, 1000), noData, ""},

		{"policy pass", dPolicy, bench(encKP1K, 2, 1090) + bench(encNone1K, 2, 1000), pass, "1.09x"},
		{"policy pass at the limit", dPolicy, bench(encKP1K, 2, 1150) + bench(encNone1K, 2, 1000), pass, "1.15x"},
		{"policy fail", dPolicy, bench(encKP1K, 2, 1200) + bench(encNone1K, 2, 1000), fail, "1.20x"},
		{"policy fail just over", dPolicy, bench(encKP1K, 2, 11504) + bench(encNone1K, 2, 10000), fail, "1.1504x"},
		{"policy faster than none", dPolicy, bench(encKP1K, 1, 900) + bench(encNone1K, 1, 1000), pass, "0.90x"},
		{"policy needs none", dPolicy, bench(encKP1K, 2, 1000) + bench("BenchmarkRawAESGCM/size=1KiB", 2, 1000), noData, ""},
		{"policy needs 1KiB", dPolicy, bench("BenchmarkEncrypt/size=4KiB/policy=keypolicy10", 2, 1000) + bench("BenchmarkEncrypt/size=4KiB/policy=none", 2, 1000), noData, ""},
		{"policy needs the same cores", dPolicy, bench(encKP1K, 2, 1000) + bench(encNone1K, 1, 1000), noData, ""},

		{"envelope seal 1KiB pass", dEnvSeal1K, env("seal", "1KiB", "pocketkms", 2, 1200) + env("seal", "1KiB", "floor", 2, 1000), pass, "1.20x"},
		{"envelope seal 1KiB fail", dEnvSeal1K, env("seal", "1KiB", "pocketkms", 2, 1210) + env("seal", "1KiB", "floor", 2, 1000), fail, "1.21x"},
		// Rounded to two decimals, these would print the limit.
		{"envelope seal 1KiB fail just over", dEnvSeal1K, env("seal", "1KiB", "pocketkms", 2, 12004) + env("seal", "1KiB", "floor", 2, 10000), fail, "1.2004x"},
		{"envelope seal 1KiB pass just under", dEnvSeal1K, env("seal", "1KiB", "pocketkms", 2, 11996) + env("seal", "1KiB", "floor", 2, 10000), pass, "1.1996x"},
		{"stream seal 2 cores fail just under", dStreamSeal2, bench(streamSeal256+"pocketkms", 2, 10000) + bench(streamSeal256+"tink", 2, 14999), fail, "1.4999x"},
		{"envelope open 1KiB pass", dEnvOpen1K, env("open", "1KiB", "pocketkms", 1, 900) + env("open", "1KiB", "floor", 1, 1000), pass, "0.90x"},
		{"envelope open 1KiB fail", dEnvOpen1K, env("open", "1KiB", "pocketkms", 1, 1300) + env("open", "1KiB", "floor", 1, 1000), fail, "1.30x"},
		{"envelope open 1KiB seal data only", dEnvOpen1K, env("seal", "1KiB", "pocketkms", 2, 1000) + env("seal", "1KiB", "floor", 2, 1000), noData, ""},

		{"envelope seal 1MiB pass", dEnvSeal1M, env("seal", "1MiB", "pocketkms-append", 2, 600) + env("seal", "1MiB", "tink", 2, 1000), pass, "0.60x"},
		{"envelope seal 1MiB fail", dEnvSeal1M, env("seal", "1MiB", "pocketkms-append", 2, 610) + env("seal", "1MiB", "tink", 2, 1000), fail, "0.61x"},
		{"envelope open 1MiB pass", dEnvOpen1M, env("open", "1MiB", "pocketkms-append", 2, 500) + env("open", "1MiB", "tink", 2, 1000), pass, "0.50x"},
		{"envelope open 1MiB fail", dEnvOpen1M, env("open", "1MiB", "pocketkms-append", 2, 900) + env("open", "1MiB", "tink", 2, 1000), fail, "0.90x"},
		{"envelope 1MiB judges the append form", dEnvOpen1M, env("open", "1MiB", "pocketkms", 2, 500) + env("open", "1MiB", "tink", 2, 1000), noData, ""},
		{"envelope 1MiB against the floor is no data", dEnvOpen1M, env("open", "1MiB", "pocketkms-append", 2, 500) + env("open", "1MiB", "floor", 2, 1000), noData, ""},

		{"stream seal 1 core pass", dStreamSeal1, bench(streamSeal256+"pocketkms", 1, 1000) + bench(streamSeal256+"tink", 1, 1000), pass, "1.00x"},
		{"stream seal 1 core fail", dStreamSeal1, bench(streamSeal256+"pocketkms", 1, 1000) + bench(streamSeal256+"tink", 1, 990), fail, "0.99x"},
		{"stream open 1 core pass", dStreamOpen1, bench(streamOpen256+"pocketkms", 1, 1000) + bench(streamOpen256+"tink", 1, 1300), pass, "1.30x"},
		{"stream open 1 core fail", dStreamOpen1, bench(streamOpen256+"pocketkms", 1, 2000) + bench(streamOpen256+"tink", 1, 1000), fail, "0.50x"},
		{"stream seal 2 cores pass", dStreamSeal2, bench(streamSeal256+"pocketkms", 2, 1000) + bench(streamSeal256+"tink", 2, 1500), pass, "1.50x"},
		{"stream seal 2 cores fail", dStreamSeal2, bench(streamSeal256+"pocketkms", 2, 1000) + bench(streamSeal256+"tink", 2, 1490), fail, "1.49x"},
		{"stream open 2 cores pass", dStreamOpen2, bench(streamOpen256+"pocketkms", 2, 1000) + bench(streamOpen256+"tink", 2, 2000), pass, "2.00x"},
		{"stream open 2 cores fail", dStreamOpen2, bench(streamOpen256+"pocketkms", 2, 1000) + bench(streamOpen256+"tink", 2, 1100), fail, "1.10x"},
		// A 2-core sample does not count at 1 core, nor 4 cores at 2.
		{"stream 1 core needs 1 core", dStreamSeal1, bench(streamSeal256+"pocketkms", 2, 1000) + bench(streamSeal256+"tink", 2, 3000), noData, ""},
		{"stream 2 cores needs 2 cores", dStreamOpen2, bench(streamOpen256+"pocketkms", 4, 1000) + bench(streamOpen256+"tink", 4, 3000), noData, ""},
		{"stream other size", dStreamSeal1, bench("BenchmarkStream/op=seal/size=16MiB/impl=pocketkms", 1, 1000) + bench("BenchmarkStream/op=seal/size=16MiB/impl=tink", 1, 3000), noData, ""},

		{"rsa seal pass", dRSASeal, bench("BenchmarkEnvelopeRSA/op=seal/size=1KiB/impl=cached", 2, 1500) + env("seal", "1KiB", "pocketkms", 2, 1000), pass, "1.50x"},
		{"rsa seal fail", dRSASeal, bench("BenchmarkEnvelopeRSA/op=seal/size=1KiB/impl=cached", 2, 1510) + env("seal", "1KiB", "pocketkms", 2, 1000), fail, "1.51x"},
		{"rsa open pass", dRSAOpen, bench("BenchmarkEnvelopeRSA/op=open/size=1KiB/impl=cached", 2, 1100) + env("open", "1KiB", "pocketkms", 2, 1000), pass, "1.10x"},
		{"rsa open fail", dRSAOpen, bench("BenchmarkEnvelopeRSA/op=open/size=1KiB/impl=cached", 2, 3000) + env("open", "1KiB", "pocketkms", 2, 1000), fail, "3.00x"},
		{"rsa uncached does not count", dRSAOpen, bench("BenchmarkEnvelopeRSA/op=open/size=1KiB/impl=uncached", 2, 1000) + env("open", "1KiB", "pocketkms", 2, 1000), noData, ""},
		{"rsa needs the same cores", dRSASeal, bench("BenchmarkEnvelopeRSA/op=seal/size=1KiB/impl=cached", 2, 1000) + env("seal", "1KiB", "pocketkms", 1, 1000), noData, ""},
		{"rsa needs the same op", dRSASeal, bench("BenchmarkEnvelopeRSA/op=seal/size=1KiB/impl=cached", 2, 1000) + env("open", "1KiB", "pocketkms", 2, 1000), noData, ""},

		{"signed seal pass", dSignedSeal, bench("BenchmarkEnvelopeSigned/op=seal/size=1KiB/impl=pocketkms", 2, 1200) + bench("BenchmarkEnvelopeSigned/op=seal/size=1KiB/impl=floor", 2, 1000), pass, "1.20x"},
		{"signed seal fail", dSignedSeal, bench("BenchmarkEnvelopeSigned/op=seal/size=1KiB/impl=pocketkms", 2, 1250) + bench("BenchmarkEnvelopeSigned/op=seal/size=1KiB/impl=floor", 2, 1000), fail, "1.25x"},
		{"signed open pass", dSignedOpen, bench("BenchmarkEnvelopeSigned/op=open/size=1KiB/impl=pocketkms", 2, 1000) + bench("BenchmarkEnvelopeSigned/op=open/size=1KiB/impl=floor", 2, 1000), pass, "1.00x"},
		{"signed open fail", dSignedOpen, bench("BenchmarkEnvelopeSigned/op=open/size=1KiB/impl=pocketkms", 2, 2000) + bench("BenchmarkEnvelopeSigned/op=open/size=1KiB/impl=floor", 2, 1000), fail, "2.00x"},
		// The unsigned floor is not the signed one.
		{"signed needs its own floor", dSignedOpen, bench("BenchmarkEnvelopeSigned/op=open/size=1KiB/impl=pocketkms", 2, 1000) + env("open", "1KiB", "floor", 2, 1000), noData, ""},

		{"sqlite pass", dSQLite, bench(storeSeal1K+"sqlite", 2, 10500) + bench(storeSeal1K+"memory", 2, 10000), pass, "1.05x"},
		{"sqlite pass at the limit", dSQLite, bench(storeSeal1K+"sqlite", 2, 11000) + bench(storeSeal1K+"memory", 2, 10000), pass, "1.10x"},
		{"sqlite fail", dSQLite, bench(storeSeal1K+"sqlite", 2, 12000) + bench(storeSeal1K+"memory", 2, 10000), fail, "1.20x"},
		{"sqlite fail just over", dSQLite, bench(storeSeal1K+"sqlite", 2, 11004) + bench(storeSeal1K+"memory", 2, 10000), fail, "1.1004x"},
		{"sqlite needs memory", dSQLite, bench(storeSeal1K+"sqlite", 2, 10000) + env("seal", "1KiB", "pocketkms", 2, 10000), noData, ""},
		{"sqlite needs the same cores", dSQLite, bench(storeSeal1K+"sqlite", 2, 10000) + bench(storeSeal1K+"memory", 1, 10000), noData, ""},
		{"sqlite needs 1KiB", dSQLite, bench("BenchmarkEnvelope/op=seal/size=1MiB/store=sqlite", 2, 10000) + bench("BenchmarkEnvelope/op=seal/size=1MiB/store=memory", 2, 10000), noData, ""},
		{"postgres pass", dPostgres, bench(storeSeal1K+"postgres", 2, 9800) + bench(storeSeal1K+"memory", 2, 10000), pass, "0.98x"},
		{"postgres fail", dPostgres, bench(storeSeal1K+"postgres", 2, 15000) + bench(storeSeal1K+"memory", 2, 10000), fail, "1.50x"},
		{"postgres is not sqlite", dPostgres, bench(storeSeal1K+"sqlite", 2, 10000) + bench(storeSeal1K+"memory", 2, 10000), noData, ""},
		{"postgres needs memory", dPostgres, bench(storeSeal1K+"postgres", 2, 10000), noData, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, checks := mustReport(t, tc.in, defaults)
			require.Len(t, checks, nTargets)
			c := find(t, checks, tc.desc)
			assert.Equal(t, tc.want, c.status)
			var line string
			switch tc.want {
			case pass:
				line = "Target (" + tc.desc + "): PASS at " + tc.value + "\n"
			case fail:
				line = "Target (" + tc.desc + "): FAIL at " + tc.value + "\n"
			default:
				line = "Target (" + tc.desc + "): NO DATA (run "
			}
			assert.Contains(t, out, line)
			// Strict fails on a FAIL; a PASS or a NO DATA of a new target
			// fails only through the Encrypt target having no data here,
			// unless it is the Encrypt target, whose NO DATA fails too.
			if tc.desc != dEncrypt {
				assert.Equal(t, noData, checks[0].status)
				checks[0].status = pass
			}
			assert.Equal(t, tc.want == pass || tc.want == noData && tc.desc != dEncrypt, passed(checks, false))
		})
	}
}

// The target uses the highest core count that has both sides.
func TestTargetsHighestCores(t *testing.T) {
	seal := envelope + "seal/size=1KiB/impl="
	in := bench(seal+"pocketkms", 1, 1000) + bench(seal+"floor", 1, 1000) +
		bench(seal+"pocketkms", 2, 3000) + bench(seal+"floor", 2, 1000) +
		bench(seal+"pocketkms", 4, 1000) // no floor at 4 cores
	_, checks := mustReport(t, in, defaults)
	c := find(t, checks, dEnvSeal1K)
	assert.Equal(t, fail, c.status)
	assert.Equal(t, 3.0, c.value)
}

// An input without any targeted benchmark: every target says NO DATA and
// what to run.
func TestNoData(t *testing.T) {
	out, checks := mustReport(t, bench("BenchmarkSign", 2, 1000), defaults)
	require.Len(t, checks, nTargets)
	for _, c := range checks {
		assert.Equal(t, noData, c.status, c.desc)
	}
	for _, line := range []string{
		"Target (" + dEncrypt + "): NO DATA (run BenchmarkEncrypt/size=1KiB/policy=none and BenchmarkRawAESGCM/size=1KiB)",
		"Target (" + dPolicy + "): NO DATA (run BenchmarkEncrypt/size=1KiB with policy=none and policy=keypolicy10)",
		"Target (" + dEnvSeal1K + "): NO DATA (run BenchmarkEnvelope/op=seal/size=1KiB with impl=pocketkms and impl=floor)",
		"Target (" + dEnvOpen1K + "): NO DATA (run BenchmarkEnvelope/op=open/size=1KiB with impl=pocketkms and impl=floor)",
		"Target (" + dEnvSeal1M + "): NO DATA (run BenchmarkEnvelope/op=seal/size=1MiB with impl=pocketkms-append and impl=tink)",
		"Target (" + dEnvOpen1M + "): NO DATA (run BenchmarkEnvelope/op=open/size=1MiB with impl=pocketkms-append and impl=tink)",
		"Target (" + dStreamSeal1 + "): NO DATA (run BenchmarkStream/op=seal/size=256MiB with impl=pocketkms and impl=tink, with -cpu 1)",
		"Target (" + dStreamOpen1 + "): NO DATA (run BenchmarkStream/op=open/size=256MiB with impl=pocketkms and impl=tink, with -cpu 1)",
		"Target (" + dStreamSeal2 + "): NO DATA (run BenchmarkStream/op=seal/size=256MiB with impl=pocketkms and impl=tink, with -cpu 2)",
		"Target (" + dStreamOpen2 + "): NO DATA (run BenchmarkStream/op=open/size=256MiB with impl=pocketkms and impl=tink, with -cpu 2)",
		"Target (" + dRSASeal + "): NO DATA (run BenchmarkEnvelopeRSA/op=seal/size=1KiB/impl=cached and BenchmarkEnvelope/op=seal/size=1KiB/impl=pocketkms at the same core count)",
		"Target (" + dRSAOpen + "): NO DATA (run BenchmarkEnvelopeRSA/op=open/size=1KiB/impl=cached and BenchmarkEnvelope/op=open/size=1KiB/impl=pocketkms at the same core count)",
		"Target (" + dSignedSeal + "): NO DATA (run BenchmarkEnvelopeSigned/op=seal/size=1KiB with impl=pocketkms and impl=floor)",
		"Target (" + dSignedOpen + "): NO DATA (run BenchmarkEnvelopeSigned/op=open/size=1KiB with impl=pocketkms and impl=floor)",
		"Target (" + dSQLite + "): NO DATA (run BenchmarkEnvelope/op=seal/size=1KiB with store=memory and store=sqlite)",
		"Target (" + dPostgres + "): NO DATA (run BenchmarkEnvelope/op=seal/size=1KiB with store=memory and store=postgres, under scripts/with-postgres.sh (bench/run.sh does), which starts PostgreSQL and sets POCKETKMS_TEST_POSTGRES)",
	} {
		assert.Contains(t, out, "\n"+line+"\n")
	}
	assert.False(t, passed(checks, false), "the Encrypt target's missing data fails -strict")
	assert.False(t, passed(checks, true))
}

// passed decides -strict's exit status.
func TestPassed(t *testing.T) {
	enc := func(s status) check { return check{desc: "encrypt", status: s, required: true} }
	other := func(s status) check { return check{desc: "other", status: s} }
	for _, tc := range []struct {
		name             string
		checks           []check
		strict, required bool // want passed(checks, false), passed(checks, true)
	}{
		{"all pass", []check{enc(pass), other(pass)}, true, true},
		{"other missing", []check{enc(pass), other(noData)}, true, false},
		{"encrypt missing", []check{enc(noData), other(pass)}, false, false},
		{"other fails", []check{enc(pass), other(fail)}, false, false},
		{"encrypt fails", []check{enc(fail), other(pass)}, false, false},
		{"fail beside missing", []check{enc(pass), other(noData), other(fail)}, false, false},
		{"none", nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.strict, passed(tc.checks, false), "-strict")
			assert.Equal(t, tc.required, passed(tc.checks, true), "-strict -require-all")
		})
	}
}

// A family the tool does not know still gets its table, with
// pocketkms/<impl> when it has a pocketkms impl, and a case column when
// its names are not all key=value.
func TestPeersGeneric(t *testing.T) {
	in := bench("BenchmarkNew/op=x/impl=pocketkms", 1, 100) + bench("BenchmarkNew/op=x/impl=other", 1, 400) +
		bench("BenchmarkOdd/plain/impl=a", 2, 10) + bench("BenchmarkOdd/k=v/impl=b", 2, 20)
	out, _ := mustReport(t, in, defaults)
	assert.Contains(t, out, "Peers of New, median ns/op (a ratio below 1 favours pocketkms):\n\n"+
		"| op | cores | pocketkms ns/op | other ns/op | pocketkms / other |\n"+
		"| --- | ---: | ---: | ---: | ---: |\n"+
		"| x | 1 | 100 | 400 | 0.25x |\n")
	assert.Contains(t, out, "Peers of Odd, median ns/op:\n\n"+
		"| case | cores | a ns/op | b ns/op |\n"+
		"| --- | ---: | ---: | ---: |\n"+
		"| plain | 2 | 10.0 |  |\n"+
		"| k=v | 2 |  | 20.0 |\n")
}

// realistic is the output of run.sh's two go test invocations on a
// 2-core machine, cut down: every benchmark but BenchmarkStream at the
// default GOMAXPROCS (the -2 suffix), then BenchmarkStream with -cpu 1,2.
const realistic = `goos: linux
goarch: amd64
pkg: github.com/pocketkms/kms/bench
cpu: Oxide Virtual Turin-like Processor             
BenchmarkEncrypt/size=1KiB/policy=none-2 	  531892	      2301 ns/op	 444.99 MB/s	    2608 B/op	       5 allocs/op
BenchmarkEncrypt/size=1KiB/policy=keypolicy10-2 	  490000	      2508 ns/op	 408.29 MB/s	    3100 B/op	       9 allocs/op
BenchmarkRawAESGCM/size=1KiB-2        	  635322	      2356 ns/op	 434.68 MB/s	    2192 B/op	       3 allocs/op
BenchmarkEnvelope/op=seal/size=1KiB/impl=pocketkms-2         	  126315	      9500 ns/op	 107.79 MB/s	    5000 B/op	      30 allocs/op
BenchmarkEnvelope/op=seal/size=1KiB/impl=awsesdk-2           	   25000	     48000 ns/op	  21.33 MB/s	   40000 B/op	     600 allocs/op
BenchmarkEnvelope/op=seal/size=1KiB/impl=tink-2              	  214285	      5600 ns/op	 182.86 MB/s	    6000 B/op	      35 allocs/op
BenchmarkEnvelope/op=seal/size=1KiB/impl=floor-2             	  137931	      8700 ns/op	 117.70 MB/s	    3000 B/op	      12 allocs/op
BenchmarkEnvelope/op=seal/size=1KiB/store=memory-2           	  120000	     10000 ns/op	 102.40 MB/s	    6104 B/op	      26 allocs/op
BenchmarkEnvelope/op=seal/size=1KiB/store=sqlite-2           	  120000	     10300 ns/op	  99.42 MB/s	    6104 B/op	      26 allocs/op
BenchmarkEnvelope/op=seal/size=1KiB/store=postgres-2         	  100000	     11500 ns/op	  89.04 MB/s	    6104 B/op	      26 allocs/op
BenchmarkEnvelope/op=seal/size=1MiB/impl=pocketkms-2         	    2000	    798496 ns/op	1313.18 MB/s	 1100000 B/op	      30 allocs/op
BenchmarkEnvelope/op=seal/size=1MiB/impl=pocketkms-append-2  	    2000	    598496 ns/op	1752.00 MB/s	     500 B/op	      29 allocs/op
BenchmarkEnvelope/op=seal/size=1MiB/impl=tink-2              	    1000	   1206987 ns/op	 868.74 MB/s	 2200000 B/op	      35 allocs/op
BenchmarkEnvelope/op=seal/size=1MiB/impl=floor-2             	    1500	    770293 ns/op	1361.27 MB/s	 1100000 B/op	      12 allocs/op
BenchmarkEnvelope/op=open/size=1KiB/impl=pocketkms-2         	  162162	      7400 ns/op	 138.38 MB/s	    4000 B/op	      20 allocs/op
BenchmarkEnvelope/op=open/size=1KiB/impl=floor-2             	  196721	      6100 ns/op	 167.87 MB/s	    2000 B/op	       8 allocs/op
BenchmarkEnvelope/op=open/size=1MiB/impl=pocketkms-2         	    2281	    725780 ns/op	1444.76 MB/s	 1050000 B/op	      20 allocs/op
BenchmarkEnvelope/op=open/size=1MiB/impl=pocketkms-append-2  	    2281	    525780 ns/op	1994.32 MB/s	     500 B/op	      19 allocs/op
BenchmarkEnvelope/op=open/size=1MiB/impl=tink-2              	    1337	    896907 ns/op	1169.10 MB/s	 2100000 B/op	      30 allocs/op
BenchmarkEnvelopeRSA/op=seal/size=1KiB/impl=cached-2         	  117647	     10200 ns/op	 100.39 MB/s	    5200 B/op	      32 allocs/op
BenchmarkEnvelopeRSA/op=seal/size=1KiB/impl=uncached-2       	     387	   3100000 ns/op	   0.33 MB/s	   90000 B/op	     900 allocs/op
BenchmarkEnvelopeRSA/op=open/size=1KiB/impl=cached-2         	  100000	     12000 ns/op	  85.33 MB/s	    5000 B/op	      25 allocs/op
BenchmarkEnvelopeSigned/op=seal/size=1KiB/impl=pocketkms-2   	    4800	    250000 ns/op	   4.10 MB/s	   12000 B/op	     120 allocs/op
BenchmarkEnvelopeSigned/op=seal/size=1KiB/impl=floor-2       	    5000	    240000 ns/op	   4.27 MB/s	   11000 B/op	     110 allocs/op
BenchmarkEnvelopeSigned/op=open/size=1KiB/impl=pocketkms-2   	    4000	    300000 ns/op	   3.41 MB/s	   10000 B/op	     100 allocs/op
BenchmarkEnvelopeSigned/op=open/size=1KiB/impl=floor-2       	    4615	    260000 ns/op	   3.94 MB/s	    9000 B/op	      90 allocs/op
PASS
ok  	github.com/pocketkms/kms/bench	61.402s
goos: linux
goarch: amd64
pkg: github.com/pocketkms/kms/bench
cpu: Oxide Virtual Turin-like Processor             
BenchmarkStream/op=seal/size=256MiB/impl=pocketkms           	       6	 180000000 ns/op	1491.31 MB/s	   40000 B/op	      60 allocs/op
BenchmarkStream/op=seal/size=256MiB/impl=pocketkms           	       6	 190000000 ns/op	1412.82 MB/s	   40000 B/op	      60 allocs/op
BenchmarkStream/op=seal/size=256MiB/impl=pocketkms           	       6	 170000000 ns/op	1579.03 MB/s	   40000 B/op	      60 allocs/op
BenchmarkStream/op=seal/size=256MiB/impl=pocketkms-2         	      10	 110000000 ns/op	2440.42 MB/s	   80000 B/op	     120 allocs/op
BenchmarkStream/op=seal/size=256MiB/impl=tink                	       5	 200000000 ns/op	1342.18 MB/s	 3000000 B/op	     800 allocs/op
BenchmarkStream/op=seal/size=256MiB/impl=tink-2              	       5	 200000000 ns/op	1342.18 MB/s	 3000000 B/op	     800 allocs/op
BenchmarkStream/op=open/size=256MiB/impl=pocketkms           	       6	 190000000 ns/op	1412.82 MB/s	   40000 B/op	      60 allocs/op
BenchmarkStream/op=open/size=256MiB/impl=pocketkms-2         	       8	 130000000 ns/op	2064.98 MB/s	   80000 B/op	     120 allocs/op
BenchmarkStream/op=open/size=256MiB/impl=tink                	       6	 180000000 ns/op	1491.31 MB/s	 3000000 B/op	     800 allocs/op
BenchmarkStream/op=open/size=256MiB/impl=tink-2              	       6	 180000000 ns/op	1491.31 MB/s	 3000000 B/op	     800 allocs/op
PASS
ok  	github.com/pocketkms/kms/bench	40.113s
`

func TestRealistic(t *testing.T) {
	r, err := parse(strings.NewReader(realistic))
	require.NoError(t, err)
	assert.Len(t, r.header, 4, "the repeated header is kept once")
	assert.Len(t, r.results[key{streamSeal256 + "pocketkms", 1}].samples, 3)
	assert.Len(t, r.results[key{streamSeal256 + "pocketkms", 2}].samples, 1)
	assert.Nil(t, r.results[key{streamSeal256 + "pocketkms-2", 1}])
	assert.NotNil(t, r.results[key{envelope + "seal/size=1KiB/impl=floor", 2}])
	assert.Nil(t, r.results[key{envelope + "seal/size=1KiB/impl=floor", 1}])

	var b strings.Builder
	checks, err := report(&b, r, defaults)
	require.NoError(t, err)
	out := b.String()

	// The median table keeps every benchmark at each core count.
	assert.Contains(t, out, "| Stream/op=seal/size=256MiB/impl=pocketkms | 1 | 3 | 180000000 | 170000000..190000000 | 1491.3 | 40000 | 60 |\n")
	assert.Contains(t, out, "| Stream/op=seal/size=256MiB/impl=pocketkms | 2 | 1 | 110000000 | 110000000..110000000 | 2440.4 | 80000 | 120 |\n")
	assert.Contains(t, out, "| Envelope/op=seal/size=1KiB/impl=floor | 2 | 1 | 8700 | 8700..8700 | 117.7 | 3000 | 12 |\n")
	assert.Contains(t, out, "| Envelope/op=seal/size=1KiB/store=postgres | 2 | 1 | 11500 | 11500..11500 | 89.0 | 6104 | 26 |\n")
	assert.Contains(t, out, "| 1KiB | 2301 | 2356 | **0.98x** | 0.98x |\n")
	assert.Contains(t, out, "| 1KiB | 2301 | 2508 | **1.09x** |\n")

	// The peers tables.
	assert.Contains(t, out, "Peers of Envelope, median ns/op (a ratio below 1 favours pocketkms):\n\n"+
		"| op | size | cores | pocketkms ns/op | awsesdk ns/op | tink ns/op | floor ns/op | pocketkms-append ns/op | pocketkms / floor | pocketkms / awsesdk | pocketkms / tink | pocketkms-append / tink |\n"+
		"| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"+
		"| seal | 1KiB | 2 | 9500 | 48000 | 5600 | 8700 |  | 1.09x | 0.20x | 1.70x |  |\n"+
		"| seal | 1MiB | 2 | 798496 |  | 1206987 | 770293 | 598496 | 1.04x |  | 0.66x | 0.50x |\n"+
		"| open | 1KiB | 2 | 7400 |  |  | 6100 |  | 1.21x |  |  |  |\n"+
		"| open | 1MiB | 2 | 725780 |  | 896907 |  | 525780 |  |  | 0.81x | 0.59x |\n\n")
	assert.Contains(t, out, "| op | size | cores | cached ns/op | uncached ns/op | symmetric ns/op | cached / symmetric |\n"+
		"| --- | --- | ---: | ---: | ---: | ---: | ---: |\n"+
		"| seal | 1KiB | 2 | 10200 | 3100000 | 9500 | 1.07x |\n"+
		"| open | 1KiB | 2 | 12000 |  | 7400 | 1.62x |\n")
	assert.Contains(t, out, "| op | size | cores | pocketkms ns/op | floor ns/op | pocketkms / floor |\n"+
		"| --- | --- | ---: | ---: | ---: | ---: |\n"+
		"| seal | 1KiB | 2 | 250000 | 240000 | 1.04x |\n"+
		"| open | 1KiB | 2 | 300000 | 260000 | 1.15x |\n")
	assert.Contains(t, out, "| op | size | cores | pocketkms ns/op | tink ns/op | pocketkms speed-up over Tink |\n"+
		"| --- | --- | ---: | ---: | ---: | ---: |\n"+
		"| seal | 256MiB | 1 | 180000000 | 200000000 | 1.11x |\n"+
		"| seal | 256MiB | 2 | 110000000 | 200000000 | 1.82x |\n"+
		"| open | 256MiB | 1 | 190000000 | 180000000 | 0.95x |\n"+
		"| open | 256MiB | 2 | 130000000 | 180000000 | 1.38x |\n")

	// The targets, in order, after the tables.
	want := "\n" +
		"Target (" + dEncrypt + "): PASS at 0.98x\n" +
		"Target (" + dPolicy + "): PASS at 1.09x\n" +
		"Target (" + dEnvSeal1K + "): PASS at 1.09x\n" +
		"Target (" + dEnvOpen1K + "): FAIL at 1.21x\n" +
		"Target (" + dEnvSeal1M + "): PASS at 0.50x\n" +
		"Target (" + dEnvOpen1M + "): PASS at 0.59x\n" +
		"Target (" + dStreamSeal1 + "): PASS at 1.11x\n" +
		"Target (" + dStreamOpen1 + "): FAIL at 0.95x\n" +
		"Target (" + dStreamSeal2 + "): PASS at 1.82x\n" +
		"Target (" + dStreamOpen2 + "): FAIL at 1.38x\n" +
		"Target (" + dRSASeal + "): PASS at 1.07x\n" +
		"Target (" + dRSAOpen + "): FAIL at 1.62x\n" +
		"Target (" + dSignedSeal + "): PASS at 1.04x\n" +
		"Target (" + dSignedOpen + "): PASS at 1.15x\n" +
		"Target (" + dSQLite + "): PASS at 1.03x\n" +
		"Target (" + dPostgres + "): FAIL at 1.15x\n"
	assert.True(t, strings.HasSuffix(out, want), "output:\n%s", out)
	assert.False(t, passed(checks, false))
}

// BenchmarkEnvelope's store= names have no impl element: they are in the
// medians and their targets, never in a peers table, neither as rows of
// the Envelope table nor as a table of their own.
func TestStoreNamesOutsidePeers(t *testing.T) {
	peersIn := bench(envelope+"seal/size=1KiB/impl=pocketkms", 2, 9500) + bench(envelope+"seal/size=1KiB/impl=floor", 2, 8700)
	stores := bench(storeSeal1K+"memory", 2, 10000) + bench(storeSeal1K+"sqlite", 2, 10600, 10400) + bench(storeSeal1K+"postgres", 2, 11000)
	for _, in := range []string{stores + peersIn, peersIn + stores} {
		out, checks := mustReport(t, in, defaults)
		assert.Contains(t, out, "Peers of Envelope, median ns/op (a ratio below 1 favours pocketkms):\n\n"+
			"| op | size | cores | pocketkms ns/op | floor ns/op | pocketkms / floor | pocketkms / awsesdk | pocketkms / tink | pocketkms-append / tink |\n"+
			"| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"+
			"| seal | 1KiB | 2 | 9500 | 8700 | 1.09x |  |  |  |\n\n")
		assert.Equal(t, 1, strings.Count(out, "Peers of"))
		assert.NotContains(t, out, "memory ns/op")
		assert.Contains(t, out, "| Envelope/op=seal/size=1KiB/store=sqlite | 2 | 2 | 10500 | 10400..10600 |  |  |  |\n")
		assert.Equal(t, pass, find(t, checks, dEnvSeal1K).status)
		assert.Equal(t, 1.05, find(t, checks, dSQLite).value)
		assert.Equal(t, 1.1, find(t, checks, dPostgres).value)
	}

	// Only store= names: no peers table at all.
	out, checks := mustReport(t, stores, defaults)
	assert.NotContains(t, out, "Peers of")
	assert.Contains(t, out, "Target ("+dSQLite+"): PASS at 1.05x\n")
	assert.Contains(t, out, "Target ("+dPostgres+"): PASS at 1.10x\n")
	assert.Equal(t, noData, find(t, checks, dEnvSeal1K).status, "store=memory is not impl=pocketkms")
}
