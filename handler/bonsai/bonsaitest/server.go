package bonsaitest

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"
)

// The headers a Server expects unless told otherwise.
const (
	DefaultAPIKey  = "bonsaitest-key"
	DefaultVersion = "3.0.0"
)

// Route names one route of the API, as a net/http pattern.
type Route string

// The routes of a Server. The upload and download URLs it hands out point back at itself, on
// Bento's paths.
const (
	RouteImageUpload Route = "GET /images/upload/{id}"
	RouteImagePut    Route = "PUT /images/upload/{id}"
	RouteInputUpload Route = "GET /inputs/upload"
	RouteInputPut    Route = "PUT /inputs/upload/{id}"
	RouteCreate      Route = "POST /sessions/create"
	RouteStatus      Route = "GET /sessions/status/{id}"
	RouteStop        Route = "GET /sessions/stop/{id}"
	RouteJournal     Route = "GET /sessions/exec_only_journal/{id}"
	RouteReceipt     Route = "GET /receipts/{id}"
	RouteDownload    Route = "GET /receipts/stark/receipt/{id}"
)

// Routes returns every Route.
func Routes() []Route {
	return []Route{RouteImageUpload, RouteImagePut, RouteInputUpload, RouteInputPut, RouteCreate,
		RouteStatus, RouteStop, RouteJournal, RouteReceipt, RouteDownload}
}

// Counts is what a Server has seen.
type Counts struct {
	// Calls counts the calls to each route that had the right headers, those a fault
	// answered included.
	Calls map[Route]int
	// HeaderFailures counts the calls refused with 401 for a missing or wrong x-api-key or
	// x-risc0-version, on any path.
	HeaderFailures int
	// Faults counts the calls a fault (Inject) served.
	Faults int
	// ImageUploads and InputUploads count the uploads stored.
	ImageUploads, InputUploads int
	// SessionsCreated counts the sessions created: what a real server bills.
	SessionsCreated int
	// StatusPolls counts the polls answered with a session's status.
	StatusPolls int
	// Stops counts the calls to stop a session that exists.
	Stops int
	// Downloads counts the receipts and journals served.
	Downloads int
}

// Option configures a Server.
type Option func(*Server)

// WithAPIKey sets the x-api-key the Server expects; DefaultAPIKey otherwise.
func WithAPIKey(key string) Option { return func(s *Server) { s.APIKey = key } }

// WithVersion sets the x-risc0-version the Server expects; DefaultVersion otherwise.
func WithVersion(v string) Option { return func(s *Server) { s.Version = v } }

// WithScript gives every session script; DefaultScript otherwise.
func WithScript(script Script) Option {
	return WithScriptFunc(func(SessionInfo) Script { return script })
}

// WithScriptFunc chooses the script of each session when it is created, from what it asks
// for: by its rank (SessionInfo.N), its image, its input.
func WithScriptFunc(f func(SessionInfo) Script) Option { return func(s *Server) { s.script = f } }

// WithImage stores an image before any call, as if uploaded earlier.
func WithImage(imageID string, elf []byte) Option {
	return func(s *Server) { s.images[imageID] = slices.Clone(elf) }
}

// WithoutReceiptURL leaves receipt_url out of the statuses (null), so that a client must ask
// GET /receipts/{uuid} for the receipt's URL.
func WithoutReceiptURL() Option { return func(s *Server) { s.noReceiptURL = true } }

// Server is a fake Bonsai API server on net/http/httptest, for tests: it checks the headers
// of every call, stores images and inputs, runs each session through a Script of statuses,
// serves deterministic receipts (Receipt), fails calls on request (Inject), and counts what
// it sees (Counts, WaitFor). Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL, such as "http://127.0.0.1:41234", for Client.BaseURL.
	URL string
	// APIKey and Version are the x-api-key and x-risc0-version every call must carry.
	APIKey, Version string

	srv       *httptest.Server
	closed    chan struct{} // closed by Close, to cut delays short
	closeOnce sync.Once

	script       func(SessionInfo) Script // set by options, then read only
	noReceiptURL bool

	mu       sync.Mutex // guards everything below
	images   map[string][]byte
	inputs   map[string][]byte // by uuid; nil until the PUT
	sessions map[string]*session
	order    []*session // in creation order
	ranks    int        // sessions being created or created: the last SessionInfo.N given
	faults   map[Route][]Fault
	counts   Counts
	changed  chan struct{} // closed and replaced at every change of counts or sessions
}

