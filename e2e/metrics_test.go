package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// prometheusServer is a real Prometheus (Debian's `prometheus` package)
// scraping what the README's scrape configuration names.
type prometheusServer struct {
	addr    string
	logPath string
	http    *http.Client
}

// prometheusScrapeConfig is the README's scrape configuration with a
// short interval: the agent's metrics on its HTTP port, the DNS metrics
// on CoreDNS's `prometheus` plugin's port.
const prometheusScrapeConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: beacon
    metrics_path: /v1/agent/metrics
    params:
      format: [prometheus]
    static_configs:
      - targets: [%q]
  - job_name: coredns
    static_configs:
      - targets: [%q]
`

// prometheusBinary is Debian's /usr/bin/prometheus (or the one on PATH).
// Without it the test is skipped, saying why (CI installs it).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skipf("the metrics test scrapes with a real Prometheus, which is not installed (apt-get install prometheus; .ci/run installs it): %v", err)
	}
	return bin
}

// startPrometheus runs bin scraping beaconHTTP and corednsMetrics, and
// stops it when the test ends.
func startPrometheus(t *testing.T, bin, beaconHTTP, corednsMetrics string) *prometheusServer {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, prometheusScrapeConfig, beaconHTTP, corednsMetrics), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prometheusServer{addr: addr(freePort(t)), logPath: filepath.Join(dir, "prometheus.log"),
		http: &http.Client{Timeout: 5 * time.Second}}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+p.addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("---- prometheus output ----\n%s---- end of prometheus output ----", tail(string(b), 16<<10))
		}
	})
	eventually(t, 30*time.Second, func() error {
		resp, err := p.http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /-/ready: %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

// query runs an instant query and returns the values of its series.
func (p *prometheusServer) query(q string) ([]float64, error) {
	resp, err := p.http.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("query %s: %d %q: %w", q, resp.StatusCode, body, err)
	}
	if out.Status != "success" || out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: %s %s (%s)", q, out.Status, out.Error, out.Data.ResultType)
	}
	var values []float64
	for _, r := range out.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", q, r.Value, err)
		}
		values = append(values, v)
	}
	return values, nil
}

// waitSeries waits until q has a series, and returns the first one's value.
func (p *prometheusServer) waitSeries(t *testing.T, q string) float64 {
	t.Helper()
	var v float64
	eventually(t, 60*time.Second, func() error {
		values, err := p.query(q)
		if err != nil {
			return err
		}
		if len(values) == 0 {
			return fmt.Errorf("no series for %s yet", q)
		}
		v = values[0]
		return nil
	})
	return v
}

// One agent with CoreDNS's `prometheus` plugin, scraped by a real
// Prometheus with the README's configuration: Raft's metrics reach the
// agent's endpoint, the DNS metrics CoreDNS's, in one process without a
// registration clash, and both survive a Corefile reload.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	t.Parallel()
	bin := prometheusBinary(t)
	dnsMetrics := addr(freePort(t))
	a := StartAgent(t, Options{ServerBlock: []string{"prometheus " + dnsMetrics}})
	prom := startPrometheus(t, bin, a.HTTPAddr, dnsMetrics)

	if err := a.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "redis-1", Name: "redis", Address: "10.0.0.5", Port: 6379}); err != nil {
		t.Fatal(err)
	}
	put := func(key string) {
		t.Helper()
		if _, err := a.Client.KV().Put(&api.KVPair{Key: key, Value: []byte("v")}, nil); err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
	}
	for i := range 5 {
		put("metrics/" + strconv.Itoa(i))
	}
	waitForAddrs(t, a, "redis.service.consul.", dns.TypeA, "10.0.0.5")
	for range 5 {
		a.Query(t, "redis.service.consul.", dns.TypeA)
	}

	for _, q := range []string{
		`up{job="beacon"} == 1`,
		`up{job="coredns"} == 1`,
		`consul_raft_apply{job="beacon"} > 0`,
		`consul_raft_commitTime_count{job="beacon"} > 0`,
		`consul_kvs_apply_count{job="beacon"} >= 5`,
		`consul_api_http_count{job="beacon",method="PUT",path="v1_kv__"} >= 5`,
		`consul_serf_members{job="beacon",network="lan",status="alive"} == 1`,
		`consul_runtime_num_goroutines{job="beacon"} > 0`,
		`sum(coredns_dns_requests_total{job="coredns"}) > 0`,
		`sum(coredns_discovery_requests_total{job="coredns",type="A"}) >= 5`,
	} {
		prom.waitSeries(t, q)
	}

	// A reload builds a new plugin chain (and a new `prometheus` plugin)
	// around the same agent: nothing registers twice, both endpoints keep
	// answering, and new writes still reach the sinks Prometheus scrapes.
	applied := prom.waitSeries(t, `consul_raft_apply{job="beacon"}`)
	a.Reload(t, func(o *Options) { o.Discovery = append(o.Discovery, "service_ttl * 30s") })
	waitTTL(t, a, 30)
	if !a.Running() {
		t.Fatal("the agent exited on reload")
	}
	put("metrics/after-reload")
	prom.waitSeries(t, fmt.Sprintf(`consul_raft_apply{job="beacon"} > %v`, applied))
	for range 5 {
		a.Query(t, "redis.service.consul.", dns.TypeA)
	}
	prom.waitSeries(t, `sum(coredns_discovery_requests_total{job="coredns",type="A"}) >= 10`)
	prom.waitSeries(t, `up{job="coredns"} == 1`)
}
