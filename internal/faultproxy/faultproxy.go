// Package faultproxy is a reverse proxy for tests that sits in front of a
// real S3 endpoint and makes the network misbehave: 503 answers (before or
// after the server did the work), dropped connections (before or after),
// delays that let requests overtake each other, requests held until
// released, and whole outages. Which request gets which fault is decided by
// rules (a matcher and a probability) drawn from a seeded generator, so a
// failing run can be replayed; rules can be changed while requests flow.
//
// It never answers for the server: every request that is not failed before
// forwarding goes to the real endpoint. It keeps counters per fault and a
// log of every request for tests to assert on. It is safe for concurrent use.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Kind is one way to misbehave.
type Kind int

const (
	// Error503 answers 503 with an S3 XML error body without forwarding.
	Error503 Kind = iota
	// Error503After forwards, lets the server finish, then answers 503:
	// the change happened but the client was told it did not.
	Error503After
	// DropBefore closes the connection without forwarding.
	DropBefore
	// DropAfter forwards, lets the server finish, then closes the
	// connection without answering.
	DropAfter
	// Delay holds the request for a random time in [MinDelay, MaxDelay]
	// before forwarding; requests in flight overtake each other.
	Delay
	// Hang holds the request until Release or until the client gives up
	// (closes its connection); released requests are then forwarded.
	Hang
	numKinds
)

var kindNames = [numKinds]string{"503", "503-after", "drop", "drop-after", "delay", "hang"}

func (k Kind) String() string {
	if k >= 0 && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Rule gives matching requests a fault.
type Rule struct {
	Kind Kind
	// Match selects the requests the rule is for; nil matches every request.
	Match func(*http.Request) bool
	// Prob is the chance a matching request gets the fault; 0 means always.
	Prob float64
	// MinDelay and MaxDelay bound a Delay (MaxDelay < MinDelay is taken as
	// MinDelay).
	MinDelay, MaxDelay time.Duration
	// Code is the S3 error code of a 503: "SlowDown" when empty, or
	// "ServiceUnavailable".
	Code string
}

// Entry is one request as the proxy saw it, logged when it was done with.
type Entry struct {
	Method     string
	Path       string // escaped path as sent: /BUCKET/KEY
	Query      string // raw query
	CopySource string // x-amz-copy-source, "" for none
	// Conditions are the request's preconditions as "Header: value"
	// (If-Match, If-None-Match, x-amz-copy-source-if-match, …).
	Conditions []string
	// Status is what the client got: 0 when its connection was dropped
	// or it gave up.
	Status int
	// Forwarded: the request was handed on to the server. With Upstream
	// 0 the server may still have done it (the client went away first).
	Forwarded bool
	// Upstream is what the server answered, 0 when none was seen.
	Upstream int
	Faults   []Kind // in the order applied
	Start    time.Time
	End      time.Time
}

// Proxy is a running fault-injecting reverse proxy.
type Proxy struct {
	srv    *httptest.Server
	rp     *httputil.ReverseProxy
	target *url.URL

	mu      sync.Mutex
	rng     *rand.Rand
	rules   []Rule
	paused  bool
	release chan struct{} // closed by Release; replaced after
	hanging int
	counts  [numKinds]int
	log     []Entry
	seq     int
	active  int // requests not yet logged
}

// New starts a proxy on a loopback port in front of target (an
// http://HOST:PORT endpoint), with no rules yet.
func New(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: bad target %q", target)
	}
	p := &Proxy{
		target:  u,
		rng:     rand.New(rand.NewPCG(seed, seed^0x5eed5eed5eed5eed)),
		release: make(chan struct{}),
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Signatures cover Host: keep the client's.
			pr.Out.Host = pr.In.Host
		},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		// Requests with bodies are streamed as they come.
		FlushInterval: -1,
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p, nil
}

// URL is the proxy's endpoint, to give clients instead of the server's.
func (p *Proxy) URL() string { return p.srv.URL }

