package e2e

// The web UI (/ui/) in a headless Chromium against real agents: every
// view, live updates through blocking queries, KV editing with
// check-and-set, ACL tokens, a lost leader, and the services view at
// 10,000 services. Without Chromium these tests skip, saying why (CI
// installs it).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/coordinate"
)

// uiURL is the UI's address on a, with a route.
func uiURL(a *Agent, route string) string {
	return "http://" + a.HTTPAddr + "/ui/" + route
}

func serviceRow(name string) string {
	return "tr.service-row[data-service=" + jsString(name) + "]"
}

// servicesShown is a JavaScript expression: the services the list shows,
// comma-separated.
const servicesShown = `Array.from(document.querySelectorAll('tr.service-row'), (r) => r.dataset.service).join(',')`

// noInjection is a JavaScript expression true while nothing the API
// returned has become markup: no element of those names in the view, no
// script has run.
const noInjection = `document.querySelectorAll('#view img, #view script, #view b').length === 0 && window.__xss === undefined`

// registerCatalog registers a service instance on a node through the
// catalog, with checks.
func registerCatalog(t *testing.T, a *Agent, node, address string, svc *api.AgentService, checks ...*api.HealthCheck) {
	t.Helper()
	for _, c := range checks {
		c.Node = node
		if c.ServiceID == "" && svc != nil {
			c.ServiceID = svc.ID
		}
	}
	_, err := a.Client.Catalog().Register(&api.CatalogRegistration{Node: node, Address: address, Service: svc,
		Checks: checks}, nil)
	if err != nil {
		t.Fatalf("registering %s on %s: %v", svc.ID, node, err)
	}
}

// The UI's files: the site's root sends browsers to /ui/, and every answer
// carries the security headers.
func checkUIFiles(t *testing.T, a *Agent) {
	noFollow := &http.Client{Transport: a.HTTP.Transport, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + a.HTTPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d, Location %q; want 301 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, ctype := range map[string]string{"/ui/": "text/html", "/ui/app.js": "text/javascript", "/ui/style.css": "text/css",
		"/ui/missing.js": "text/plain"} {
		r := a.Do(t, "GET", path, nil, false)
		want := http.StatusOK
		if strings.Contains(path, "missing") {
			want = http.StatusNotFound
		}
		if r.Status != want || !strings.HasPrefix(r.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %q; want %d %s", path, r.Status, r.Header.Get("Content-Type"), want, ctype)
		}
		csp := r.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || r.Header.Get("X-Content-Type-Options") != "nosniff" ||
			r.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: security headers CSP %q, nosniff %q, frame %q", path, csp,
				r.Header.Get("X-Content-Type-Options"), r.Header.Get("X-Frame-Options"))
		}
	}
}

