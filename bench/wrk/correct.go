package wrk

import (
	"math"
	"slices"
	"time"
)

// Correct returns latencies with the samples wrk adds before it reports its
// percentiles (stats_correct in wrk's source), so that a Go-measured
// closed loop is summarised as wrk summarises its own (the same up to wrk's
// microsecond buckets): each connection should have sent a request every
// interval = elapsed/(len/conns); a sample of at least two intervals gets
// copies shortened by one interval, two, … while they stay above one
// interval — the requests a steady sender would have sent meanwhile, which
// waited behind it. A stall of the server then weighs as it does for work
// arriving at a steady rate (as Hasura's events do), not as the handful of
// requests that were in flight. wrk corrects failed requests' latencies
// too; callers pass what they measured. The result is sorted.
func Correct(latencies []time.Duration, conns int, elapsed time.Duration) []time.Duration {
	out := slices.Clone(latencies)
	perConn := len(latencies) / max(conns, 1)
	if perConn == 0 {
		slices.Sort(out)
		return out
	}
	interval := elapsed / time.Duration(perConn)
	if interval <= 0 {
		slices.Sort(out)
		return out
	}
	for _, l := range latencies {
		if l < 2*interval {
			continue
		}
		for m := l - interval; m > interval; m -= interval {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// Percentile is the p-th quantile (0 < p < 1) of sorted latencies, ranked
// as wrk ranks them (stats_percentile): the sample of rank
// round(p·n + 0.5).
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Round(p*float64(len(sorted)) + 0.5))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Over is how many of sorted latencies exceed d.
func Over(sorted []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(sorted, d+1)
	return len(sorted) - i
}
