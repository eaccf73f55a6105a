package bonsai

import (
	"encoding/json"
	"time"
)

// Status is the state of a session as the server reports it.
type Status string

// The statuses of a session. Self-hosted Bento reports only Running, Succeeded and Failed.
const (
	StatusRunning   Status = "RUNNING"
	StatusSucceeded Status = "SUCCEEDED"
	StatusFailed    Status = "FAILED"
	StatusTimedOut  Status = "TIMED_OUT"
	StatusAborted   Status = "ABORTED"
)

// Final reports whether a session in status s has ended: every status but Running. A status
// this package does not know is final too, as the Risc0 SDK's prover treats it.
func (s Status) Final() bool { return s != StatusRunning }

// SessionRequest is what POST /sessions/create asks for.
type SessionRequest struct {
	// Image is the image id, in lowercase hex.
	Image string
	// Input is the uuid of an uploaded input (Client.UploadInput).
	Input string
	// Assumptions are the uuids of uploaded receipts the guest relies on; nil means none.
	Assumptions []string
	// ExecuteOnly runs the guest without proving it: the session ends with a journal
	// (Client.ExecOnlyJournal) and no receipt.
	ExecuteOnly bool
	// ExecCycleLimit bounds the guest's execution, in cycles. Zero means no limit of the
	// request's own (sent as null: the server's limit applies).
	ExecCycleLimit uint64
}

// createRequest is SessionRequest on the wire. Every field is sent, the unset ones as null or
// [], as the Risc0 SDK sends them: servers decode the request into the SDK's own type.
type createRequest struct {
	Img            string   `json:"img"`
	Input          string   `json:"input"`
	Assumptions    []string `json:"assumptions"`
	ExecuteOnly    bool     `json:"execute_only"`
	ExecCycleLimit *uint64  `json:"exec_cycle_limit"`
}

func (r SessionRequest) wire() createRequest {
	w := createRequest{Img: r.Image, Input: r.Input, Assumptions: r.Assumptions, ExecuteOnly: r.ExecuteOnly}
	if w.Assumptions == nil {
		w.Assumptions = []string{}
	}
	if r.ExecCycleLimit > 0 {
		limit := r.ExecCycleLimit
		w.ExecCycleLimit = &limit
	}
	return w
}

// SessionStatus is the answer of GET /sessions/status/{uuid}. Fields the server sent as null
// are zero.
type SessionStatus struct {
	Status Status
	// ReceiptURL is where the receipt of a Succeeded session is downloaded from.
	ReceiptURL string
	// ErrorMsg says why a session that did not succeed ended.
	ErrorMsg string
	// State is the stage of a Running session: Setup, Executor, "ProveSegments: N/M",
	// Planner, Recursion, "RecursionJoin: N/M", Resolve, Finalize or InProgress on hosted
	// Bonsai; the open servers send "" or "init".
	State string
	// Elapsed is how long the session has run, if the server says.
	Elapsed time.Duration
	// Stats are the cycle counts of a Succeeded session, if the server says.
	Stats *SessionStats
}

// SessionStats counts what a session ran.
type SessionStats struct {
	Segments    int    `json:"segments"`
	TotalCycles uint64 `json:"total_cycles"`
	Cycles      uint64 `json:"cycles"` // the guest's own cycles, a little below TotalCycles
}

// statusAnswer is SessionStatus on the wire.
type statusAnswer struct {
	Status      Status        `json:"status"`
	ReceiptURL  *string       `json:"receipt_url"`
	ErrorMsg    *string       `json:"error_msg"`
	State       *string       `json:"state"`
	ElapsedTime *float64      `json:"elapsed_time"` // seconds
	Stats       *SessionStats `json:"stats"`
}

func decodeStatus(body []byte) (SessionStatus, error) {
	var a statusAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return SessionStatus{}, err
	}
	st := SessionStatus{Status: a.Status, ReceiptURL: deref(a.ReceiptURL), ErrorMsg: deref(a.ErrorMsg),
		State: deref(a.State), Stats: a.Stats}
	if a.ElapsedTime != nil && *a.ElapsedTime > 0 {
		st.Elapsed = time.Duration(*a.ElapsedTime * float64(time.Second))
	}
	return st, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// The other answers of the API.
type (
	uploadAnswer struct{ URL, UUID string }
	urlAnswer    struct{ URL string }
	createAnswer struct{ UUID string }
	errorAnswer  struct{ Type, Msg, Message string }
)
