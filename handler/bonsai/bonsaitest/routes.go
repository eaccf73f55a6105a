package bonsaitest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
)

// checkHeaders refuses, with 401, every call without the expected x-api-key and
// x-risc0-version, and counts it.
func (s *Server) checkHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, version := r.Header.Get("x-api-key"), r.Header.Get("x-risc0-version")
		if key != s.APIKey || version != s.Version {
			s.mu.Lock()
			s.counts.HeaderFailures++
			s.notify()
			s.mu.Unlock()
			writeError(w, http.StatusUnauthorized, "Unauthorized",
				fmt.Sprintf("bonsaitest: want x-api-key %q and x-risc0-version %q", s.APIKey, s.Version))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// route counts the calls to route, and serves the faults injected for it before h.
func (s *Server) route(route Route, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counts.Calls[route]++
		s.notify()
		s.mu.Unlock()
		if f, ok := s.nextFault(route); ok {
			s.serveFault(w, r, f, h)
			return
		}
		h(w, r)
	}
}

func (s *Server) handlers() map[Route]http.HandlerFunc {
	return map[Route]http.HandlerFunc{
		RouteImageUpload: s.imageUpload,
		RouteImagePut:    s.imagePut,
		RouteInputUpload: s.inputUpload,
		RouteInputPut:    s.inputPut,
		RouteCreate:      s.create,
		RouteStatus:      s.status,
		RouteStop:        s.stop,
		RouteJournal:     s.journal,
		RouteReceipt:     s.receipt,
		RouteDownload:    s.download,
	}
}

func (s *Server) imageUpload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := hex.DecodeString(id); err != nil || id == "" {
		writeError(w, http.StatusBadRequest, "ImageInvalid", "the image name is invalid: "+id)
		return
	}
	s.mu.Lock()
	_, exists := s.images[id]
	s.mu.Unlock()
	if exists {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, map[string]string{"url": s.URL + "/images/upload/" + id})
}

