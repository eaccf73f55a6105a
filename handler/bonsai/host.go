package bonsai

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
)

// Defaults of a Host's zero fields.
const (
	DefaultPollInterval = time.Second      // the Risc0 SDK's BONSAI_POLL_INTERVAL_MS default
	DefaultStopTimeout  = 10 * time.Second // for the calls made after the attempt's ctx ended
)

// Host proves inputs on a Bonsai server, one session per proof. It is a handler.Host; the zero
// value of every field but Client and ImageID is usable. A Host holds no state of its own, so
// it is safe for concurrent use.
type Host[I any] struct {
	// Client calls the server. Required.
	Client *Client
	// ImageID is the image to prove: the guest's image id, 64 hex digits (a "0x" prefix and
	// upper case are accepted). Required.
	ImageID string
	// ELF is the guest program, uploaded only when the server does not hold ImageID yet. Nil
	// means the image must be on the server already: a Host that finds it missing fails the
	// task permanently.
	ELF []byte
	// Encode turns an input into the bytes the guest reads. Nil means the input is a []byte,
	// or a string, given as it is. Its errors fail the task permanently.
	Encode func(input I) ([]byte, error)
	// ExecuteOnly runs the guest without proving it: the proof has no Receipt, and the
	// guest's journal as PublicValues.
	ExecuteOnly bool
	// ExecCycleLimit bounds the guest's execution, in cycles; zero means the server's limit.
	ExecCycleLimit uint64
	// Backend is the proof's Backend. Empty means paas.BackendRisc0.
	Backend paas.Backend
	// PollInterval is how often a running session's status is asked. Zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// StopTimeout bounds the calls a Host makes after the attempt's ctx has ended: saving the
	// checkpoint of a session it has just created, and stopping a session on a Cancel. Zero
	// means DefaultStopTimeout.
	StopTimeout time.Duration
	// Classify decides what a session that ended without a receipt (FAILED, TIMED_OUT,
	// ABORTED) means for the task. Nil means DefaultClassify. Return paas.Restart(e) to try a
	// new session, paas.Permanent(e) to fail the task, paas.RetryAfter(paas.Restart(e), d) to
	// try a new session after d. A plain error keeps the checkpoint: the next attempt then
	// finds the same ended session, which is rarely what is meant. Nil counts as
	// DefaultClassify's answer.
	Classify func(e *SessionError) error
}

var _ handler.Host[[]byte] = (*Host[[]byte])(nil)

// Validate reports an error wrapping handler.ErrIncomplete that names what is missing or
// malformed, or nil. Prove fails permanently with it.
func (h *Host[I]) Validate() error {
	if h.Client == nil {
		return fmt.Errorf("%w: bonsai: Host has no Client", handler.ErrIncomplete)
	}
	if err := h.Client.Validate(); err != nil {
		return err
	}
	if h.ImageID == "" {
		return fmt.Errorf("%w: bonsai: Host has no ImageID", handler.ErrIncomplete)
	}
	if id := h.image(); len(id) != 64 || !isHex(id) {
		return fmt.Errorf("%w: bonsai: Host's ImageID %q is not 64 hex digits", handler.ErrIncomplete, h.ImageID)
	}
	return nil
}

// Prove proves input in a session on the server and returns its receipt. It implements
// handler.Host.
//
// With a task in ctx (paas.TaskFromContext: the service gives every handler one), the session
// is saved as the task's checkpoint before it is first polled, and a task whose checkpoint
// names a session polls that session instead of creating one: see the package doc for what
// happens when ctx ends, and for how errors are sorted.
func (h *Host[I]) Prove(ctx context.Context, input I) (paas.Proof, error) {
	if err := h.Validate(); err != nil {
		return paas.Proof{}, paas.Permanent(err)
	}
	task, ok := paas.TaskFromContext(ctx)
	if ok && len(task.Checkpoint) > 0 {
		cp, err := ParseCheckpoint(task.Checkpoint)
		switch {
		case err != nil:
			return paas.Proof{}, paas.Restart(fmt.Errorf("bonsai: the task's checkpoint: %w", err))
		case cp.Image != "" && cp.Image != h.image():
			return paas.Proof{}, paas.Restart(fmt.Errorf("bonsai: the checkpointed session %s proves image %s, not %s", cp.Session, cp.Image, h.image()))
		}
		return h.follow(ctx, cp.Session, true)
	}
	in, err := h.encode(input)
	if err != nil {
		return paas.Proof{}, paas.Permanent(fmt.Errorf("bonsai: encode input: %w", err))
	}
	session, err := h.create(ctx, in)
	if err != nil {
		return paas.Proof{}, err
	}
	if !ok || task.SaveCheckpoint == nil {
		return h.follow(ctx, session, false) // nobody could resume it: no checkpoint to keep
	}
	if err := h.checkpoint(ctx, task.SaveCheckpoint, session); err != nil {
		return paas.Proof{}, err
	}
	return h.follow(ctx, session, true)
}

// create uploads the image if the server lacks it, uploads the input and creates a session.
func (h *Host[I]) create(ctx context.Context, in []byte) (string, error) {
	image := h.image()
	if h.ELF == nil {
		has, err := h.Client.HasImage(ctx, image)
		if err != nil {
			return "", sortError(err)
		}
		if !has {
			return "", paas.Permanent(fmt.Errorf("bonsai: the server has no image %s, and the Host no ELF to upload", image))
		}
	} else if _, err := h.Client.UploadImage(ctx, image, h.ELF); err != nil {
		return "", sortError(err)
	}
	input, err := h.Client.UploadInput(ctx, in)
	if err != nil {
		return "", sortError(err)
	}
	// If ctx ends while this call is on its way, the session may exist without our knowing
	// its id; nothing can be done about that but to keep the window small.
	session, err := h.Client.CreateSession(ctx, SessionRequest{
		Image: image, Input: input, ExecuteOnly: h.ExecuteOnly, ExecCycleLimit: h.ExecCycleLimit,
	})
	if err != nil {
		return "", sortError(err)
	}
	return session, nil
}

