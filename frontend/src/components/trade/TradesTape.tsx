"use client";

import { useState } from "react";
import { api, type Market, type Trade } from "@/lib/api";
import { format, places } from "@/lib/decimal";
import { useReload, useStream } from "@/lib/hooks";

const KEEP = 50;

interface TradeMessage {
  trade_id: number;
  price: string;
  qty: string;
  quote_qty: string;
  taker_side: string;
  ts: number;
}

function merge(current: Trade[], incoming: Trade[]): Trade[] {
  const byId = new Map(current.map((t) => [t.trade_id, t]));
  for (const t of incoming) byId.set(t.trade_id, t);
  return [...byId.values()].sort((a, b) => b.trade_id - a.trade_id).slice(0, KEEP);
}

/** Recent trades: the stored ones, then each trade from `trade@MARKET` as it happens. */
export function TradesTape({ market, onLast }: { market: Market; onLast: (price: string) => void }) {
  const [trades, setTrades] = useState<Trade[]>([]);
  useReload(() => {
    setTrades([]);
    api.trades(market.name, KEEP).then((list) => {
      setTrades((current) => merge(current, list));
      if (list[0]) onLast(list[0].price);
    }, () => undefined);
  }, [market.name]);
  useStream<TradeMessage>(`trade@${market.name}`, (m) => {
    const trade = {
      trade_id: m.trade_id, price: m.price, quantity: m.qty, quote_quantity: m.quote_qty,
      taker_side: m.taker_side, time: m.ts,
    };
    setTrades((current) => merge(current, [trade]));
    onLast(m.price);
  });
  const decimals = places(market.tick_size);
  return (
    <section className="panel flex flex-col p-2" data-testid="trades">
      <h2 className="mb-1 font-semibold">Trades</h2>
      <table className="w-full text-xs">
        <thead className="text-muted">
          <tr>
            <th className="text-left font-normal">Price</th>
            <th className="text-right font-normal">Amount</th>
            <th className="text-right font-normal">Time</th>
          </tr>
        </thead>
        <tbody>
          {trades.map((t) => (
            <tr key={t.trade_id} data-trade-id={t.trade_id}>
              <td className={`num ${t.taker_side === "buy" ? "text-up" : "text-down"}`}>{format(t.price, decimals)}</td>
              <td className="num text-right">{format(t.quantity)}</td>
              <td className="num text-right text-muted">{new Date(t.time).toLocaleTimeString([], { hour12: false })}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {trades.length === 0 && <p className="text-muted">No trades yet</p>}
    </section>
  );
}