// Every view of the UI on a server with services, checks, keys, a lock and
// a second datacenter: what each shows, a check turning critical shown
// without a reload, keys created, edited and deleted through the forms
// (checked through the API), a CAS conflict, the datacenter switcher, and
// names full of markup shown as text.
func TestUIViews(t *testing.T) {
	t.Parallel()
	b := StartBrowser(t)
	a := StartAgent(t, Options{Node: "n1"})
	dc2 := StartAgent(t, Options{Node: "n2", Datacenter: "dc2",
		Discovery: []string{"join_wan " + addr(a.Ports.SerfWAN)}})
	checkUIFiles(t, a)

	// Services: redis through the agent with a TTL check, the others
	// through the catalog on their own nodes.
	agent := a.Client.Agent()
	if err := agent.ServiceRegister(&api.AgentServiceRegistration{ID: "redis-1", Name: "redis", Address: "10.0.0.5",
		Port: 6379, Tags: []string{"primary", "v7"}, Meta: map[string]string{"version": "7.2"},
		Check: &api.AgentServiceCheck{CheckID: "redis-ttl", Name: "redis alive", TTL: "10m"}}); err != nil {
		t.Fatal(err)
	}
	if err := agent.UpdateTTL("redis-ttl", "PONG", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	registerCatalog(t, a, "web-1", "10.0.1.1", &api.AgentService{ID: "web-a", Service: "web", Port: 80, Tags: []string{"http"}},
		&api.HealthCheck{CheckID: "web-alive", Name: "web alive", Status: api.HealthCritical, Output: "dial tcp 10.0.1.1:80: connection refused"})
	registerCatalog(t, a, "web-2", "10.0.1.2", &api.AgentService{ID: "web-b", Service: "web", Port: 80, Tags: []string{"http", "canary"}},
		&api.HealthCheck{CheckID: "web-alive", Name: "web alive", Status: api.HealthPassing, Output: "HTTP GET http://10.0.1.2/health: 200 OK"})
	registerCatalog(t, a, "web-2", "10.0.1.2", &api.AgentService{ID: "api-1", Service: "api", Port: 8080, Tags: []string{"v2"}},
		&api.HealthCheck{CheckID: "api-latency", Name: "api latency", Status: api.HealthWarning, Output: "p99 450ms over 300ms"})
	registerCatalog(t, a, "db-1", "10.0.2.1", &api.AgentService{ID: "postgres-1", Service: "postgres", Port: 5432,
		Tags: []string{"primary"}, Meta: map[string]string{"version": "16"}},
		&api.HealthCheck{CheckID: "pg-ready", Name: "accepting connections", Status: api.HealthPassing, Output: "/var/run/postgresql:5432 - accepting connections"})
	registerCatalog(t, a, "db-1", "10.0.2.1", &api.AgentService{ID: "pgbouncer-1", Service: "pgbouncer", Port: 6432})
	if _, err := dc2.Client.Catalog().Register(&api.CatalogRegistration{Node: "billing-1", Address: "10.2.0.1",
		Service: &api.AgentService{ID: "billing-1", Service: "billing", Port: 443}}, nil); err != nil {
		t.Fatal(err)
	}

	// Keys, a session and the lock it holds.
	kv := a.Client.KV()
	for k, v := range map[string]string{"app/config": "hello=world", "app/db/url": "postgres://db-1:5432/app",
		"app/feature-flags": `{"new-ui": true}`} {
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	session, _, err := a.Client.Session().Create(&api.SessionEntry{Name: "leader-election", Behavior: "release", TTL: "60s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := kv.Acquire(&api.KVPair{Key: "locks/leader", Value: []byte("n1"), Session: session}, nil); err != nil || !ok {
		t.Fatalf("acquiring locks/leader: %v, %v", ok, err)
	}
	eventually(t, 20*time.Second, func() error {
		dcs, err := a.Client.Catalog().Datacenters()
		if err != nil || len(dcs) != 2 {
			return fmt.Errorf("datacenters: %v, %v", dcs, err)
		}
		return nil
	})

	// The root sends the browser to the services view of the agent's
	// datacenter.
	b.Run(chromedp.Navigate("http://" + a.HTTPAddr + "/"))
	b.WaitJS("the services view", `location.pathname === '/ui/' && location.hash === '#/dc1/services'`)
	for _, svc := range []string{"consul", "redis", "web", "api", "postgres", "pgbouncer"} {
		b.WaitVisible(serviceRow(svc))
	}
	// Each row: its instances (read per row) and its health.
	for svc, want := range map[string]struct{ instances, status string }{
		"web": {"2", "critical"}, "api": {"1", "warning"}, "redis": {"1", "passing"}, "pgbouncer": {"1", "passing"},
		"consul": {"1", "passing"},
	} {
		b.WaitText(serviceRow(svc)+" td.instances", want.instances)
		b.WaitJS(svc+" "+want.status, fmt.Sprintf(`document.querySelector(%s).dataset.status === %s`,
			jsString(serviceRow(svc)+" span.status"), jsString(want.status)))
	}
	if got := b.Text(serviceRow("web")); !strings.Contains(got, "http") || !strings.Contains(got, "canary") {
		t.Errorf("web's row %q lacks its tags", got)
	}
	if got := b.Text(serviceRow("web") + " .counts"); !strings.Contains(got, "✓ 1") || !strings.Contains(got, "✗ 1") {
		t.Errorf("web's checks %q: want 1 passing and 1 critical", got)
	}
	shot := b.Screenshot("services")
	if *updateUIDocs {
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		png, err := os.ReadFile(shot)
		if err == nil {
			err = os.MkdirAll(filepath.Join(root, "docs"), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(root, "docs", "ui-services.png"), png, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/ui-services.png")
	}

	// Search and the health filter.
	b.SetInput("#service-search", "red")
	b.WaitJS("only redis", servicesShown+` === 'redis'`)
	b.SetInput("#service-search", "primary") // a tag
	b.WaitJS("the services tagged primary", servicesShown+` === 'postgres,redis'`)
	b.SetInput("#service-search", "")
	b.SetInput("#service-status", "critical")
	b.WaitJS("only the critical service", servicesShown+` === 'web'`)
	b.SetInput("#service-status", "warning")
	b.WaitJS("only the warning service", servicesShown+` === 'api'`)
	b.SetInput("#service-status", "all")
	b.WaitVisible(serviceRow("redis"))

	// A service's instances: node, address:port, tags, meta, every check
	// with its output.
	b.Click(serviceRow("web") + " a.service-name")
	b.WaitJS("web's page", `location.hash === '#/dc1/services/web'`)
	webA := `section.instance[data-instance="web-a"]`
	b.WaitText(webA, "connection refused")
	for _, want := range []string{"web-1", "10.0.1.1:80", "http", "web alive", "critical"} {
		if got := b.Text(webA); !strings.Contains(got, want) {
			t.Errorf("instance web-a shows %q, without %q", got, want)
		}
	}
	if got := b.Text(`section.instance[data-instance="web-b"]`); !strings.Contains(got, "10.0.1.2:80") ||
		!strings.Contains(got, "canary") || !strings.Contains(got, "200 OK") {
		t.Errorf("instance web-b shows %q", got)
	}
	b.Screenshot("service-web")

	// A check turning critical shows without a reload, on the service's
	// page and in the list.
	b.Go("#/dc1/services/redis")
	redisCheck := `section.instance[data-instance="redis-1"] tr.check-row[data-check="redis-ttl"]`
	b.WaitText(redisCheck, "PONG")
	if got := b.Text(`section.instance[data-instance="redis-1"]`); !strings.Contains(got, "version=7.2") ||
		!strings.Contains(got, "10.0.0.5:6379") || !strings.Contains(got, "primary") || !strings.Contains(got, "n1") {
		t.Errorf("instance redis-1 shows %q", got)
	}
	b.Eval(`window.__samePage = 'yes'`)
	if err := agent.UpdateTTL("redis-ttl", "disk full: /var/lib/redis", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	b.WaitJS("redis's check critical", fmt.Sprintf(
		`((e) => e && e.dataset.status === 'critical' && e.innerText.includes('disk full'))(document.querySelector(%s))`, jsString(redisCheck)))
	b.Screenshot("service-redis-critical")
	b.Go("#/dc1/services")
	b.WaitJS("redis critical in the list", fmt.Sprintf(`document.querySelector(%s).dataset.status === 'critical'`,
		jsString(serviceRow("redis")+" span.status")))
	if err := agent.UpdateTTL("redis-ttl", "PONG", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	b.WaitJS("redis passing again in the list", fmt.Sprintf(`document.querySelector(%s).dataset.status === 'passing'`,
		jsString(serviceRow("redis")+" span.status")))
	b.WaitJS("the same page all along", `window.__samePage === 'yes'`)

	// Nodes: address, health, services, round trip times from this agent.
	web1 := &coordinate.Coordinate{Vec: []float64{0.012, 0.003, 0, 0, 0, 0, 0, 0}, Error: 0.2, Height: 0.0001}
	if _, err := a.Client.Coordinate().Update(&api.CoordinateEntry{Node: "web-1", Coord: web1}, nil); err != nil {
		t.Fatal(err)
	}
	var wantRTT float64 // ms, from n1 to web-1
	eventually(t, 20*time.Second, func() error {
		entries, _, err := a.Client.Coordinate().Nodes(nil)
		if err != nil {
			return err
		}
		coords := map[string]*coordinate.Coordinate{}
		for _, e := range entries {
			coords[e.Node] = e.Coord
		}
		if coords["n1"] == nil || coords["web-1"] == nil {
			return fmt.Errorf("coordinates of n1 and web-1 not both committed: %d entries", len(entries))
		}
		wantRTT = float64(coords["n1"].DistanceTo(coords["web-1"]).Nanoseconds()) / 1e6
		return nil
	})
	b.Go("#/dc1/nodes")
	for _, n := range []string{"n1", "web-1", "web-2", "db-1"} {
		b.WaitVisible(`tr.node-row[data-node=` + jsString(n) + `]`)
	}
	b.WaitText(`tr.node-row[data-node="n1"]`, "127.0.0.1")
	b.WaitJS("n1 passing", `document.querySelector('tr.node-row[data-node="n1"] span.status').dataset.status === 'passing'`)
	rttNear := func(selector string) string {
		return fmt.Sprintf(`((e) => e && Math.abs(parseFloat(e.innerText) - %f) < 0.002)(document.querySelector(%s))`,
			wantRTT, jsString(selector))
	}
	b.WaitJS(fmt.Sprintf("web-1's RTT %.3f ms", wantRTT), rttNear(`tr.node-row[data-node="web-1"] td.rtt`))
	b.Screenshot("nodes")
	b.Click(`tr.node-row[data-node="web-2"] a.node-name`)
	b.WaitVisible(`#node-services tr[data-service="web-b"]`)
	b.WaitVisible(`#node-services tr[data-service="api-1"]`)
	b.WaitJS("api's warning on web-2", `document.querySelector('#node-checks tr.check-row[data-check="api-latency"]').dataset.status === 'warning'`)
	if got := b.Text("#node-detail"); !strings.Contains(got, "10.0.1.2") || !strings.Contains(got, "p99 450ms") {
		t.Errorf("node web-2 shows %q", got)
	}
	b.Screenshot("node-web-2")
	b.Go("#/dc1/nodes/web-1")
	b.WaitJS("web-1's RTT on its page", rttNear("#node-rtt"))
	if got := b.Text("#node-coordinate"); !strings.Contains(got, "0.012000") {
		t.Errorf("web-1's coordinate shows %q", got)
	}

	// KV: browse.
	b.Go("#/dc1/kv/")
	b.WaitVisible(`tr.kv-row[data-key="app/"]`)
	b.WaitVisible(`tr.kv-row[data-key="locks/"]`)
	b.Click(`tr.kv-row[data-key="app/"] a`)
	for _, k := range []string{"app/config", "app/db/", "app/feature-flags"} {
		b.WaitVisible(`tr.kv-row[data-key=` + jsString(k) + `]`)
	}
	b.Screenshot("kv-folder")

	// A value that is not UTF-8 shows as base64, and cannot be saved over.
	if _, err := kv.Put(&api.KVPair{Key: "app/blob", Value: []byte{0xff, 0x00, 0xfe}}, nil); err != nil {
		t.Fatal(err)
	}
	b.Go("#/dc1/kv/app/blob")
	b.WaitJS("the binary value as base64, read-only", `document.querySelector('#kv-value').value === '/wD+' &&
		document.querySelector('#kv-value').readOnly && document.querySelector('#kv-save').disabled`)
	b.WaitText("#kv-info", "not UTF-8")
	b.Go("#/dc1/kv/app/")

	// Create a key through the form.
	b.SetInput("#kv-new-key", "new-key")
	b.SetInput("#kv-new-value", "first version")
	b.Submit("#kv-create-form")
	b.WaitJS("the new key's page", `location.hash === '#/dc1/kv/app/new-key' && document.querySelector('#kv-value').value === 'first version'`)
	kvIs := func(key, want string) {
		t.Helper()
		pair, _, err := kv.Get(key, nil)
		if err != nil || pair == nil || string(pair.Value) != want {
			got := "<none>"
			if pair != nil {
				got = string(pair.Value)
			}
			t.Fatalf("%s through the API: %q, %v; want %q", key, got, err, want)
		}
	}
	kvIs("app/new-key", "first version")

	// Edit it.
	b.SetInput("#kv-value", "second version")
	b.Submit("#kv-edit-form")
	b.WaitVisible("#kv-saved")
	kvIs("app/new-key", "second version")

	// Someone else writes while it is being edited: the save is refused
	// and says so, their value stays.
	b.SetInput("#kv-value", "my edit")
	if _, err := kv.Put(&api.KVPair{Key: "app/new-key", Value: []byte("their edit")}, nil); err != nil {
		t.Fatal(err)
	}
	b.Submit("#kv-edit-form")
	b.WaitText("#kv-conflict", "Conflict: not saved")
	kvIs("app/new-key", "their edit")
	b.WaitText("#kv-changed", "Someone else changed this key")
	b.Screenshot("kv-conflict")
	b.Click("#kv-reload")
	b.WaitJS("their value in the editor", `document.querySelector('#kv-value').value === 'their edit'`)
	b.SetInput("#kv-value", "merged")
	b.Submit("#kv-edit-form")
	b.WaitVisible("#kv-saved")
	kvIs("app/new-key", "merged")

	// Creating a key that exists does not overwrite it.
	b.Go("#/dc1/kv/app/")
	b.SetInput("#kv-new-key", "config")
	b.SetInput("#kv-new-value", "overwritten?")
	b.Submit("#kv-create-form")
	b.WaitText("#kv-status", "already exists")
	kvIs("app/config", "hello=world")

	// Delete a key, then a folder with everything under it.
	b.Go("#/dc1/kv/app/new-key")
	b.WaitJS("the key's value", `document.querySelector('#kv-value').value === 'merged'`)
	b.Click("#kv-delete")
	b.Click("#kv-confirm-delete")
	b.WaitJS("back in app/", `location.hash === '#/dc1/kv/app/'`)
	if pair, _, err := kv.Get("app/new-key", nil); err != nil || pair != nil {
		t.Fatalf("app/new-key after its deletion: %v, %v", pair, err)
	}
	for _, k := range []string{"tmp/a", "tmp/b/c"} {
		if _, err := kv.Put(&api.KVPair{Key: k, Value: []byte("x")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	b.Go("#/dc1/kv/tmp/")
	b.WaitVisible(`tr.kv-row[data-key="tmp/b/"]`)
	b.Click("#kv-delete-folder")
	b.WaitText("#kv-confirm", "(2 keys)")
	b.Click("#kv-confirm-delete")
	b.WaitJS("back at the root", `location.hash === '#/dc1/kv/'`)
	if keys, _, err := kv.Keys("tmp/", "", nil); err != nil || len(keys) != 0 {
		t.Fatalf("keys under tmp/ after deleting the folder: %v, %v", keys, err)
	}
	b.WaitGone(`tr.kv-row[data-key="tmp/"]`)

	// Sessions and the locks they hold.
	b.Go("#/dc1/sessions")
	sessionRow := `tr.session-row[data-session=` + jsString(session) + `]`
	b.WaitText(sessionRow, "leader-election")
	b.WaitText(sessionRow, "locks/leader")
	b.WaitText(`tr.lock-row[data-lock="locks/leader"]`, "n1")
	b.Screenshot("sessions")

	// Gossip members, LAN and WAN.
	b.Go("#/dc1/members")
	b.WaitVisible(`tr.member-row[data-member="n1"][data-status="alive"]`)
	b.Screenshot("members")
	b.SetInput("#members-pool", "wan")
	b.WaitVisible(`tr.member-row[data-member="n1.dc1"][data-status="alive"]`)
	b.WaitVisible(`tr.member-row[data-member="n2.dc2"][data-status="alive"]`)
	b.SetInput("#members-pool", "lan")
	b.WaitVisible(`tr.member-row[data-member="n1"]`)

	// Raft peers, the leader marked.
	b.Go("#/dc1/raft")
	b.WaitVisible(`tr.raft-row[data-node="n1"][data-leader="true"]`)
	b.WaitText("#raft-leader", "n1")
	b.Screenshot("raft")

	// The datacenter switcher: every request then goes to dc2.
	b.Go("#/dc1/services")
	b.WaitVisible(serviceRow("redis"))
	b.WaitJS("dc2 among the datacenters", `document.querySelector('#dc option[value="dc2"]') !== null`)
	b.SetInput("#dc", "dc2")
	b.WaitJS("dc2's services", `location.hash === '#/dc2/services'`)
	b.WaitVisible(serviceRow("billing"))
	b.WaitGone(serviceRow("redis"))
	b.Screenshot("services-dc2")
	b.Go("#/dc2/kv/")
	b.WaitText("#kv-list", "The store is empty")
	b.SetInput("#dc", "dc1") // the switcher keeps the view
	b.WaitJS("dc1's keys", `location.hash === '#/dc1/kv'`)
	b.WaitVisible(`tr.kv-row[data-key="app/"]`)
	b.Go("#/dc1/services")
	b.WaitVisible(serviceRow("redis"))

	// Names, tags, meta, keys and values full of markup are shown as text.
	const xssName = `<img src=x onerror="window.__xss=1">`
	const xssTag = `<script>window.__xss=2</script>`
	const xssKey = `xss/<img src=x onerror=window.__xss=3>`
	const xssValue = `<script>window.__xss=4</script><b>bold</b>`
	registerCatalog(t, a, "evil-1", "10.6.6.6", &api.AgentService{ID: "evil-1", Service: xssName, Port: 666,
		Tags: []string{xssTag}, Meta: map[string]string{"note": `<b onmouseover="window.__xss=5">hi</b>`}},
		&api.HealthCheck{CheckID: "evil", Name: `<img src=y onerror="window.__xss=6">`, Status: api.HealthCritical,
			Output: `<script>window.__xss=7</script>`})
	if _, err := kv.Put(&api.KVPair{Key: xssKey, Value: []byte(xssValue)}, nil); err != nil {
		t.Fatal(err)
	}
	b.SetInput("#service-search", "img")
	b.WaitVisible(serviceRow(xssName))
	if got := b.Text(serviceRow(xssName) + " a.service-name"); got != xssName {
		t.Errorf("the service's name shows as %q, want the text %q", got, xssName)
	}
	if got := b.Text(serviceRow(xssName)); !strings.Contains(got, xssTag) {
		t.Errorf("the service's row %q lacks its tag as text", got)
	}
	b.WaitJS("no markup injected", noInjection)
	b.Click(serviceRow(xssName) + " a.service-name")
	b.WaitText(`section.instance[data-instance="evil-1"]`, `<script>window.__xss=7</script>`)
	if got := b.Text("#service-title"); got != xssName {
		t.Errorf("the service's page title is %q", got)
	}
	if got := b.Text(`section.instance[data-instance="evil-1"]`); !strings.Contains(got, `note=<b onmouseover="window.__xss=5">hi</b>`) ||
		!strings.Contains(got, `<img src=y onerror="window.__xss=6">`) {
		t.Errorf("the instance shows %q", got)
	}
	b.WaitJS("no markup injected", noInjection)
	b.Go("#/dc1/kv/xss/")
	xssRow := `tr.kv-row[data-key=` + jsString(xssKey) + `]`
	b.WaitVisible(xssRow)
	if got := b.Text(xssRow + " a"); got != strings.TrimPrefix(xssKey, "xss/") {
		t.Errorf("the key shows as %q", got)
	}
	b.Click(xssRow + " a")
	b.WaitJS("the value as text", fmt.Sprintf(`document.querySelector('#kv-value').value === %s`, jsString(xssValue)))
	if got := b.Text("#kv-title"); got != strings.TrimPrefix(xssKey, "xss/") {
		t.Errorf("the key's page title is %q", got)
	}
	b.WaitJS("no markup injected", noInjection)
	b.Go("#/dc1/services")
	b.SetInput("#service-search", "")
	b.CheckPage()
}

// With `acl deny`, the UI without a token shows that things are hidden or
// denied; with a token typed into its field (kept in localStorage, sent as
// X-Consul-Token) it shows what the token may read, and refuses what it
// may not write.
func TestUIToken(t *testing.T) {
	t.Parallel()
	b := StartBrowser(t)
	const root = "5c0ffee0-8a1b-4c2d-9e3f-0a1b2c3d4e5f"
	a := StartAgent(t, Options{Node: "n1", Token: root, Discovery: []string{"acl deny", "acl_token initial_management " + root}})
	registerCatalog(t, a, "pay-1", "10.3.0.1", &api.AgentService{ID: "payments-1", Service: "payments", Port: 443},
		&api.HealthCheck{CheckID: "pay", Name: "payments", Status: api.HealthPassing})
	if _, err := a.Client.KV().Put(&api.KVPair{Key: "secret/db-password", Value: []byte("hunter2")}, nil); err != nil {
		t.Fatal(err)
	}
	reader := a.tokenWithRules(t, "ui-reader", `key_prefix "secret/" { policy = "read" }
service_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }`)

	// No token: nothing to see, and it says why.
	b.Run(chromedp.Navigate(uiURL(a, "#/dc1/services")))
	b.WaitText("#services-notices", "hidden by ACLs")
	if got := b.Texts("tr.service-row"); len(got) != 0 {
		t.Errorf("without a token the list shows %q", got)
	}
	b.Go("#/dc1/kv/secret/db-password")
	b.WaitText("#error-banner", "Permission denied")
	b.WaitText("#error-banner", "Set an ACL token")
	b.Screenshot("kv-denied")

	// The reader's token: the key is readable; a save is refused.
	b.SetInput("#token", reader)
	b.Submit("#token-form")
	b.WaitJS("the key's value", `document.querySelector('#kv-value').value === 'hunter2'`)
	b.WaitJS("no error", `document.querySelector('#error-banner').hidden`)
	if stored := evalJS[string](b, `localStorage.getItem('beacon.ui.token')`); stored != reader {
		t.Errorf("localStorage holds %q, want the token", stored)
	}
	b.SetInput("#kv-value", "changed")
	b.Submit("#kv-edit-form")
	b.WaitText("#kv-status", "Permission denied")
	if pair, _, err := a.Client.KV().Get("secret/db-password", nil); err != nil || pair == nil || string(pair.Value) != "hunter2" {
		t.Fatalf("the key after a denied save: %v, %v", pair, err)
	}

	// The token outlives a reload.
	b.Run(chromedp.Reload())
	b.WaitJS("the token field filled again", fmt.Sprintf(`document.querySelector('#token').value === %s`, jsString(reader)))
	b.WaitJS("the key's value after the reload", `document.querySelector('#kv-value').value === 'hunter2'`)
	b.Go("#/dc1/services")
	b.WaitVisible(serviceRow("payments"))
	b.Screenshot("services-with-token")

	// Cleared, the page is anonymous again.
	b.Click("#token-clear")
	b.WaitText("#services-notices", "hidden by ACLs")
	b.WaitGone(serviceRow("payments"))
	if stored := evalJS[*string](b, `localStorage.getItem('beacon.ui.token')`); stored != nil {
		t.Errorf("localStorage still holds %q after Clear", *stored)
	}
	b.CheckPage()
}

// A lost leader is shown, not swallowed: killing two of three servers puts
// up the banner and the error of a read that needs the leader; restarting
// them takes both away.
func TestUILostLeader(t *testing.T) {
	t.Parallel()
	b := StartBrowser(t)
	servers := StartCluster(t, 3)
	s1 := servers[0]
	b.Run(chromedp.Navigate(uiURL(s1, "#/dc1/services")))
	b.WaitVisible(serviceRow("consul"))
	b.WaitJS("no leader banner", `document.querySelector('#leader-banner').hidden`)

	servers[1].Kill(t)
	servers[2].Kill(t)
	b.WaitJSFor(30*time.Second, "the leader banner", `!document.querySelector('#leader-banner').hidden &&
		document.querySelector('#leader-banner').innerText.includes('No known cluster leader')`)
	// A view's first read needs the leader: it fails, saying so.
	b.Go("#/dc1/nodes")
	b.WaitJSFor(30*time.Second, "the no-leader error", `document.querySelector('#error-banner').innerText.includes('No cluster leader')`)
	b.Screenshot("no-leader")

	servers[1].Restart(t)
	servers[2].Restart(t)
	b.WaitJSFor(30*time.Second, "the banners gone", `document.querySelector('#leader-banner').hidden &&
		document.querySelector('#error-banner').hidden`)
	b.WaitVisible(`tr.node-row[data-node="s1"]`)
	b.CheckPage()
}

// registerServices registers n services, one instance each with a check,
// spread over 100 nodes, through PUT /v1/catalog/register from workers
// goroutines (the API has no batch registration: /v1/txn carries KV
// operations only), and returns how long it took. The bodies are encoded
// up front and sent with plain net/http: under the race detector the
// official client's encoding, not the agent, would set the pace. Every
// 100th service is critical and every 100th from the 50th warning.
func registerServices(t *testing.T, a *Agent, n, workers int) time.Duration {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		name := fmt.Sprintf("svc-%05d", i)
		status := api.HealthPassing
		switch i % 100 {
		case 0:
			status = api.HealthCritical
		case 50:
			status = api.HealthWarning
		}
		node := fmt.Sprintf("node-%02d", i%100)
		b, err := json.Marshal(api.CatalogRegistration{Node: node, Address: fmt.Sprintf("10.9.0.%d", i%100+1),
			Service: &api.AgentService{ID: name + "-1", Service: name, Port: 8000 + i%1000,
				Tags: []string{"v1", fmt.Sprintf("zone-%c", 'a'+i%3)}},
			Check: &api.AgentCheck{Node: node, CheckID: "alive-" + name, Name: "alive", ServiceID: name + "-1",
				Status: status, Output: "ok"}})
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = b
	}
	transport := &http.Transport{MaxIdleConnsPerHost: workers, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	url := "http://" + a.HTTPAddr + "/v1/catalog/register"
	register := func(body []byte) error {
		req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		reply, err := io.ReadAll(resp.Body)
		if err == nil && (resp.StatusCode != http.StatusOK || string(reply) != "true") {
			err = fmt.Errorf("%d %s", resp.StatusCode, reply)
		}
		return err
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				if err := register(bodies[i]); err != nil {
					failed.CompareAndSwap(nil, fmt.Errorf("registering service %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// The services view stays usable at 10,000 services: its first page shows
// in under a second from navigation, and search, paging and the health
// filter work across all of them. Not parallel: it measures, and the
// package's parallel tests wait while it runs.
func TestUIServices10k(t *testing.T) {
	const services, workers = 10000, 64
	b := StartBrowser(t)
	a := StartAgent(t, Options{Node: "n1"})
	took := registerServices(t, a, services, workers)
	t.Logf("registered %d services (one check each) in %v: %.0f a second with %d concurrent PUT /v1/catalog/register",
		services, took.Round(time.Millisecond), float64(services)/took.Seconds(), workers)
	list, _, err := a.Client.Catalog().Services(nil)
	if err != nil || len(list) != services+1 {
		t.Fatalf("the catalog lists %d services, %v; want %d and consul", len(list), err, services)
	}

	// Navigation to the first rows on screen: the page loads, reads the
	// datacenters, then the services and every check.
	start := time.Now()
	b.Run(chromedp.Navigate(uiURL(a, "#/dc1/services")))
	b.WaitJS("the first page of services", `document.querySelectorAll('tr.service-row').length === 50`)
	firstPage := time.Since(start)
	inPage := evalJS[float64](b, `performance.getEntriesByName('services-first-rows')[0].startTime`)
	t.Logf("services view at %d services: first page on screen %v after navigation (%.0f ms from navigation start, by the page's clock)",
		services, firstPage.Round(time.Millisecond), inPage)
	// Where the time went: each request the page made, by its clock.
	t.Logf("the page's requests (start, duration, bytes):\n%s", evalJS[string](b, `performance.getEntriesByType('resource')
		.map((r) => `+"`${r.startTime.toFixed(0).padStart(5)} ms ${r.duration.toFixed(0).padStart(5)} ms ${String(r.encodedBodySize).padStart(9)} ${r.name.replace(location.origin, '')}`"+`).join('\n')`))
	if firstPage > time.Second {
		t.Errorf("the first page of %d services took %v to show; the limit is 1 s", services, firstPage)
	}
	b.WaitText("#service-count", "10,001 of 10,001 services")
	b.WaitText(serviceRow("svc-00001")+" td.instances", "1")
	b.Screenshot("services-10k")

	// Paging, search and the health filter across all of them.
	b.Click(".page-next")
	b.WaitText(".page-info", "51–100 of 10,001")
	b.WaitVisible(serviceRow("svc-00049"))
	start = time.Now()
	b.SetInput("#service-search", "svc-09999")
	b.WaitJS("one service found", servicesShown+` === 'svc-09999'`)
	t.Logf("searching %d services: %v", services, time.Since(start).Round(time.Millisecond))
	b.SetInput("#service-search", "")
	start = time.Now()
	b.SetInput("#service-status", "critical")
	b.WaitText("#service-count", "100 of 10,001 services")
	t.Logf("filtering %d services by health: %v", services, time.Since(start).Round(time.Millisecond))
	b.WaitJS("only critical rows", `Array.from(document.querySelectorAll('tr.service-row span.status')).every((s) => s.dataset.status === 'critical')`)
	b.SetInput("#service-status", "all")
	b.CheckPage()
}
