package bonsai_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/bonsai"
	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
	"github.com/zkpaas/paas/handler/handlertest"
	"github.com/zkpaas/paas/store/memory"
)

func isPermanent(err error) bool { _, ok := errors.AsType[*paas.PermanentError](err); return ok }
func isRestart(err error) bool   { _, ok := errors.AsType[*paas.RestartError](err); return ok }

// The fake counts calls only when their headers are right, and refuses the others: so every
// route counted, and no failure, means every call carried both headers.
func TestEveryCallCarriesTheKeyAndTheVersion(t *testing.T) {
	srv := newServer(t)
	h := newHost(srv)
	ctx := bounded(t)
	_, err := h.Prove(ctx, []byte("block 1")) // uploads, create, polls, download
	require.NoError(t, err)
	session := srv.Sessions()[0].ID
	_, err = h.Client.Receipt(ctx, session) // GET /receipts/{uuid}, then the download
	require.NoError(t, err)
	require.NoError(t, h.Client.StopSession(ctx, session))
	h.ExecuteOnly = true
	_, err = h.Prove(ctx, []byte("block 2")) // the journal
	require.NoError(t, err)

	c := srv.Counts()
	assert.Zero(t, c.HeaderFailures)
	for _, route := range bonsaitest.Routes() {
		assert.NotZero(t, c.Calls[route], "no call to %s", route)
	}
}

func TestAWrongKeyOrVersionFailsTheTaskPermanently(t *testing.T) {
	srv := newServer(t)
	for _, wrong := range []func(*bonsai.Client){
		func(c *bonsai.Client) { c.APIKey = "not the key" },
		func(c *bonsai.Client) { c.Version = "0.1.0" },
	} {
		h := newHost(srv)
		wrong(h.Client)
		_, err := h.Prove(bounded(t), []byte("block 1"))
		assert.True(t, isPermanent(err), "%v", err)
		assert.ErrorIs(t, err, bonsai.ErrUnauthorized)
		apiErr, ok := errors.AsType[*bonsai.APIError](err)
		require.True(t, ok)
		assert.Equal(t, 401, apiErr.StatusCode)
		assert.Equal(t, "Unauthorized", apiErr.Type)
	}
	c := srv.Counts()
	assert.Equal(t, 2, c.HeaderFailures, "a 401 is not tried again")
	assert.Zero(t, c.SessionsCreated)
}

func TestTheImageIsUploadedOnlyWhenTheServerLacksIt(t *testing.T) {
	srv := newServer(t)
	h := newHost(srv)
	for _, in := range []string{"block 1", "block 2"} {
		_, err := h.Prove(bounded(t), []byte(in))
		require.NoError(t, err)
	}
	c := srv.Counts()
	assert.Equal(t, 2, c.Calls[bonsaitest.RouteImageUpload], "asked both times")
	assert.Equal(t, 1, c.Calls[bonsaitest.RouteImagePut], "uploaded once: the second ask answered 204")
	assert.Equal(t, 1, c.ImageUploads)

	stored := newServer(t, bonsaitest.WithImage(imageID, guestELF))
	_, err := newHost(stored).Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	assert.Zero(t, stored.Counts().Calls[bonsaitest.RouteImagePut])
}

func TestAMissingImageWithoutAnELFFailsPermanently(t *testing.T) {
	srv := newServer(t)
	h := newHost(srv)
	h.ELF = nil
	_, err := h.Prove(bounded(t), []byte("block 1"))
	assert.True(t, isPermanent(err), "%v", err)
	assert.ErrorContains(t, err, "no image "+imageID)
	assert.Zero(t, srv.Counts().SessionsCreated)
}

func TestATrailingSlashOfTheBaseURLIsDropped(t *testing.T) {
	srv := newServer(t)
	h := newHost(srv)
	h.Client.BaseURL = srv.URL + "//"
	_, err := h.Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
}

// The fake refuses a create that leaves a field out; the SDK sends them all, null or not.
func TestTheCreateSendsEveryFieldWithNullForUnset(t *testing.T) {
	srv := newServer(t)
	h := newHost(srv)
	_, err := h.Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	h.ExecuteOnly, h.ExecCycleLimit = true, 1<<20
	_, err = h.Prove(bounded(t), []byte("block 2"))
	require.NoError(t, err)

	s := srv.Sessions()
	require.Len(t, s, 2)
	assert.Equal(t, imageID, s[0].Image)
	assert.Equal(t, []byte("block 1"), s[0].Input)
	assert.Equal(t, []string{}, s[0].Assumptions)
	assert.False(t, s[0].ExecuteOnly)
	assert.Nil(t, s[0].ExecCycleLimit, "sent as null")
	assert.True(t, s[1].ExecuteOnly)
	require.NotNil(t, s[1].ExecCycleLimit)
	assert.Equal(t, uint64(1<<20), *s[1].ExecCycleLimit)
}

