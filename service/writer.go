package service

import (
	"context"
	"fmt"

	"github.com/zkpaas/paas"
)

// writer persists batches from the loop and sends back the store's answers. A batch is every
// write that piled up while the previous one was being committed; a BatchStore commits it in
// one transaction (group commit), so a busy service pays one sync to disk for many writes.
func (s *ProverService) writer(ctx context.Context, batches <-chan []paas.Write) {
	for {
		select {
		case batch := <-batches:
			res := s.apply(batch)
			select {
			case s.results <- res:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// apply writes ws once through the store, in one transaction if it is a BatchStore, and
// returns the store's answers, one per write, in order. Inserts that failed go back to their
// submitters, and the task does not exist; updates that failed go back to the loop, which
// writes them again after a backoff (see rewrites), so that the writer is never held up by a
// store that fails. The loop pairs each answer with its write, which it keeps meanwhile: the
// records are not copied again.
func (s *ProverService) apply(ws []paas.Write) []paas.WriteResult {
	// Store calls are not bound to Stop's ctx: a task interrupted by Stop must still be written
	// back to Pending.
	ctx := context.Background()
	if bs, ok := s.store.(paas.BatchStore); ok {
		res := bs.WriteBatch(ctx, ws)
		if len(res) != len(ws) {
			err := fmt.Errorf("paas: store answered %d of %d writes", len(res), len(ws))
			res = make([]paas.WriteResult, len(ws))
			for i := range res {
				res[i].Err = err
			}
		}
		return res
	}
	res := make([]paas.WriteResult, len(ws))
	for i, w := range ws {
		if w.Insert {
			res[i] = paas.InsertResult(s.store.Insert(ctx, w.Record))
		} else {
			res[i].Err = s.store.Update(ctx, w.Record)
		}
	}
	return res
}

// answer pairs a write with the store's answer to it. For an insert that succeeded, the record
// is the one the store holds for the key, as far as the core reads it: the one written, with
// its Seq, or, if the key had a task already, that task's ID.
func answer(w *paas.Write, res *paas.WriteResult) written {
	out := written{Write: *w, err: res.Err}
	if w.Insert && res.Err == nil {
		out.Record.ID, out.Record.Seq = res.ID, res.Seq
	}
	return out
}
