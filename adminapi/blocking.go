package adminapi

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Blocking query limits, as Consul's.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

// queryOptions are the read parameters common to every read endpoint.
type queryOptions struct {
	minIndex   uint64
	wait       time.Duration
	stale      bool
	consistent bool
}

func parseQueryOptions(r *http.Request) (queryOptions, error) {
	q := r.URL.Query()
	var o queryOptions
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return o, badRequest("Invalid index: %q is not a whole number", v)
		}
		o.minIndex = n
	}
	o.wait = defaultWait
	if v := q.Get("wait"); v != "" {
		d, err := parseWait(v)
		if err != nil {
			return o, badRequest("Invalid wait time: %q", v)
		}
		o.wait = min(d, maxWait)
	}
	_, o.stale = q["stale"]
	_, o.consistent = q["consistent"]
	if o.stale && o.consistent {
		return o, badRequest("Cannot specify ?stale with ?consistent, conflicting semantics.")
	}
	return o, nil
}

// parseWait accepts a Go duration; a bare number is seconds, as Consul's
// parser takes it.
func parseWait(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, strconv.ErrSyntax
	}
	return d, nil
}

// readFunc runs one read against the state store, adding what it read to ws,
// and returns the index the result reflects.
type readFunc func(ws memdb.WatchSet) (uint64, any, error)

// blockingRead answers a read endpoint: it applies the consistency mode,
// runs read, and if the caller asked to block (?index=) and nothing newer
// than its index exists, waits for a change to what read looked at, or for
// the wait time (plus up to 1/16 jitter, so clients do not align).
func (s *Server) blockingRead(w http.ResponseWriter, r *http.Request, read readFunc) {
	opts, err := parseQueryOptions(r)
	if err == nil {
		err = s.checkDC(r)
	}
	if err == nil {
		_, err = requestFilter(r) // a bad expression is refused before any read
	}
	if err == nil {
		err = s.consistency(opts)
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	read = filteredRead(r, read)
	ctx, cancel := blockingContext(r.Context(), opts)
	defer cancel()
	store := s.agent.Store()
	restored := false
	for {
		// Only a blocking read collects what to watch: the store skips
		// the watch channels when ws is nil.
		var ws memdb.WatchSet
		abandon := store.AbandonCh()
		if opts.minIndex > 0 {
			ws = memdb.NewWatchSet()
			ws.Add(abandon)
		}
		idx, result, err := read(ws)
		if err != nil {
			s.writeErr(w, err)
			return
		}
		// After a restore, indexes may have gone backwards: answer at once
		// so the client starts over from the restored index, as Consul does.
		if opts.minIndex == 0 || idx > opts.minIndex || restored {
			s.writeResult(w, idx, result)
			return
		}
		if s.waiting != nil {
			s.waiting()
		}
		if err := ws.WatchCtx(ctx); err != nil {
			// Timed out (or the client went away): answer with what is there.
			s.writeResult(w, idx, result)
			return
		}
		select {
		case <-abandon:
			restored = true
		default:
		}
	}
}

// filteredRead is read with the request's ?filter= applied to its answer.
func filteredRead(r *http.Request, read readFunc) readFunc {
	f, err := requestFilter(r)
	if err != nil || f == nil {
		return read
	}
	return func(ws memdb.WatchSet) (uint64, any, error) {
		idx, result, err := read(ws)
		if err != nil {
			return idx, result, err
		}
		result, err = applyFilter(f, result)
		return idx, result, err
	}
}

// blockingContext bounds a blocking read (one with ?index=) by its wait,
// plus up to 1/16 of it as jitter so that clients do not align; a read that
// does not block is bounded by its request only.
func blockingContext(ctx context.Context, opts queryOptions) (context.Context, context.CancelFunc) {
	if opts.minIndex == 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, opts.wait+rand.N(opts.wait/16+1))
}

// consistency enforces the read mode: ?stale reads the local replica as it
// is; the default mode first catches the replica up with the leader;
// ?consistent also has a quorum confirm that leader after the read began.
func (s *Server) consistency(o queryOptions) error {
	if o.stale {
		return nil
	}
	return s.agent.ConsistentRead(o.consistent)
}

// notFound is a read's result when what it looked for is not there: a 404
// with the query metadata, so that a client can block on its appearance.
type notFound struct{}

// rawBody is a read's result sent as is (?raw), not as JSON.
type rawBody []byte

// writeResult answers a read with its result and the query metadata.
func (s *Server) writeResult(w http.ResponseWriter, idx uint64, result any) {
	s.setMeta(w, idx)
	switch v := result.(type) {
	case notFound:
		w.WriteHeader(http.StatusNotFound)
	case rawBody:
		// Consul sends raw values as text, never sniffed as anything else.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(v)
	default:
		writeJSON(w, result)
	}
}
