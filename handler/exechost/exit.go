package exechost

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// ExitError describes a program that exited non-zero or was killed by a signal.
type ExitError struct {
	Path string
	// Code is the exit code, or -1 if a signal ended the process.
	Code int
	// Signal is the signal that ended the process ("killed", "segmentation fault"), or empty.
	Signal string
	// Stderr is the tail of what the program wrote to stderr (at most DefaultStderrTail bytes).
	Stderr string
	err    error
}

func (e *ExitError) Error() string {
	how := fmt.Sprintf("exit status %d", e.Code)
	if e.Signal != "" {
		how = "killed by signal: " + e.Signal
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		return fmt.Sprintf("exechost: %s: %s: %s", e.Path, how, s)
	}
	return fmt.Sprintf("exechost: %s: %s", e.Path, how)
}

// Unwrap returns the *exec.ExitError of the process.
func (e *ExitError) Unwrap() error { return e.err }

func newExitError(path string, err *exec.ExitError, stderr string) *ExitError {
	e := &ExitError{Path: path, Code: err.ExitCode(), Stderr: shorten(stderr, DefaultStderrTail), err: err}
	var ws syscall.WaitStatus
	if st, ok := err.Sys().(syscall.WaitStatus); ok {
		ws = st
	}
	if ws.Signaled() {
		e.Signal = ws.Signal().String()
	}
	return e
}

// IsExit reports whether err is an *ExitError with one of codes.
func IsExit(err error, codes ...int) bool {
	e, ok := errors.AsType[*ExitError](err)
	if !ok {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}
