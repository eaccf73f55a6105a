package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/zkpaas/paas/handler"
	"github.com/zkpaas/paas/handler/bonsai"
)

// bonsaiHost is the host that proves Executions on Bonsai (a Risc0 guest that runs the
// epoch), or nil when no URL and key are given. Its sessions are checkpointed, so a node
// stopped or killed mid-session polls the same session when it runs again.
func (n *node) bonsaiHost() (handler.Host[Execution], error) {
	o := n.opts
	if o.bonsaiURL == "" || o.bonsaiKey == "" {
		return nil, nil
	}
	if o.bonsaiImage == "" {
		return nil, errors.New("-bonsai-url needs -bonsai-image, the image id of the guest")
	}
	var elf []byte
	if o.bonsaiELF != "" {
		var err error
		if elf, err = os.ReadFile(o.bonsaiELF); err != nil {
			return nil, err
		}
	}
	h := &bonsai.Host[Execution]{
		Client:  &bonsai.Client{BaseURL: o.bonsaiURL, APIKey: o.bonsaiKey, Version: o.bonsaiVersion},
		ImageID: o.bonsaiImage,
		ELF:     elf,
		// The guest reads the epoch's first and last block, big-endian.
		Encode: func(e Execution) ([]byte, error) {
			return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, e.From), e.To), nil
		},
		PollInterval: o.bonsaiPoll,
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("bonsai: %w", err)
	}
	fmt.Fprintf(n.out, "bonsai: executions are proven on %s too\n", o.bonsaiURL)
	return h, nil
}

// defaultBonsaiPoll is how often a session's status is asked for.
const defaultBonsaiPoll = 2 * time.Second
