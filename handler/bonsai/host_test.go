package bonsai_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/bonsai"
	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
	"github.com/zkpaas/paas/handler/handlertest"
	"github.com/zkpaas/paas/store/memory"
)

func TestAHostProvesAndReturnsTheReceipt(t *testing.T) {
	srv := newServer(t)
	p, err := newHost(srv).Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	assert.Equal(t, paas.BackendRisc0, p.Backend)
	assert.Equal(t, bonsaitest.Receipt(imageID, []byte("block 1")), p.Receipt)
	c := srv.Counts()
	assert.Equal(t, 1, c.SessionsCreated)
	assert.Equal(t, 3, c.StatusPolls, "the default script: RUNNING twice, then SUCCEEDED")
	assert.Zero(t, c.Stops)
	assert.Zero(t, c.Calls[bonsaitest.RouteReceipt], "the status had the receipt's URL")
}

func TestWithoutAReceiptURLTheReceiptIsAskedFor(t *testing.T) {
	srv := newServer(t, bonsaitest.WithoutReceiptURL())
	p, err := newHost(srv).Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	assert.Equal(t, bonsaitest.Receipt(imageID, []byte("block 1")), p.Receipt)
	assert.Equal(t, 1, srv.Counts().Calls[bonsaitest.RouteReceipt])
}

func TestAnExecuteOnlySessionGivesTheJournal(t *testing.T) {
	srv := newServer(t)
	h := newHost(srv)
	h.ExecuteOnly = true
	p, err := h.Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	assert.Empty(t, p.Receipt)
	assert.Equal(t, bonsaitest.Journal(imageID, []byte("block 1")), p.PublicValues)
}

func TestEncodeGivesTheGuestItsBytes(t *testing.T) {
	srv := newServer(t)
	h := &bonsai.Host[int]{Client: newClient(srv), ImageID: imageID, ELF: guestELF, PollInterval: 1,
		Encode: func(n int) ([]byte, error) { return block{N: n}.input(), nil }}
	p, err := h.Prove(bounded(t), 7)
	require.NoError(t, err)
	assert.Equal(t, bonsaitest.Receipt(imageID, []byte("block 7")), p.Receipt)

	h.Encode = nil
	_, err = h.Prove(bounded(t), 7)
	assert.True(t, isPermanent(err), "an int needs an Encode: %v", err)
	h.Encode = func(int) ([]byte, error) { return nil, errors.New("cannot") }
	_, err = h.Prove(bounded(t), 7)
	assert.True(t, isPermanent(err), "%v", err)
	assert.Equal(t, 1, srv.Counts().SessionsCreated)
}

// run makes one attempt of proving block 1 with host, as the service would.
func run(t *testing.T, host handler.Host[[]byte], opts ...handlertest.Option) handlertest.Result {
	t.Helper()
	res, err := handlertest.Run(bounded(t), proofHandler(host, memory.NewProofStore()), block{N: 1}, paas.BackendRisc0, opts...)
	require.NoError(t, err)
	return res
}

func TestASessionEndedFailedTimedOutOrAbortedStartsAfresh(t *testing.T) {
	for _, end := range []bonsaitest.Step{
		{Status: bonsaitest.Failed, ErrorMsg: "prover node lost"},
		{Status: bonsaitest.TimedOut},
		{Status: bonsaitest.Aborted},
	} {
		srv := newServer(t, bonsaitest.WithScript(bonsaitest.EndScript(end.Status, end.ErrorMsg)))
		res := run(t, newHost(srv))
		assert.Equal(t, paas.Retrying, res.Outcome, "%s: %v", end.Status, res.Err)
		assert.True(t, res.Restart, "%s: the checkpoint is discarded", end.Status)
		assert.Nil(t, res.NextCheckpoint)
		e, ok := errors.AsType[*bonsai.SessionError](res.Err)
		require.True(t, ok)
		assert.Equal(t, bonsai.Status(end.Status), e.Status)
		assert.Equal(t, end.ErrorMsg, e.Msg)
	}
}

