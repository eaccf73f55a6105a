package service_test

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// checkHistory checks the history task by task, then Summary over the whole of it.
func checkHistory(t *testing.T, history []porcupine.Operation) {
	t.Logf("%d operations: %s", len(history), tally(history))
	model := historyModel(true)
	if res, info := porcupine.CheckOperationsVerbose(model, history, 0); res != porcupine.Ok {
		t.Errorf("the history of some task is not linearizable; visualisation: %s", visualise(t, "tasks", model, info))
		logIllegalPartitions(t, history)
	}
	// Summary is about every task at once. Its check takes the whole history but for the calls
	// that change nothing in the model (Status, Wait, and every call that returned an error):
	// with them it would take too long, and a linearization of the whole history is one of
	// this part of it, so what this check finds is a violation still.
	var summary []porcupine.Operation
	for _, op := range history {
		in, out := op.Input.(hIn), op.Output.(hOut)
		if in.Kind == opStatus || in.Kind == opWait || (in.Task != globalTask && out.Err != errNone) {
			continue
		}
		summary = append(summary, op)
	}
	model = historyModel(false)
	if res, info := porcupine.CheckOperationsVerbose(model, summary, 0); res != porcupine.Ok {
		t.Errorf("Summary is not linearizable; visualisation: %s", visualise(t, "summary", model, info))
		t.Log(stuck(model, summary, info))
	}
}

// tally counts the operations of a history by kind and result, to show what a run covered.
func tally(history []porcupine.Operation) string {
	counts := map[string]int{}
	for _, op := range history {
		in, out := op.Input.(hIn), op.Output.(hOut)
		key := opNames[in.Kind]
		switch {
		case in.Kind == opHandlerReturn:
			key += " " + outcomeNames[in.Outcome]
		case in.Kind == opHandlerStart:
		case in.Kind == opStatus || in.Kind == opWait:
			if out.Err == errNone {
				key += " " + out.State.String()
				break
			}
			fallthrough
		case in.Task != globalTask || in.Kind == opSummary:
			key += " " + errNames[out.Err]
		}
		counts[key]++
	}
	var parts []string
	for _, k := range slices.Sorted(mapKeys(counts)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

// visualise writes porcupine's visualisation of a history to the test's artifact directory.
func visualise(t *testing.T, name string, model porcupine.Model, info porcupine.LinearizationInfo) string {
	path := filepath.Join(t.ArtifactDir(), "history-"+name+".html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		t.Errorf("visualise: %v", err)
	}
	return path
}

// logIllegalPartitions logs, for each task whose history is not linearizable, the operations
// that none of the states the model may be in after a longest linearizable prefix accepts; and
// all the operations of the smallest such task, in the order of their calls.
func logIllegalPartitions(t *testing.T, history []porcupine.Operation) {
	model := historyModel(false)
	var smallest []porcupine.Operation
	for _, part := range partitionByTask(history) {
		res, info := porcupine.CheckOperationsVerbose(model, part, 0)
		if res == porcupine.Ok {
			continue
		}
		if smallest == nil || len(part) < len(smallest) {
			smallest = part
		}
		t.Log(stuck(model, part, info))
	}
	if smallest == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the smallest illegal task history, %d operations:\n", len(smallest))
	for _, op := range smallest {
		ret := fmt.Sprint(op.Return)
		if op.Return == math.MaxInt64 {
			ret = "∞"
		}
		fmt.Fprintf(&b, "  [%d, %s] %s\n", op.Call, ret, describeOp(op.Input, op.Output))
	}
	t.Log(b.String())
}

// stuck says where the check of part gets stuck: the first call, by return, that no
// linearizable prefix of part reaches, and which calls no state of the model accepts after a
// longest prefix.
func stuck(model porcupine.Model, part []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var longest []porcupine.Operation
	reached := map[int64]bool{} // by Call: unique, from the logical clock
	for _, l := range info.PartialLinearizationsOperations()[0] {
		for _, op := range l {
			reached[op.Call] = true
		}
		if len(l) > len(longest) {
			longest = l
		}
	}
	var b strings.Builder
	var first *porcupine.Operation
	for i, op := range part {
		if !reached[op.Call] && (first == nil || op.Return < first.Return) {
			first = &part[i]
		}
	}
	if first != nil {
		fmt.Fprintf(&b, "no linearization reaches [%d] %s;\n", first.Call, describeOp(first.Input, first.Output))
	}
	state := model.Init()
	done := map[int64]bool{}
	for _, op := range longest {
		_, state = model.Step(state, op.Input, op.Output)
		done[op.Call] = true
	}
	var rest []porcupine.Operation
	firstReturn := int64(math.MaxInt64)
	for _, op := range part {
		if !done[op.Call] {
			rest = append(rest, op)
			firstReturn = min(firstReturn, op.Return)
		}
	}
	fmt.Fprintf(&b, "after a longest prefix, %d of %d operations, in %s, none of these fits:", len(longest), len(part), model.DescribeState(state))
	for _, op := range rest {
		if op.Call <= firstReturn {
			fmt.Fprintf(&b, "\n  [%d] %s", op.Call, describeOp(op.Input, op.Output))
		}
	}
	return b.String()
}
