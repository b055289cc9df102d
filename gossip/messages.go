package gossip

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// Cluster-wide operations (the keyring, force-leave) are requests that the
// origin sends to every alive member over memberlist's reliable user messages
// (one TCP connection each, encrypted like the rest of gossip), and answers
// that each member sends back the same way. They play the part of serf's
// internal queries, without serf: the origin knows whom it asked, so it
// knows who did not answer.
//
// A message is one type byte and a JSON object that carries its version:
//
//	msgRequest  {"v":1,"id":…,"origin":…,"op":…,"key":…,"node":…,"prune":…}
//	msgResponse {"v":1,"id":…,"from":…,"ok":…,"msg":…,"keys":[…],"primary":…}
//
// Unknown fields are ignored, so that a later version can add some; every
// known one is checked, and a message that fails a check is logged and
// dropped.

// Message types: the first byte of every user message.
const (
	msgRequest  byte = 0x01
	msgResponse byte = 0x02
)

const (
	wireVersion = 1
	// maxMessageSize bounds a user message, sent or received: the largest
	// legitimate one (a keyring listing) is a few hundred bytes.
	maxMessageSize = 16 << 10
	maxNameLen     = 256  // member names, request IDs
	maxMessageLen  = 1024 // a member's error message
	// inboxSize bounds the messages waiting for the pool's handler; more
	// are dropped (the origin then reports "no response").
	inboxSize = 256
	// fanOut bounds the concurrent sends of a request, replySenders those
	// of answers.
	fanOut       = 16
	replySenders = 16
)

// Operations.
const (
	opKeyringList    = "keyring-list"
	opKeyringInstall = "keyring-install"
	opKeyringUse     = "keyring-use"
	opKeyringRemove  = "keyring-remove"
	opForceLeave     = "force-leave"
	// opLeaveIntent: the origin is about to leave (Leave).
	opLeaveIntent = "leave-intent"
)

// opNames are the operations as errors and logs name them.
var opNames = map[string]string{
	opKeyringList:    "keyring list",
	opKeyringInstall: "keyring install",
	opKeyringUse:     "keyring use",
	opKeyringRemove:  "keyring remove",
	opForceLeave:     "force-leave",
	opLeaveIntent:    "leave intent",
}

// noResponse is what a member that did not answer in time reports.
const noResponse = "no response"

type wireRequest struct {
	V      int    `json:"v"`
	ID     string `json:"id"`
	Origin string `json:"origin"`
	Op     string `json:"op"`
	Key    string `json:"key,omitempty"`  // keyring install, use, remove: base64
	Node   string `json:"node,omitempty"` // force-leave
	Prune  bool   `json:"prune,omitempty"`
}

type wireResponse struct {
	V       int      `json:"v"`
	ID      string   `json:"id"`
	From    string   `json:"from"`
	OK      bool     `json:"ok"`
	Message string   `json:"msg,omitempty"`
	Keys    []string `json:"keys,omitempty"`    // the member's keyring, primary first
	Primary string   `json:"primary,omitempty"` // its primary key
}

func encodeMessage(typ byte, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	buf := append([]byte{typ}, body...)
	if len(buf) > maxMessageSize {
		return nil, fmt.Errorf("message of %d bytes is over the limit of %d", len(buf), maxMessageSize)
	}
	return buf, nil
}

// decodeMessage decodes and checks a user message: exactly one of the
// results is non-nil unless err is.
func decodeMessage(b []byte) (*wireRequest, *wireResponse, error) {
	if len(b) == 0 {
		return nil, nil, errors.New("empty message")
	}
	if len(b) > maxMessageSize {
		return nil, nil, fmt.Errorf("message of %d bytes is over the limit of %d", len(b), maxMessageSize)
	}
	var version struct {
		V int `json:"v"`
	}
	body := b[1:]
	if err := json.Unmarshal(body, &version); err != nil {
		return nil, nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if version.V != wireVersion {
		return nil, nil, fmt.Errorf("message version %d; this member speaks %d", version.V, wireVersion)
	}
	switch b[0] {
	case msgRequest:
		var r wireRequest
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, nil, fmt.Errorf("request: %v", err)
		}
		if err := r.check(); err != nil {
			return nil, nil, fmt.Errorf("request: %w", err)
		}
		return &r, nil, nil
	case msgResponse:
		var r wireResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, nil, fmt.Errorf("response: %v", err)
		}
		if err := r.check(); err != nil {
			return nil, nil, fmt.Errorf("response: %w", err)
		}
		return nil, &r, nil
	}
	return nil, nil, fmt.Errorf("unknown message type 0x%02x", b[0])
}

func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("no %s", what)
	}
	if len(s) > maxNameLen || !utf8.ValidString(s) {
		return fmt.Errorf("malformed %s", what)
	}
	return nil
}

