package bonsai

import (
	"encoding/json"
	"errors"
	"fmt"
)

// checkpointVersion is the version of the checkpoint encoding that this package writes.
const checkpointVersion = 1

// Checkpoint is what a Host saves as a task's checkpoint once a session exists: the session,
// so that the next attempt, even in another process after a crash, polls it instead of paying
// for another, and the image it proves, so that a Host configured with another image does not
// take its receipt. It is stored as JSON, {"v":1,"session":"<uuid>","image":"<hex>"}, which an
// operator can read in the task's record.
type Checkpoint struct {
	Session string
	Image   string
}

type checkpointJSON struct {
	V       int    `json:"v"`
	Session string `json:"session"`
	Image   string `json:"image,omitempty"`
}

// errBadCheckpoint is wrapped by the error of ParseCheckpoint.
var errBadCheckpoint = errors.New("bonsai: not a checkpoint of this package")

// Marshal encodes the checkpoint, as the Host saves it.
func (c Checkpoint) Marshal() []byte {
	b, err := json.Marshal(checkpointJSON{V: checkpointVersion, Session: c.Session, Image: c.Image})
	if err != nil {
		panic(err) // two strings always encode
	}
	return b
}

// ParseCheckpoint decodes a checkpoint saved by a Host. It fails for bytes that are not one,
// of a version it does not know, or without a session.
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	var c checkpointJSON
	if err := json.Unmarshal(b, &c); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %w", errBadCheckpoint, err)
	}
	switch {
	case c.V != checkpointVersion:
		return Checkpoint{}, fmt.Errorf("%w: version %d, want %d", errBadCheckpoint, c.V, checkpointVersion)
	case c.Session == "":
		return Checkpoint{}, fmt.Errorf("%w: no session", errBadCheckpoint)
	}
	return Checkpoint{Session: c.Session, Image: c.Image}, nil
}