// Close releases held requests and stops the proxy.
func (p *Proxy) Close() {
	p.Release()
	p.srv.CloseClientConnections()
	p.srv.Close()
}

// SetRules replaces the rules; requests already past their fault decision
// are not affected. No rules: a plain proxy.
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	p.rules = append([]Rule(nil), rules...)
	p.mu.Unlock()
}

// Pause starts an outage: every new request has its connection dropped
// (counted as DropBefore) until Resume.
func (p *Proxy) Pause() { p.mu.Lock(); p.paused = true; p.mu.Unlock() }

// Resume ends an outage.
func (p *Proxy) Resume() { p.mu.Lock(); p.paused = false; p.mu.Unlock() }

// Release lets every request held by Hang go on to the server.
func (p *Proxy) Release() {
	p.mu.Lock()
	close(p.release)
	p.release = make(chan struct{})
	p.mu.Unlock()
}

// Hanging is how many requests Hang holds now.
func (p *Proxy) Hanging() int { p.mu.Lock(); defer p.mu.Unlock(); return p.hanging }

// Requests is how many requests have arrived so far.
func (p *Proxy) Requests() int { p.mu.Lock(); defer p.mu.Unlock(); return p.seq }

// Count is how many times the fault was applied.
func (p *Proxy) Count(k Kind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k < 0 || k >= numKinds {
		return 0
	}
	return p.counts[k]
}

// Counts renders every counter, for test logs: "503=3 drop=1 …".
func (p *Proxy) Counts() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "requests=%d", p.seq)
	for k, n := range p.counts {
		fmt.Fprintf(&b, " %s=%d", Kind(k), n)
	}
	return b.String()
}

// Log returns a copy of the entries of finished requests, in the order they
// finished.
//
// A client has its answer a moment before the proxy's handler returns and
// logs it, so Log first waits briefly (at most 100 ms, for requests held
// by a hang) until no request is unlogged.
func (p *Proxy) Log() []Entry {
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		p.mu.Lock()
		n := p.active
		p.mu.Unlock()
		if n == 0 {
			break
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Entry, len(p.log))
	copy(out, p.log)
	return out
}

// Matchers for Rule.Match. Requests are path-style: /BUCKET/KEY.

// Key is the object key a path-style request is for, "" for a
// bucket-level request.
func Key(r *http.Request) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return key
}

// IsCopy reports a server-side copy (CopyObject or UploadPartCopy).
func IsCopy(r *http.Request) bool { return r.Header.Get("x-amz-copy-source") != "" }

// IsMultipart reports a request that belongs to a multipart upload
// (create, part, complete, abort).
func IsMultipart(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has("uploads") || q.Has("uploadId") || q.Has("partNumber")
}

// Method matches requests with one of the methods.
func Method(methods ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		return false
	}
}

// KeyPrefix matches requests for keys starting with prefix.
func KeyPrefix(prefix string) func(*http.Request) bool {
	return func(r *http.Request) bool { return strings.HasPrefix(Key(r), prefix) }
}

// And matches when every matcher does.
func And(ms ...func(*http.Request) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, m := range ms {
			if !m(r) {
				return false
			}
		}
		return true
	}
}

// plan is the fate of one request, decided when it arrives.
type plan struct {
	delay    time.Duration
	hang     bool
	terminal Kind // -1: none
	code     string
	entry    *Entry
	w        http.ResponseWriter
}

type planKey struct{}

