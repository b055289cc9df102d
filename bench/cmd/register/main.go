// Command register fills a beacon catalog for the DNS benchmark: it registers
// -services services with -instances instances each through the catalog API
// (PUT /v1/catalog/register), -concurrency requests at a time, and reports the
// rate. With -zonefile it instead writes the same records as an RFC 1035 zone
// for CoreDNS's file plugin, mirroring what the discovery plugin answers, so
// the two can be compared query for query.
//
// -http takes one address or several, comma-separated (the servers of a
// cluster, as bench/cluster.sh uses it): requests go to them in turn.
//
// Layout (shared by both modes, so the catalog and the zone agree):
//
//	service  svcNNNN                      s = 0 … services-1
//	instance i = 1 … instances            ID svcNNNN-i, on node node-i
//	node     node-i                       address 10.0.0.i
//	address  10.i.(s/250).(s%250+1)      distinct per instance
//	port     20000 + (s*instances + i-1) mod 45536
//	                                      distinct per instance up to 45,536
//	                                      instances (ports end at 65535)
//
// With -nodes N the instances are spread over N nodes instead (instance k of
// the whole catalog, k = s*instances + i-1, on node-(k mod N) with address
// 10.0.(j/250).(j%250+1) for node-j): bench/fanout.sh uses it for a catalog
// of 10,000 services × 5 instances on 1,000 nodes. The zone file does not
// name nodes, so it is the same either way.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type instance struct {
	service, id, node, nodeAddr, addr string
	port                              int
}

// layout is the catalog: with nodes 0, instance i of every service on
// node-i; otherwise the instances spread over node-0 … node-(nodes-1).
func layout(services, instances, nodes int) []instance {
	out := make([]instance, 0, services*instances)
	for s := 0; s < services; s++ {
		for i := 1; i <= instances; i++ {
			name := fmt.Sprintf("svc%04d", s)
			node, nodeAddr := fmt.Sprintf("node-%d", i), fmt.Sprintf("10.0.0.%d", i)
			if nodes > 0 {
				j := (s*instances + i - 1) % nodes
				node, nodeAddr = fmt.Sprintf("node-%d", j), fmt.Sprintf("10.0.%d.%d", j/250, j%250+1)
			}
			out = append(out, instance{
				service:  name,
				id:       fmt.Sprintf("%s-%d", name, i),
				node:     node,
				nodeAddr: nodeAddr,
				addr:     fmt.Sprintf("10.%d.%d.%d", i, s/250, s%250+1),
				port:     20000 + (s*instances+i-1)%45536,
			})
		}
	}
	return out
}

func main() {
	httpAddr := flag.String("http", "127.0.0.1:8500", "beacon HTTP API address, or several comma-separated (requests go to them in turn)")
	services := flag.Int("services", 1000, "number of services")
	instances := flag.Int("instances", 3, "instances per service")
	concurrency := flag.Int("concurrency", 16, "registrations in flight")
	nodes := flag.Int("nodes", 0, "spread the instances over this many nodes (0: instance i on node-i)")
	zonefile := flag.String("zonefile", "", "write the records as a zone file to this path instead of registering")
	origin := flag.String("origin", "file.test.", "zone origin for -zonefile")
	dc := flag.String("dc", "dc1", "datacenter, used in SRV targets of -zonefile")
	flag.Parse()
	if *services < 1 || *services > 10000 || *instances < 1 || *instances > 255 {
		fatalf("services must be 1..10000 and instances 1..255")
	}
	if *nodes < 0 || *nodes > 62500 {
		fatalf("nodes must be 0..62500 (their addresses are 10.0.x.y)")
	}
	insts := layout(*services, *instances, *nodes)
	if *zonefile != "" {
		if err := writeZone(*zonefile, strings.TrimSuffix(*origin, ".")+".", *dc, insts); err != nil {
			fatalf("zone file: %v", err)
		}
		fmt.Printf("wrote %s: %d services, %d instances\n", *zonefile, *services, len(insts))
		return
	}
	if err := register(*httpAddr, *concurrency, insts); err != nil {
		fatalf("%v", err)
	}
}

func register(httpAddr string, concurrency int, insts []instance) error {
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 4 * concurrency, MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency},
	}
	var urls []string
	for _, a := range strings.Split(httpAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			urls = append(urls, "http://"+a+"/v1/catalog/register")
		}
	}
	if len(urls) == 0 {
		return fmt.Errorf("no -http address")
	}
	type job struct {
		in  instance
		url string
	}
	work := make(chan job)
	var (
		failed   atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if err := registerOne(client, j.url, j.in); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	for k, in := range insts {
		work <- job{in, urls[k%len(urls)]}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	ok := int64(len(insts)) - failed.Load()
	fmt.Printf("registered %d instances (%d failed) in %.2fs: %.0f registrations/s (concurrency %d, %d server(s))\n",
		ok, failed.Load(), elapsed.Seconds(), float64(ok)/elapsed.Seconds(), concurrency, len(urls))
	if firstErr != nil {
		return fmt.Errorf("first failure: %v", firstErr)
	}
	return nil
}

type svcBody struct {
	ID      string `json:"ID"`
	Service string `json:"Service"`
	Address string `json:"Address"`
	Port    int    `json:"Port"`
}

type regBody struct {
	Node    string   `json:"Node"`
	Address string   `json:"Address"`
	Service *svcBody `json:"Service"`
}

func registerOne(client *http.Client, url string, in instance) error {
	body, err := json.Marshal(regBody{
		Node: in.node, Address: in.nodeAddr,
		Service: &svcBody{ID: in.id, Service: in.service, Address: in.addr, Port: in.port},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %v", in.id, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", in.id, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// writeZone writes what the discovery plugin answers for the layout, under
// origin instead of consul.: for each service its instances' A records, and
// one SRV per instance whose target is <hex>.addr.<dc>.<origin> (the service
// has its own address) with that target's A record. TTL 0, as discovery's
// default service TTL.
func writeZone(path, origin, dc string, insts []instance) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "$ORIGIN %s\n$TTL 0\n", origin)
	fmt.Fprintf(w, "@ IN SOA ns.%s hostmaster.%s 1 3600 600 86400 0\n", origin, origin)
	fmt.Fprintf(w, "@ IN NS ns.%s\nns IN A 127.0.0.1\n", origin)
	for _, in := range insts {
		target := fmt.Sprintf("%s.addr.%s.%s", hexAddr(in.addr), dc, origin)
		fmt.Fprintf(w, "%s.service IN A %s\n", in.service, in.addr)
		fmt.Fprintf(w, "%s.service IN SRV 1 1 %d %s\n", in.service, in.port, target)
		fmt.Fprintf(w, "%s IN A %s\n", target, in.addr)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func hexAddr(addr string) string {
	return fmt.Sprintf("%x", []byte(net.ParseIP(addr).To4()))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "register: "+format+"\n", args...)
	os.Exit(1)
}
