"use client";

import { cumulative, type OrderBook } from "@/lib/book";
import { plot } from "@/lib/decimal";

const W = 400;
const H = 140;
const LEVELS = 50;

/** Cumulative bids (left) and asks (right) around the spread; numbers are pixels only. */
export function DepthChart({ book }: { book: OrderBook; version: number }) {
  const bids = book.bids.levels(LEVELS);
  const asks = book.asks.levels(LEVELS);
  const bidTotals = cumulative(bids).map(plot);
  const askTotals = cumulative(asks).map(plot);
  const prices = [...bids, ...asks].map((l) => plot(l[0]));
  if (prices.length < 2) {
    return <section className="panel p-2 text-muted" data-testid="depth-chart">Depth: no orders</section>;
  }
  const lo = Math.min(...prices);
  const span = Math.max(...prices) - lo || 1;
  const top = Math.max(...bidTotals, ...askTotals, 1);
  const x = (p: string) => ((plot(p) - lo) / span) * W;
  const y = (t: number) => H - (t / top) * (H - 4);
  const path = (levels: typeof bids, totals: number[]) => {
    if (!levels.length) return "";
    let d = `M ${x(levels[0][0])} ${H}`;
    levels.forEach((level, i) => {
      d += ` L ${x(level[0])} ${y(i ? totals[i - 1] : 0)} L ${x(level[0])} ${y(totals[i])}`;
    });
    return `${d} L ${x(levels.at(-1)![0])} ${H} Z`;
  };
  return (
    <section className="panel p-2" data-testid="depth-chart">
      <h2 className="mb-1 font-semibold">Depth</h2>
      <svg viewBox={`0 0 ${W} ${H}`} className="h-[140px] w-full" preserveAspectRatio="none">
        <path d={path(bids, bidTotals)} fill="var(--up-bar)" stroke="var(--up)" />
        <path d={path(asks, askTotals)} fill="var(--down-bar)" stroke="var(--down)" />
      </svg>
    </section>
  );
}
