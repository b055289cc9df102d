package adminapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// The API serves the web UI under /ui/ and sends the root there; /v1 is
// unaffected by the mount.
func TestUIMounted(t *testing.T) {
	ta := newTestAPI(t)
	noFollow := *ta.ts.Client()
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// The root as Consul sends it; /ui by the mux's own redirect to the
	// subtree.
	for path, codes := range map[string][]int{"/": {http.StatusMovedPermanently},
		"/ui": {http.StatusMovedPermanently, http.StatusTemporaryRedirect}} {
		resp, err := noFollow.Get(ta.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !slices.Contains(codes, resp.StatusCode) || resp.Header.Get("Location") != "/ui/" {
			t.Errorf("GET %s: %d to %q; want %v to /ui/", path, resp.StatusCode, resp.Header.Get("Location"), codes)
		}
	}

	r := ta.get("/ui/")
	if r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.body), `src="app.js"`) {
		t.Fatalf("GET /ui/: %d %q %.80q", r.code, r.header.Get("Content-Type"), r.body)
	}
	if r.header.Get("Content-Security-Policy") == "" || r.header.Get("X-Frame-Options") != "DENY" ||
		r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /ui/ lacks its security headers: %v", r.header)
	}
	if r := ta.get("/ui/app.js"); r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /ui/app.js: %d %q", r.code, r.header.Get("Content-Type"))
	}
	// Only the root redirects: other unknown paths are still 404.
	if r := ta.get("/nothing-here"); r.code != http.StatusNotFound {
		t.Errorf("GET /nothing-here: %d, want 404", r.code)
	}
	if r := ta.get("/v1/status/leader"); r.code != http.StatusOK || r.header.Get("Content-Security-Policy") != "" {
		t.Errorf("GET /v1/status/leader: %d, CSP %q: the API's answers are not the UI's", r.code, r.header.Get("Content-Security-Policy"))
	}
}
