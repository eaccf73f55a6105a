package bonsai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// request is one call of the API, tried as often as the Client's Retry allows.
type request struct {
	op     string // what errors call it: "GET /sessions/status/<uuid>", "PUT input upload"
	method string
	url    string
	body   []byte
	json   bool // body is JSON
	// replayable: sending the request twice does what sending it once does, so it may be
	// sent again after a connection failed with its outcome unknown.
	replayable bool
	limit      int64 // bound on the answer's size; 0 means maxJSON
}

// answer is a 2xx answer.
type answer struct {
	status int
	body   []byte
}

// send makes the call r, trying it again while the policy allows. It returns the 2xx answer,
// an *APIError, or the error of the last try.
func (c *Client) send(ctx context.Context, r request) (answer, error) {
	if err := c.Validate(); err != nil {
		return answer{}, err
	}
	if u, err := url.Parse(r.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may be presigned: say what is wrong, not what it is.
		return answer{}, fmt.Errorf("bonsai: %s: %w", r.op, errNoURL)
	}
	policy := c.Retry.withDefaults()
	for try := 1; ; try++ {
		a, err := c.try(ctx, r)
		if err == nil {
			return a, nil
		}
		if ctx.Err() != nil {
			return answer{}, fmt.Errorf("bonsai: %s: %w", r.op, ctx.Err())
		}
		delay, again := policy.next(try, r, err)
		if !again {
			if try > 1 {
				return answer{}, fmt.Errorf("%w (after %d tries)", err, try)
			}
			return answer{}, err
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return answer{}, fmt.Errorf("bonsai: %s: %w", r.op, ctx.Err())
		}
	}
}

// try sends r once and reads its answer.
func (c *Client) try(ctx context.Context, r request) (answer, error) {
	if t := c.timeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return answer{}, fmt.Errorf("bonsai: %s: %w", r.op, err)
	}
	req.Header.Set("x-api-key", c.APIKey)
	req.Header.Set("x-risc0-version", c.Version)
	if r.json {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("bonsai: %s: %w", r.op, withoutURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return answer{}, newAPIError(r.op, resp, text)
	}
	limit := r.limit
	if limit <= 0 {
		limit = maxJSON
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return answer{}, fmt.Errorf("bonsai: %s: read the answer: %w", r.op, withoutURL(err))
	}
	if int64(len(b)) > limit {
		return answer{}, fmt.Errorf("%w: %s: more than %d bytes", ErrTooLarge, r.op, limit)
	}
	return answer{status: resp.StatusCode, body: b}, nil
}

func newAPIError(op string, resp *http.Response, text []byte) *APIError {
	e := &APIError{Op: op, StatusCode: resp.StatusCode, Body: string(text)}
	var msg errorAnswer
	if json.Unmarshal(text, &msg) == nil {
		e.Type, e.Msg = msg.Type, msg.Msg
		if e.Msg == "" {
			e.Msg = msg.Message
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date. Zero if there is none.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// withoutURL drops the URL from the error of a request: the URLs the server hands out may
// carry credentials (presigned URLs), and errors end up in task records and logs.
func withoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultAttempts
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = DefaultBaseDelay
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = DefaultMaxDelay
	}
	r.MaxDelay = max(r.MaxDelay, r.BaseDelay)
	return r
}

// next says whether a call whose try-th try failed with err is tried again, and after how
// long.
func (r Retry) next(try int, req request, err error) (time.Duration, bool) {
	if try >= r.Attempts || !retryable(req, err) {
		return 0, false
	}
	delay := r.MaxDelay
	if try <= 30 {
		delay = min(r.BaseDelay<<(try-1), r.MaxDelay)
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.RetryAfter > 0 {
		if apiErr.RetryAfter > r.MaxDelay {
			return 0, false // longer than a call should wait: the task waits instead
		}
		delay = max(delay, apiErr.RetryAfter)
	}
	return delay, true
}

// retryable reports whether a call that failed with err may be tried again.
func retryable(req request, err error) bool {
	if errors.Is(err, ErrTooLarge) {
		return false
	}
	apiErr, ok := errors.AsType[*APIError](err)
	if !ok {
		// No answer: the connection failed, or the try ran out of time. The server may have
		// done what was asked.
		return req.replayable
	}
	switch code := apiErr.StatusCode; {
	case code == http.StatusTooManyRequests, code == http.StatusInternalServerError, code == http.StatusServiceUnavailable:
		return true // the server says it did not do it
	case code == http.StatusBadGateway, code == http.StatusGatewayTimeout:
		return req.replayable // from a proxy, which may have passed the request on
	case code >= 500 && code != http.StatusNotImplemented:
		return req.replayable
	}
	return false
}
