package bonsaitest

import (
	"crypto/sha256"
	"encoding/hex"
)

// Receipt returns the receipt the Server gives a session that proves input on image imageID:
// a digest of the two, so that a test can tell which session a receipt came from. It is not
// a Risc0 receipt.
func Receipt(imageID string, input []byte) []byte { return digest("receipt", imageID, input) }

// Journal returns the journal the Server gives an execute-only session of input on imageID.
func Journal(imageID string, input []byte) []byte { return digest("journal", imageID, input) }

func digest(kind, imageID string, input []byte) []byte {
	h := sha256.New()
	h.Write([]byte(imageID))
	h.Write([]byte{0})
	h.Write(input)
	return []byte("bonsaitest " + kind + " " + hex.EncodeToString(h.Sum(nil)))
}
