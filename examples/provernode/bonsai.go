package main

import "github.com/zkpaas/paas/handler"

// bonsaiHost is the host that proves Executions on Bonsai, or nil when none is configured.
func (n *node) bonsaiHost() (handler.Host[Execution], error) {
	return nil, nil
}