func (r *wireRequest) check() error {
	if err := checkName("request ID", r.ID); err != nil {
		return err
	}
	if err := checkName("origin", r.Origin); err != nil {
		return err
	}
	switch r.Op {
	case opKeyringList:
		if r.Key != "" || r.Node != "" || r.Prune {
			return errors.New("keyring list takes no arguments")
		}
	case opKeyringInstall, opKeyringUse, opKeyringRemove:
		if _, err := decodeKey(r.Key); err != nil {
			return fmt.Errorf("%s: %w", opNames[r.Op], err)
		}
		if r.Node != "" || r.Prune {
			return fmt.Errorf("%s takes only a key", opNames[r.Op])
		}
	case opLeaveIntent:
		if r.Key != "" || r.Node != "" || r.Prune {
			return errors.New("a leave intent takes no arguments")
		}
	case opForceLeave:
		if err := checkName("node to force out", r.Node); err != nil {
			return err
		}
		if r.Key != "" {
			return errors.New("force-leave takes no key")
		}
	default:
		return fmt.Errorf("unknown operation %q", r.Op)
	}
	return nil
}

func (r *wireResponse) check() error {
	if err := checkName("request ID", r.ID); err != nil {
		return err
	}
	if err := checkName("sender", r.From); err != nil {
		return err
	}
	if len(r.Message) > maxMessageLen {
		return errors.New("message too long")
	}
	if len(r.Keys) > MaxKeyringKeys {
		return fmt.Errorf("%d keys, over the limit of %d", len(r.Keys), MaxKeyringKeys)
	}
	for _, k := range r.Keys {
		if _, err := decodeKey(k); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	}
	if r.Primary != "" {
		if _, err := decodeKey(r.Primary); err != nil {
			return fmt.Errorf("primary key: %w", err)
		}
		if !slices.Contains(r.Keys, r.Primary) {
			return errors.New("primary key not among the keys")
		}
	}
	return nil
}

func newRequestID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("request ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// call runs a request on every alive member: local answers for this one
// (called in the caller's goroutine), the others get the request over TCP.
// It returns each member's answer by name once all have answered, or when
// ctx is done (requestTimeout bounds a ctx without deadline); a
// member that could not be reached or did not answer gets a failed answer
// saying so. The error is for the call itself, not for members' failures.
func (p *Pool) call(ctx context.Context, req wireRequest, local func() wireResponse) (map[string]wireResponse, error) {
	if err := ctx.Err(); err != nil { // before anything is applied
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.requestTimeout())
		defer cancel()
	}
	id, err := newRequestID()
	if err != nil {
		return nil, err
	}
	req.V, req.ID, req.Origin = wireVersion, id, p.cfg.NodeName
	payload, err := encodeMessage(msgRequest, req)
	if err != nil {
		return nil, err
	}

	// Whom to ask: our table's alive members (memberlist's own Node
	// structs are written under its lock, which we cannot take).
	var targets []memberlist.Node
	p.mu.RLock()
	for _, m := range p.members {
		if m.Name == p.cfg.NodeName || (m.Status != StatusAlive && m.Status != StatusLeaving) {
			continue
		}
		if ip := net.ParseIP(m.Addr); ip != nil {
			targets = append(targets, memberlist.Node{Name: m.Name, Addr: ip, Port: m.Port})
		}
	}
	p.mu.RUnlock()

	// Room for a failed send and an answer from every member: deliver
	// never blocks, so what does not fit is dropped.
	answers := make(chan wireResponse, 2*len(targets))
	p.callMu.Lock()
	p.calls[id] = answers
	p.callMu.Unlock()
	defer func() {
		p.callMu.Lock()
		delete(p.calls, id)
		p.callMu.Unlock()
	}()

	out := map[string]wireResponse{p.cfg.NodeName: local()}

	// Send from a few goroutines: an unreachable member's dial may take
	// TCPTimeout. A failed send is that member's answer.
	queue := make(chan memberlist.Node, len(targets))
	for _, n := range targets {
		queue <- n
	}
	close(queue)
	for range min(fanOut, len(targets)) {
		p.spawn(func() {
			for n := range queue {
				if p.closed.Load() {
					return
				}
				if err := p.ml.SendReliable(&n, payload); err != nil {
					p.deliver(wireResponse{ID: id, From: n.Name, Message: "unreachable: " + err.Error()})
				}
			}
		})
	}

	expected := make(map[string]bool, len(targets))
	for _, n := range targets {
		expected[n.Name] = true
	}
	pending := len(targets)
	shutdown := false
wait:
	for pending > 0 {
		select {
		case a := <-answers:
			if !expected[a.From] {
				p.logger.Warn("dropping an answer from a member that was not asked", "from", a.From, "operation", opNames[req.Op])
				continue
			}
			if _, dup := out[a.From]; dup {
				continue
			}
			out[a.From] = a
			pending--
		case <-ctx.Done():
			break wait
		case <-p.stop:
			shutdown = true
			break wait
		}
	}
	for name := range expected {
		if _, ok := out[name]; !ok {
			out[name] = wireResponse{From: name, Message: noResponse}
		}
	}
	if shutdown {
		return out, ErrShutdown
	}
	return out, nil
}

