package adminapi

import (
	"net/http"

	"github.com/beacon-dns/beacon/ui"
)

// uiRoutes serves the web UI under /ui/ (the mux sends /ui there) and sends
// the site's root to it, as Consul does. The UI is static files: what it
// shows comes from the /v1 API, called from the browser with the user's
// token.
func (s *Server) uiRoutes(mux *http.ServeMux) {
	mux.Handle("GET "+ui.Prefix, ui.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ui.Prefix, http.StatusMovedPermanently)
	})
}
