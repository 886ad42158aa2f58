// Command echo is the Go reference for goro's echo benchmark
// (scripts/bench_io.sh, bench/io_bench.c): a plain net.Listener TCP echo
// server, one goroutine per connection, each reading into a 4 KiB buffer and
// writing back what it read (the same shape as goro's examples/echo.c).
//
//	GOMAXPROCS=1 echo -addr 127.0.0.1:9000
//
// It prints "listening ADDR" once it accepts connections and serves until
// it is killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"time"
)

func handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of descriptors and the like: back off briefly, as net/http does.
			log.Print(err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go handle(c)
	}
}
