// gobench: Go reference numbers for the C goroutine runtime.
//
// Standard library only. Build inside the bench/go module (no dependencies):
//
//	cd bench/go && go build -o bin/gobench ./gobench
//
// bench/goro_bench_*.c port these scenarios line by line; scripts/bench.sh
// runs each goro binary and this twin back to back.
//
// Usage:
//
//	GOMAXPROCS=2 gobench [flags] name [name...]
//	gobench list
//
// Every benchmark prints one line:
//
//	<label> ns_per_op=<median over reps> ops=<ops per rep> procs=<GOMAXPROCS> reps=<r1/r2/r3> [key=value...]
//
// <label> is "<name>/p<GOMAXPROCS>" plus parameters (e.g. "/n100000", "/debug2").
// Calibration (testing.B-style: grow n until one run takes >= -benchtime) also
// serves as the warm-up; then -reps measured runs at that n are done and the
// median ns/op is reported.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	benchtime = flag.Duration("benchtime", 500*time.Millisecond, "target duration of one measured repetition (calibration grows n until a run takes this long)")
	reps      = flag.Int("reps", 3, "measured repetitions after calibration/warm-up; median is reported")
	nFlag     = flag.Int("n", 0, "goroutine count for spawn_many_blocked, profile_dump, timers, num_goroutine, leak_check; task count for limiter (0 = benchmark default)")
)

// ---------------------------------------------------------------- harness

type kv struct {
	k string
	v string
}

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
func f3(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }
func itoa(x int64) string { return strconv.FormatInt(x, 10) }

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

func joinReps(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = f1(x)
	}
	return strings.Join(parts, "/")
}

func emit(label string, nsPerOp float64, ops int64, repNs []float64, extra ...kv) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/p%d ns_per_op=%s ops=%d procs=%d", label, runtime.GOMAXPROCS(0), f1(nsPerOp), ops, runtime.GOMAXPROCS(0))
	if len(repNs) > 0 {
		fmt.Fprintf(&b, " reps=%s", joinReps(repNs))
	}
	for _, e := range extra {
		fmt.Fprintf(&b, " %s=%s", e.k, e.v)
	}
	fmt.Println(b.String())
}

// measure calibrates n so that f(n) takes >= benchtime (these runs are the
// warm-up), then runs f(n) reps times. f returns the elapsed time for n ops.
func measure(f func(n int) time.Duration) (med float64, n int, all []float64) {
	target := *benchtime
	n = 1
	for {
		d := f(n)
		if d >= target {
			break
		}
		var next int
		if d <= 0 {
			next = n * 100
		} else {
			next = int(float64(n) * float64(target) / float64(d) * 1.2)
		}
		if next > n*100 {
			next = n * 100
		}
		if next <= n {
			next = n + 1
		}
		n = next
	}
	for r := 0; r < *reps; r++ {
		d := f(n)
		all = append(all, float64(d.Nanoseconds())/float64(n))
	}
	return median(all), n, all
}

func simple(label string, f func(n int) time.Duration, extra ...kv) {
	med, n, all := measure(f)
	emit(label, med, int64(n), all, extra...)
}

// vmRSS returns VmRSS from /proc/self/status in bytes.
func vmRSS() int64 { return statusBytes("VmRSS") }

