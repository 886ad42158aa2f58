// The channel-token limiter, the Go twin of goro_bench_pool's limiter:
// N tasks of ~1us (the same xorshift spin as pool_process, calibrated by
// time) through a buffered channel of 1,000 tokens, one goroutine per task
// (AsyncGoForHandle), with the token returned in a deferred recover. Peak
// RSS is VmHWM after resetting it through /proc/self/clear_refs before each
// rep (after GC + FreeOSMemory). The task count is fixed (-n), so -benchtime
// does not apply; it prints one line in gobench's format:
//
//	limiter/n1000000/limit1000/p2 ns_per_op=... ops=... procs=... reps=a/b/c [key=value...]
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

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
