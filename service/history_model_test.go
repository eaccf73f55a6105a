package service_test

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/zkpaas/paas"
)

// The sequential model of the documented task lifecycle that TestHistory checks histories
// against. A world is the state of the services and of every task of the test; an operation
// is a handle call, an event of a scripted handler, or a lifecycle step of the services.
//
// Some moves of a task are seen by no call: the service dispatching a Pending task (it becomes
// InProgress), a dispatch that lands after Stop going back to Pending, a task cancelled before
// its handler started ending Cancelled. The model takes them as internal moves, any number of
// which may happen before any operation (see closure): it is nondeterministic, and porcupine
// checks it as the set of the worlds it may be in.

// maxHistTasks bounds the tasks of a history: the programs plus one id that names no task.
const maxHistTasks = 8

// hState is where a task is, as the model knows it.
type hState uint8

const (
	hNone hState = iota // never submitted
	hPending
	hRunning // InProgress: dispatched; its handler may or may not have started
	hRetrying
	hCompleted
	hFailed
	hCancelled
)

func (s hState) final() bool { return s == hCompleted || s == hFailed || s == hCancelled }

// taskState converts to the state the service reports.
func (s hState) taskState() paas.TaskState {
	return [...]paas.TaskState{0, paas.Pending, paas.InProgress, paas.Retrying, paas.Completed, paas.Failed, paas.Cancelled}[s]
}

type hTask struct {
	st hState
	id paas.TaskID
	// started: the handler of the running attempt has been entered (hRunning only).
	started bool
	// cancelReq: Cancel was called while the task ran; it ends Cancelled unless its handler
	// succeeds. On hPending: the attempt was interrupted by Stop after the Cancel, and the
	// task is about to be Cancelled.
	cancelReq bool
	// finalHere: the task reached its final state since the current service started, so
	// Summary counts it.
	finalHere bool
}

// phase is the lifecycle of the current service.
type phase uint8

const (
	phRunning  phase = iota + 1
	phStopping       // Stop has been called: intake stops, handlers are interrupted
	phStopped        // Stop has returned
)

// world is comparable, so that porcupine can merge equal worlds.
type world struct {
	epoch int // the current service: 0 for the first, 1 after a restart; -1 before any Start
	phase phase
	tasks [maxHistTasks]hTask
}

type opKind uint8

const (
	opSubmit opKind = iota + 1
	opStatus
	opCancel
	opRetry
	opWait
	opSummary
	opHandlerStart  // a handler was entered
	opHandlerReturn // a handler returned hIn.Outcome
	opStart         // service Epoch started
	opStop          // Stop of service Epoch, from its call to its return
	opStopped       // Stop of service Epoch has returned
)

var opNames = map[opKind]string{
	opSubmit: "Submit", opStatus: "Status", opCancel: "Cancel", opRetry: "Retry", opWait: "Wait",
	opSummary: "Summary", opHandlerStart: "handler started", opHandlerReturn: "handler returned",
	opStart: "Start", opStop: "Stop", opStopped: "Stop returned",
}

// submitVariant is the options of a Submit.
type submitVariant uint8

const (
	submitPlain      submitVariant = iota
	submitPriority                 // paas.Priority: a valid option that differs from the first Submit's
	submitTimeout                  // paas.Timeout of an hour: valid, never reached on the fake clock
	submitBadTimeout               // paas.Timeout(-1): refused for a new task (ErrInvalidOption)
	submitUnknownDep               // paas.After an id that names no task: refused for a new task (ErrUnknownDependency)
)

var variantNames = [...]string{"", ", Priority(7)", ", Timeout(1h)", ", Timeout(-1)", ", After(unknown)"}

// invalidErr is the error Submit gives for a new task with these options, or errNone.
func (v submitVariant) invalidErr() errKind {
	switch v {
	case submitBadTimeout:
		return errInvalidOption
	case submitUnknownDep:
		return errUnknownDep
	}
	return errNone
}

// outcome is what a scripted handler returns.
type outcome uint8

const (
	outSuccess   outcome = iota + 1 // nil
	outPermanent                    // paas.Permanent(err)
	outTransient                    // a plain error: retried with backoff on a clock that never moves
	outCtxErr                       // ctx.Err(), after the service cancelled the handler's context
)

