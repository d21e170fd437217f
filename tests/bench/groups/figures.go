package main

import (
	"fmt"
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

func (f *figures) print(bc benchCase, daemon string) {
	name := bc.String()
	runs := fmt.Sprintf("%d runs", f.runs)
	if bc.paced {
		for i, l := range f.lat {
			who := fmt.Sprintf("n%d", i+1)
			if i == 0 {
				who += " (the sender)"
			}
			ms := func(us float64) string { return strconv.FormatFloat(us/1000, 'f', 3, 64) }
			line(name, "latency ms, "+who+"; median of run medians, min/max of all samples", ms(median(l.med)), ms(l.min), ms(l.max),
				fmt.Sprintf("%s (%d samples)", runs, l.samples))
			name = ""
			p := slices.Clone(l.p99)
			slices.Sort(p)
			line("", "  p99 latency ms, "+who, ms(median(p)), ms(p[0]), ms(p[len(p)-1]), runs)
		}
	} else {
		per := fmt.Sprintf("%s × %d members", runs, nodes)
		row(name, "msg/s delivered per member, first to last delivery", f.rate, 0, per)
		name = ""
		mb := make([]float64, len(f.rate))
		for i, r := range f.rate {
			mb[i] = r * float64(bc.size) / 1e6
		}
		row("", "= MB/s of payload per member", mb, 1, per)
		who := "sender"
		if len(bc.senders) > 1 {
			who = "each sender"
		}
		row("", "msg/s accepted from "+who, f.accepted, 0, fmt.Sprintf("%d senders", len(f.accepted)))
		row("", "CS_ERR_TRY_AGAIN retries per sender per run", f.retries, 0, fmt.Sprintf("%d senders", len(f.retries)))
	}
	if bc.paced {
		// Per message would charge the idle token rotation to 50 msgs/s.
		row("", fmt.Sprintf("%s CPU %% of a core per node (mean of the %d) over the run", daemon, nodes), f.daemonPct, 1, runs)
	} else {
		row("", fmt.Sprintf("%s CPU µs per delivered message, summed over the %d nodes", daemon, nodes), f.daemonUS, 1, runs)
		row("", "client CPU µs per delivered message, per member (sending included)", f.clientUS, 2, fmt.Sprintf("%s × %d members", runs, nodes))
	}
	row("", "host CPU busy % (both CPUs, everything on the host)", f.busy, 1, runs)
}

func row(name, figure string, v []float64, prec int, n string) {
	s := slices.Clone(v)
	slices.Sort(s)
	num := func(x float64) string { return strconv.FormatFloat(x, 'f', prec, 64) }
	line(name, figure, num(median(s)), num(s[0]), num(s[len(s)-1]), n)
}

func line(name, figure, med, lo, hi, n string) {
	fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", name, figure, med, lo, hi, n)
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
