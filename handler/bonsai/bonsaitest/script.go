package bonsaitest

import "errors"

// The statuses a session can have.
const (
	Running   = "RUNNING"
	Succeeded = "SUCCEEDED"
	Failed    = "FAILED"
	TimedOut  = "TIMED_OUT"
	Aborted   = "ABORTED"
)

// ErrUnknownSession is returned by Release and Finish for an id that names no session.
var ErrUnknownSession = errors.New("bonsaitest: no such session")

// Step is what the status polls of a session answer while the session is at the step.
type Step struct {
	// Status is the session's status; empty means Running. A session at a step whose status
	// is not Running has ended, and stays there.
	Status string
	// State is the stage reported while Running, such as "ProveSegments: 1/2".
	State string
	// ErrorMsg is the error_msg of a session that ended otherwise than Succeeded, such as
	// "Guest panicked: out of bounds".
	ErrorMsg string
	// Hold keeps the session at this step, whatever the number of polls, until the test
	// calls Release (the session moves to the next step) or Finish.
	Hold bool
}

func (s Step) status() string {
	if s.Status == "" {
		return Running
	}
	return s.Status
}

func (s Step) final() bool { return s.status() != Running }

// Script is the life of a session: each status poll answers the step the session is at, then
// moves it to the next, unless the step holds or has ended the session. The last step repeats.
// An empty Script is DefaultScript.
type Script []Step

// DefaultScript is the life of a session unless an option says otherwise: two polls answer
// RUNNING, the third SUCCEEDED.
func DefaultScript() Script {
	return Script{{State: "Setup"}, {State: "ProveSegments: 1/1"}, {Status: Succeeded}}
}

// HeldScript is a session that stays RUNNING until the test calls Release, after which it
// succeeds, or Finish.
func HeldScript() Script {
	return Script{{State: "ProveSegments: 0/1", Hold: true}, {Status: Succeeded}}
}

// EndScript is a session that answers RUNNING once, then ends with status and errorMsg.
func EndScript(status, errorMsg string) Script {
	return Script{{State: "Executor"}, {Status: status, ErrorMsg: errorMsg}}
}