func TestAGuestThatFailsFailsTheTaskPermanently(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.EndScript(bonsaitest.Failed, "Guest panicked: the block has no parent")))
	res := run(t, newHost(srv))
	assert.Equal(t, paas.Failed, res.Outcome, "%v", res.Err)
	assert.Contains(t, res.LastError, "Guest panicked: the block has no parent")
	assert.True(t, bonsai.IsGuestFailure("guest exited with code 3"))
	assert.False(t, bonsai.IsGuestFailure("out of GPU memory"))
}

func TestClassifyDecidesWhatAnEndedSessionMeans(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.EndScript(bonsaitest.TimedOut, "")))
	h := newHost(srv)
	var seen []*bonsai.SessionError
	h.Classify = func(e *bonsai.SessionError) error {
		seen = append(seen, e)
		return paas.Permanent(e) // this guest always takes too long
	}
	res := run(t, h)
	assert.Equal(t, paas.Failed, res.Outcome)
	require.Len(t, seen, 1)
	assert.Equal(t, srv.Sessions()[0].ID, seen[0].Session)
}

func TestTheSessionIsCheckpointedBeforeItIsFirstPolled(t *testing.T) {
	srv := newServer(t)
	saved := &checkpoints{before: func() error {
		c := srv.Counts()
		if c.SessionsCreated != 1 || c.Calls[bonsaitest.RouteStatus] != 0 {
			return errors.New("saved at the wrong moment")
		}
		return nil
	}}
	_, err := newHost(srv).Prove(inTask(bounded(t), nil, saved), []byte("block 1"))
	require.NoError(t, err)
	require.Len(t, saved.list(), 1)
	assert.JSONEq(t, `{"v":1,"session":"`+srv.Sessions()[0].ID+`","image":"`+imageID+`"}`, string(saved.list()[0]))
}

func TestASessionWhoseCheckpointCannotBeSavedIsStopped(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
	saved := &checkpoints{before: func() error { return paas.ErrCheckpointRefused }}
	_, err := newHost(srv).Prove(inTask(bounded(t), nil, saved), []byte("block 1"))
	assert.ErrorIs(t, err, paas.ErrCheckpointRefused)
	c := srv.Counts()
	assert.Equal(t, 1, c.Stops)
	assert.Zero(t, c.StatusPolls)
	assert.Equal(t, bonsaitest.Aborted, srv.Sessions()[0].Status)
}

// startHeld starts proving block 1 with host in a task of ctx, on a session srv holds
// RUNNING, and returns once the session has been polled, with Prove's result to come.
func startHeld(t *testing.T, srv *bonsaitest.Server, ctx context.Context, saved *checkpoints) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := newHost(srv).Prove(inTask(ctx, nil, saved), []byte("block 1")); done <- err }()
	waitFor(t, srv, "the first poll", polled)
	return done
}

// A service stop leaves the session running; the next attempt, given the checkpoint, polls it
// to its end and creates none.
func TestAnInterruptedAttemptLeavesItsSessionForTheNextToResume(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
	ctx, cancel := context.WithCancelCause(bounded(t))
	saved := &checkpoints{}
	done := startHeld(t, srv, ctx, saved)
	cancel(paas.ErrInterrupted)
	err := <-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, paas.ErrInterrupted)
	assert.Contains(t, err.Error(), "left running")
	assert.Zero(t, srv.Counts().Stops)
	session := srv.Sessions()[0]
	assert.Equal(t, bonsaitest.Running, session.Status)

	require.NoError(t, srv.Release(session.ID))
	res := run(t, newHost(srv), handlertest.WithAttempt(2), handlertest.WithCheckpoint(saved.list()[0]))
	require.Equal(t, paas.Completed, res.Outcome, "%v", res.Err)
	c := srv.Counts()
	assert.Equal(t, 1, c.SessionsCreated)
	assert.Equal(t, 1, c.InputUploads, "a resumed attempt uploads nothing")
	assert.Equal(t, 1, c.Calls[bonsaitest.RouteImageUpload])
}

func TestACancelOrATimeoutStopsTheSession(t *testing.T) {
	for _, cause := range []error{paas.ErrCancelled, paas.ErrTimedOut} {
		srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
		ctx, cancel := context.WithCancelCause(bounded(t))
		done := startHeld(t, srv, ctx, &checkpoints{})
		cancel(cause)
		err := <-done
		assert.ErrorIs(t, err, cause)
		assert.Contains(t, err.Error(), "stopped")
		assert.Equal(t, 1, srv.Counts().Stops, "%v", cause)
		assert.Equal(t, bonsaitest.Aborted, srv.Sessions()[0].Status)
	}
}

