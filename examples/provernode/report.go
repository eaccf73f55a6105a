package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/zkpaas/paas"
)

// errUnverifiable marks a proof this node has no verifier for.
var errUnverifiable = errors.New("no verifier here")

// row is one task of the report.
type row struct {
	name     string
	backend  paas.Backend
	state    paas.TaskState
	attempts int
	size     int
	proving  string
	verified error
}

// report verifies every proof of the batch and prints a table of the tasks and what each
// backend's provers did. It fails if a proof does not verify.
func (n *node) report(ctx context.Context, out io.Writer, b *batch) error {
	var rows []row
	add := func(name string, id paas.TaskID, check func(paas.Proof) error) error {
		st, err := n.svc.Handle().Status(ctx, id)
		if err != nil {
			return err
		}
		r := row{name: name, backend: st.Backend, state: st.State, attempts: st.Attempts, proving: "earlier run"}
		if s, ok := n.meter.proof(id); ok {
			r.proving = s.end.Sub(s.start).Round(time.Millisecond).String()
		}
		if p, err := n.store.Proof(ctx, id); err != nil {
			r.verified = err
		} else {
			r.size, r.verified = len(p.Receipt), check(p)
		}
		rows = append(rows, r)
		return nil
	}
	for block, id := range b.transitions {
		if err := add(fmt.Sprintf("transition %d", block), id, n.checkTransition(uint64(block))); err != nil {
			return err
		}
	}
	for i, id := range b.checkpoints {
		if err := add(fmt.Sprintf("checkpoint %d", i), id, n.checkCheckpoint(b.epochs[i])); err != nil {
			return err
		}
	}
	for i, id := range b.executions {
		if err := add(fmt.Sprintf("execution %d", i), id, n.checkExecution(b.epochs[i])); err != nil {
			return err
		}
	}
	for i, id := range b.bonsai {
		// A Risc0 receipt is verified by Risc0's verifier, which this node does not have.
		if err := add(fmt.Sprintf("execution %d", i), id, func(p paas.Proof) error {
			if len(p.Receipt) == 0 {
				return errors.New("no receipt")
			}
			return errUnverifiable
		}); err != nil {
			return err
		}
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "task\tbackend\tstate\tattempts\tproof bytes\tproving\tverified\t")
	bad, unverifiable := 0, 0
	for _, r := range rows {
		verdict := "ok"
		switch {
		case errors.Is(r.verified, errUnverifiable):
			verdict, unverifiable = "not here", unverifiable+1
		case r.verified != nil:
			verdict, bad = r.verified.Error(), bad+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t\n", r.name, r.backend, r.state, r.attempts, r.size, r.proving, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nverified %d of %d proofs", len(rows)-bad-unverifiable, len(rows)-unverifiable)
	if unverifiable > 0 {
		fmt.Fprintf(out, "; %d Risc0 receipts are for Risc0's verifier", unverifiable)
	}
	fmt.Fprint(out, "\n\n")
	n.printUsage(out, b)
	if bad > 0 {
		return fmt.Errorf("%d proofs did not verify", bad)
	}
	return nil
}

// checkTransition verifies a transition's proof and that it proves the block's states.
func (n *node) checkTransition(block uint64) func(paas.Proof) error {
	return func(p paas.Proof) error {
		if err := n.transitionKeys.Verify(p); err != nil {
			return err
		}
		prev, next, err := transitionStates(p)
		if err != nil {
			return err
		}
		wantPrev, _ := n.chain.state(block)
		wantNext, _ := n.chain.state(block + 1)
		if !prev.Equal(&wantPrev) || !next.Equal(&wantNext) {
			return fmt.Errorf("proves states %s → %s, want %s → %s", short(prev), short(next), short(wantPrev), short(wantNext))
		}
		return nil
	}
}

// checkCheckpoint verifies a checkpoint's proof and that it proves the epoch's digest.
func (n *node) checkCheckpoint(cp Checkpoint) func(paas.Proof) error {
	return func(p paas.Proof) error {
		if err := n.checkpointKeys.Verify(p); err != nil {
			return err
		}
		start, end, digest, err := checkpointStates(p)
		if err != nil {
			return err
		}
		in := checkpointInput{}
		in.Start, _ = n.chain.state(cp.From)
		for b := cp.From + 1; b <= cp.To; b++ {
			s, _ := n.chain.state(b)
			in.States = append(in.States, s)
		}
		want := in.digest()
		if !start.Equal(&in.Start) || !end.Equal(&in.States[len(in.States)-1]) || !digest.Equal(&want) {
			return fmt.Errorf("proves epoch %s → %s (digest %s), want %s → %s (%s)", short(start), short(end), short(digest),
				short(in.Start), short(in.States[len(in.States)-1]), short(want))
		}
		return nil
	}
}

// checkExecution checks that a native execution ended the epoch where its checkpoint did.
func (n *node) checkExecution(cp Checkpoint) func(paas.Proof) error {
	return func(p paas.Proof) error {
		want, _ := n.chain.state(cp.To)
		b := want.Bytes()
		if !bytes.Equal(p.PublicValues, b[:]) {
			return fmt.Errorf("ran to %x, want %s", p.PublicValues, short(want))
		}
		return nil
	}
}

// printUsage prints, per backend, how busy its provers were and what orchestration cost.
func (n *node) printUsage(out io.Writer, b *batch) {
	ready := make(map[paas.TaskID]time.Time)
	for _, id := range append(append(slices.Clone(b.transitions), b.executions...), b.bonsai...) {
		ready[id] = b.submitted
	}
	per := n.opts.epoch
	for i, id := range b.checkpoints {
		// A checkpoint can run once the last of its transitions is proven.
		r := b.submitted
		for _, dep := range b.transitions[i*per : (i+1)*per] {
			if s, ok := n.meter.proof(dep); ok {
				r = maxTime(r, s.end)
			}
		}
		ready[id] = r
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tprovers\tproofs\tproving\twall\tutilisation\tgaps\tgap p50\tgap p99\torchestration\tbusy while queued\t")
	for _, backend := range []paas.Backend{backendGroth16, backendPLONK, paas.BackendNative, paas.BackendRisc0} {
		workers, ok := n.provers[backend]
		if !ok {
			continue
		}
		u := n.meter.usage(backend, workers, ready)
		if u.proofs == 0 && len(u.gaps) == 0 {
			fmt.Fprintf(tw, "%s\t%d\t0\t-\t-\t-\t-\t-\t-\t-\t-\t\n", backend, workers)
			continue
		}
		p50, p99 := percentile(u.gaps, 0.50), percentile(u.gaps, 0.99)
		busyQueued := 1.0
		if u.busy+u.gapsTotal > 0 {
			busyQueued = float64(u.busy) / float64(u.busy+u.gapsTotal)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.1f%%\t%d\t%s\t%s\t%.3f%%\t%.2f%%\t\n", backend, workers, u.proofs,
			u.busy.Round(time.Millisecond), u.wall.Round(time.Millisecond), 100*u.utilisation(),
			len(u.gaps), p50, p99, 100*u.overhead(), 100*busyQueued)
	}
	tw.Flush()
	fmt.Fprintln(out, "\nutilisation: proving time over wall time × provers; gaps: from a prover freeing to its next proof")
	fmt.Fprintln(out, "while a task was ready; orchestration: the gaps over the proving time")
}

// percentile is the q-th of ds, or 0 for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)].Round(time.Microsecond)
}

// short prints a field element's first digits.
func short(e fr.Element) string {
	d := decimal(e)
	if len(d) > 10 {
		return d[:10] + "…"
	}
	return d
}
