package main

// One connection: its subscriptions, and per subscription what it received in the current
// window and what that leaves undelivered. Messages are read with byte searches for the few
// fields accounting and latency need, never parsed whole.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

type kind int

const (
	kindOther  kind = iota
	kindTrade       // trade@M: trade_id, seq
	kindDepth       // depth@M, depth@M@100ms: snapshot, then first/last_update_id
	kindOrders      // orders: the user's updates, seq
	kindBTrade      // Binance <symbol>@trade: t
	kindBDepth      // Binance <symbol>@depth...: U, u
	kinds
)

var kindNames = [kinds]string{"other", "trade", "depth", "orders", "binance_trade", "binance_depth"}

var (
	keyStream   = []byte(`"stream":"`)
	keyTradeID  = []byte(`"trade_id":`)
	keySeq      = []byte(`"seq":`)
	keyFirst    = []byte(`"first_update_id":`)
	keyLast     = []byte(`"last_update_id":`)
	keyUpdate   = []byte(`"type":"update"`)
	keyBTrade   = []byte(`"t":`)
	keyBFirst   = []byte(`"U":`)
	keyBLast    = []byte(`"u":`)
	keyResync   = []byte(`"event":"resync"`)
	keyDisc     = []byte(`"event":"disconnect"`)
	keyAnswered = []byte(`"id":1}`)
	keyError    = []byte(`"error"`)
)

func kindOf(name string, binance bool) kind {
	switch {
	case binance && strings.Contains(name, "@trade"):
		return kindBTrade
	case binance && strings.Contains(name, "@depth"):
		return kindBDepth
	case binance:
		return kindOther
	case strings.HasPrefix(name, "trade@"):
		return kindTrade
	case strings.HasPrefix(name, "depth@"):
		return kindDepth
	case name == "orders":
		return kindOrders
	}
	return kindOther
}

type subscription struct {
	name     []byte
	kind     kind
	received int64      // messages in the window
	merged   bool       // depth@M@100ms: updates held back up to 100 ms by design
	covered  int64      // depth: the update id the chain reached
	gaps     [][2]int64 // depth: update ids (after, upTo] the chain skipped
}

type client struct {
	mu       sync.Mutex
	subs     []subscription
	market   *market
	user     int // index of its user (private clients), else -1
	epoch    int
	resynced bool
	closed   bool
	other    int64
}

// field: the unsigned integer after `key` in `message`.
func field(message, key []byte) (int64, bool) {
	at := bytes.Index(message, key)
	if at < 0 {
		return 0, false
	}
	var value int64
	digits := 0
	for _, b := range message[at+len(key):] {
		if b < '0' || b > '9' {
			break
		}
		value = value*10 + int64(b-'0')
		digits++
	}
	return value, digits > 0
}

func (c *client) subscription(message []byte) *subscription {
	at := bytes.Index(message, keyStream)
	if at < 0 {
		return nil
	}
	name := message[at+len(keyStream):]
	end := bytes.IndexByte(name, '"')
	if end < 0 {
		return nil
	}
	name = name[:end]
	for i := range c.subs {
		if bytes.Equal(c.subs[i].name, name) {
			return &c.subs[i]
		}
	}
	return nil
}

// startWindow resets what the client counts when it first sees window `w`.
func (c *client) startWindow(w *window) {
	c.epoch = w.epoch
	for i := range c.subs {
		sub := &c.subs[i]
		sub.received, sub.gaps = 0, sub.gaps[:0]
		sub.covered = w.start.lastDepth
	}
	c.other = 0
}

// latencies: messages sent as their events come, and merged depth updates (held back up to
// 100 ms by design, measured from their newest entry) apart.
type latencies struct{ immediate, merged histogram }

