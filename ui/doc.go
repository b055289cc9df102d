// Package ui owns beacon's web UI: the static files (plain HTML, CSS and
// JavaScript modules, no build step) embedded in the binary, and the
// http.Handler that serves them under /ui/ with their security headers.
//
// The UI is a client of the public /v1 API like any other: the browser
// calls it with the user's token, and this package serves files only. It
// imports none of beacon's packages (imports_test.go holds it to that), so
// it never links the state store, Raft or the agent; adminapi mounts it.
package ui
