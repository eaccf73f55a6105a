package bonsaitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkpaas/paas/handler/bonsai/bonsaitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const image = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func newServer(t *testing.T, opts ...bonsaitest.Option) *bonsaitest.Server {
	srv := bonsaitest.New(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// plain makes every call on a connection of its own, so that net/http does not send a GET
// again by itself after a dropped reused connection: each call here is one call there.
var plain = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// call makes a call to url with the server's headers, and returns the answer's status and
// body. A status of 0 means the connection failed.
func call(t *testing.T, srv *bonsaitest.Server, method, url string, body []byte) (int, []byte) {
	t.Helper()
	if !strings.HasPrefix(url, "http") {
		url = srv.URL + url
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("x-api-key", srv.APIKey)
	req.Header.Set("x-risc0-version", srv.Version)
	resp, err := plain.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func field(t *testing.T, body []byte, name string) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), "%s", body)
	s, _ := m[name].(string)
	return s
}

// create uploads the image and an input, and creates a session of them.
func create(t *testing.T, srv *bonsaitest.Server, input string) string {
	t.Helper()
	code, body := call(t, srv, "GET", "/images/upload/"+image, nil)
	if code == http.StatusOK {
		code, _ = call(t, srv, "PUT", field(t, body, "url"), []byte("elf"))
		require.Equal(t, http.StatusOK, code)
	}
	code, body = call(t, srv, "GET", "/inputs/upload", nil)
	require.Equal(t, http.StatusOK, code)
	inputID := field(t, body, "uuid")
	code, _ = call(t, srv, "PUT", field(t, body, "url"), []byte(input))
	require.Equal(t, http.StatusOK, code)
	code, body = call(t, srv, "POST", "/sessions/create",
		[]byte(`{"img":"`+image+`","input":"`+inputID+`","assumptions":[],"execute_only":false,"exec_cycle_limit":null}`))
	require.Equal(t, http.StatusOK, code, "%s", body)
	return field(t, body, "uuid")
}

func status(t *testing.T, srv *bonsaitest.Server, session string) map[string]any {
	t.Helper()
	code, body := call(t, srv, "GET", "/sessions/status/"+session, nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	return m
}

func TestCallsWithoutTheHeadersAreRefusedAndCounted(t *testing.T) {
	srv := newServer(t)
	for _, h := range []map[string]string{
		{},
		{"x-api-key": srv.APIKey},
		{"x-api-key": "other", "x-risc0-version": srv.Version},
	} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/inputs/upload", nil)
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, "Unauthorized", field(t, body, "type"))
	}
	c := srv.Counts()
	assert.Equal(t, 3, c.HeaderFailures)
	assert.Zero(t, c.Calls[bonsaitest.RouteInputUpload], "refused calls are not counted as calls")
}

func TestUploadsPointBackAtTheServerAndAStoredImageAnswers204(t *testing.T) {
	srv := newServer(t)
	code, body := call(t, srv, "GET", "/images/upload/"+image, nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, srv.URL+"/images/upload/"+image, field(t, body, "url"))
	create(t, srv, "block 1")
	code, _ = call(t, srv, "GET", "/images/upload/"+image, nil)
	assert.Equal(t, http.StatusNoContent, code)
	code, _ = call(t, srv, "GET", "/images/upload/not-hex", nil)
	assert.Equal(t, http.StatusBadRequest, code)
	c := srv.Counts()
	assert.Equal(t, 1, c.ImageUploads)
	assert.Equal(t, 1, c.InputUploads)
}

func TestACreateMustSendEveryFieldAndNameStoredUploads(t *testing.T) {
	srv := newServer(t, bonsaitest.WithImage(image, []byte("elf")))
	for _, body := range []string{
		`{"img":"` + image + `","input":"x","assumptions":[],"execute_only":false}`, // no exec_cycle_limit
		`{"img":"` + image + `","input":"x","assumptions":null,"execute_only":false,"exec_cycle_limit":null}`,
		`not json`,
	} {
		code, _ := call(t, srv, "POST", "/sessions/create", []byte(body))
		assert.Equal(t, http.StatusBadRequest, code, body)
	}
	code, body := call(t, srv, "POST", "/sessions/create",
		[]byte(`{"img":"`+image+`","input":"never-uploaded","assumptions":[],"execute_only":false,"exec_cycle_limit":null}`))
	assert.Equal(t, http.StatusNotFound, code, "%s", body)
	assert.Zero(t, srv.Counts().SessionsCreated)
}

func TestASessionFollowsItsScript(t *testing.T) {
	srv := newServer(t)
	session := create(t, srv, "block 1")
	for _, want := range []string{"RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"} {
		st := status(t, srv, session)
		assert.Equal(t, want, st["status"])
		if want == "SUCCEEDED" {
			code, receipt := call(t, srv, "GET", st["receipt_url"].(string), nil)
			require.Equal(t, http.StatusOK, code)
			assert.Equal(t, bonsaitest.Receipt(image, []byte("block 1")), receipt)
			assert.Nil(t, st["error_msg"])
			assert.NotNil(t, st["stats"])
		} else {
			assert.Nil(t, st["receipt_url"], "null while running")
		}
	}
	info, ok := srv.Session(session)
	require.True(t, ok)
	assert.Equal(t, 4, info.Polls)
	assert.Equal(t, bonsaitest.Succeeded, info.Status)
}