// statusBytes returns a "<field>: N kB" line of /proc/self/status in bytes.
func statusBytes(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
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

var sink int64

// ---------------------------------------------------------------- parked goroutines on 3 distinct stacks

//go:noinline
func parkA(ch chan struct{}, started *int64, wg *sync.WaitGroup) {
	atomic.AddInt64(started, 1)
	<-ch
	wg.Done()
}

//go:noinline
func parkB2(ch chan struct{}, started *int64) {
	atomic.AddInt64(started, 1)
	<-ch
}

//go:noinline
func parkB(ch chan struct{}, started *int64, wg *sync.WaitGroup) {
	parkB2(ch, started)
	wg.Done()
}

//go:noinline
func parkC3(ch chan struct{}, started *int64) {
	atomic.AddInt64(started, 1)
	<-ch
}

//go:noinline
func parkC2(ch chan struct{}, started *int64) {
	parkC3(ch, started)
}

//go:noinline
func parkC(ch chan struct{}, started *int64, wg *sync.WaitGroup) {
	parkC2(ch, started)
	wg.Done()
}

type parked struct {
	ch      chan struct{}
	started int64
	wg      sync.WaitGroup
}

// startParked starts n goroutines blocked in chan receive, spread over 3
// distinct stacks (distinct=false: all on stack A), and waits until all have
// reached the receive.
func startParked(n int, distinct bool) *parked {
	p := &parked{ch: make(chan struct{})}
	p.wg.Add(n)
	for i := 0; i < n; i++ {
		if !distinct {
			go parkA(p.ch, &p.started, &p.wg)
			continue
		}
		switch i % 3 {
		case 0:
			go parkA(p.ch, &p.started, &p.wg)
		case 1:
			go parkB(p.ch, &p.started, &p.wg)
		default:
			go parkC(p.ch, &p.started, &p.wg)
		}
	}
	for atomic.LoadInt64(&p.started) < int64(n) {
		runtime.Gosched()
	}
	// the last ones may be between the counter and the park
	time.Sleep(20 * time.Millisecond)
	return p
}

func (p *parked) stop() {
	close(p.ch)
	p.wg.Wait()
}

// ---------------------------------------------------------------- benchmarks

func benchSpawnJoin() {
	simple("spawn_join", func(n int) time.Duration {
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { wg.Done() }()
			wg.Wait()
		}
		return time.Since(t0)
	})
}

// spawn_batch: spawn 1000 empty goroutines, then wait for all (per goroutine).
func benchSpawnBatch() {
	const batch = 1000
	simple("spawn_batch1000", func(n int) time.Duration {
		var wg sync.WaitGroup
		t0 := time.Now()
		for done := 0; done < n; {
			k := batch
			if n-done < k {
				k = n - done
			}
			wg.Add(k)
			for i := 0; i < k; i++ {
				go func() { wg.Done() }()
			}
			wg.Wait()
			done += k
		}
		return time.Since(t0)
	})
}

func benchSpawnManyBlocked() {
	n := *nFlag
	if n <= 0 {
		n = 100000
	}
	// small warm-up of the spawn/park/exit path
	startParked(1000, false).stop()
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	rss0 := vmRSS()

	// round 1 ("cold"): stacks and g structs come from memory the process has
	// never touched, so page-fault cost is included (it dominates on VMs).
	// round 2 ("warm"): same N again after teardown; Go reuses the dead g's
	// and their stacks from its free lists, no new page faults.
	type roundRes struct{ loop, all, down time.Duration }
	round := func(measureMem func()) roundRes {
		ch := make(chan struct{})
		var started int64
		var wg sync.WaitGroup
		wg.Add(n)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			go parkA(ch, &started, &wg)
		}
		tLoop := time.Since(t0)
		for atomic.LoadInt64(&started) < int64(n) {
			runtime.Gosched()
		}
		tAll := time.Since(t0)
		time.Sleep(20 * time.Millisecond)
		if measureMem != nil {
			measureMem()
		}
		t1 := time.Now()
		close(ch)
		wg.Wait()
		return roundRes{tLoop, tAll, time.Since(t1)}
	}
	var rss1 int64
	var ng int
	cold := round(func() {
		rss1 = vmRSS()
		runtime.ReadMemStats(&ms1)
		ng = runtime.NumGoroutine()
	})
	time.Sleep(20 * time.Millisecond)
	warm := round(nil)
	rss2 := vmRSS()

	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	ms := func(d time.Duration) string { return f3(float64(d.Nanoseconds()) / 1e6) }
	emit(fmt.Sprintf("spawn_many_blocked/n%d", n), per(cold.all), int64(n), nil,
		kv{"cold_spawn_loop_ns_per_g", f1(per(cold.loop))},
		kv{"cold_all_parked_ms", ms(cold.all)},
		kv{"rss_bytes_per_g", f1(float64(rss1-rss0) / float64(n))},
		kv{"rss_before", itoa(rss0)},
		kv{"rss_parked", itoa(rss1)},
		kv{"stack_inuse_bytes_per_g", f1(float64(int64(ms1.StackInuse)-int64(ms0.StackInuse)) / float64(n))},
		kv{"go_sys_bytes_per_g", f1(float64(int64(ms1.Sys)-int64(ms0.Sys)) / float64(n))},
		kv{"num_goroutine", itoa(int64(ng))},
		kv{"cold_teardown_ns_per_g", f1(per(cold.down))},
		kv{"cold_teardown_ms", ms(cold.down)},
		kv{"warm_spawn_ns_per_g", f1(per(warm.all))},
		kv{"warm_spawn_loop_ns_per_g", f1(per(warm.loop))},
		kv{"warm_teardown_ns_per_g", f1(per(warm.down))},
		kv{"rss_after_teardown", itoa(rss2)},
	)
}