// checkpoint saves session as the task's checkpoint, or stops it if it cannot.
func (h *Host[I]) checkpoint(ctx context.Context, save func(context.Context, []byte) error, session string) error {
	// The session is paid for from now on: record it even if ctx has just ended (a Cancel
	// or a stop while the session was being created), so that it can be found again.
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.stopTimeout())
	defer cancel()
	err := save(saveCtx, Checkpoint{Session: session, Image: h.image()}.Marshal())
	if err == nil {
		return nil
	}
	err = fmt.Errorf("bonsai: save the checkpoint of session %s: %w", session, err)
	// No attempt could find the session again: stop it rather than pay for a proof nobody
	// collects.
	if stopErr := h.stop(ctx, session); stopErr != nil {
		return fmt.Errorf("%w; stop it: %w", err, stopErr)
	}
	return err
}

// follow polls session until it ends, and returns its receipt. resumable says whether a later
// attempt can find the session again from the task's checkpoint.
func (h *Host[I]) follow(ctx context.Context, session string, resumable bool) (paas.Proof, error) {
	for {
		st, err := h.Client.SessionStatus(ctx, session)
		switch {
		case err == nil && st.Status == StatusSucceeded:
			return h.collect(ctx, session, st)
		case err == nil && st.Status.Final():
			return paas.Proof{}, h.classify(&SessionError{Session: session, Status: st.Status, Msg: st.ErrorMsg})
		case ctx.Err() != nil:
			return paas.Proof{}, h.ended(ctx, session, resumable)
		case errors.Is(err, ErrNotFound):
			return paas.Proof{}, paas.Restart(fmt.Errorf("bonsai: session %s is unknown to the server: %w", session, err))
		case err != nil:
			// Transient unless the key is wrong: the checkpoint stays, so the next attempt
			// polls this session again rather than paying for another.
			return paas.Proof{}, sortError(err)
		}
		t := time.NewTimer(h.pollInterval())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return paas.Proof{}, h.ended(ctx, session, resumable)
		}
	}
}

// collect downloads the receipt (or the journal) of a succeeded session.
func (h *Host[I]) collect(ctx context.Context, session string, st SessionStatus) (paas.Proof, error) {
	proof := paas.Proof{Backend: h.backend()}
	var err error
	switch {
	case h.ExecuteOnly:
		proof.PublicValues, err = h.Client.ExecOnlyJournal(ctx, session)
	case st.ReceiptURL != "":
		proof.Receipt, err = h.Client.Download(ctx, st.ReceiptURL)
	default:
		proof.Receipt, err = h.Client.Receipt(ctx, session)
	}
	if err == nil && !h.ExecuteOnly && len(proof.Receipt) == 0 {
		err = errors.New("the receipt is empty")
	}
	if err != nil {
		// Transient, even if ctx ended: the session has succeeded, and the next attempt
		// downloads its receipt from the checkpoint. There is nothing to stop.
		return paas.Proof{}, sortError(fmt.Errorf("bonsai: session %s succeeded, but its receipt: %w", session, err))
	}
	return proof, nil
}

// ended is what follow returns when ctx ends. A user's Cancel and an attempt's timeout stop
// the session: nobody will want its proof, or the next attempt starts afresh. Any other end
// (the service stopping, with paas.ErrInterrupted) leaves it running, for the next attempt to
// resume from the checkpoint, unless no attempt could: then it is stopped too.
func (h *Host[I]) ended(ctx context.Context, session string, resumable bool) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause != nil && cause != err {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	if resumable && !errors.Is(cause, paas.ErrCancelled) && !errors.Is(cause, paas.ErrTimedOut) {
		return fmt.Errorf("bonsai: session %s left running, to be resumed: %w", session, err)
	}
	if stopErr := h.stop(ctx, session); stopErr != nil {
		return fmt.Errorf("bonsai: session %s: %w; stop it: %w", session, err, stopErr)
	}
	return fmt.Errorf("bonsai: session %s stopped: %w", session, err)
}

// stop stops session, with a context of its own: ctx may have ended.
func (h *Host[I]) stop(ctx context.Context, session string) error {
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.stopTimeout())
	defer cancel()
	return h.Client.StopSession(stopCtx, session)
}

func (h *Host[I]) classify(e *SessionError) error {
	if h.Classify != nil {
		if err := h.Classify(e); err != nil {
			return err
		}
	}
	return DefaultClassify(e)
}

func (h *Host[I]) encode(input I) ([]byte, error) {
	if h.Encode != nil {
		return h.Encode(input)
	}
	switch in := any(input).(type) {
	case []byte:
		return in, nil
	case string:
		return []byte(in), nil
	}
	return nil, fmt.Errorf("an input of type %T needs an Encode", input)
}

// image returns ImageID as the API spells image ids: lowercase hex without "0x".
func (h *Host[I]) image() string {
	id := strings.ToLower(strings.TrimSpace(h.ImageID))
	return strings.TrimPrefix(id, "0x")
}

func (h *Host[I]) backend() paas.Backend {
	if h.Backend != "" {
		return h.Backend
	}
	return paas.BackendRisc0
}

func (h *Host[I]) pollInterval() time.Duration {
	if h.PollInterval > 0 {
		return h.PollInterval
	}
	return DefaultPollInterval
}

func (h *Host[I]) stopTimeout() time.Duration {
	if h.StopTimeout > 0 {
		return h.StopTimeout
	}
	return DefaultStopTimeout
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