func TestServerErrorsAreTriedAgainAndOneSessionIsCreated(t *testing.T) {
	srv := newServer(t)
	srv.Inject(bonsaitest.RouteInputUpload, bonsaitest.Fault{Status: 500})
	srv.Inject(bonsaitest.RouteInputPut, bonsaitest.Fault{Status: 502})
	srv.Inject(bonsaitest.RouteStatus, bonsaitest.Fault{Status: 503, Times: 2})
	srv.Inject(bonsaitest.RouteDownload, bonsaitest.Fault{Status: 504})
	p, err := newHost(srv).Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	assert.Equal(t, bonsaitest.Receipt(imageID, []byte("block 1")), p.Receipt)
	c := srv.Counts()
	assert.Equal(t, 5, c.Faults)
	assert.Equal(t, 1, c.SessionsCreated)
}

func TestDroppedConnectionsWhilePollingAreTriedAgainAndOneSessionIsCreated(t *testing.T) {
	srv := newServer(t)
	srv.Inject(bonsaitest.RouteStatus, bonsaitest.Fault{Drop: true, Times: 2})
	srv.Inject(bonsaitest.RouteStatus, bonsaitest.Fault{DropAnswer: true})
	p, err := newHost(srv).Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	assert.Equal(t, bonsaitest.Receipt(imageID, []byte("block 1")), p.Receipt)
	c := srv.Counts()
	assert.Equal(t, 3, c.Faults)
	assert.Equal(t, 1, c.SessionsCreated)
	assert.Equal(t, 1, c.Calls[bonsaitest.RouteCreate])
}

// A create whose answer never came may have started a session: trying again could pay for two.
func TestACreateIsNotTriedAgainWhenItsOutcomeIsUnknown(t *testing.T) {
	for _, f := range []bonsaitest.Fault{
		{Drop: true},       // the connection failed before the server did anything
		{DropAnswer: true}, // the server created the session, and the answer was lost
		{Status: 502},      // a proxy's: it may have passed the create on
		{Status: 504},
	} {
		srv := newServer(t)
		srv.Inject(bonsaitest.RouteCreate, f)
		_, err := newHost(srv).Prove(bounded(t), []byte("block 1"))
		require.Error(t, err, "%+v", f)
		assert.False(t, isPermanent(err) || isRestart(err), "transient: %v", err)
		c := srv.Counts()
		assert.Equal(t, 1, c.Calls[bonsaitest.RouteCreate], "%+v: one try", f)
		assert.Equal(t, map[bool]int{true: 1, false: 0}[f.DropAnswer], c.SessionsCreated, "%+v", f)
	}
}

func TestACreateTheServerRefusedWith500Or503Or429IsTriedAgain(t *testing.T) {
	srv := newServer(t)
	for _, code := range []int{500, 503, 429} {
		srv.Inject(bonsaitest.RouteCreate, bonsaitest.Fault{Status: code})
	}
	_, err := newHost(srv).Prove(bounded(t), []byte("block 1"))
	require.NoError(t, err)
	c := srv.Counts()
	assert.Equal(t, 4, c.Calls[bonsaitest.RouteCreate])
	assert.Equal(t, 1, c.SessionsCreated)
}

func TestARetryAfterLongerThanTheClientWaitsIsLeftToTheService(t *testing.T) {
	srv := newServer(t)
	srv.Inject(bonsaitest.RouteInputUpload, bonsaitest.Fault{Status: 429, RetryAfter: time.Minute})
	_, err := newHost(srv).Prove(bounded(t), []byte("block 1"))
	after, ok := errors.AsType[*paas.RetryAfterError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, time.Minute, after.Delay)
	assert.Equal(t, 1, srv.Counts().Calls[bonsaitest.RouteInputUpload], "not waited for inside the call")
}

