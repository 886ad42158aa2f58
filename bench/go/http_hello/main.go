// Command http_hello is the Go reference for goro's HTTP benchmark
// (scripts/bench_io.sh): the standard net/http server answering
// "Hello, World!" to every request, as goro's examples/http_hello.c does.
//
//	GOMAXPROCS=1 http_hello -addr 127.0.0.1:9001
//
// It prints "listening ADDR" once it accepts connections and serves until
// it is killed.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "Hello, World!")
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, nil))
}