func (s *Server) imagePut(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client left
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	if _, exists := s.images[id]; exists {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.images[id] = body
	s.counts.ImageUploads++
	s.notify()
}

func (s *Server) inputUpload(w http.ResponseWriter, r *http.Request) {
	id := uuid.NewString()
	writeJSON(w, map[string]string{"url": s.URL + "/inputs/upload/" + id, "uuid": id})
}

func (s *Server) inputPut(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inputs[r.PathValue("id")] = body
	s.counts.InputUploads++
	s.notify()
}

// create checks that the request has every field of the Risc0 SDK's ProofReq, null or not,
// as the servers that decode it into that type require.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "not a JSON object: "+err.Error())
		return
	}
	for _, f := range []string{"img", "input", "assumptions", "execute_only", "exec_cycle_limit"} {
		if _, ok := fields[f]; !ok {
			writeError(w, http.StatusBadRequest, "BadRequest", "missing field "+f)
			return
		}
	}
	var req struct {
		Img            string    `json:"img"`
		Input          string    `json:"input"`
		Assumptions    *[]string `json:"assumptions"`
		ExecuteOnly    bool      `json:"execute_only"`
		ExecCycleLimit *uint64   `json:"exec_cycle_limit"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Assumptions == nil {
		writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("bad request %s: %v", body, err))
		return
	}

	s.mu.Lock()
	_, hasImage := s.images[req.Img]
	input, hasInput := s.inputs[req.Input]
	if !hasImage || !hasInput {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Missing", fmt.Sprintf("image %s stored: %t; input %s stored: %t", req.Img, hasImage, req.Input, hasInput))
		return
	}
	s.ranks++
	ss := &session{created: time.Now(), info: SessionInfo{
		ID: uuid.NewString(), N: s.ranks, Image: req.Img, InputID: req.Input, Input: input,
		Assumptions: *req.Assumptions, ExecuteOnly: req.ExecuteOnly, ExecCycleLimit: req.ExecCycleLimit,
		Status: Running,
	}}
	s.mu.Unlock()
	// The script is chosen without the lock, so that the test's function may call the Server.
	info := ss.info
	info.Input, info.Assumptions = slices.Clone(info.Input), slices.Clone(info.Assumptions)
	ss.script = slices.Clone(s.script(info))
	if len(ss.script) == 0 {
		ss.script = DefaultScript()
	}
	s.mu.Lock()
	s.sessions[ss.info.ID] = ss
	s.order = append(s.order, ss)
	s.counts.SessionsCreated++
	s.notify()
	s.mu.Unlock()
	writeJSON(w, map[string]string{"uuid": ss.info.ID})
}

// statusJSON is the answer of a status poll, with null for what does not apply.
type statusJSON struct {
	Status      string     `json:"status"`
	ReceiptURL  *string    `json:"receipt_url"`
	ErrorMsg    *string    `json:"error_msg"`
	State       *string    `json:"state"`
	ElapsedTime *float64   `json:"elapsed_time"`
	Stats       *statsJSON `json:"stats"`
}

type statsJSON struct {
	Segments    int    `json:"segments"`
	TotalCycles uint64 `json:"total_cycles"`
	Cycles      uint64 `json:"cycles"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ss, ok := s.sessions[r.PathValue("id")]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "SessionMissing", "no session "+r.PathValue("id"))
		return
	}
	st := ss.poll()
	s.counts.StatusPolls++
	s.notify()
	elapsed := time.Since(ss.created).Seconds()
	a := statusJSON{Status: st.status(), ElapsedTime: &elapsed}
	switch {
	case !st.final():
		a.State = &st.State
	case st.status() == Succeeded:
		cycles := uint64(1<<16 + len(ss.info.Input))
		a.Stats = &statsJSON{Segments: 1, TotalCycles: cycles, Cycles: cycles - 1<<10}
		if !ss.info.ExecuteOnly && !s.noReceiptURL {
			u := s.URL + "/receipts/stark/receipt/" + ss.info.ID
			a.ReceiptURL = &u
		}
	case st.ErrorMsg != "":
		a.ErrorMsg = &st.ErrorMsg
	}
	s.mu.Unlock()
	writeJSON(w, a)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "SessionMissing", "no session "+r.PathValue("id"))
		return
	}
	s.counts.Stops++
	ss.info.Stopped = true
	if !ss.step().final() {
		ss.end = &Step{Status: Aborted, ErrorMsg: "stopped by the user"}
	}
	s.notify()
}

// succeeded returns the session id if it has succeeded, with executeOnly as asked.
func (s *Server) succeeded(id string, executeOnly bool) (SessionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok || ss.step().status() != Succeeded || ss.info.ExecuteOnly != executeOnly {
		return SessionInfo{}, false
	}
	return ss.snapshot(), true
}

func (s *Server) receipt(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.succeeded(r.PathValue("id"), false); !ok {
		writeError(w, http.StatusNotFound, "ReceiptMissing", "receipt does not exist: "+r.PathValue("id"))
		return
	}
	writeJSON(w, map[string]string{"url": s.URL + "/receipts/stark/receipt/" + r.PathValue("id")})
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	info, ok := s.succeeded(r.PathValue("id"), false)
	if !ok {
		writeError(w, http.StatusNotFound, "ReceiptMissing", "receipt does not exist: "+r.PathValue("id"))
		return
	}
	s.served()
	_, _ = w.Write(Receipt(info.Image, info.Input))
}

func (s *Server) journal(w http.ResponseWriter, r *http.Request) {
	info, ok := s.succeeded(r.PathValue("id"), true)
	if !ok {
		writeError(w, http.StatusNotFound, "JournalMissing", "preflight journal does not exist: "+r.PathValue("id"))
		return
	}
	s.served()
	_, _ = w.Write(Journal(info.Image, info.Input))
}

func (s *Server) served() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Downloads++
	s.notify()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers as the open servers do: {"type","msg"}.
func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"type": typ, "msg": msg})
}
