package bonsai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zkpaas/paas/handler"
)

// The environment variables of the Risc0 SDK that ClientFromEnv reads.
const (
	EnvAPIURL  = "BONSAI_API_URL"
	EnvAPIKey  = "BONSAI_API_KEY"
	EnvTimeout = "BONSAI_TIMEOUT_MS" // milliseconds, or "none"
)

// Defaults of a Client's zero fields.
const (
	DefaultTimeout     = 30 * time.Second // the Risc0 SDK's
	DefaultMaxDownload = 256 << 20        // 256 MiB: a receipt of many segments
	DefaultAttempts    = 5
	DefaultBaseDelay   = 250 * time.Millisecond
	DefaultMaxDelay    = 10 * time.Second
)

// maxJSON bounds the small JSON answers (an upload URL, a session's status).
const maxJSON = 4 << 20

// Client calls the Bonsai REST API: hosted Bonsai, or a server that speaks its API, such as
// Boundless's self-hosted Bento or r0vm's. Its zero fields but BaseURL, APIKey and Version
// are usable; it holds no state, so it is safe for concurrent use.
//
// Every call sends the x-api-key and x-risc0-version headers, including the uploads to and
// downloads from the URLs the server hands out, as the Risc0 SDK does. A call is tried again,
// after a delay growing as Retry says, when the server answers 429 or 5xx and, for the calls
// that are safe to repeat (every GET and PUT), when the connection fails. See CreateSession
// for why it is not. Answers that are not 2xx are *APIError.
type Client struct {
	// BaseURL is the API's URL, such as "https://api.bonsai.xyz"; a trailing "/" is dropped.
	// Required.
	BaseURL string
	// APIKey is sent as x-api-key. Required (Bento ignores it; any value will do there).
	APIKey string
	// Version is the risc0-zkvm version the guest was built with, such as "3.0.3", sent as
	// x-risc0-version: the server proves with a matching prover. Required.
	Version string
	// HTTPClient makes the requests. Nil means http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each try of a call, the reading of its answer included. Zero means
	// DefaultTimeout; negative means none. A receipt download of hundreds of MiB on a slow
	// link may need more.
	Timeout time.Duration
	// MaxDownload bounds the size, in bytes, of a receipt or journal. Zero means
	// DefaultMaxDownload. A larger one fails the call with ErrTooLarge.
	MaxDownload int64
	// Retry says how often and how soon a failed call is tried again.
	Retry Retry
}

// Retry is the policy of a Client for calls that fail transiently. The delay before try n+1
// is min(BaseDelay × 2^(n-1), MaxDelay), or the server's Retry-After if it is longer; a
// Retry-After longer than MaxDelay ends the call at once (the Host then asks the service to
// retry the task after it, with paas.RetryAfter).
type Retry struct {
	// Attempts is how many times a call is tried in all, the first included. Zero means
	// DefaultAttempts; 1 means no retries.
	Attempts int
	// BaseDelay is the delay before the second try. Zero means DefaultBaseDelay.
	BaseDelay time.Duration
	// MaxDelay caps the delay. Zero means DefaultMaxDelay.
	MaxDelay time.Duration
}

// ClientFromEnv returns a Client for the API named by the environment, as the Risc0 SDK reads
// it: BONSAI_API_URL and BONSAI_API_KEY (both required), and BONSAI_TIMEOUT_MS (a number of
// milliseconds, or "none"). version is the risc0-zkvm version of the guest.
func ClientFromEnv(version string) (*Client, error) {
	c := &Client{BaseURL: os.Getenv(EnvAPIURL), APIKey: os.Getenv(EnvAPIKey), Version: version}
	switch t := os.Getenv(EnvTimeout); t {
	case "":
	case "none":
		c.Timeout = -1
	default:
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("%w: bonsai: %s=%q is neither a number of milliseconds nor \"none\"", handler.ErrIncomplete, EnvTimeout, t)
		}
		c.Timeout = time.Duration(ms) * time.Millisecond
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate reports an error wrapping handler.ErrIncomplete that names the missing fields, or
// nil. Every call validates the Client first.
func (c *Client) Validate() error {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"BaseURL (" + EnvAPIURL + ")", c.BaseURL}, {"APIKey (" + EnvAPIKey + ")", c.APIKey}, {"Version", c.Version},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: bonsai: Client has no %s", handler.ErrIncomplete, strings.Join(missing, ", "))
	}
	return nil
}

// HasImage reports whether the server holds the image imageID (GET /images/upload/{id}
// answers 204).
func (c *Client) HasImage(ctx context.Context, imageID string) (bool, error) {
	_, exists, err := c.imageUploadURL(ctx, imageID)
	return exists, err
}

// UploadImage uploads elf as the image imageID unless the server holds it already, and reports
// whether it uploaded it.
func (c *Client) UploadImage(ctx context.Context, imageID string, elf []byte) (uploaded bool, err error) {
	put, exists, err := c.imageUploadURL(ctx, imageID)
	if err != nil || exists {
		return false, err
	}
	if _, err := c.send(ctx, request{op: "PUT image upload", method: http.MethodPut, url: put, body: elf, replayable: true}); err != nil {
		return false, err
	}
	return true, nil
}