func TestAHeldSessionRunsUntilReleasedOrFinished(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
	released, finished := create(t, srv, "block 1"), create(t, srv, "block 2")
	for range 5 {
		assert.Equal(t, "RUNNING", status(t, srv, released)["status"])
	}
	require.NoError(t, srv.Release(released))
	assert.Equal(t, "SUCCEEDED", status(t, srv, released)["status"])

	require.NoError(t, srv.Finish(finished, bonsaitest.Failed, "Guest panicked: no"))
	st := status(t, srv, finished)
	assert.Equal(t, "FAILED", st["status"])
	assert.Equal(t, "Guest panicked: no", st["error_msg"])
	code, _ := call(t, srv, "GET", "/receipts/"+finished, nil)
	assert.Equal(t, http.StatusNotFound, code)
	assert.ErrorIs(t, srv.Release("no-such-session"), bonsaitest.ErrUnknownSession)
}

func TestAStopAbortsARunningSession(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScript(bonsaitest.HeldScript()))
	session := create(t, srv, "block 1")
	code, _ := call(t, srv, "GET", "/sessions/stop/"+session, nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ABORTED", status(t, srv, session)["status"])
	code, _ = call(t, srv, "GET", "/sessions/stop/no-such-session", nil)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, 1, srv.Counts().Stops)
}

func TestAScriptIsChosenPerSession(t *testing.T) {
	srv := newServer(t, bonsaitest.WithScriptFunc(func(s bonsaitest.SessionInfo) bonsaitest.Script {
		if s.N == 2 {
			return bonsaitest.Script{{Status: bonsaitest.TimedOut}}
		}
		return bonsaitest.Script{{Status: bonsaitest.Succeeded}}
	}))
	first, second := create(t, srv, "a"), create(t, srv, "b")
	assert.Equal(t, "SUCCEEDED", status(t, srv, first)["status"])
	assert.Equal(t, "TIMED_OUT", status(t, srv, second)["status"])
}

func TestFaultsAreServedInOrderThenTheRouteWorks(t *testing.T) {
	srv := newServer(t)
	srv.Inject(bonsaitest.RouteInputUpload, bonsaitest.Fault{Status: 503, Times: 2, RetryAfter: 3 * time.Second})
	srv.Inject(bonsaitest.RouteInputUpload, bonsaitest.Fault{Drop: true})
	srv.Inject(bonsaitest.RouteInputUpload, bonsaitest.Fault{})
	var codes []int
	for range 5 {
		code, _ := call(t, srv, "GET", "/inputs/upload", nil)
		codes = append(codes, code)
	}
	assert.Equal(t, []int{503, 503, 0, 500, 200}, codes)
	c := srv.Counts()
	assert.Equal(t, 4, c.Faults)
	assert.Equal(t, 5, c.Calls[bonsaitest.RouteInputUpload])
}

func TestADroppedAnswerStillCreatesTheSession(t *testing.T) {
	srv := newServer(t, bonsaitest.WithImage(image, []byte("elf")))
	_, body := call(t, srv, "GET", "/inputs/upload", nil)
	call(t, srv, "PUT", field(t, body, "url"), []byte("in"))
	srv.Inject(bonsaitest.RouteCreate, bonsaitest.Fault{DropAnswer: true})
	code, _ := call(t, srv, "POST", "/sessions/create",
		[]byte(`{"img":"`+image+`","input":"`+field(t, body, "uuid")+`","assumptions":[],"execute_only":false,"exec_cycle_limit":null}`))
	assert.Zero(t, code, "no answer")
	assert.Equal(t, 1, srv.Counts().SessionsCreated)
}

func TestADelayedAnswerEndsWithTheServer(t *testing.T) {
	srv := bonsaitest.New()
	srv.Inject(bonsaitest.RouteInputUpload, bonsaitest.Fault{Delay: time.Hour})
	done := make(chan int, 1)
	go func() { code, _ := call(t, srv, "GET", "/inputs/upload", nil); done <- code }()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := srv.WaitFor(ctx, func(c bonsaitest.Counts) bool { return c.Faults == 1 })
	require.NoError(t, err)
	srv.Close() // does not wait an hour
	<-done
	srv.Close() // a second Close is a no-op
}

func TestWaitForEndsWithItsContext(t *testing.T) {
	srv := newServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := srv.WaitFor(ctx, func(c bonsaitest.Counts) bool { return c.SessionsCreated > 0 })
	assert.ErrorIs(t, err, context.Canceled)
}
