package main

import (
	"fmt"
	"strings"
	"testing"
)

func line3(size int, status string, digest [3]string, delivered [3]int) []string {
	var out []string
	for i := range 3 {
		out = append(out, fmt.Sprintf("noise\nGROUPBENCH backend=cpg id=%d group=g size=%d senders=1,2,3 msgs=10 interval_us=0 sent=10 send_s=0.01"+
			" retries=0 delivered=%d span_s=0.01 rate=1000.0 lost=0 dup=0 bad=0 cpu_s=0.1 digest=%s status=%s\n",
			i+1, size, delivered[i], digest[i], status))
	}
	return out
}

func parseAll(t *testing.T, outs []string) []member {
	t.Helper()
	var ms []member
	for _, o := range outs {
		m, err := parseLine(o, false)
		if err != nil {
			t.Fatalf("parseLine(%q): %v", o, err)
		}
		ms = append(ms, m)
	}
	return ms
}

func TestCheck(t *testing.T) {
	bc := allCases[3] // 1k-3s
	d := [3]string{"ab", "ab", "ab"}
	if err := check(bc, 10, parseAll(t, line3(1024, "ok", d, [3]int{30, 30, 30}))); err != nil {
		t.Fatalf("a clean run failed the check: %v", err)
	}
	for name, tc := range map[string]struct {
		status    string
		digest    [3]string
		delivered [3]int
		want      string
	}{
		"order":  {"ok", [3]string{"ab", "ab", "ac"}, [3]int{30, 30, 30}, "different orders"},
		"count":  {"ok", d, [3]int{30, 29, 30}, "node2: delivered 29"},
		"status": {"sequence", d, [3]int{30, 30, 30}, "status sequence"},
	} {
		err := check(bc, 10, parseAll(t, line3(1024, tc.status, tc.digest, tc.delivered)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: check = %v, want an error with %q", name, err, tc.want)
		}
	}
}

func TestParseLineRejects(t *testing.T) {
	good := line3(64, "ok", [3]string{"a", "a", "a"}, [3]int{30, 30, 30})[0]
	for name, out := range map[string]string{
		"none":      "hello\n",
		"twice":     good + good,
		"not kv":    strings.Replace(good, "rate=1000.0", "rate", 1),
		"bad num":   strings.Replace(good, "rate=1000.0", "rate=fast", 1),
		"dup key":   strings.Replace(good, "status=ok", "status=ok status=ok", 1),
		"no digest": strings.Replace(good, "digest=a ", "", 1),
	} {
		if _, err := parseLine(out, false); err == nil {
			t.Errorf("%s: parseLine accepted %q", name, out)
		}
	}
	if _, err := parseLine(good, true); err == nil || !strings.Contains(err.Error(), "lat_n") {
		t.Errorf("a paced line without latency fields: err = %v", err)
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add(line3(64, "ok", [3]string{"a", "a", "a"}, [3]int{30, 30, 30})[0], false)
	f.Add("GROUPBENCH id=1 lat_n=3 status=ok", true)
	f.Fuzz(func(t *testing.T, out string, paced bool) {
		m, err := parseLine(out, paced)
		if err != nil {
			return
		}
		for _, k := range numericKeys {
			if _, ok := m[k]; !ok {
				t.Fatalf("accepted a line without %s: %q", k, out)
			}
		}
	})
}

func TestPrintCase(t *testing.T) {
	bc := allCases[2] // 1k-1s
	fill := func(rate float64, retries float64) *figures {
		f := &figures{}
		for range 2 {
			outs := line3(1024, "ok", [3]string{"a", "a", "a"}, [3]int{10, 10, 10})
			ms := parseAll(t, outs)
			for _, m := range ms {
				m["rate"] = fmt.Sprint(rate)
				m["retries"] = fmt.Sprint(retries)
			}
			f.add(bc, ms)
			f.busy = append(f.busy, 50)
			f.daemonUS = append(f.daemonUS, 10)
		}
		return f
	}
	var b strings.Builder
	printCase(&b, bc, fill(500, 7), fill(2000, 1))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(fill(1, 1).rows(bc)) {
		t.Fatalf("%d lines, want one per row:\n%s", len(lines), b.String())
	}
	for _, want := range []string{
		"| 1 KiB flood, 1 sender (n1) | msg/s delivered per member, first to last delivery | 500 | 500 | 500 | 2000 | 2000 | 2000 | 2 runs × 3 members | 0.25 |",
		"| would-block answers (EAGAIN, CS_ERR_TRY_AGAIN) per sender per run | 7 | 7 | 7 | 1 | 1 | 1 | 2 senders | – |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no line with %q in:\n%s", want, b.String())
		}
	}
}