// machine_pagefault: cost of first-touching fresh anonymous memory (one write
// per 4 KiB page of a new 256 MiB mmap). Explains the "cold" spawn numbers.
func benchPageFault() {
	const size = 256 << 20
	var times []float64
	for r := 0; r < 1+*reps; r++ {
		mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			panic(err)
		}
		t0 := time.Now()
		for i := 0; i < size; i += 4096 {
			mem[i] = 1
		}
		d := time.Since(t0)
		syscall.Munmap(mem)
		if r > 0 { // first one is warm-up
			times = append(times, float64(d.Nanoseconds())/float64(size/4096))
		}
	}
	emit("machine_pagefault/256MiB", median(times), size/4096, times, kv{"unit", "ns_per_4KiB_page_first_touch"})
}

func benchPingPong() {
	simple("chan_pingpong_unbuffered", func(n int) time.Duration {
		a, b := make(chan int), make(chan int)
		go func() {
			for v := range a {
				b <- v
			}
		}()
		t0 := time.Now()
		for i := 0; i < n; i++ {
			a <- i
			<-b
		}
		d := time.Since(t0)
		close(a)
		return d
	})
}

func bufferedThroughput(np, nc int) func(n int) time.Duration {
	return func(n int) time.Duration {
		ch := make(chan int, 128)
		var pw, cw sync.WaitGroup
		t0 := time.Now()
		per := n / np
		for p := 0; p < np; p++ {
			cnt := per
			if p == np-1 {
				cnt = n - per*(np-1)
			}
			pw.Add(1)
			go func(cnt int) {
				for i := 0; i < cnt; i++ {
					ch <- i
				}
				pw.Done()
			}(cnt)
		}
		cw.Add(nc)
		for c := 0; c < nc; c++ {
			go func() {
				s := 0
				for v := range ch {
					s += v
				}
				atomic.AddInt64(&sink, int64(s))
				cw.Done()
			}()
		}
		pw.Wait()
		close(ch)
		cw.Wait()
		return time.Since(t0)
	}
}

func benchBuffered() {
	simple("chan_buffered_throughput/1p1c", bufferedThroughput(1, 1))
	simple("chan_buffered_throughput/2p2c", bufferedThroughput(2, 2))
}

func select2(capacity int) func(n int) time.Duration {
	return func(n int) time.Duration {
		a, b := make(chan int, capacity), make(chan int, capacity)
		half := n / 2
		t0 := time.Now()
		go func() {
			for i := 0; i < half; i++ {
				a <- i
			}
		}()
		go func() {
			for i := 0; i < n-half; i++ {
				b <- i
			}
		}()
		s := 0
		for i := 0; i < n; i++ {
			select {
			case v := <-a:
				s += v
			case v := <-b:
				s -= v
			}
		}
		d := time.Since(t0)
		sink += int64(s)
		return d
	}
}

func benchSelect2() {
	simple("select2/unbuffered", select2(0))
	simple("select2/cap128", select2(128))
}

