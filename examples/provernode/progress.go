package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/zkpaas/paas/service"
)

// Progress modes.
const (
	progressAuto  = "auto"  // a bar on a terminal, lines otherwise
	progressBar   = "bar"   // one line redrawn in place
	progressLines = "lines" // a line every few seconds, for logs
	progressNone  = "none"
)

// progress reports a batch's progress on out until ctx ends: total tasks, of which before
// were finished when this run started.
type progress struct {
	out    io.Writer
	mode   string
	h      service.ProverHandle
	total  int
	before int
	start  time.Time
}

// modeFor resolves progressAuto for out.
func modeFor(mode string, out io.Writer) string {
	if mode != progressAuto {
		return mode
	}
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return progressBar
		}
	}
	return progressLines
}

// run reports until ctx ends, then once more, so that the last report is the final count.
func (p *progress) run(ctx context.Context) {
	if p.mode == progressNone {
		return
	}
	every := 5 * time.Second
	if p.mode == progressBar {
		every = 200 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.report(true)
			return
		case <-tick.C:
			p.report(false)
		}
	}
}

func (p *progress) report(last bool) {
	// A short deadline of its own: the run's context may have ended.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := p.h.Summary(ctx)
	if err != nil {
		return // the service stopped: the last report was the last
	}
	done := min(p.before+s.Completed+s.Failed+s.Cancelled, p.total)
	elapsed := time.Since(p.start)
	rate := float64(done-p.before) / elapsed.Seconds()
	eta := "-"
	if rate > 0 && done < p.total {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	counts := fmt.Sprintf("running %d, pending %d, blocked %d, retrying %d, failed %d",
		s.InProgress, s.Pending, s.Blocked, s.Retrying, s.Failed)
	switch p.mode {
	case progressBar:
		const width = 30
		filled := width * done / max(p.total, 1)
		fmt.Fprintf(p.out, "\r[%s%s] %d/%d  %.1f/s  ETA %s  %s ",
			strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, p.total, rate, eta, counts)
		if last {
			fmt.Fprintln(p.out)
		}
	default:
		fmt.Fprintf(p.out, "progress: %d/%d done, %.1f/s, ETA %s; %s\n", done, p.total, rate, eta, counts)
	}
}
