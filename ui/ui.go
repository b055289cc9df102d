package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the UI is served under.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// contentSecurityPolicy allows the page nothing from anywhere but its own
// origin: no inline script or style (everything the UI renders from the API
// is text, and this is the second wall should that ever slip), no other
// hosts (the UI works without internet), and no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes are the types of the files the UI is made of. They are
// fixed here rather than taken from the system's MIME tables, which vary
// between machines: with nosniff a script served under a wrong type does
// not run.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// file is one embedded file, ready to serve.
type file struct {
	content     []byte
	contentType string
	etag        string
}

// Handler serves the UI's files under Prefix. Files carry a content hash as
// their ETag and must be revalidated on each load, so a new binary's UI is
// picked up at once and an unchanged one costs a 304.
func Handler() http.Handler {
	files, err := load()
	if err != nil {
		// The files are compiled in: failing here is a broken build.
		panic(fmt.Sprintf("ui: loading the embedded files: %v", err))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		// ServeContent answers If-None-Match with 304 and HEAD without a
		// body; embedded files have no modification time.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.content))
	})
}

// setSecurityHeaders sets the headers every UI answer carries, errors
// included.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// load reads every embedded file, keyed by its path under static/.
func load() (map[string]file, error) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	files := map[string]file{}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("%s: no content type for its extension", name)
		}
		sum := sha256.Sum256(b)
		files[name] = file{content: b, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	return files, err
}