var outcomeNames = map[outcome]string{outSuccess: "nil", outPermanent: "Permanent", outTransient: "transient", outCtxErr: "ctx.Err()"}

// errKind sorts the errors a call returns, as the model needs them.
type errKind uint8

const (
	errNone errKind = iota
	errNotFound
	errFinished
	errNotRetryable
	errStopped
	errNotStarted
	errInvalidOption
	errUnknownDep
	errOther // anything else: no documented call returns it
)

var errNames = [...]string{"nil", "ErrTaskNotFound", "ErrTaskFinished", "ErrNotRetryable", "ErrStopped",
	"ErrNotStarted", "ErrInvalidOption", "ErrUnknownDependency", "error"}

// globalTask is the Task of the operations that are not about one task.
const globalTask = -1

type hIn struct {
	Kind    opKind
	Task    int // index of the task, or globalTask
	Epoch   int // the service called, or that ran the handler
	Variant submitVariant
	Outcome outcome
}

type hOut struct {
	Err     errKind
	Msg     string // the error's text, for the visualisation; errOther only
	ID      paas.TaskID
	State   paas.TaskState
	Summary paas.StatusSummary
}

func historyModel(partitioned bool) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{world{epoch: -1, phase: phStopped}} },
		Step: func(state, input, output any) []any {
			return stepWorld(state.(world), input.(hIn), output.(hOut))
		},
		DescribeOperation: describeOp,
		DescribeState:     func(state any) string { return describeWorld(state.(world)) },
	}
	if partitioned {
		nm.Partition = partitionByTask
	}
	return nm.ToModel()
}

