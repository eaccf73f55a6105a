// Package bonsaitest is a fake Bonsai server for tests: an HTTP server on the loopback
// interface (net/http/httptest) that speaks the Bonsai REST API as package bonsai's Client
// uses it, so that tests of a node that proves on Bonsai run without the network, without a
// key, and without paying.
//
//	srv := bonsaitest.New(bonsaitest.WithScript(bonsaitest.HeldScript()))
//	t.Cleanup(srv.Close)
//	client := &bonsai.Client{BaseURL: srv.URL, APIKey: srv.APIKey, Version: srv.Version}
//
// # What it does
//
// It checks the x-api-key and x-risc0-version headers of every call, uploads and downloads
// included, against the APIKey and Version it was given (WithAPIKey, WithVersion): a call
// without them is answered 401 and counted in Counts.HeaderFailures. Like Boundless's Bento,
// it hands out upload and download URLs that point back at itself (PUT /images/upload/{id},
// PUT /inputs/upload/{uuid}, GET /receipts/stark/receipt/{uuid}), so a client's calls to them
// are checked and counted too. It stores the images and inputs uploaded; GET
// /images/upload/{id} answers 204 for an image it holds (WithImage stores one up front). A
// create must send every field of the Risc0 SDK's request, null or not, and name an image
// and an input it holds. Errors are answered as the open servers do, {"type","msg"}; an
// unknown session is a 404.
//
// # Sessions
//
// Each session lives through a Script of Steps: each status poll answers the step the session
// is at and moves it on; the last step repeats. DefaultScript answers RUNNING twice, then
// SUCCEEDED; WithScript gives every session another, and WithScriptFunc chooses one per
// session. A step with Hold keeps the session there, RUNNING, until the test calls Release
// (on to the next step) or Finish (ended now, with the status and error_msg the test
// chooses). GET /sessions/stop/{uuid} ends a running session ABORTED. A succeeded session's
// receipt is Receipt(image, input), and an execute-only session's journal Journal(image,
// input), so a test can check which session a proof came from.
//
// # Faults and counts
//
// Inject queues faults for the next calls to a Route: an error status (with a Retry-After,
// if asked), a connection dropped before the call is handled, a call done whose answer is
// then dropped (the client cannot know that the session was created), a delayed answer.
// Counts says what the server saw: the calls to each route, the header failures, the faults
// served, the uploads, the sessions created (what a real server bills), the status polls, the
// stops, the downloads. WaitFor blocks until a condition on the counts holds, so that a test
// waits for "the session is created and polled" instead of sleeping. Sessions and Session
// describe the sessions and what their creates asked for.
//
// Every method is safe for concurrent use, and the server may be shared by the processes of
// a test: a child process given its URL calls it like any client.
//
// server.go holds Server, its options, Counts and WaitFor; script.go Step and Script;
// routes.go the API's routes; fault.go Fault and Inject; receipt.go Receipt and Journal.
package bonsaitest
