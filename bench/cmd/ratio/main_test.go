package main

import (
	"strings"
	"testing"
)

const sampleOutput = `goos: linux
goarch: amd64
pkg: github.com/pocketkms/kms/bench
cpu: AMD EPYC
BenchmarkEncrypt/size=1KiB-2         	  100000	      3000 ns/op	 341.33 MB/s	    4000 B/op	      40 allocs/op
BenchmarkEncrypt/size=1KiB-2         	  100000	      5000 ns/op	 204.80 MB/s	    4000 B/op	      40 allocs/op
BenchmarkEncrypt/size=1KiB-2         	  100000	      4000 ns/op	 256.00 MB/s	    4000 B/op	      40 allocs/op
BenchmarkRawAESGCM/size=1KiB-2       	  500000	      1000 ns/op	1024.00 MB/s	    2100 B/op	       3 allocs/op
BenchmarkRawAESGCM/size=1KiB-2       	  500000	      2500 ns/op	 409.60 MB/s	    2100 B/op	       3 allocs/op
BenchmarkRawAESGCM/size=1KiB-2       	  500000	      2000 ns/op	 512.00 MB/s	    2100 B/op	       3 allocs/op
BenchmarkSign-2                      	   20000	     60000 ns/op	    3000 B/op	      50 allocs/op
PASS
ok  	github.com/pocketkms/kms/bench	12.3s
`

func TestReport(t *testing.T) {
	r, err := parse(strings.NewReader(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.results["BenchmarkEncrypt/size=1KiB"].samples); got != 3 {
		t.Fatalf("%d Encrypt samples, want 3", got)
	}
	var b strings.Builder
	ok, err := report(&b, r, "1KiB", 2)
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// Medians 4000 and 2000: ratio 2.00, within the target.
	if !ok || !strings.Contains(out, "| 1KiB | 4000 | 2000 | **2.00x** | 5.00x |") || !strings.Contains(out, "PASS at 2.00x") {
		t.Fatalf("ok=%v, output:\n%s", ok, out)
	}
	if !strings.Contains(out, "| Sign | 1 | 60000 | 60000..60000 |  | 3000 | 50 |") {
		t.Fatalf("Sign row missing:\n%s", out)
	}
	if ok, _ := report(&b, r, "1KiB", 1.5); ok {
		t.Fatal("target 1.5x reported as met")
	}
	if ok, _ := report(&b, r, "4KiB", 2); ok {
		t.Fatal("missing size reported as met")
	}
}
