package bonsaitest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"
)

// Fault is a failure the Server serves in place of, or around, the next calls to a route.
// Set Status to answer an error; Drop to hang up without answering; DropAnswer to do what was
// asked and then hang up, so that the client cannot know it was done; Delay to answer late
// (alone, or before any of the others). The zero Fault answers 500.
type Fault struct {
	// Times is how many calls the fault serves; zero means 1.
	Times int
	// Status is the HTTP status answered, with a {"type":"InjectedFault","msg":...} body.
	Status int
	// RetryAfter, with Status, is sent as a Retry-After header, in whole seconds.
	RetryAfter time.Duration
	// Drop closes the connection before the call is handled. net/http's client sends a GET
	// once more by itself when a connection it reused is closed so, which the Server counts
	// as a second call (and serves the next fault).
	Drop bool
	// DropAnswer handles the call (creates the session, stores the upload), then closes the
	// connection instead of answering.
	DropAnswer bool
	// Delay holds the answer back this long, or until the client gives up or the Server is
	// closed.
	Delay time.Duration
}

// Inject queues f for the next calls to route, after the faults queued before it. Calls with
// wrong headers are refused before any fault applies.
func (s *Server) Inject(route Route, f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.Status == 0 && !f.Drop && !f.DropAnswer && f.Delay == 0 {
		f.Status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], f)
}

// nextFault takes one serving of the first fault queued for route.
func (s *Server) nextFault(route Route) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[route]
	if len(q) == 0 {
		return Fault{}, false
	}
	f := q[0]
	if q[0].Times--; q[0].Times == 0 {
		s.faults[route] = q[1:]
	}
	s.counts.Faults++
	s.notify()
	return f, true
}

// serveFault serves f for a call that handle would answer otherwise.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault, handle http.HandlerFunc) {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.closed:
			t.Stop()
			return
		}
	}
	switch {
	case f.Drop:
		hangUp(w)
	case f.DropAnswer:
		handle(httptest.NewRecorder(), r)
		hangUp(w)
	case f.Status != 0:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
		}
		writeError(w, f.Status, "InjectedFault", fmt.Sprintf("bonsaitest: injected %d", f.Status))
	default:
		handle(w, r)
	}
}

// hangUp closes the connection of a call without answering it.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("bonsaitest: the connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}