func (c *Client) imageUploadURL(ctx context.Context, imageID string) (put string, exists bool, err error) {
	a, err := c.send(ctx, c.api(http.MethodGet, "/images/upload/", imageID))
	if err != nil {
		return "", false, err
	}
	if a.status == http.StatusNoContent {
		return "", true, nil
	}
	var u urlAnswer
	if err := decode(a, "GET /images/upload", &u); err != nil {
		return "", false, err
	}
	return u.URL, false, nil
}

// UploadInput uploads an input (GET /inputs/upload, then PUT to the URL it answers) and
// returns its uuid, for SessionRequest.Input.
func (c *Client) UploadInput(ctx context.Context, input []byte) (string, error) {
	a, err := c.send(ctx, c.api(http.MethodGet, "/inputs/upload", ""))
	if err != nil {
		return "", err
	}
	var u uploadAnswer
	if err := decode(a, "GET /inputs/upload", &u); err != nil {
		return "", err
	}
	if u.UUID == "" || u.URL == "" {
		return "", fmt.Errorf("bonsai: GET /inputs/upload: no url or uuid in %q", a.body)
	}
	if _, err := c.send(ctx, request{op: "PUT input upload", method: http.MethodPut, url: u.URL, body: input, replayable: true}); err != nil {
		return "", err
	}
	return u.UUID, nil
}

// CreateSession starts a session (POST /sessions/create) and returns its uuid. This is the
// call that costs money: a session is paid for once it exists, whether or not anyone polls it.
//
// So it is tried again only when the server answered that it did not take the request (429,
// 500, 503). After a connection that failed before the answer, or a 502 or 504 from a proxy
// on the way, the session may or may not exist, and the API has no idempotency key to ask:
// trying again could pay for a second session that nobody would ever poll. The error is
// returned instead, for the caller to decide.
func (c *Client) CreateSession(ctx context.Context, req SessionRequest) (string, error) {
	body, err := json.Marshal(req.wire())
	if err != nil {
		return "", fmt.Errorf("bonsai: POST /sessions/create: %w", err)
	}
	r := c.api(http.MethodPost, "/sessions/create", "")
	r.body, r.json, r.replayable = body, true, false
	a, err := c.send(ctx, r)
	if err != nil {
		return "", err
	}
	var s createAnswer
	if err := decode(a, r.op, &s); err != nil {
		return "", err
	}
	if s.UUID == "" {
		return "", fmt.Errorf("bonsai: POST /sessions/create: no uuid in %q", a.body)
	}
	return s.UUID, nil
}

// SessionStatus returns the status of session (GET /sessions/status/{uuid}).
func (c *Client) SessionStatus(ctx context.Context, session string) (SessionStatus, error) {
	r := c.api(http.MethodGet, "/sessions/status/", session)
	a, err := c.send(ctx, r)
	if err != nil {
		return SessionStatus{}, err
	}
	st, err := decodeStatus(a.body)
	if err != nil {
		return SessionStatus{}, fmt.Errorf("bonsai: %s: decode %q: %w", r.op, shorten(a.body), err)
	}
	return st, nil
}

// StopSession stops session (GET /sessions/stop/{uuid}); it then ends ABORTED. r0vm and Bento
// have no such route, and answer 404.
func (c *Client) StopSession(ctx context.Context, session string) error {
	_, err := c.send(ctx, c.api(http.MethodGet, "/sessions/stop/", session))
	return err
}

// Receipt downloads the receipt of a succeeded session: GET /receipts/{uuid} for its URL, then
// the receipt from there. A session without a receipt (yet) is an error matching ErrNotFound.
func (c *Client) Receipt(ctx context.Context, session string) ([]byte, error) {
	r := c.api(http.MethodGet, "/receipts/", session)
	a, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	var u urlAnswer
	if err := decode(a, r.op, &u); err != nil {
		return nil, err
	}
	return c.Download(ctx, u.URL)
}

// Download returns what is at rawURL, a URL the server handed out: SessionStatus.ReceiptURL,
// say. It is bounded by MaxDownload.
func (c *Client) Download(ctx context.Context, rawURL string) ([]byte, error) {
	a, err := c.send(ctx, request{op: "GET download", method: http.MethodGet, url: rawURL, replayable: true, limit: c.maxDownload()})
	return a.body, err
}

// ExecOnlyJournal returns the journal of a succeeded execute-only session
// (GET /sessions/exec_only_journal/{uuid}), bounded by MaxDownload.
func (c *Client) ExecOnlyJournal(ctx context.Context, session string) ([]byte, error) {
	r := c.api(http.MethodGet, "/sessions/exec_only_journal/", session)
	r.limit = c.maxDownload()
	a, err := c.send(ctx, r)
	return a.body, err
}

// api returns the request of an API call to route followed by the path segment arg, if any.
func (c *Client) api(method, route, arg string) request {
	u := strings.TrimRight(c.BaseURL, "/") + route + url.PathEscape(arg)
	return request{op: method + " " + route + arg, method: method, url: u, replayable: method != http.MethodPost}
}

func (c *Client) maxDownload() int64 {
	if c.MaxDownload > 0 {
		return c.MaxDownload
	}
	return DefaultMaxDownload
}

func (c *Client) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// decode decodes the JSON answer a of the call op into v.
func decode(a answer, op string, v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("bonsai: %s: decode %q: %w", op, shorten(a.body), err)
	}
	return nil
}

// shorten keeps an answer quoted in an error short.
func shorten(b []byte) string {
	const n = 256
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

var errNoURL = errors.New("not an http or https URL")