func (p *Proxy) decide(r *http.Request) *plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	pl := &plan{terminal: -1}
	if p.paused {
		pl.terminal = DropBefore
		p.counts[DropBefore]++
		return pl
	}
	for _, rule := range p.rules {
		if rule.Match != nil && !rule.Match(r) {
			continue
		}
		if rule.Prob > 0 && p.rng.Float64() >= rule.Prob {
			continue
		}
		switch rule.Kind {
		case Delay:
			d := rule.MinDelay
			if span := rule.MaxDelay - rule.MinDelay; span > 0 {
				d += time.Duration(p.rng.Int64N(int64(span) + 1))
			}
			pl.delay += d
		case Hang:
			pl.hang = true
		case Error503, Error503After, DropBefore, DropAfter:
			if pl.terminal >= 0 {
				continue // the first terminal fault wins
			}
			pl.terminal = rule.Kind
			pl.code = rule.Code
		default:
			continue
		}
		p.counts[rule.Kind]++
	}
	return pl
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	pl := p.decide(r)
	e := &Entry{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		CopySource: r.Header.Get("x-amz-copy-source"), Conditions: conditions(r.Header), Start: time.Now()}
	pl.entry, pl.w = e, w
	p.mu.Lock()
	p.active++
	p.mu.Unlock()
	defer p.finish(e)
	if pl.delay > 0 {
		e.Faults = append(e.Faults, Delay)
		t := time.NewTimer(pl.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if pl.hang {
		e.Faults = append(e.Faults, Hang)
		// The server notices a client hanging up only once the body is
		// read, so read it now and forward the copy later.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.hanging++
		release := p.release
		p.mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		p.mu.Lock()
		p.hanging--
		p.mu.Unlock()
		if r.Context().Err() != nil {
			return
		}
	}
	switch pl.terminal {
	case DropBefore:
		e.Faults = append(e.Faults, DropBefore)
		p.finish(e) // logged before the client can see the drop
		drop(w)
		return
	case Error503:
		e.Faults = append(e.Faults, Error503)
		io.Copy(io.Discard, r.Body)
		e.Status = http.StatusServiceUnavailable
		writeS3Error(w, r, pl.code, p.requestID())
		return
	}
	e.Forwarded = true
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), planKey{}, pl)))
}

var conditionHeaders = []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
	"X-Amz-Copy-Source-If-Match", "X-Amz-Copy-Source-If-None-Match",
	"X-Amz-Copy-Source-If-Modified-Since", "X-Amz-Copy-Source-If-Unmodified-Since"}

func conditions(h http.Header) []string {
	var out []string
	for _, name := range conditionHeaders {
		if v := h.Get(name); v != "" {
			out = append(out, name+": "+v)
		}
	}
	return out
}

// finish logs e once; a dropped request is logged before its connection
// closes, so a client that saw the drop finds it in the log.
func (p *Proxy) finish(e *Entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !e.End.IsZero() {
		return
	}
	e.End = time.Now()
	p.log = append(p.log, *e)
	p.active--
}

func (p *Proxy) requestID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("FAULTPROXY%08d", p.seq)
}

// errFault makes the reverse proxy hand an "after" fault to errorHandler.
var errFault = errors.New("faultproxy: injected fault")

func (p *Proxy) modifyResponse(resp *http.Response) error {
	pl := resp.Request.Context().Value(planKey{}).(*plan)
	pl.entry.Upstream = resp.StatusCode
	if pl.terminal != Error503After && pl.terminal != DropAfter {
		pl.entry.Status = resp.StatusCode
		return nil
	}
	// Let the server finish (its whole answer is read) before lying.
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return errFault
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	pl := r.Context().Value(planKey{}).(*plan)
	if !errors.Is(err, errFault) {
		if r.Context().Err() != nil {
			return // the client went away
		}
		pl.entry.Status = http.StatusBadGateway
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	pl.entry.Faults = append(pl.entry.Faults, pl.terminal)
	if pl.terminal == DropAfter {
		p.finish(pl.entry)
		drop(w)
		return
	}
	pl.entry.Status = http.StatusServiceUnavailable
	writeS3Error(w, r, pl.code, p.requestID())
}

// drop closes the client's connection without an answer, as a reset.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("faultproxy: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func writeS3Error(w http.ResponseWriter, r *http.Request, code, reqID string) {
	msg := "Please reduce your request rate."
	switch code {
	case "":
		code = "SlowDown"
	case "ServiceUnavailable":
		msg = "Service is unable to handle request."
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>%s</RequestId></Error>`,
		code, msg, r.URL.EscapedPath(), reqID)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("x-amz-request-id", reqID)
	h.Set("Retry-After", "1")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, body)
}
