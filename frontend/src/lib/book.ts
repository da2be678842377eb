// The order book as the `depth@MARKET` stream builds it: a snapshot, then updates that each
// continue the previous one (first_update_id = last_update_id + 1, as Binance's diff depth
// stream does). An update that does not continue the book is a gap: the book is unusable
// until a fresh snapshot arrives, and the caller asks for one.

import { add, ceilTo, compareFixed, floorTo, isZero, parse, plot, trim, type Fixed } from "./decimal";

export type Level = [price: string, quantity: string];

export interface DepthSnapshot {
  type: "snapshot";
  last_update_id: number;
  bids: Level[];
  asks: Level[];
}

export interface DepthUpdate {
  type: "update";
  first_update_id: number;
  last_update_id: number;
  bids: Level[];
  asks: Level[];
}

export type ApplyResult = "applied" | "stale" | "gap" | "unsynced";

interface Entry {
  price: string;
  quantity: string;
  key: Fixed;
}

class Side {
  readonly entries = new Map<string, Entry>();
  private sorted: Entry[] | null = null;

  constructor(private readonly descending: boolean) {}

  set(price: string, quantity: string): void {
    const canonical = trim(price);
    if (isZero(quantity)) {
      if (this.entries.delete(canonical)) this.sorted = null;
      return;
    }
    const existing = this.entries.get(canonical);
    if (existing) {
      existing.quantity = quantity;
      existing.price = price;
    } else {
      this.entries.set(canonical, { price, quantity, key: parse(canonical) });
      this.sorted = null;
    }
  }

  clear(): void {
    this.entries.clear();
    this.sorted = null;
  }

  /** The best `depth` levels, best first (highest bid, lowest ask). */
  levels(depth: number): Level[] {
    if (this.sorted === null) {
      const sign = this.descending ? -1 : 1;
      this.sorted = [...this.entries.values()].sort((a, b) => sign * compareFixed(a.key, b.key));
    }
    return this.sorted.slice(0, depth).map((entry) => [entry.price, entry.quantity]);
  }
}

export class OrderBook {
  readonly bids = new Side(true);
  readonly asks = new Side(false);
  lastUpdateId = 0;
  synced = false;

  snapshot(message: DepthSnapshot): void {
    this.bids.clear();
    this.asks.clear();
    for (const [price, quantity] of message.bids) this.bids.set(price, quantity);
    for (const [price, quantity] of message.asks) this.asks.set(price, quantity);
    this.lastUpdateId = message.last_update_id;
    this.synced = true;
  }

  /** Apply a diff; "gap" unsyncs the book: only a snapshot makes it usable again. */
  update(message: DepthUpdate): ApplyResult {
    if (!this.synced) return "unsynced";
    if (message.last_update_id <= this.lastUpdateId) return "stale";
    if (message.first_update_id !== this.lastUpdateId + 1) {
      this.synced = false;
      return "gap";
    }
    for (const [price, quantity] of message.bids) this.bids.set(price, quantity);
    for (const [price, quantity] of message.asks) this.asks.set(price, quantity);
    this.lastUpdateId = message.last_update_id;
    return "applied";
  }

  reset(): void {
    this.bids.clear();
    this.asks.clear();
    this.lastUpdateId = 0;
    this.synced = false;
  }
}

/** Levels merged into buckets of `step`: bids round down, asks up, so a bucket never shows a
 * better price than any order in it. Input is best-first; so is the output. */
export function group(levels: Level[], step: string, side: "bid" | "ask"): Level[] {
  const out: Level[] = [];
  for (const [price, quantity] of levels) {
    const bucket = side === "bid" ? floorTo(price, step) : ceilTo(price, step);
    const last = out[out.length - 1];
    if (last && last[0] === bucket) last[1] = add(last[1], quantity);
    else out.push([bucket, quantity]);
  }
  return out;
}

/** The running total of quantity from the best level outwards (depth bars, depth chart). */
export function cumulative(levels: Level[]): string[] {
  const totals: string[] = [];
  let total = "0";
  for (const [, quantity] of levels) {
    total = add(total, quantity);
    totals.push(total);
  }
  return totals;
}

/** What the depth chart shows: a price window around the mid and the levels inside it. */
export interface DepthWindow {
  low: number;
  high: number;
  bids: Level[];
  asks: Level[];
}

/**
 * The levels within `range` (a fraction of the mid, each way) of the mid, the window widened
 * to twice the distance of each side's best level so that both always show: one order resting
 * far away must not squash the chart of the book that trades. Bounds are plot numbers (pixels
 * only); null for an empty book.
 */
export function depthWindow(bids: Level[], asks: Level[], range: number): DepthWindow | null {
  const best = [bids[0], asks[0]].filter((level) => level !== undefined).map((level) => plot(level[0]));
  if (!best.length) return null;
  const mid = best.reduce((sum, price) => sum + price, 0) / best.length;
  const half = Math.max(mid * range, ...best.map((price) => 2 * Math.abs(price - mid)));
  const low = mid - half;
  const high = mid + half;
  return {
    low,
    high,
    bids: bids.filter((level) => plot(level[0]) >= low),
    asks: asks.filter((level) => plot(level[0]) <= high),
  };
}
