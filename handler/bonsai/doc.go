// Package bonsai proves on Risc0's Bonsai, a remote proving service paid per proof, through
// its REST API: Client calls the API, and Host is a handler.Host that proves one input in one
// Bonsai session. It is pure Go (net/http and JSON). Boundless's self-hosted Bento serves the
// same API, as does r0vm's API server, so a Host works against them too.
//
//	client, err := bonsai.ClientFromEnv("3.0.3") // BONSAI_API_URL, BONSAI_API_KEY; the guest's risc0-zkvm version
//	if err != nil { ... }
//	risc0 := &bonsai.Host[[]byte]{
//		Client:  client,
//		ImageID: "a1b2…",   // the guest's image id, in hex
//		ELF:     guestELF, // uploaded once, if the server does not hold the image yet
//	}
//	h := &handler.RemoteProofHandler[Block, []byte]{
//		Fetcher: fetcher,
//		Hosts:   handler.HostMap[[]byte]{paas.BackendRisc0: risc0},
//		Storer:  store,
//	}
//
// A proof is a session: upload the image (GET /images/upload/{id} answers 204 when the
// server has it, which spares the upload), upload the input, create the session, poll its
// status every PollInterval until it ends, and download its receipt. The proof has Backend
// paas.BackendRisc0 and the receipt bytes (bincode, as Bonsai serves them) as Receipt. Users
// usually set BONSAI_API_URL (https://api.bonsai.xyz, or a Bento's URL) and BONSAI_API_KEY,
// which ClientFromEnv reads, with BONSAI_TIMEOUT_MS as the Risc0 SDK does.
//
// # What costs money, and what resumes
//
// The session is what is paid for: once created it runs to its end, and is billed, whether or
// not anyone polls it. So a Host never pays twice for one proof when it can help it. Right
// after the session is created, before its status is first asked, the Host saves its id as
// the task's checkpoint (task.SaveCheckpoint; see Checkpoint for the encoding); if that save
// fails, it stops the session, which no later attempt could find. An attempt that finds a
// session in the task's checkpoint polls that session instead of creating one: after a
// transient error, after a service stop, and after a crash or a kill of the node, since the
// service keeps the checkpoint in its store and gives it back on the next attempt, in the
// next process. The session then runs on while the node is down, and its receipt is
// collected when the node is back.
//
// When the attempt's context ends, the Host reads why (context.Cause):
//
//   - paas.ErrCancelled (the user's Cancel) and paas.ErrTimedOut (the attempt's timeout): the
//     session is stopped (GET /sessions/stop/{uuid}, with a context of its own bounded by
//     StopTimeout), since nobody will collect it; a timed-out task's next attempt finds it
//     ABORTED and starts a new one (or collects its receipt, if it succeeded first);
//   - paas.ErrInterrupted (the service stopping) or any other cause: the session is left
//     running, for the next attempt to resume.
//
// Without a task in ctx (a Host called outside the service), or with a task without
// SaveCheckpoint, the Host creates and polls a session without a checkpoint, and stops it
// whenever ctx ends, since nothing could resume it.
//
// One window remains: if the process dies, or ctx ends, while the create is on its way, the
// session may exist without its id being known, and runs unpolled. The API has no idempotency
// key that would let a second create find the first.
//
// # What is retried
//
// Inside the Client, each call is tried again with a delay growing exponentially (Retry)
// when the server answers 429 or 5xx, and, for the calls that are safe to repeat (every GET
// and PUT: uploads, statuses, downloads, stops), when the connection fails. POST
// /sessions/create is tried again only after the server answered 429, 500 or 503, never
// after a dropped connection or a proxy's 502 or 504, whose outcome is unknown: trying again
// could pay for a second session. Answers are bounded: a few MiB for JSON, MaxDownload for a
// receipt.
//
// What the Client gives up on is sorted for the service in one place:
//
//   - 401 and 403 (a bad key) and a receipt larger than MaxDownload fail the task permanently
//     (paas.Permanent); a 429 or 503 whose Retry-After is longer than the Client waits asks
//     for a retry after it (paas.RetryAfter);
//   - a session that ends FAILED, TIMED_OUT or ABORTED asks for a fresh start (paas.Restart:
//     the checkpoint is discarded, the next attempt creates a new session), unless its
//     error_msg says that the guest itself failed ("Guest panicked: ..."), which a new session
//     would repeat at a price: that fails the task permanently. Classify changes the rule;
//   - a checkpointed session that the server does not know (404) restarts the task, and so
//     do a checkpoint this package cannot read and one made for another ImageID;
//   - anything else is transient: the service retries the task with backoff, and its next
//     attempt polls the same session again. r0vm and Bento answer 500 for a session they do
//     not know, which is retried so until the task's retry budget runs out.
//
// A Host with a field missing (no Client, no key, no ImageID) fails the task permanently with
// an error wrapping handler.ErrIncomplete.
//
// Package bonsaitest is a fake server for tests, this package's and its users'.
//
// client.go holds Client and its calls; call.go how a call is sent and retried; session.go
// the API's types (Status, SessionRequest, SessionStatus); errors.go APIError, SessionError
// and the classification of failures; checkpoint.go Checkpoint; host.go Host and Prove.
package bonsai
