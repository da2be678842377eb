// wsload: many WebSocket clients of ws, measured (see docs/ws.md "The benchmark").
//
//	wsload -plan plan.json  < commit lines  > JSON lines
//
// It opens the plan's connections, prints {"ready": ...}, then reads what the engines commit
// from stdin (clock.go) and, after each STOP, prints one window's summary: latency from
// commit to arrival, messages owed and received per kind of stream, clients that were
// resynced (counted apart), and its own CPU time.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const openAttempts = 5

type group struct {
	Count      int      `json:"count"`
	Binance    bool     `json:"binance"`
	Streams    []string `json:"streams"` // {m}: the market, {s}: its Binance symbol (lower case)
	Markets    []string `json:"markets"` // client i is on Markets[i % len]
	Symbols    []string `json:"symbols"` // the markets' Binance symbols, in the same order
	ListenKeys []string `json:"listen_keys"`
	Users      []string `json:"users"` // the listen keys' users (private clients)
}

type plan struct {
	URLs     []string `json:"urls"` // ws://host:port, the clients spread over them in turn
	Groups   []group  `json:"groups"`
	Parallel int      `json:"connect_parallel"`
	Grace    float64  `json:"grace_seconds"` // after STOP, how long deliveries may still take
}

type window struct {
	epoch int
	start entry // per market in starts; this one's lastTrade/lastDepth used via client.market
}

type windowTotals struct {
	received, owed, undelivered [kinds]int64
	resynced, closed            int64
}

type load struct {
	plan    plan
	markets map[string]*market
	users   map[string]int
	clients []*client
	windows map[*market]*atomic.Pointer[window]
	lat     latencies
	failed  atomic.Int64
}

func main() {
	planPath := flag.String("plan", "", "the JSON plan")
	flag.Parse()
	raw, err := os.ReadFile(*planPath)
	if err != nil {
		fail(err)
	}
	var p plan
	if err := json.Unmarshal(raw, &p); err != nil {
		fail(err)
	}
	l := newLoad(p)
	l.connect()
	emit(map[string]any{"ready": len(l.clients) - int(l.failed.Load()), "failed": l.failed.Load()})
	l.follow(bufio.NewScanner(os.Stdin))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wsload:", err)
	os.Exit(2)
}

func emit(value any) {
	line, _ := json.Marshal(value)
	os.Stdout.Write(append(line, '\n'))
}

func newLoad(p plan) *load {
	l := &load{plan: p, markets: map[string]*market{}, users: map[string]int{},
		windows: map[*market]*atomic.Pointer[window]{}}
	for _, g := range p.Groups {
		for i := 0; i < g.Count; i++ {
			name := g.Markets[i%len(g.Markets)]
			m := l.markets[name]
			if m == nil {
				m = &market{}
				l.markets[name] = m
				l.windows[m] = &atomic.Pointer[window]{}
			}
			c := &client{market: m, user: -1}
			for _, stream := range l.streams(g, i) {
				c.subs = append(c.subs, subscription{name: []byte(stream), kind: kindOf(stream, g.Binance),
					merged: mergedDepth(stream, g.Binance)})
			}
			if g.ListenKeys != nil {
				user := g.Users[i]
				if _, ok := l.users[user]; !ok {
					l.users[user] = len(l.users)
				}
				c.user = l.users[user]
			}
			l.clients = append(l.clients, c)
		}
	}
	return l
}

// mergedDepth: ws holds the native depth@M@100ms updates back up to 100 ms by design (the
// Binance @100ms diffs it sends per engine batch, docs/binance.md).
func mergedDepth(stream string, binance bool) bool {
	return !binance && strings.HasSuffix(stream, "@100ms")
}

func (l *load) streams(g group, i int) []string {
	market := g.Markets[i%len(g.Markets)]
	symbol := ""
	if g.Symbols != nil {
		symbol = g.Symbols[i%len(g.Symbols)]
	}
	names := make([]string, len(g.Streams))
	for n, template := range g.Streams {
		names[n] = strings.NewReplacer("{m}", market, "{s}", symbol).Replace(template)
	}
	return names
}

// address: the URL of the n-th client of group g (its i-th).
func (l *load) address(n int, g group, i int) string {
	base := l.plan.URLs[n%len(l.plan.URLs)]
	if g.Binance {
		return base + "/stream?streams=" + strings.Join(l.streams(g, i), "/")
	}
	if g.ListenKeys != nil {
		return base + "/ws?listen_key=" + g.ListenKeys[i]
	}
	return base + "/ws"
}

func (l *load) connect() {
	parallel := max(l.plan.Parallel, 1)
	slots := make(chan struct{}, parallel)
	var done sync.WaitGroup
	n := 0
	for _, g := range l.plan.Groups {
		for i := 0; i < g.Count; i++ {
			c, url := l.clients[n], l.address(n, g, i)
			var streams []string
			if !g.Binance {
				streams = l.streams(g, i)
			}
			slots <- struct{}{}
			done.Add(1)
			go func() {
				defer func() { <-slots; done.Done() }()
				if err := l.open(c, url, streams); err != nil {
					c.closed = true
					l.failed.Add(1)
					fmt.Fprintln(os.Stderr, "wsload:", url, err)
				}
			}()
			n++
		}
	}
	done.Wait()
}

