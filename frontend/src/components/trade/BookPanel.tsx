"use client";

import { useMemo, useState } from "react";
import { cumulative, group, type Level, type OrderBook } from "@/lib/book";
import { cmp, format, mul, places, ratio } from "@/lib/decimal";
import type { Market } from "@/lib/api";

const ROWS = 12;

function maxOf(a: string, b: string): string {
  return cmp(a, b) >= 0 ? a : b;
}

function Row({ level, total, max, side, decimals, onPick }: {
  level: Level; total: string; max: string; side: "bid" | "ask"; decimals: number;
  onPick: (price: string) => void;
}) {
  const width = `${(ratio(total, max) * 100).toFixed(1)}%`;
  const bar = side === "bid" ? "var(--up-bar)" : "var(--down-bar)";
  return (
    <tr className="cursor-pointer hover:bg-raised" onClick={() => onPick(level[0])} data-price={level[0]}
      style={{ background: `linear-gradient(to left, ${bar} ${width}, transparent ${width})` }}>
      <td className={`num py-px ${side === "bid" ? "text-up" : "text-down"}`}>{format(level[0], decimals)}</td>
      <td className="num text-right">{format(level[1])}</td>
      <td className="num text-right text-muted">{format(total)}</td>
    </tr>
  );
}

/** The ladder: asks above (best at the bottom), bids below, bars showing cumulative depth. */
export function BookPanel({ market, book, version, last, onPick }: {
  market: Market; book: OrderBook; version: number; last: string | null;
  onPick: (price: string) => void;
}) {
  const steps = useMemo(
    () => [0, 1, 2, 3].map((n) => mul(market.tick_size, String(10 ** n))),
    [market.tick_size],
  );
  const [step, setStep] = useState(0);
  const stepSize = steps[step];
  const decimals = places(stepSize);
  const { bids, asks } = useMemo(() => {
    const depth = ROWS * 10 ** step;
    return {
      bids: group(book.bids.levels(depth), stepSize, "bid").slice(0, ROWS),
      asks: group(book.asks.levels(depth), stepSize, "ask").slice(0, ROWS),
    };
    // `version` changes once per drawn frame: the book object itself is mutated in place.
  }, [book, version, step, stepSize]);
  const bidTotals = cumulative(bids);
  const askTotals = cumulative(asks);
  const max = maxOf(bidTotals.at(-1) ?? "0", askTotals.at(-1) ?? "0");
  return (
    <section className="panel flex flex-col p-2" data-testid="book">
      <div className="mb-1 flex items-center justify-between">
        <h2 className="whitespace-nowrap font-semibold">Order book</h2>
        <select className="input w-24 py-0 text-xs" value={step} aria-label="Group by price step"
          onChange={(e) => setStep(Number(e.target.value))}>
          {steps.map((s, i) => <option key={s} value={i}>{format(s)}</option>)}
        </select>
      </div>
      <table className="w-full text-xs">
        <thead className="text-muted">
          <tr>
            <th className="text-left font-normal">Price ({market.quote})</th>
            <th className="text-right font-normal">Amount ({market.base})</th>
            <th className="text-right font-normal">Total</th>
          </tr>
        </thead>
        <tbody data-testid="asks">
          {asks.map((level, i) => ({ level, total: askTotals[i] })).reverse().map(({ level, total }) => (
            <Row key={level[0]} level={level} total={total} max={max} side="ask" decimals={decimals} onPick={onPick} />
          ))}
        </tbody>
        <tbody>
          <tr>
            <td colSpan={3} className="num border-y border-line py-1 text-base font-semibold" data-testid="book-last">
              {last ? format(last, places(market.tick_size)) : "—"}
            </td>
          </tr>
        </tbody>
        <tbody data-testid="bids">
          {bids.map((level, i) => (
            <Row key={level[0]} level={level} total={bidTotals[i]} max={max} side="bid" decimals={decimals} onPick={onPick} />
          ))}
        </tbody>
      </table>
    </section>
  );
}
