package main

// Latencies in 100 µs buckets up to 10 s (beyond: the last bucket, the maximum kept apart),
// in a few shards so that connections seldom add to the same cache line at once.

import (
	"math"
	"sync/atomic"
)

const (
	bucketUs = 100
	buckets  = 100_000
	shards   = 16
)

type histogram struct {
	counts [shards][buckets]atomic.Int64
	maxUs  atomic.Int64
	next   atomic.Uint32
}

func (h *histogram) add(us int64) {
	if us < 0 {
		us = 0 // the commit time has millisecond resolution
	}
	for seen := h.maxUs.Load(); us > seen && !h.maxUs.CompareAndSwap(seen, us); {
		seen = h.maxUs.Load()
	}
	bucket := min(us/bucketUs, buckets-1)
	h.counts[h.next.Add(1)%shards][bucket].Add(1)
}

func (h *histogram) reset() {
	for s := range h.counts {
		for b := range h.counts[s] {
			h.counts[s][b].Store(0)
		}
	}
	h.maxUs.Store(0)
}

type latencySummary struct {
	Samples int64   `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
	Max     float64 `json:"max_ms"`
}

// summary: each quantile as the upper bound of its bucket, in ms.
func (h *histogram) summary() latencySummary {
	var merged [buckets]int64
	var total int64
	for s := range h.counts {
		for b := range h.counts[s] {
			n := h.counts[s][b].Load()
			merged[b] += n
			total += n
		}
	}
	quantile := func(q float64) float64 {
		if total == 0 {
			return 0
		}
		rank := int64(math.Ceil(q * float64(total)))
		var seen int64
		for b, n := range merged {
			seen += n
			if seen >= rank {
				return float64((b+1)*bucketUs) / 1000
			}
		}
		return float64(buckets*bucketUs) / 1000
	}
	return latencySummary{
		Samples: total,
		P50:     quantile(0.5),
		P90:     quantile(0.9),
		P99:     quantile(0.99),
		P999:    quantile(0.999),
		Max:     float64(h.maxUs.Load()) / 1000,
	}
}