// The client gives up after its tries; the attempt fails transiently with its checkpoint
// kept, and the next attempt polls the same session: one session in all.
func TestGivingUpOnPollsKeepsTheSessionForTheNextAttempt(t *testing.T) {
	srv := newServer(t)
	srv.Inject(bonsaitest.RouteStatus, bonsaitest.Fault{Status: 503, Times: bonsai.DefaultAttempts})
	proofs := memory.NewProofStore()
	h := proofHandler(newHost(srv), proofs)
	b := block{N: 1}

	first, err := handlertest.Run(bounded(t), h, b, paas.BackendRisc0)
	require.NoError(t, err)
	assert.Equal(t, paas.Retrying, first.Outcome, "%v", first.Err)
	assert.False(t, first.Restart)
	assert.ErrorContains(t, first.Err, "after 5 tries")
	cp, err := bonsai.ParseCheckpoint(first.NextCheckpoint)
	require.NoError(t, err)
	assert.Equal(t, srv.Sessions()[0].ID, cp.Session)

	second, err := handlertest.Run(bounded(t), h, b, paas.BackendRisc0,
		handlertest.WithTaskID(first.Task.ID), handlertest.WithAttempt(2), handlertest.WithCheckpoint(first.NextCheckpoint))
	require.NoError(t, err)
	require.Equal(t, paas.Completed, second.Outcome, "%v", second.Err)
	p, err := proofs.Proof(bounded(t), first.Task.ID)
	require.NoError(t, err)
	assert.Equal(t, bonsaitest.Receipt(imageID, b.input()), p.Receipt)
	assert.Equal(t, 1, srv.Counts().SessionsCreated)
}

func TestAReceiptLargerThanMaxDownloadFailsPermanently(t *testing.T) {
	srv := newServer(t)
	h := newHost(srv)
	h.Client.MaxDownload = 16
	_, err := h.Prove(bounded(t), []byte("block 1"))
	assert.True(t, isPermanent(err), "%v", err)
	assert.ErrorIs(t, err, bonsai.ErrTooLarge)
	assert.Equal(t, 1, srv.Counts().Calls[bonsaitest.RouteDownload], "not tried again")
}

func TestAnAPIErrorCarriesTheServersTypeAndMsg(t *testing.T) {
	srv := newServer(t)
	_, err := newClient(srv).Receipt(bounded(t), "no-such-session")
	apiErr, ok := errors.AsType[*bonsai.APIError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, 404, apiErr.StatusCode)
	assert.Equal(t, "ReceiptMissing", apiErr.Type)
	assert.Contains(t, apiErr.Msg, "no-such-session")
	assert.ErrorIs(t, err, bonsai.ErrNotFound)
	assert.Equal(t, "GET /receipts/no-such-session", apiErr.Op)
	assert.Equal(t, 1, srv.Counts().Calls[bonsaitest.RouteReceipt], "a 404 is not tried again")
}

// The URLs the server hands out may be presigned: they stay out of errors, which end up in
// task records.
func TestUploadURLsStayOutOfErrors(t *testing.T) {
	srv := newServer(t)
	srv.Inject(bonsaitest.RouteInputPut, bonsaitest.Fault{Drop: true, Times: bonsai.DefaultAttempts})
	_, err := newClient(srv).UploadInput(bounded(t), []byte("block 1"))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), srv.URL)
	assert.Contains(t, err.Error(), "PUT input upload")
}

func TestACallEndsWithItsContext(t *testing.T) {
	srv := newServer(t)
	c := newClient(srv)
	srv.Inject(bonsaitest.RouteStatus, bonsaitest.Fault{Delay: time.Hour})
	ctx, cancel := context.WithCancel(bounded(t))
	done := make(chan error, 1)
	go func() { _, err := c.SessionStatus(ctx, "some-session"); done <- err }()
	waitFor(t, srv, "the call", func(c bonsaitest.Counts) bool { return c.Calls[bonsaitest.RouteStatus] == 1 })
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(waitLong):
		t.Fatal("the call outlived its context")
	}
}

func TestClientFromEnvReadsTheSDKsVariables(t *testing.T) {
	t.Setenv(bonsai.EnvAPIURL, "https://bento.internal:8081/")
	t.Setenv(bonsai.EnvAPIKey, "k")
	t.Setenv(bonsai.EnvTimeout, "")
	c, err := bonsai.ClientFromEnv("3.0.3")
	require.NoError(t, err)
	assert.Equal(t, bonsai.Client{BaseURL: "https://bento.internal:8081/", APIKey: "k", Version: "3.0.3"}, *c)

	t.Setenv(bonsai.EnvTimeout, "none")
	c, err = bonsai.ClientFromEnv("3.0.3")
	require.NoError(t, err)
	assert.Negative(t, c.Timeout)
	t.Setenv(bonsai.EnvTimeout, "1500")
	c, err = bonsai.ClientFromEnv("3.0.3")
	require.NoError(t, err)
	assert.Equal(t, 1500*time.Millisecond, c.Timeout)

	t.Setenv(bonsai.EnvTimeout, "soon")
	_, err = bonsai.ClientFromEnv("3.0.3")
	assert.ErrorIs(t, err, handler.ErrIncomplete)
	t.Setenv(bonsai.EnvTimeout, "")
	t.Setenv(bonsai.EnvAPIKey, "")
	_, err = bonsai.ClientFromEnv("3.0.3")
	assert.ErrorIs(t, err, handler.ErrIncomplete)
	assert.ErrorContains(t, err, bonsai.EnvAPIKey)
}