func (c *client) handle(message []byte, arrivalUs int64, w *window, lat *latencies) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w == nil {
		return // before the first window: subscription answers and snapshots
	}
	if c.epoch != w.epoch {
		c.startWindow(w)
	}
	sub := c.subscription(message)
	if sub == nil {
		switch {
		case bytes.Contains(message, keyResync):
			c.resynced = true
		case bytes.Contains(message, keyDisc):
			c.closed = true
		}
		c.other++
		return
	}
	start, hist := w.start, &lat.immediate
	if sub.merged {
		hist = &lat.merged
	}
	switch sub.kind {
	case kindTrade, kindBTrade:
		key := keyTradeID
		if sub.kind == kindBTrade {
			key = keyBTrade
		}
		if id, ok := field(message, key); ok && id > start.lastTrade {
			sub.received++
			if sub.kind == kindBTrade {
				c.market.latency(id, true, arrivalUs, hist)
			} else if seq, ok := field(message, keySeq); ok {
				c.market.latency(seq, false, arrivalUs, hist)
			}
		}
	case kindDepth:
		if bytes.Contains(message, keyUpdate) {
			c.depth(sub, message, keyFirst, keyLast, arrivalUs, hist)
		}
	case kindBDepth:
		c.depth(sub, message, keyBFirst, keyBLast, arrivalUs, hist)
	case kindOrders:
		if seq, ok := field(message, keySeq); ok && seq > start.lastSeq {
			sub.received++
			c.market.latency(seq, false, arrivalUs, hist)
		}
	default:
		sub.received++
	}
}

func (c *client) depth(sub *subscription, message, keyFirst, keyLast []byte, arrivalUs int64, hist *histogram) {
	first, ok1 := field(message, keyFirst)
	last, ok2 := field(message, keyLast)
	if !ok1 || !ok2 || last <= sub.covered {
		return
	}
	if first > sub.covered+1 {
		sub.gaps = append(sub.gaps, [2]int64{sub.covered, first - 1})
	}
	sub.covered = last
	sub.received++
	c.market.latency(last, false, arrivalUs, hist)
}

// account adds the client's received and undelivered messages of window `w` to `totals`;
// what it misses, to `missing` (a line per subscription, for the log).
func (c *client) account(w *window, final entry, owedOrders []int64, totals *windowTotals, missing *[]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != w.epoch {
		c.startWindow(w)
	}
	if c.resynced || c.closed {
		if c.resynced {
			totals.resynced++
		} else {
			totals.closed++
		}
		return
	}
	start := w.start
	for i := range c.subs {
		sub := &c.subs[i]
		totals.received[sub.kind] += sub.received
		before := totals.undelivered[sub.kind]
		var owed int64
		switch sub.kind {
		case kindTrade, kindBTrade:
			owed = final.lastTrade - start.lastTrade
			totals.undelivered[sub.kind] += owed - sub.received
		case kindDepth, kindBDepth:
			owed = c.market.depthEntries(start.lastDepth, final.lastDepth)
			missing := c.market.depthEntries(sub.covered, final.lastDepth)
			for _, gap := range sub.gaps {
				missing += c.market.depthEntries(gap[0], gap[1])
			}
			totals.undelivered[sub.kind] += missing
		case kindOrders:
			owed = owedOrders[c.user]
			totals.undelivered[sub.kind] += owed - sub.received
		default:
			owed = sub.received // latest-value streams (ticker, ...): nothing to owe
		}
		totals.owed[sub.kind] += owed
		if short := totals.undelivered[sub.kind] - before; short > 0 {
			*missing = append(*missing, fmt.Sprintf("%s: %d of %d missing (covered %d of %d, gaps %v)",
				sub.name, short, owed, sub.covered, final.lastDepth, sub.gaps))
		}
	}
}

// run reads messages until the connection ends.
func (c *client) run(conn *wsConn, current func() *window, lat *latencies) {
	defer conn.close()
	for {
		message, err := conn.next()
		if err != nil {
			c.mu.Lock()
			c.closed = true
			c.mu.Unlock()
			return
		}
		c.handle(message, time.Now().UnixMicro(), current(), lat)
	}
}

// subscribe sends the native SUBSCRIBE and waits for its answer.
func subscribe(conn *wsConn, streams []string) error {
	quoted := make([]string, len(streams))
	for i, name := range streams {
		quoted[i] = strconv.Quote(name)
	}
	request := `{"method":"SUBSCRIBE","params":[` + strings.Join(quoted, ",") + `],"id":1}`
	if err := conn.write(opText, []byte(request)); err != nil {
		return err
	}
	for {
		message, err := conn.next()
		if err != nil {
			return err
		}
		if bytes.Contains(message, keyAnswered) {
			if bytes.Contains(message, keyError) {
				return &answerError{string(message)}
			}
			return nil
		}
	}
}

type answerError struct{ answer string }

func (e *answerError) Error() string { return "subscription refused: " + e.answer }