// Outside the service nothing could resume the session: it is stopped whatever ended ctx.
func TestAHostWithoutATaskStopsItsSessionWhenCtxEnds(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
	ctx, cancel := context.WithCancel(bounded(t))
	done := make(chan error, 1)
	go func() { _, err := newHost(srv).Prove(ctx, []byte("block 1")); done <- err }()
	waitFor(t, srv, "the first poll", polled)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, 1, srv.Counts().Stops)
}

func TestAStopThatFailsIsReported(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
	srv.Inject(bonsaitest.RouteStop, bonsaitest.Fault{Status: 404}) // r0vm and Bento have no stop
	ctx, cancel := context.WithCancelCause(bounded(t))
	done := startHeld(t, srv, ctx, &checkpoints{})
	cancel(paas.ErrCancelled)
	err := <-done
	assert.ErrorIs(t, err, paas.ErrCancelled)
	assert.ErrorIs(t, err, bonsai.ErrNotFound)
}

func TestUselessCheckpointsStartAfresh(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		checkpoint []byte
		why        string
	}{
		{bonsai.Checkpoint{Session: "no-such-session", Image: imageID}.Marshal(), "unknown to the server"},
		{bonsai.Checkpoint{Session: "s", Image: strings.Repeat("ab", 32)}.Marshal(), "proves image abab"},
		{[]byte("req-1"), "not a checkpoint"},
		{[]byte(`{"v":2,"session":"s"}`), "version 2"},
	} {
		res := run(t, newHost(srv), handlertest.WithCheckpoint(tc.checkpoint))
		assert.Equal(t, paas.Retrying, res.Outcome, "%s: %v", tc.why, res.Err)
		assert.True(t, res.Restart, "%s: %v", tc.why, res.Err)
		assert.ErrorContains(t, res.Err, tc.why)
	}
	assert.Zero(t, srv.Counts().SessionsCreated)
}

func TestAHostMissingAFieldFailsPermanentlyWithoutACall(t *testing.T) {
	srv := newServer(t)
	for name, h := range map[string]*bonsai.Host[[]byte]{
		"no client":     {ImageID: imageID},
		"no key":        {Client: &bonsai.Client{BaseURL: srv.URL, Version: srv.Version}, ImageID: imageID},
		"no version":    {Client: &bonsai.Client{BaseURL: srv.URL, APIKey: srv.APIKey}, ImageID: imageID},
		"no base URL":   {Client: &bonsai.Client{APIKey: srv.APIKey, Version: srv.Version}, ImageID: imageID},
		"no image":      {Client: newClient(srv)},
		"a short image": {Client: newClient(srv), ImageID: "abcd"},
		"a bad image":   {Client: newClient(srv), ImageID: strings.Repeat("zz", 32)},
	} {
		_, err := h.Prove(bounded(t), []byte("block 1"))
		assert.ErrorIs(t, err, handler.ErrIncomplete, name)
		assert.True(t, isPermanent(err), "%s: %v", name, err)
	}
	assert.Zero(t, srv.Counts().HeaderFailures+len(srv.Counts().Calls))
}

func TestImageIDsAreSentAsTheAPISpellsThem(t *testing.T) {
	srv := newServer(t)
	h := newHost(srv)
	h.ImageID = "0x" + strings.ToUpper(imageID)
	_, err := h.Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	assert.Equal(t, imageID, srv.Sessions()[0].Image)
}

func TestCheckpointsRoundTrip(t *testing.T) {
	cp := bonsai.Checkpoint{Session: "9c7e5f0e", Image: imageID}
	assert.JSONEq(t, `{"v":1,"session":"9c7e5f0e","image":"`+imageID+`"}`, string(cp.Marshal()))
	back, err := bonsai.ParseCheckpoint(cp.Marshal())
	require.NoError(t, err)
	assert.Equal(t, cp, back)
	_, err = bonsai.ParseCheckpoint([]byte(`{"v":1}`))
	assert.Error(t, err)
}