// partitionByTask puts the calls about each task in a partition of their own, with a copy of
// every lifecycle operation. Summary, which is about every task, is left out: the whole
// history is checked with it separately. A history is linearizable only if each of its
// partitions is, so an illegal partition is a real violation.
func partitionByTask(history []porcupine.Operation) [][]porcupine.Operation {
	var global []porcupine.Operation
	byTask := map[int][]porcupine.Operation{}
	for _, op := range history {
		in := op.Input.(hIn)
		switch {
		case in.Kind == opSummary:
		case in.Task == globalTask:
			global = append(global, op)
		default:
			byTask[in.Task] = append(byTask[in.Task], op)
		}
	}
	var parts [][]porcupine.Operation
	for _, i := range slices.Sorted(mapKeys(byTask)) {
		part := append(slices.Clone(global), byTask[i]...)
		slices.SortFunc(part, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
		parts = append(parts, part)
	}
	return parts
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func stepWorld(w world, in hIn, out hOut) []any {
	switch in.Kind {
	case opStart:
		if w.phase != phStopped || w.epoch != in.Epoch-1 || out.Err != errNone {
			return nil
		}
		w.epoch, w.phase = in.Epoch, phRunning
		for i := range w.tasks {
			w.tasks[i].finalHere = false
		}
		return []any{w}
	case opStop:
		if w.epoch != in.Epoch || w.phase != phRunning {
			return nil
		}
		return each(closeAll(w), func(w world) (world, bool) {
			w.phase = phStopping
			return w, true
		})
	case opStopped:
		if w.epoch != in.Epoch || w.phase != phStopping {
			return nil
		}
		// The service has returned only once every handler has returned and every change
		// is stored: no task is running or about to be cancelled.
		return each(closeAll(w), func(w world) (world, bool) {
			for _, t := range w.tasks {
				if t.st == hRunning || t.cancelReq {
					return w, false
				}
			}
			w.phase = phStopped
			return w, true
		})
	case opHandlerStart, opHandlerReturn:
		if w.epoch != in.Epoch || w.phase == phStopped {
			return nil
		}
		var next []any
		for _, t := range closure(w.phase, w.tasks[in.Task]) {
			for _, t := range handlerStep(w.phase, t, in) {
				v := w
				v.tasks[in.Task] = t
				next = append(next, v)
			}
		}
		return next
	}

	// A handle call: first the lifecycle of the service it called.
	var next []any
	lifecycle, normal := errNone, false
	switch {
	case in.Epoch > w.epoch:
		lifecycle = errNotStarted
	case in.Epoch < w.epoch || w.phase == phStopped:
		lifecycle = errStopped
	case w.phase == phStopping:
		// Calls that got in before Stop are answered as usual.
		lifecycle, normal = errStopped, true
	default:
		normal = true
	}
	if out.Err == lifecycle && lifecycle != errNone {
		next = append(next, w)
	}
	if in.Kind == opSubmit && !normal && out.Err == in.Variant.invalidErr() && out.Err != errNone {
		// Options are checked before the service is: either error will do.
		next = append(next, w)
	}
	if !normal {
		return next
	}
	if in.Kind == opSummary {
		for _, v := range closeAll(w) {
			if out.Err == errNone && out.Summary == summarize(v) {
				next = append(next, v)
			}
		}
		return next
	}
	for _, t := range closure(w.phase, w.tasks[in.Task]) {
		if t, ok := callStep(t, in, out); ok {
			v := w
			v.tasks[in.Task] = t
			next = append(next, v)
		}
	}
	return next
}

// callStep is a handle call on a task, in a service that runs.
func callStep(t hTask, in hIn, out hOut) (hTask, bool) {
	if t.st == hNone && in.Kind != opSubmit {
		return t, out.Err == errNotFound
	}
	switch in.Kind {
	case opSubmit:
		if t.st != hNone {
			// The same program on the same backend is the same task, whatever its state
			// and whatever the options.
			return t, out.Err == errNone && out.ID == t.id
		}
		if bad := in.Variant.invalidErr(); bad != errNone {
			return t, out.Err == bad
		}
		if out.Err != errNone || out.ID.IsZero() {
			return t, false
		}
		return hTask{st: hPending, id: out.ID}, true
	case opStatus:
		return t, out.Err == errNone && out.State == t.st.taskState()
	case opWait:
		// Wait blocks until the task is final: it takes effect at a point where it is.
		return t, t.st.final() && out.Err == errNone && out.State == t.st.taskState()
	case opCancel:
		switch {
		case t.st.final():
			return t, out.Err == errFinished
		case t.st == hRunning:
			t.cancelReq = true
			return t, out.Err == errNone
		default: // Pending or Retrying: Cancelled when Cancel returns
			return hTask{st: hCancelled, id: t.id, finalHere: true}, out.Err == errNone
		}
	case opRetry:
		if t.st != hFailed && t.st != hCancelled {
			return t, out.Err == errNotRetryable
		}
		return hTask{st: hPending, id: t.id}, out.Err == errNone
	}
	return t, false
}

// handlerStep is an event of the handler of task t: the task runs in service phase p.
func handlerStep(p phase, t hTask, in hIn) []hTask {
	if t.st != hRunning {
		return nil
	}
	if in.Kind == opHandlerStart {
		if t.started {
			return nil
		}
		t.started = true
		return []hTask{t}
	}
	if !t.started {
		return nil
	}
	done := func(st hState) hTask { return hTask{st: st, id: t.id, finalHere: st.final()} }
	if in.Outcome == outSuccess {
		// Even after Cancel or Stop: the proof exists.
		return []hTask{done(hCompleted)}
	}
	var next []hTask
	if t.cancelReq {
		next = append(next, done(hCancelled))
		if p == phStopping {
			// Stop cancelled the handler before Cancel did: it goes back to Pending, then is
			// Cancelled (an internal move).
			next = append(next, hTask{st: hPending, id: t.id, cancelReq: true})
		}
		return next
	}
	switch in.Outcome {
	case outPermanent:
		next = append(next, done(hFailed))
	case outTransient:
		// MaxRetries is 1 and every attempt is a first one (Retry resets the budget, an
		// interrupted attempt is not counted), and the retry is never due.
		next = append(next, done(hRetrying))
	}
	if p == phStopping {
		// An attempt interrupted by Stop goes back to Pending, whatever the handler returned.
		next = append(next, hTask{st: hPending, id: t.id})
	}
	return next
}

// closure is every state task t may reach by internal moves in service phase p.
func closure(p phase, t hTask) []hTask {
	if p == phStopped {
		return []hTask{t}
	}
	seen := []hTask{t}
	for i := 0; i < len(seen); i++ {
		t := seen[i]
		var moves []hTask
		switch {
		case t.st == hPending && t.cancelReq:
			moves = append(moves, hTask{st: hCancelled, id: t.id, finalHere: true})
		case t.st == hPending:
			// Dispatched: InProgress, its handler not yet entered.
			moves = append(moves, hTask{st: hRunning, id: t.id})
		case t.st == hRunning && !t.started && t.cancelReq:
			// Cancelled before its handler started.
			moves = append(moves, hTask{st: hCancelled, id: t.id, finalHere: true})
		case t.st == hRunning && !t.started && p == phStopping:
			// Dispatched as Stop began: put back without running.
			moves = append(moves, hTask{st: hPending, id: t.id})
		}
		for _, m := range moves {
			if !slices.Contains(seen, m) {
				seen = append(seen, m)
			}
		}
	}
	return seen
}

// closeAll is every world w may reach by internal moves of any of its tasks.
func closeAll(w world) []world {
	worlds := []world{w}
	for i := range w.tasks {
		if w.tasks[i].st == hNone {
			continue
		}
		var next []world
		for _, v := range worlds {
			for _, t := range closure(w.phase, v.tasks[i]) {
				u := v
				u.tasks[i] = t
				next = append(next, u)
			}
		}
		worlds = next
	}
	return worlds
}

func each(ws []world, f func(world) (world, bool)) []any {
	var next []any
	for _, w := range ws {
		if w, ok := f(w); ok {
			next = append(next, w)
		}
	}
	return next
}

// summarize is what Summary reports in world w: every unfinished task, and the tasks that
// reached their final state since the service started and are still in it.
func summarize(w world) paas.StatusSummary {
	var s paas.StatusSummary
	for _, t := range w.tasks {
		switch {
		case t.st == hPending:
			s.Pending++
		case t.st == hRunning:
			s.InProgress++
		case t.st == hRetrying:
			s.Retrying++
		case t.st == hCompleted && t.finalHere:
			s.Completed++
		case t.st == hFailed && t.finalHere:
			s.Failed++
		case t.st == hCancelled && t.finalHere:
			s.Cancelled++
		}
	}
	return s
}

func describeOp(input, output any) string {
	in, out := input.(hIn), output.(hOut)
	var b strings.Builder
	switch in.Kind {
	case opStart, opStop, opStopped:
		fmt.Fprintf(&b, "%s(service %d)", opNames[in.Kind], in.Epoch)
		return b.String()
	case opHandlerStart:
		return fmt.Sprintf("task %d: handler started (service %d)", in.Task, in.Epoch)
	case opHandlerReturn:
		return fmt.Sprintf("task %d: handler returned %s (service %d)", in.Task, outcomeNames[in.Outcome], in.Epoch)
	case opSummary:
		fmt.Fprintf(&b, "Summary() on %d", in.Epoch)
	case opSubmit:
		fmt.Fprintf(&b, "Submit(task %d%s) on %d", in.Task, variantNames[in.Variant], in.Epoch)
	default:
		fmt.Fprintf(&b, "%s(task %d) on %d", opNames[in.Kind], in.Task, in.Epoch)
	}
	b.WriteString(" → ")
	switch {
	case out.Err == errOther:
		fmt.Fprintf(&b, "error %q", out.Msg)
	case out.Err != errNone:
		b.WriteString(errNames[out.Err])
	case in.Kind == opSubmit:
		b.WriteString(out.ID.String()[:8])
	case in.Kind == opStatus || in.Kind == opWait:
		b.WriteString(out.State.String())
	case in.Kind == opSummary:
		b.WriteString(describeSummary(out.Summary))
	default:
		b.WriteString("nil")
	}
	return b.String()
}

func describeSummary(s paas.StatusSummary) string {
	var parts []string
	for _, st := range paas.States {
		if n := s.Count(st); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func describeWorld(w world) string {
	var b strings.Builder
	fmt.Fprintf(&b, "service %d %s:", w.epoch, [...]string{"", "running", "stopping", "stopped"}[w.phase])
	for i, t := range w.tasks {
		if t.st == hNone {
			continue
		}
		fmt.Fprintf(&b, " %d=%s", i, t.st.taskState())
		if t.started {
			b.WriteString("(handler)")
		}
		if t.cancelReq {
			b.WriteString("(cancel asked)")
		}
		if t.finalHere {
			b.WriteString("*")
		}
	}
	return b.String()
}
