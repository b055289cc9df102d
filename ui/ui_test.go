package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func serve(t *testing.T, method, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %q", what, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
		t.Errorf("%s: CSP %q allows more than the page's own origin", what, csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("%s: nosniff %q, frame options %q", what, h.Get("X-Content-Type-Options"), h.Get("X-Frame-Options"))
	}
}

// Every embedded file is served with its type, an ETag (a 304 when it has
// not changed) and the security headers; so are errors.
func TestHandlerServesEveryFile(t *testing.T) {
	files, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["index.html"]; !ok || len(files) < 5 {
		t.Fatalf("embedded files: %d, index.html among them: %v", len(files), ok)
	}
	for name, f := range files {
		path := Prefix + name
		rec := serve(t, http.MethodGet, path, nil)
		if rec.Code != http.StatusOK || rec.Body.String() != string(f.content) {
			t.Errorf("GET %s: %d, %d bytes; want 200 and the file", path, rec.Code, rec.Body.Len())
		}
		if got := rec.Header().Get("Content-Type"); got != f.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, f.contentType)
		}
		checkSecurityHeaders(t, "GET "+path, rec.Header())
		etag := rec.Header().Get("ETag")
		if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: ETag %q, Cache-Control %q", path, etag, rec.Header().Get("Cache-Control"))
		}
		if rec := serve(t, http.MethodGet, path, http.Header{"If-None-Match": {etag}}); rec.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, rec.Code)
		}
		if rec := serve(t, http.MethodHead, path, nil); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Errorf("HEAD %s: %d with %d bytes", path, rec.Code, rec.Body.Len())
		}
	}
	if rec := serve(t, http.MethodGet, Prefix, nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<title>beacon</title>") {
		t.Errorf("GET %s: %d, want index.html", Prefix, rec.Code)
	}
	for _, path := range []string{Prefix + "nope.js", Prefix + "../ui.go", Prefix + "static/index.html", "/elsewhere"} {
		rec := serve(t, http.MethodGet, path, nil)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
		checkSecurityHeaders(t, "GET "+path, rec.Header())
	}
	rec := serve(t, http.MethodPost, Prefix, nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST %s: %d, Allow %q", Prefix, rec.Code, rec.Header().Get("Allow"))
	}
	checkSecurityHeaders(t, "POST "+Prefix, rec.Header())
}

func staticFiles(t *testing.T) map[string]string {
	t.Helper()
	files, err := load()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, f := range files {
		out[name] = string(f.content)
	}
	return out
}

// The UI works without internet and within its CSP: it names no other
// host, has no inline script, style or event handler, and its JavaScript
// never turns strings into markup or code (what it shows from the API is
// text, so a name like "<script>" cannot inject anything).
func TestFilesStayLocalAndSafe(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name, text := range staticFiles(t) {
		for _, m := range url.FindAllString(text, -1) {
			if m != "http://www.w3.org" { // the SVG namespace, not a request
				t.Errorf("%s names another host: %s", name, m)
			}
		}
		if strings.Contains(text, "@import") || strings.Contains(text, "@font-face") {
			t.Errorf("%s loads styles or fonts", name)
		}
		if strings.HasSuffix(name, ".js") {
			for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
				"new Function", "createContextualFragment", "DOMParser", "setTimeout('", "setTimeout(\""} {
				if strings.Contains(text, sink) {
					t.Errorf("%s uses %s: build elements and text nodes instead", name, sink)
				}
			}
		}
	}
	index := staticFiles(t)["index.html"]
	if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(index) ||
		regexp.MustCompile(`(?i)\son[a-z]+\s*=|\sstyle\s*=|<style`).MatchString(index) {
		t.Error("index.html has an inline script, style or event handler, which the CSP forbids")
	}
}

// index.html preloads exactly the modules the app imports, so they load
// in parallel (the first rows of the services view wait on them) and a new
// module is not forgotten; every file it names is embedded.
func TestIndexPreloadsEveryModule(t *testing.T) {
	files := staticFiles(t)
	index := files["index.html"]
	var preloaded []string
	for _, m := range regexp.MustCompile(`<link rel="modulepreload" href="([^"]+)">`).FindAllStringSubmatch(index, -1) {
		preloaded = append(preloaded, m[1])
	}
	var modules []string
	importRE := regexp.MustCompile(`(?m)^import [^;]+ from '\./([^']+)';`)
	var walk func(name string)
	walk = func(name string) {
		if slices.Contains(modules, name) {
			return
		}
		modules = append(modules, name)
		text, ok := files[name]
		if !ok {
			t.Errorf("module %s is not embedded", name)
			return
		}
		for _, m := range importRE.FindAllStringSubmatch(text, -1) {
			walk(m[1])
		}
	}
	walk("app.js")
	slices.Sort(preloaded)
	slices.Sort(modules)
	if !slices.Equal(preloaded, modules) {
		t.Errorf("index.html preloads %v; the app's modules are %v", preloaded, modules)
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(index, -1) {
		if _, ok := files[m[1]]; !ok {
			t.Errorf("index.html names %s, which is not embedded", m[1])
		}
	}
	if err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".js") && !slices.Contains(modules, strings.TrimPrefix(path, "static/")) {
			t.Errorf("%s is embedded but no module imports it", path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
