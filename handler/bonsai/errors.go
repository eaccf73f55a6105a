package bonsai

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zkpaas/paas"
)

var (
	// ErrTooLarge is wrapped by the error of a call whose answer is larger than the Client
	// allows (Client.MaxDownload for receipts and journals). The Host fails such a task
	// permanently: the same receipt would be as large next time.
	ErrTooLarge = errors.New("bonsai: answer too large")
	// ErrNotFound matches, with errors.Is, an *APIError of status 404: a session, receipt or
	// journal the server does not know.
	ErrNotFound = errors.New("bonsai: not found")
	// ErrUnauthorized matches, with errors.Is, an *APIError of status 401 or 403: a wrong or
	// missing API key. The Host fails such a task permanently.
	ErrUnauthorized = errors.New("bonsai: unauthorized")
)

// maxErrorBody bounds how much of an error answer an APIError keeps.
const maxErrorBody = 4 << 10

// APIError is a non-2xx answer of the server.
type APIError struct {
	// Op is the call, such as "GET /sessions/status/<uuid>", or "PUT input upload" for a
	// call to a URL the server handed out (kept out of the message: it may be presigned).
	Op string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Body is the text of the answer, at most 4 KiB of it.
	Body string
	// Type and Msg are the fields of the {"type","msg"} answers of the open servers (r0vm,
	// Bento), such as "ReceiptMissing"; empty if the answer was not one. Msg holds the
	// "message" of hosted Bonsai's {"message": "Forbidden"} too.
	Type, Msg string
	// RetryAfter is the delay the server asked for with a Retry-After header (429, 503), or 0.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bonsai: %s: %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	switch {
	case e.Type != "" && e.Msg != "":
		fmt.Fprintf(&b, ": %s: %s", e.Type, e.Msg)
	case e.Type != "" || e.Msg != "":
		fmt.Fprintf(&b, ": %s%s", e.Type, e.Msg)
	case strings.TrimSpace(e.Body) != "":
		fmt.Fprintf(&b, ": %s", strings.TrimSpace(e.Body))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) and errors.Is(err, ErrUnauthorized) hold for the
// statuses they name.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	}
	return false
}

// SessionError describes a session that ended without a receipt: FAILED, TIMED_OUT, ABORTED
// (or a status this package does not know).
type SessionError struct {
	Session string
	Status  Status
	// Msg is the session's error_msg, such as "Guest panicked: ...".
	Msg string
}

func (e *SessionError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("bonsai: session %s ended %s", e.Session, e.Status)
	}
	return fmt.Sprintf("bonsai: session %s ended %s: %s", e.Session, e.Status, e.Msg)
}

// guestFailures are the words, in lower case, by which the zkVM's error messages say that the
// guest itself failed: a panic, an exit with an error, a fault of the guest's program.
var guestFailures = []string{"guest panicked", "guest exited", "guest fault"}

// IsGuestFailure reports whether a session's error message says that the guest program itself
// failed (risc0's "Guest panicked: ..." and the like), which a new session on the same image
// and input would repeat.
func IsGuestFailure(msg string) bool {
	msg = strings.ToLower(msg)
	for _, w := range guestFailures {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// DefaultClassify is the Host's Classify when it has none. A FAILED session whose message
// says the guest failed (IsGuestFailure) fails the task permanently: the guest would fail
// again on the same input, and every new session is paid for. Any other ended session
// (FAILED for another reason, TIMED_OUT, ABORTED) asks for a restart: its checkpoint is
// discarded and the next attempt creates a new session.
func DefaultClassify(e *SessionError) error {
	if e.Status == StatusFailed && IsGuestFailure(e.Msg) {
		return paas.Permanent(e)
	}
	return paas.Restart(e)
}

// sortError is the one place where the Host turns an error of the Client into what the
// service makes of it: a bad key and an answer too large fail the task, a server that asked
// for time gets it, the rest is transient.
func sortError(err error) error {
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrTooLarge) {
		return paas.Permanent(err)
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.RetryAfter > 0 {
		return paas.RetryAfter(err, apiErr.RetryAfter)
	}
	return err
}