func benchYield() {
	simple("yield", func(n int) time.Duration {
		var wg sync.WaitGroup
		wg.Add(2)
		t0 := time.Now()
		for g := 0; g < 2; g++ {
			go func() {
				for i := 0; i < n; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		// 2n Gosched calls = 2n switches
		return time.Since(t0) / 2
	})
}

func benchMutex() {
	simple("mutex_contended/4g", func(n int) time.Duration {
		var mu sync.Mutex
		var wg sync.WaitGroup
		counter := 0
		const G = 4
		wg.Add(G)
		t0 := time.Now()
		for g := 0; g < G; g++ {
			cnt := n / G
			if g == G-1 {
				cnt = n - (n/G)*(G-1)
			}
			go func(cnt int) {
				for i := 0; i < cnt; i++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}(cnt)
		}
		wg.Wait()
		d := time.Since(t0)
		if counter != n {
			panic("mutex counter mismatch")
		}
		return d
	})
}

func benchTimers() {
	n := *nFlag
	if n <= 0 {
		n = 100000
	}
	const sleep = 10 * time.Millisecond
	run := func() (wall time.Duration, over []float64) {
		over = make([]float64, n)
		var wg sync.WaitGroup
		wg.Add(n)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			go func(i int) {
				s := time.Now()
				time.Sleep(sleep)
				over[i] = float64((time.Since(s) - sleep).Nanoseconds())
				wg.Done()
			}(i)
		}
		wg.Wait()
		return time.Since(t0), over
	}
	run() // warm-up
	var walls, meds, p99s, maxs []float64
	for r := 0; r < *reps; r++ {
		w, over := run()
		sort.Float64s(over)
		walls = append(walls, float64(w.Nanoseconds()))
		meds = append(meds, over[len(over)/2])
		p99s = append(p99s, over[len(over)*99/100])
		maxs = append(maxs, over[len(over)-1])
		runtime.GC()
	}
	wall := median(walls)
	emit(fmt.Sprintf("timers/n%d_sleep10ms", n), wall/float64(n), int64(n), nil,
		kv{"wall_ms", f3(wall / 1e6)},
		kv{"wall_ms_reps", joinReps(scale(walls, 1e-6))},
		kv{"overshoot_median_us", f1(median(meds) / 1e3)},
		kv{"overshoot_median_us_reps", joinReps(scale(meds, 1e-3))},
		kv{"overshoot_p99_us", f1(median(p99s) / 1e3)},
		kv{"overshoot_max_us", f1(median(maxs) / 1e3)},
	)
}

func scale(xs []float64, f float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x * f
	}
	return out
}

// ---------------------------------------------------------------- tunny-style pool (own code, after tunny's README design)

type workRequest struct {
	jobChan       chan<- interface{}
	retChan       <-chan interface{}
	interruptFunc func()
}

type poolWorker struct {
	fn            func(interface{}) interface{}
	reqChan       chan<- workRequest
	closeChan     chan struct{}
	interruptChan chan struct{}
	closed        chan struct{}
}

func (w *poolWorker) interrupt() {
	select {
	case w.interruptChan <- struct{}{}:
	default:
	}
}

// run: a worker advertises itself by sending a workRequest on the pool's
// request channel, then waits for a payload on its jobChan and returns the
// result on its retChan.
func (w *poolWorker) run() {
	jobChan, retChan := make(chan interface{}), make(chan interface{})
	defer close(w.closed)
	for {
		select {
		case w.reqChan <- workRequest{jobChan: jobChan, retChan: retChan, interruptFunc: w.interrupt}:
			select {
			case payload := <-jobChan:
				result := w.fn(payload)
				select {
				case retChan <- result:
				case <-w.interruptChan:
					w.interruptChan = make(chan struct{})
				}
			case <-w.interruptChan:
				w.interruptChan = make(chan struct{})
			}
		case <-w.closeChan:
			return
		}
	}
}

type Pool struct {
	queuedJobs int64
	reqChan    chan workRequest
	workers    []*poolWorker
}

func NewPool(size int, fn func(interface{}) interface{}) *Pool {
	p := &Pool{reqChan: make(chan workRequest)}
	for i := 0; i < size; i++ {
		w := &poolWorker{fn: fn, reqChan: p.reqChan, closeChan: make(chan struct{}),
			interruptChan: make(chan struct{}), closed: make(chan struct{})}
		p.workers = append(p.workers, w)
		go w.run()
	}
	return p
}

func (p *Pool) Process(payload interface{}) interface{} {
	atomic.AddInt64(&p.queuedJobs, 1)
	req, open := <-p.reqChan
	if !open {
		panic("pool not running")
	}
	req.jobChan <- payload
	payload, open = <-req.retChan
	if !open {
		panic("worker closed")
	}
	atomic.AddInt64(&p.queuedJobs, -1)
	return payload
}

