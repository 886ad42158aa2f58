// gobenchx: the Go reference benchmark that gobench (./gobench) lacks: the channel-token limiter. Standard library only, written the idiomatic
// Go way. (The echo and net/http servers are the packages ./echo and
// ./http_hello, driven by scripts/bench_io.sh.)
//
//	GOMAXPROCS=2 gobenchx [-benchtime 500ms] [-reps 3] [-n N] limiter
//
// limiter prints one line in gobench's format:
//
//	limiter/n1000000/limit1000/p2 ns_per_op=... ops=... procs=... reps=a/b/c [key=value...]
//
// It runs N tasks of ~1µs (the same xorshift spin as gobench's pool_process,
// calibrated by time) through the classic channel-token limiter: a buffered
// channel of 1,000 tokens, one goroutine per task (AsyncGoForHandle), with
// the token returned in a deferred recover. Peak RSS is VmHWM after resetting
// it through /proc/self/clear_refs before each rep (after GC + FreeOSMemory).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	benchtime = flag.Duration("benchtime", 500*time.Millisecond, "unused by limiter (fixed N); kept for CLI shape")
	reps      = flag.Int("reps", 3, "measured repetitions; median is reported")
	nFlag     = flag.Int("n", 0, "task count for limiter (0 = 1000000)")
)

var sink int64

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func statusBytes(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			fs := strings.Fields(line)
			if len(fs) >= 2 {
				kb, _ := strconv.ParseInt(fs[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return -1
}

func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

//go:noinline
func spin(k int) int {
	x := uint64(88172645463325252)
	for i := 0; i < k; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return int(x & 1)
}

// spinFor1us: as in gobench.
func spinFor1us() (int, float64) {
	const probe = 1 << 22
	spin(probe)
	best := time.Duration(1 << 62)
	for r := 0; r < 5; r++ {
		t0 := time.Now()
		spin(probe)
		if d := time.Since(t0); d < best {
			best = d
		}
	}
	k := int(float64(probe) * 1000 / float64(best.Nanoseconds()))
	const calls = 100000
	t0 := time.Now()
	s := 0
	for i := 0; i < calls; i++ {
		s += spin(k)
	}
	sink += int64(s)
	return k, float64(time.Since(t0).Nanoseconds()) / calls
}

// ---------------------------------------------------------------- limiter

const limit = 1000

type tokenLimiter struct {
	tokens chan struct{}
	wg     sync.WaitGroup
}

// AsyncGoForHandle: take a token, run handle in a new goroutine, give the
// token back (and recover a panic) when it ends.
func (l *tokenLimiter) AsyncGoForHandle(handle func()) {
	l.tokens <- struct{}{}
	l.wg.Add(1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintln(os.Stderr, "task panicked:", r)
			}
			<-l.tokens
			l.wg.Done()
		}()
		handle()
	}()
}

func benchLimiter() {
	n := *nFlag
	if n <= 0 {
		n = 1000000
	}
	k, workNs := spinFor1us()
	var mu sync.Mutex
	task := func() {
		s := spin(k)
		if s == 2 { // never; keeps the result alive
			mu.Lock()
			sink++
			mu.Unlock()
		}
	}
	rssBefore := statusBytes("VmRSS")
	var nsPerOp, peaks []float64
	resetOK := true
	for r := 0; r < *reps; r++ {
		runtime.GC()
		debug.FreeOSMemory()
		resetOK = resetPeakRSS() && resetOK
		l := &tokenLimiter{tokens: make(chan struct{}, limit)}
		t0 := time.Now()
		for i := 0; i < n; i++ {
			l.AsyncGoForHandle(task)
		}
		l.wg.Wait()
		d := time.Since(t0)
		nsPerOp = append(nsPerOp, float64(d.Nanoseconds())/float64(n))
		peaks = append(peaks, float64(statusBytes("VmHWM")))
	}
	maxPeak := 0.0
	for _, p := range peaks {
		if p > maxPeak {
			maxPeak = p
		}
	}
	med := median(nsPerOp)
	reset := "clear_refs"
	if !resetOK {
		reset = "none"
	}
	parts := make([]string, len(nsPerOp))
	for i, x := range nsPerOp {
		parts[i] = f1(x)
	}
	procs := runtime.GOMAXPROCS(0)
	fmt.Printf("limiter/n%d/limit%d/p%d ns_per_op=%s ops=%d procs=%d reps=%s wall_ms=%s peak_rss_bytes=%.0f peak_rss_first_bytes=%.0f rss_before=%d rss_after=%d peak_reset=%s spin_iters=%d work_ns_measured=%s\n",
		n, limit, procs, f1(med), n, procs, strings.Join(parts, "/"),
		strconv.FormatFloat(med*float64(n)/1e6, 'f', 3, 64), maxPeak, peaks[0], rssBefore, statusBytes("VmRSS"),
		reset, k, f1(workNs))
}

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: gobenchx [flags] limiter | list\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	_ = *benchtime
	switch args[0] {
	case "limiter":
		benchLimiter()
	case "list":
		fmt.Println("limiter                    -n (1000000) tasks of ~1us through a 1000-token channel limiter; time, peak RSS")
	default:
		fmt.Fprintf(os.Stderr, "unknown benchmark %q\n", args[0])
		os.Exit(2)
	}
}
