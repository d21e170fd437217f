package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
)

// figures gathers one case's numbers over its runs.
type figures struct {
	runs     int
	rate     []float64 // msg/s per member, one per member per run
	accepted []float64 // msg/s a sender got accepted, one per sender per run
	retries  []float64 // TRY_AGAIN answers, one per sender per run
	busy     []float64 // host CPU busy %, one per run
	daemonUS []float64 // the daemons' CPU µs per delivered message, summed over the nodes, one per run
	clientUS []float64 // a client's CPU µs per delivered message, one per member per run
	// The daemons' CPU over the whole run (clients' start to exit), % of
	// one core, mean of the nodes, one per run.
	daemonPct []float64
	lat       [nodes]latency
}

// latency is one node's paced figures over the runs.
type latency struct {
	med, p99 []float64 // per-run median and 99th percentile, µs
	min, max float64   // over all samples, µs
	samples  int
}

func (f *figures) add(bc benchCase, ms []member) {
	f.runs++
	for i, m := range ms {
		f.clientUS = append(f.clientUS, m.num("cpu_s")/m.num("delivered")*1e6)
		if bc.paced {
			l := &f.lat[i]
			if l.samples == 0 || m.num("lat_min_us") < l.min {
				l.min = m.num("lat_min_us")
			}
			l.max = max(l.max, m.num("lat_max_us"))
			l.med = append(l.med, m.num("lat_med_us"))
			l.p99 = append(l.p99, m.num("lat_p99_us"))
			l.samples += int(m.num("lat_n"))
			continue
		}
		f.rate = append(f.rate, m.num("rate"))
		if slices.Contains(bc.senders, i+1) {
			f.accepted = append(f.accepted, m.num("sent")/m.num("send_s"))
			f.retries = append(f.retries, m.num("retries"))
		}
	}
}

// stat is one figure's summary over the runs.
type stat struct {
	med, lo, hi float64
	prec        int    // digits after the point
	n           string // what was counted
}

// figRow is one line of the table for one system.
type figRow struct {
	figure  string
	noRatio bool // a ratio of counts near 0, or of the host's load, means nothing
	stat
}

// rows are the case's lines; both systems give the same lines in the same
// order, so the table sets them side by side.
func (f *figures) rows(bc benchCase) []figRow {
	var out []figRow
	runs := fmt.Sprintf("%d runs", f.runs)
	if f.runs == 1 {
		runs = "1 run"
	}
	add := func(figure string, v []float64, prec int, n string) {
		s := slices.Clone(v)
		slices.Sort(s)
		out = append(out, figRow{figure: figure, stat: stat{median(s), s[0], s[len(s)-1], prec, n}})
	}
	if bc.paced {
		for i, l := range f.lat {
			who := fmt.Sprintf("n%d", i+1)
			if i == 0 {
				who += " (the sender)"
			}
			out = append(out, figRow{figure: "latency ms, " + who + "; median of run medians, min/max of all samples",
				stat: stat{median(l.med) / 1000, l.min / 1000, l.max / 1000, 3, fmt.Sprintf("%s (%d samples)", runs, l.samples)}})
			p := make([]float64, len(l.p99))
			for k, v := range l.p99 {
				p[k] = v / 1000
			}
			add("  p99 latency ms, "+who, p, 3, runs)
		}
		// Per message would charge the idle upkeep to 50 msgs/s.
		add(fmt.Sprintf("daemon CPU %% of a core per node (mean of the %d) over the run", nodes), f.daemonPct, 1, runs)
	} else {
		per := fmt.Sprintf("%s × %d members", runs, nodes)
		add("msg/s delivered per member, first to last delivery", f.rate, 0, per)
		mb := make([]float64, len(f.rate))
		for i, r := range f.rate {
			mb[i] = r * float64(bc.size) / 1e6
		}
		add("= MB/s of payload per member", mb, 1, per)
		who := "sender"
		if len(bc.senders) > 1 {
			who = "each sender"
		}
		add("msg/s accepted from "+who, f.accepted, 0, fmt.Sprintf("%d senders", len(f.accepted)))
		add("would-block answers (EAGAIN, CS_ERR_TRY_AGAIN) per sender per run", f.retries, 0, fmt.Sprintf("%d senders", len(f.retries)))
		out[len(out)-1].noRatio = true
		add(fmt.Sprintf("daemon CPU µs per delivered message, summed over the %d nodes", nodes), f.daemonUS, 1, runs)
		add("client CPU µs per delivered message, per member (sending included)", f.clientUS, 2, per)
	}
	add("host CPU busy % (both CPUs, everything on the host)", f.busy, 1, runs)
	out[len(out)-1].noRatio = true
	return out
}

// printCase prints the case's lines, Concord's figures (a) beside
// Corosync's (b), with the ratio of the medians.
func printCase(w io.Writer, bc benchCase, a, b *figures) {
	ra, rb := a.rows(bc), b.rows(bc)
	name := bc.String()
	for i := range ra {
		x, y := ra[i], rb[i]
		num := func(v float64) string { return strconv.FormatFloat(v, 'f', x.prec, 64) }
		ratio := "–"
		if y.med != 0 && !x.noRatio {
			ratio = strconv.FormatFloat(x.med/y.med, 'f', 2, 64)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, x.figure,
			num(x.med), num(x.lo), num(x.hi), num(y.med), num(y.lo), num(y.hi), x.n, ratio)
		name = ""
	}
}

// median of a sorted or unsorted slice; the mean of the middle two for an
// even count.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