// SessionInfo describes a session of a Server.
type SessionInfo struct {
	ID string
	// N is the session's rank: 1 for the first created.
	N int
	// Image, InputID, Assumptions, ExecuteOnly and ExecCycleLimit are what the create asked
	// for; ExecCycleLimit is nil if it was sent as null.
	Image          string
	InputID        string
	Assumptions    []string
	ExecuteOnly    bool
	ExecCycleLimit *uint64
	// Input is the uploaded input.
	Input []byte
	// Status is the session's status now: what the next poll answers.
	Status string
	// Polls counts the polls of its status.
	Polls int
	// Stopped reports whether a stop was asked for it.
	Stopped bool
}

type session struct {
	info     SessionInfo
	script   Script
	at       int   // the step the session is at
	releases int   // Release calls not yet used to move past a held step
	end      *Step // set by Finish or a stop: the step the session ended at
	created  time.Time
}

// step returns the step the session is at.
func (ss *session) step() Step {
	if ss.end != nil {
		return *ss.end
	}
	return ss.script[ss.at]
}

// poll answers a status poll: it moves the session past a released hold, and returns the
// step it is at, then moves it on.
func (ss *session) poll() Step {
	for ss.end == nil && ss.script[ss.at].Hold && ss.releases > 0 && ss.at < len(ss.script)-1 {
		ss.releases--
		ss.at++
	}
	st := ss.step()
	if ss.end == nil && !st.Hold && !st.final() && ss.at < len(ss.script)-1 {
		ss.at++
	}
	ss.info.Polls++
	return st
}

// New starts a Server. Close it when done: t.Cleanup(srv.Close).
func New(opts ...Option) *Server {
	s := &Server{
		APIKey:   DefaultAPIKey,
		Version:  DefaultVersion,
		closed:   make(chan struct{}),
		script:   func(SessionInfo) Script { return DefaultScript() },
		images:   map[string][]byte{},
		inputs:   map[string][]byte{},
		sessions: map[string]*session{},
		faults:   map[Route][]Fault{},
		counts:   Counts{Calls: map[Route]int{}},
		changed:  make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	for route, h := range s.handlers() {
		mux.HandleFunc(string(route), s.route(route, h))
	}
	s.srv = httptest.NewServer(s.checkHeaders(mux))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, cutting delayed answers short, and waits for the calls in
// progress. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Counts returns what the server has seen so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countsLocked()
}

func (s *Server) countsLocked() Counts {
	c := s.counts
	c.Calls = maps.Clone(s.counts.Calls)
	return c
}

// WaitFor waits until cond holds for the server's counts, and returns them. It returns
// ctx's error, with the counts of the moment, if ctx ends first. cond is called with the
// server's lock held: it must not call the Server.
func (s *Server) WaitFor(ctx context.Context, cond func(Counts) bool) (Counts, error) {
	for {
		s.mu.Lock()
		c, changed := s.countsLocked(), s.changed
		ok := cond(c)
		s.mu.Unlock()
		if ok {
			return c, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return c, ctx.Err()
		}
	}
}

// Sessions returns the sessions created, in creation order.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	infos := make([]SessionInfo, len(s.order))
	for i, ss := range s.order {
		infos[i] = ss.snapshot()
	}
	return infos
}

// Session returns the session id, if there is one.
func (s *Server) Session(id string) (SessionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return SessionInfo{}, false
	}
	return ss.snapshot(), true
}

func (ss *session) snapshot() SessionInfo {
	info := ss.info
	info.Status = ss.step().status()
	info.Input = slices.Clone(info.Input)
	info.Assumptions = slices.Clone(info.Assumptions)
	return info
}

// Release lets session id past one held step of its script: from the next poll on, it
// answers the steps after it.
func (s *Server) Release(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return ErrUnknownSession
	}
	ss.releases++
	s.notify()
	return nil
}

// Finish ends session id now with status (Succeeded, Failed, TimedOut, Aborted) and
// errorMsg, whatever its script says.
func (s *Server) Finish(id, status, errorMsg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return ErrUnknownSession
	}
	ss.end = &Step{Status: status, ErrorMsg: errorMsg}
	s.notify()
	return nil
}

// notify wakes the callers of WaitFor. The caller holds mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}
