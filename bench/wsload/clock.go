package main

// What the engines committed, as the benchmark reads it from the markets' events streams and
// writes it to stdin, one line per events entry:
//
//	E <market> <last seq> <commit ms> <last trade id> <last depth update id>
//	O <user> <n>        (n orders-stream messages that entry owes the user)
//	GO                  (a measured window starts: what was committed so far is not owed;
//	                     answered with {"go": n} once the clients count it)
//	STOP                (the load stopped and every entry of it was written above)
//	QUIT
//
// A message's latency is its arrival minus the commit time (the entry id's milliseconds) of
// the entry that produced it, found by seq (or trade id) in that market's entries.

import (
	"sort"
	"sync"
)

type entry struct {
	lastSeq, commitMs, lastTrade, lastDepth int64
}

type pendingLatency struct {
	key       int64
	byTrade   bool
	arrivalUs int64
	hist      *histogram
}

type market struct {
	mu      sync.RWMutex
	entries []entry
	depths  []int64 // the last update id of every entry with a depth event, ascending
	pending []pendingLatency
}

func (m *market) add(e entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.entries); n > 0 && e.lastTrade == 0 {
		e.lastTrade = m.entries[n-1].lastTrade
	}
	m.entries = append(m.entries, e)
	if e.lastDepth > 0 {
		m.depths = append(m.depths, e.lastDepth)
	}
	kept := m.pending[:0]
	for _, p := range m.pending {
		if commit, ok := m.commitOf(p.key, p.byTrade); ok {
			p.hist.add(p.arrivalUs - commit*1000)
		} else {
			kept = append(kept, p)
		}
	}
	m.pending = kept
}

// commitOf: the commit ms of the entry holding seq (or trade id) `key`; caller holds mu.
func (m *market) commitOf(key int64, byTrade bool) (int64, bool) {
	i := sort.Search(len(m.entries), func(i int) bool {
		if byTrade {
			return m.entries[i].lastTrade >= key
		}
		return m.entries[i].lastSeq >= key
	})
	if i == len(m.entries) {
		return 0, false
	}
	return m.entries[i].commitMs, true
}

// latency records a message's delay, or keeps it until its entry is known.
func (m *market) latency(key int64, byTrade bool, arrivalUs int64, hist *histogram) {
	m.mu.RLock()
	commit, ok := m.commitOf(key, byTrade)
	m.mu.RUnlock()
	if ok {
		hist.add(arrivalUs - commit*1000)
		return
	}
	m.mu.Lock()
	if commit, ok := m.commitOf(key, byTrade); ok {
		hist.add(arrivalUs - commit*1000)
	} else {
		m.pending = append(m.pending, pendingLatency{key, byTrade, arrivalUs, hist})
	}
	m.mu.Unlock()
}

// depthEntries counts the entries with a depth event whose last update id is in (after, upTo].
func (m *market) depthEntries(after, upTo int64) int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	low := sort.Search(len(m.depths), func(i int) bool { return m.depths[i] > after })
	high := sort.Search(len(m.depths), func(i int) bool { return m.depths[i] > upTo })
	return int64(high - low)
}

func (m *market) last() entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.entries) == 0 {
		return entry{}
	}
	last := m.entries[len(m.entries)-1]
	if len(m.depths) > 0 {
		last.lastDepth = m.depths[len(m.depths)-1]
	}
	return last
}

func (m *market) unresolved() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.pending)
}