// requestTimeout bounds a call whose context has no deadline: a dial to an
// unreachable member and the answer's dial each take up to TCPTimeout.
func (p *Pool) requestTimeout() time.Duration {
	d := p.cfg.TCPTimeout
	if d == 0 {
		d = memberlist.DefaultLANConfig().TCPTimeout
	}
	return 2*d + time.Second
}

// membersFailed is the error of a call some members failed, naming each
// with what it reported; nil when none failed.
func membersFailed(what string, answers map[string]wireResponse) error {
	var names []string
	for name, a := range answers {
		if !a.OK {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	errs := make([]error, len(names))
	for i, name := range names {
		errs[i] = fmt.Errorf("%s: %s", name, answers[name].Message)
	}
	return fmt.Errorf("gossip: %s: %d of %d members failed: %w", what, len(names), len(answers), errors.Join(errs...))
}

// receive takes a user message from memberlist (NotifyMsg, in memberlist's
// goroutines): it never blocks and never calls into memberlist. The buffer
// is memberlist's, so it is copied.
func (p *Pool) receive(b []byte) {
	if p.closed.Load() {
		return
	}
	if len(b) == 0 || len(b) > maxMessageSize {
		p.logger.Warn("dropping a malformed user message", "size", len(b), "error", "empty or over the size limit")
		return
	}
	select {
	case p.inbox <- bytes.Clone(b):
	default:
		p.logger.Warn("dropping a user message: the handler is behind", "queued", inboxSize)
	}
}

// handleMessages runs the received messages until the pool stops.
func (p *Pool) handleMessages() {
	for {
		select {
		case b := <-p.inbox:
			p.handleMessage(b)
		case <-p.stop:
			return
		}
	}
}

func (p *Pool) handleMessage(b []byte) {
	req, resp, err := decodeMessage(b)
	if err != nil {
		p.logger.Warn("dropping a malformed user message", "size", len(b), "error", err)
		return
	}
	if resp != nil {
		p.deliver(*resp)
		return
	}
	if req.Origin == p.cfg.NodeName {
		p.logger.Warn("dropping a request that claims to come from this member", "operation", req.Op)
		return
	}
	// Only an alive member's request is applied, and the answer goes to
	// it as our table knows it, not to an address the message claims.
	p.mu.RLock()
	m, ok := p.members[req.Origin]
	p.mu.RUnlock()
	ip := net.ParseIP(m.Addr)
	if !ok || ip == nil || (m.Status != StatusAlive && m.Status != StatusLeaving) {
		p.logger.Warn("dropping a request from a member that is not alive here",
			"origin", req.Origin, "operation", opNames[req.Op])
		return
	}
	var answer wireResponse
	switch req.Op {
	case opForceLeave:
		answer = p.serveForceLeave(req.Node, req.Prune)
	case opLeaveIntent:
		answer = p.serveLeaveIntent(req.Origin)
	default:
		var key []byte
		if req.Op != opKeyringList {
			key, _ = decodeKey(req.Key) // checked by decodeMessage
		}
		answer = p.serveKeyring(req.Op, key)
	}
	answer.V, answer.ID, answer.From = wireVersion, req.ID, p.cfg.NodeName
	answer.Message = truncateMessage(answer.Message)
	payload, err := encodeMessage(msgResponse, answer)
	if err != nil {
		p.logger.Error("encoding an answer", "operation", opNames[req.Op], "error", err)
		return
	}
	// Bounded concurrent answers: a dial to an origin that just died takes
	// up to TCPTimeout, and this goroutine must go on with the others.
	select {
	case p.replySem <- struct{}{}:
	case <-p.stop:
		return
	}
	origin := memberlist.Node{Name: m.Name, Addr: ip, Port: m.Port}
	if !p.spawn(func() {
		defer func() { <-p.replySem }()
		if err := p.ml.SendReliable(&origin, payload); err != nil {
			p.logger.Warn("could not answer a request", "origin", req.Origin, "operation", opNames[req.Op], "error", err)
		}
	}) {
		<-p.replySem
	}
}

// deliver hands an answer to the call waiting for it, if any.
func (p *Pool) deliver(a wireResponse) {
	p.callMu.Lock()
	ch, ok := p.calls[a.ID]
	p.callMu.Unlock()
	if !ok {
		p.logger.Debug("dropping an answer to no pending request (late or unknown)", "from", a.From)
		return
	}
	select {
	case ch <- a:
	default: // more than two answers from some member: duplicates
	}
}

// spawn runs f in a goroutine that Shutdown waits for, unless the pool is
// shut down. It reports whether f was started.
func (p *Pool) spawn(f func()) bool {
	p.spawnMu.Lock()
	defer p.spawnMu.Unlock()
	if p.closed.Load() {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

// truncateMessage cuts an answer's message to what a receiver accepts, on
// a rune boundary.
func truncateMessage(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= maxMessageLen {
		return s
	}
	cut := maxMessageLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
