package discovery

import (
	"context"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

func TestStaleReplica(t *testing.T) {
	tests := []struct {
		name       string
		allowStale bool
		maxStale   time.Duration
		staleness  time.Duration
		wantRcode  int
	}{
		{"leader", true, 10 * time.Second, 0, dns.RcodeSuccess},
		{"follower within max_stale", true, 10 * time.Second, 9 * time.Second, dns.RcodeSuccess},
		{"follower past max_stale", true, 10 * time.Second, 11 * time.Second, dns.RcodeServerFailure},
		{"allow_stale false on the leader", false, 10 * time.Second, 0, dns.RcodeSuccess},
		{"allow_stale false on a follower", false, 10 * time.Second, time.Millisecond, dns.RcodeServerFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testDNSConfig()
			cfg.AllowStale, cfg.MaxStale = tc.allowStale, tc.maxStale
			d := New(testStore(t), cfg, testAgentConfig())
			d.Staleness = func() time.Duration { return tc.staleness }
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, err := d.ServeDNS(context.Background(), rec, (&test.Case{Qname: "web.service.consul.", Qtype: dns.TypeA}).Msg())
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantRcode == dns.RcodeServerFailure {
				if rcode != dns.RcodeServerFailure || rec.Msg != nil {
					t.Fatalf("rcode %s, written %v; want SERVFAIL left to the server", dns.RcodeToString[rcode], rec.Msg)
				}
				return
			}
			if rec.Msg == nil || rec.Msg.Rcode != tc.wantRcode || len(rec.Msg.Answer) == 0 {
				t.Fatalf("answer %v, want %s with records", rec.Msg, dns.RcodeToString[tc.wantRcode])
			}
		})
	}
}