func (p *Pool) Close() {
	for _, w := range p.workers {
		close(w.closeChan)
	}
	for _, w := range p.workers {
		<-w.closed
	}
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

// spinFor1us returns the spin() iteration count that takes ~1µs, and the
// measured ns of one spin(k) call.
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

func poolBench(fn func(interface{}) interface{}) func(n int) time.Duration {
	return func(n int) time.Duration {
		const callers = 64
		p := NewPool(runtime.NumCPU(), fn)
		defer p.Close()
		var wg sync.WaitGroup
		wg.Add(callers)
		t0 := time.Now()
		for c := 0; c < callers; c++ {
			cnt := n / callers
			if c == callers-1 {
				cnt = n - (n/callers)*(callers-1)
			}
			go func(cnt int) {
				s := 0
				for i := 0; i < cnt; i++ {
					s += p.Process(i).(int)
				}
				atomic.AddInt64(&sink, int64(s))
				wg.Done()
			}(cnt)
		}
		wg.Wait()
		return time.Since(t0)
	}
}

func benchPool() {
	ncpu := kv{"pool_size", itoa(int64(runtime.NumCPU()))}
	simple("pool_process/trivial", poolBench(func(p interface{}) interface{} { return p.(int) + 1 }),
		ncpu, kv{"callers", "64"})
	k, workNs := spinFor1us()
	simple("pool_process/work1us", poolBench(func(p interface{}) interface{} { return p.(int) + spin(k) }),
		ncpu, kv{"callers", "64"}, kv{"spin_iters", itoa(int64(k))}, kv{"work_ns_measured", f1(workNs)})
}

// ---------------------------------------------------------------- goid / NumGoroutine

// getGID: the widely copied hack (Go has no public goroutine id API).
func getGID() uint64 {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	b = b[:bytes.IndexByte(b, ' ')]
	n, _ := strconv.ParseUint(string(b), 10, 64)
	return n
}

func benchGoid() {
	if getGID() == 0 {
		panic("getGID failed")
	}
	loop := func(n int) time.Duration {
		var s uint64
		t0 := time.Now()
		for i := 0; i < n; i++ {
			s += getGID()
		}
		d := time.Since(t0)
		sink += int64(s)
		return d
	}
	// cost grows with the caller's stack depth (runtime.Stack formats the
	// whole traceback even though only the header is kept): also measure from
	// a fresh goroutine whose stack is just getGID <- loop <- goroutine func.
	var shallow float64
	done := make(chan struct{})
	go func() {
		shallow, _, _ = measure(loop)
		close(done)
	}()
	<-done
	simple("goid_stackparse", loop, kv{"caller_depth", "7"}, kv{"shallow_goroutine_ns", f1(shallow)}, kv{"note", "no_public_goid_api"})
}

func benchNumGoroutine() {
	n := *nFlag
	if n <= 0 {
		n = 10000
	}
	p := startParked(n, false)
	simple(fmt.Sprintf("num_goroutine/n%d", n), func(k int) time.Duration {
		s := 0
		t0 := time.Now()
		for i := 0; i < k; i++ {
			s += runtime.NumGoroutine()
		}
		d := time.Since(t0)
		sink += int64(s)
		return d
	}, kv{"num_goroutine", itoa(int64(runtime.NumGoroutine()))})
	p.stop()
}

// ---------------------------------------------------------------- profile dump

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func benchProfileDump() {
	ns := []int{10000, 100000}
	if *nFlag > 0 {
		ns = []int{*nFlag}
	}
	for _, n := range ns {
		p := startParked(n, true)
		prof := pprof.Lookup("goroutine")
		// sanity: count distinct stacks in debug=1 output
		var dbg1 bytes.Buffer
		prof.WriteTo(&dbg1, 1)
		distinct := 0
		for _, line := range strings.Split(dbg1.String(), "\n") {
			if i := strings.Index(line, " @ 0x"); i > 0 {
				if _, err := strconv.Atoi(line[:i]); err == nil {
					distinct++
				}
			}
		}
		for debug := 0; debug <= 2; debug++ {
			var cw countWriter
			prof.WriteTo(&cw, debug) // warm-up
			var times []float64
			var total time.Duration
			for len(times) < 3 || (total < *benchtime && len(times) < 50) {
				cw = countWriter{}
				t0 := time.Now()
				prof.WriteTo(&cw, debug)
				d := time.Since(t0)
				total += d
				times = append(times, float64(d.Nanoseconds()))
			}
			med := median(times)
			extra := []kv{
				{"ms_per_dump", f3(med / 1e6)},
				{"bytes", itoa(cw.n)},
				{"ns_per_goroutine", f1(med / float64(n))},
				{"num_goroutine", itoa(int64(runtime.NumGoroutine()))},
			}
			if debug == 1 {
				extra = append(extra, kv{"distinct_stack_records", itoa(int64(distinct))})
			}
			emit(fmt.Sprintf("profile_dump/n%d/debug%d", n, debug), med, int64(len(times)), nil, extra...)
		}
		p.stop()
		runtime.GC()
	}
}

// ---------------------------------------------------------------- goleak-like check

type gStack struct {
	id            int
	state         string
	firstFunction string
	full          *bytes.Buffer
}

// captureAll mirrors goleak: start at 64 KiB and double until the dump fits.
func captureAll() []byte {
	for i := 64 * 1024; ; i *= 2 {
		buf := make([]byte, i)
		if n := runtime.Stack(buf, true); n < i {
			return buf[:n]
		}
	}
}

// parseStacks parses runtime.Stack(all=true) output into per-goroutine
// records the way goleak's internal/stack does (line reader, header parse,
// first function, full text).
func parseStacks(dump []byte) []gStack {
	var out []gStack
	var cur *gStack
	r := bufio.NewReader(bytes.NewReader(dump))
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break
		}
		first := false
		if strings.HasPrefix(line, "goroutine ") {
			if cur != nil {
				out = append(out, *cur)
			}
			h := strings.TrimSuffix(line, ":\n")
			parts := strings.SplitN(h, " ", 3)
			if len(parts) != 3 {
				panic("bad header " + line)
			}
			id, err := strconv.Atoi(parts[1])
			if err != nil {
				panic("bad id " + line)
			}
			cur = &gStack{id: id, state: strings.TrimSuffix(strings.TrimPrefix(parts[2], "["), "]"), full: &bytes.Buffer{}}
			first = true
		}
		if cur == nil {
			continue
		}
		cur.full.WriteString(line)
		if !first && cur.firstFunction == "" {
			t := strings.TrimSpace(line)
			if i := strings.LastIndex(t, "("); i > 0 {
				cur.firstFunction = t[:i]
			}
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

func benchLeakCheck() {
	n := *nFlag
	if n <= 0 {
		n = 1000
	}
	p := startParked(n, true)
	recs := parseStacks(captureAll())
	chanRecv := 0
	for _, s := range recs {
		if s.state == "chan receive" {
			chanRecv++
		}
	}
	dumpBytes := len(captureAll())
	capMed, _, _ := measure(func(k int) time.Duration {
		t0 := time.Now()
		for i := 0; i < k; i++ {
			sink += int64(len(captureAll()))
		}
		return time.Since(t0)
	})
	pre := make([]byte, 2*dumpBytes+64*1024)
	preMed, _, _ := measure(func(k int) time.Duration {
		t0 := time.Now()
		for i := 0; i < k; i++ {
			sink += int64(runtime.Stack(pre, true))
		}
		return time.Since(t0)
	})
	simple(fmt.Sprintf("leak_check/n%d", n), func(k int) time.Duration {
		t0 := time.Now()
		for i := 0; i < k; i++ {
			sink += int64(len(parseStacks(captureAll())))
		}
		return time.Since(t0)
	},
		kv{"records", itoa(int64(len(recs)))},
		kv{"chan_receive_records", itoa(int64(chanRecv))},
		kv{"dump_bytes", itoa(int64(dumpBytes))},
		kv{"capture_only_ns", f1(capMed)},
		kv{"capture_presized_buf_ns", f1(preMed)},
	)
	p.stop()
}

// ---------------------------------------------------------------- main

var benches = []struct {
	name string
	fn   func()
	doc  string
}{
	{"spawn_join", benchSpawnJoin, "spawn empty goroutine + WaitGroup wait, serially; ns per goroutine"},
	{"spawn_batch", benchSpawnBatch, "spawn 1000 empty goroutines then wait for all; ns per goroutine"},
	{"spawn_many_blocked", benchSpawnManyBlocked, "-n N goroutines blocked on one chan: spawn time, RSS/goroutine, teardown after close (cold, then warm reuse)"},
	{"machine_pagefault", benchPageFault, "first-touch cost of fresh anonymous memory, ns per 4 KiB page"},
	{"chan_pingpong_unbuffered", benchPingPong, "round trip over two unbuffered chans"},
	{"chan_buffered_throughput", benchBuffered, "cap-128 chan, 1p1c and 2p2c; ns per item"},
	{"select2", benchSelect2, "one goroutine selecting over 2 chans fed by 2 producers; ns per select"},
	{"yield", benchYield, "Gosched ping-pong between 2 goroutines; ns per switch (run with GOMAXPROCS=1)"},
	{"mutex_contended", benchMutex, "sync.Mutex, 4 goroutines incrementing; ns per lock/unlock"},
	{"timers", benchTimers, "-n N goroutines each time.Sleep(10ms) once; wall and overshoot"},
	{"pool_process", benchPool, "tunny-style pool (size NumCPU), 64 callers; trivial and ~1us work"},
	{"goid_stackparse", benchGoid, "goroutine id by parsing runtime.Stack"},
	{"num_goroutine", benchNumGoroutine, "runtime.NumGoroutine with -n (10000) parked goroutines"},
	{"profile_dump", benchProfileDump, "pprof goroutine profile WriteTo, debug 0/1/2, n=10000,100000 over 3 stacks"},
	{"leak_check", benchLeakCheck, "goleak-like runtime.Stack(all)+parse with -n (1000) goroutines"},
	{"limiter", benchLimiter, "-n (1000000) tasks of ~1us through a 1000-token channel limiter; time, peak RSS"},
}

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: gobench [flags] name... | list | all | table run1.txt run2.txt...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if args[0] == "table" {
		table(args[1:])
		return
	}
	if args[0] == "list" {
		for _, b := range benches {
			fmt.Printf("%-26s %s\n", b.name, b.doc)
		}
		return
	}
	if args[0] == "all" {
		args = nil
		for _, b := range benches {
			args = append(args, b.name)
		}
	}
	for _, a := range args {
		found := false
		for _, b := range benches {
			if b.name == a {
				b.fn()
				found = true
			}
		}
		if !found {
			fmt.Fprintf(os.Stderr, "unknown benchmark %q (try: gobench list)\n", a)
			os.Exit(2)
		}
	}
}

// ---------------------------------------------------------------- table: median over runs

// tableExtras are the extra fields also tabulated (median over runs).
var tableExtras = []string{
	"rss_bytes_per_g", "cold_teardown_ns_per_g", "warm_spawn_ns_per_g", "warm_teardown_ns_per_g",
	"wall_ms", "overshoot_median_us", "overshoot_p99_us",
	"bytes", "ms_per_dump",
	"capture_presized_buf_ns", "capture_only_ns", "shallow_goroutine_ns",
	"work_ns_measured",
}

func table(files []string) {
	type row struct {
		label string
		key   string
	}
	var order []row
	seen := map[row]bool{}
	vals := map[row][]string{}
	for fi, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, line := range strings.Split(string(data), "\n") {
			fs := strings.Fields(line)
			if len(fs) < 2 || !strings.HasPrefix(fs[1], "ns_per_op=") {
				continue
			}
			fields := map[string]string{}
			for _, x := range fs[1:] {
				if i := strings.IndexByte(x, '='); i > 0 {
					fields[x[:i]] = x[i+1:]
				}
			}
			keys := []string{"ns_per_op"}
			for _, k := range tableExtras {
				if _, ok := fields[k]; ok {
					keys = append(keys, k)
				}
			}
			for _, k := range keys {
				r := row{fs[0], k}
				if !seen[r] {
					seen[r] = true
					order = append(order, r)
				}
				for len(vals[r]) < fi {
					vals[r] = append(vals[r], "")
				}
				vals[r] = append(vals[r], fields[k])
			}
		}
	}
	hdr := fmt.Sprintf("%-44s %-24s", "benchmark", "metric")
	for i := range files {
		hdr += fmt.Sprintf(" %14s", fmt.Sprintf("run%d", i+1))
	}
	hdr += fmt.Sprintf(" %14s", "median")
	fmt.Println(hdr)
	for _, r := range order {
		line := fmt.Sprintf("%-44s %-24s", r.label, r.key)
		var nums []float64
		for i := range files {
			v := ""
			if i < len(vals[r]) {
				v = vals[r][i]
			}
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				nums = append(nums, x)
			}
			if v == "" {
				v = "-"
			}
			line += fmt.Sprintf(" %14s", v)
		}
		line += fmt.Sprintf(" %14s", f1(median(nums)))
		fmt.Println(line)
	}
}
