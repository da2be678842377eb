"use client";

import Link from "next/link";
import { useEffect, useState } from "react";
import { Sparkline } from "@/components/Sparkline";
import { api, type Market, type Ticker } from "@/lib/api";
import { format, isDecimal, parse, places } from "@/lib/decimal";
import { useMarkets, useReload, useStream } from "@/lib/hooks";

function MarketRow({ market, initial }: { market: Market; initial: Ticker | undefined }) {
  const [ticker, setTicker] = useState(initial);
  const [closes, setCloses] = useState<string[]>([]);
  useEffect(() => setTicker(initial), [initial]);
  useReload(() => {
    // The first candle's open starts the line, so even one hour of trading draws one.
    api.klines(market.name, "1h", 24).then(
      (rows) => setCloses(rows.length ? [rows[0].open, ...rows.map((k) => k.close)] : []),
      () => undefined,
    );
  }, [market.name]);
  useStream<Ticker>(`ticker@${market.name}`, setTicker);
  const change = ticker?.price_change_percent ?? "0";
  const up = isDecimal(change) && parse(change).units >= 0n;
  const decimals = places(market.tick_size);
  return (
    <tr className="border-t border-line hover:bg-raised" data-market={market.name}>
      <td className="py-2">
        <Link href={`/trade/?market=${market.name}`} className="font-semibold">
          {market.base}<span className="text-muted">/{market.quote}</span>
        </Link>
      </td>
      <td className="num text-right">{ticker ? format(ticker.last, decimals) : "—"}</td>
      <td className={`num text-right ${up ? "text-up" : "text-down"}`}>
        {ticker ? `${up ? "+" : ""}${format(change, 2)}%` : "—"}
      </td>
      <td className="num hidden text-right sm:table-cell">{ticker ? format(ticker.volume) : "—"}</td>
      <td className="num hidden text-right md:table-cell">{ticker ? format(ticker.quote_volume, 2) : "—"}</td>
      <td className="hidden pl-4 sm:table-cell"><Sparkline closes={closes} up={up} /></td>
      <td className="text-right">
        <Link href={`/trade/?market=${market.name}`} className="text-accent">Trade</Link>
      </td>
    </tr>
  );
}

export default function MarketsPage() {
  const markets = useMarkets();
  const [tickers, setTickers] = useState<Record<string, Ticker>>({});
  useReload(() => {
    api.tickers().then((list) => setTickers(Object.fromEntries(list.map((t) => [t.market, t]))), () => undefined);
  }, []);
  return (
    <section className="panel mx-auto max-w-5xl p-4">
      <h1 className="mb-3 text-lg font-semibold">Markets</h1>
      <table className="w-full" data-testid="markets">
        <thead className="text-left text-muted">
          <tr>
            <th>Market</th>
            <th className="text-right">Last price</th>
            <th className="text-right">24h change</th>
            <th className="hidden text-right sm:table-cell">24h volume</th>
            <th className="hidden text-right md:table-cell">24h quote volume</th>
            <th className="hidden pl-4 sm:table-cell">24h</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {markets?.map((market) => (
            <MarketRow key={market.name} market={market} initial={tickers[market.name]} />
          ))}
        </tbody>
      </table>
      {markets?.length === 0 && <p className="mt-4 text-muted">No markets are open.</p>}
    </section>
  );
}