// open connects and subscribes the client, again after a pause if ws refused for now (what
// a trading client does: a connection reset under a burst of connects, error code 9).
func (l *load) open(c *client, url string, streams []string) (err error) {
	for attempt := 0; attempt < openAttempts; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * time.Second)
		}
		var conn *wsConn
		if conn, err = dial(url, 60*time.Second); err != nil {
			continue
		}
		if streams != nil {
			if err = subscribe(conn, streams); err != nil {
				conn.close()
				continue
			}
		}
		current := l.windows[c.market]
		go c.run(conn, current.Load, &l.lat)
		return nil
	}
	return err
}

// follow reads the commit lines and control words until QUIT or the end of stdin.
func (l *load) follow(lines *bufio.Scanner) {
	epoch := 0
	owedOrders := make([]int64, len(l.users))
	var began time.Time
	var cpuBefore float64
	for lines.Scan() {
		words := strings.Fields(lines.Text())
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "E":
			l.commit(words)
		case "O":
			if user, ok := l.users[words[1]]; ok {
				n, _ := strconv.ParseInt(words[2], 10, 64)
				owedOrders[user] += n
			}
		case "GO":
			epoch++
			clear(owedOrders)
			l.lat.immediate.reset()
			l.lat.merged.reset()
			for m, current := range l.windows {
				current.Store(&window{epoch: epoch, start: m.last()})
			}
			began, cpuBefore = time.Now(), cpuSeconds()
			emit(map[string]any{"go": epoch}) // the load may start
		case "STOP":
			emit(l.finish(began, cpuBefore, owedOrders))
		case "QUIT":
			return
		}
	}
}

func (l *load) commit(words []string) {
	if len(words) != 6 {
		fail(fmt.Errorf("bad commit line %q", words))
	}
	m := l.markets[words[1]]
	if m == nil {
		return // a market no client follows
	}
	var values [4]int64
	for i := range values {
		values[i], _ = strconv.ParseInt(words[2+i], 10, 64)
	}
	m.add(entry{lastSeq: values[0], commitMs: values[1], lastTrade: values[2], lastDepth: values[3]})
}

// finish waits until every client has what it is owed (or the grace is over) and sums up.
func (l *load) finish(began time.Time, cpuBefore float64, owedOrders []int64) map[string]any {
	loadSeconds := time.Since(began).Seconds()
	deadline := time.Now().Add(time.Duration(l.plan.Grace * float64(time.Second)))
	totals, missing := l.totals(owedOrders)
	for undelivered(totals) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		totals, missing = l.totals(owedOrders)
	}
	for _, line := range missing[:min(len(missing), 50)] {
		fmt.Fprintln(os.Stderr, "wsload: undelivered:", line)
	}
	wall := time.Since(began).Seconds()
	cpu := cpuSeconds() - cpuBefore
	unresolved := 0
	for _, m := range l.markets {
		unresolved += m.unresolved()
	}
	byKind := func(values [kinds]int64) map[string]int64 {
		named := map[string]int64{}
		for k, v := range values {
			if k != int(kindOther) || v != 0 {
				named[kindNames[k]] = v
			}
		}
		return named
	}
	return map[string]any{
		"clients":                   len(l.clients),
		"connected":                 len(l.clients) - int(l.failed.Load()),
		"load_seconds":              round(loadSeconds),
		"seconds":                   round(wall),
		"latency":                   l.lat.immediate.summary(),
		"latency_merged":            l.lat.merged.summary(),
		"latency_unresolved":        unresolved,
		"received":                  byKind(totals.received),
		"owed":                      byKind(totals.owed),
		"undelivered_by_kind":       byKind(totals.undelivered),
		"undelivered":               undelivered(totals),
		"resynced_clients":          totals.resynced,
		"closed_clients":            totals.closed,
		"client_cpu_seconds":        round(cpu),
		"client_cpu_percent_of_one": round(100 * cpu / wall),
		"client_cores":              runtime.GOMAXPROCS(0),
	}
}

func (l *load) totals(owedOrders []int64) (windowTotals, []string) {
	var totals windowTotals
	var missing []string
	for n, c := range l.clients {
		w := l.windows[c.market].Load()
		if w != nil {
			before := len(missing)
			c.account(w, c.market.last(), owedOrders, &totals, &missing)
			for i := before; i < len(missing); i++ {
				missing[i] = fmt.Sprintf("client %d %s", n, missing[i])
			}
		}
	}
	return totals, missing
}

func undelivered(t windowTotals) int64 {
	var sum int64
	for _, n := range t.undelivered {
		sum += n
	}
	return sum
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}

func round(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
