"use client";

import { cumulative, depthWindow, type Level, type OrderBook } from "@/lib/book";
import { plot } from "@/lib/decimal";

const W = 400;
const H = 140;
const LEVELS = 500;
/** The chart spans the mid ± 1% (wider when the spread is): where a trader's order would rest. */
const RANGE = 0.01;

/** Cumulative bids (left) and asks (right) around the spread; numbers are pixels only. */
export function DepthChart({ book }: { book: OrderBook; version: number }) {
  const view = depthWindow(book.bids.levels(LEVELS), book.asks.levels(LEVELS), RANGE);
  if (!view) {
    return <section className="panel p-2 text-muted" data-testid="depth-chart">Depth: no orders</section>;
  }
  const bidTotals = cumulative(view.bids).map(plot);
  const askTotals = cumulative(view.asks).map(plot);
  const top = Math.max(...bidTotals, ...askTotals, Number.MIN_VALUE);
  const x = (p: string) => ((plot(p) - view.low) / (view.high - view.low)) * W;
  const y = (t: number) => H - (t / top) * (H - 4);
  // Each side steps outwards from its best price and runs flat to its edge of the window.
  const path = (levels: Level[], totals: number[], edge: number) => {
    if (!levels.length) return "";
    let d = `M ${x(levels[0][0])} ${H}`;
    levels.forEach((level, i) => {
      d += ` L ${x(level[0])} ${y(i ? totals[i - 1] : 0)} L ${x(level[0])} ${y(totals[i])}`;
    });
    return `${d} L ${edge} ${y(totals.at(-1)!)} L ${edge} ${H} Z`;
  };
  return (
    <section className="panel p-2" data-testid="depth-chart">
      <h2 className="mb-1 font-semibold">Depth</h2>
      <svg viewBox={`0 0 ${W} ${H}`} className="h-[140px] w-full" preserveAspectRatio="none">
        <path d={path(view.bids, bidTotals, 0)} fill="var(--up-bar)" stroke="var(--up)" />
        <path d={path(view.asks, askTotals, W)} fill="var(--down-bar)" stroke="var(--down)" />
      </svg>
    </section>
  );
}
