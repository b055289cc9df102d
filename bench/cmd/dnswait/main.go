// Command dnswait asks a DNS server for a name's A records every 20 ms
// until it answers with one, and prints how long that took in seconds: how
// soon a starting agent answers a name (bench/memory.sh).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "127.0.0.1:8600", "DNS server address")
	name := flag.String("name", "", "name to ask for (A)")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	if *name == "" {
		fmt.Fprintln(os.Stderr, "dnswait: -name is required")
		os.Exit(2)
	}
	start := time.Now()
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	m := new(dns.Msg).SetQuestion(dns.Fqdn(*name), dns.TypeA)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < *timeout {
		if r, _, err := c.Exchange(m, *server); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			fmt.Printf("%.2f\n", time.Since(start).Seconds())
			return
		}
		<-tick.C
	}
	fmt.Fprintf(os.Stderr, "dnswait: %s did not answer %s within %s\n", *server, *name, *timeout)
	os.Exit(1)
}
