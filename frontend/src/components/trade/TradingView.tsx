"use client";

import { useEffect, useState } from "react";
import { api, type Market, type Order, type Ticker } from "@/lib/api";
import { bookStats, useOrderBook } from "@/lib/bookStore";
import { format, isDecimal, parse, places } from "@/lib/decimal";
import { useBalances, useReload, useSession, useStream } from "@/lib/hooks";
import { applyStream, emptyOrders, mergeFills, mergeOrders, type StreamMessage } from "@/lib/orders";
import { BookPanel } from "./BookPanel";
import { DepthChart } from "./DepthChart";
import { OrderForm } from "./OrderForm";
import { PriceChart } from "./PriceChart";
import { TradesTape } from "./TradesTape";
import { UserOrders } from "./UserOrders";

function TickerBar({ market, last }: { market: Market; last: string | null }) {
  const [ticker, setTicker] = useState<Ticker | null>(null);
  useReload(() => {
    api.tickers(market.name).then((list) => setTicker(list[0] ?? null), () => undefined);
  }, [market.name]);
  useStream<Ticker>(`ticker@${market.name}`, setTicker);
  const decimals = places(market.tick_size);
  const change = ticker?.price_change_percent ?? "0";
  const up = isDecimal(change) && parse(change).units >= 0n;
  const shown = last ?? ticker?.last ?? null;
  const stat = (label: string, value: string | undefined, extra = "") => (
    <div className="flex flex-col">
      <span className="text-xs text-muted">{label}</span>
      <span className={`num ${extra}`}>{value ?? "—"}</span>
    </div>
  );
  return (
    <section className="panel flex flex-wrap items-center gap-x-6 gap-y-1 px-3 py-2" data-testid="ticker">
      <h1 className="text-lg font-semibold">{market.base}/{market.quote}</h1>
      <span className={`num text-lg ${up ? "text-up" : "text-down"}`} data-testid="last-price">
        {shown ? format(shown, decimals) : "—"}
      </span>
      {stat("24h change", ticker ? `${up ? "+" : ""}${format(change, 2)}%` : undefined, up ? "text-up" : "text-down")}
      {stat("24h high", ticker ? format(ticker.high, decimals) : undefined)}
      {stat("24h low", ticker ? format(ticker.low, decimals) : undefined)}
      {stat(`24h volume (${market.base})`, ticker ? format(ticker.volume) : undefined)}
      {market.trading !== "Enabled" && <span className="text-down">{market.trading}</span>}
    </section>
  );
}

function MarketBalances({ market, balances }: { market: Market; balances: ReturnType<typeof useBalances> }) {
  return (
    <section className="panel p-3" data-testid="market-balances">
      <h2 className="mb-1 font-semibold">Balances</h2>
      <table className="w-full text-xs">
        <thead className="text-muted">
          <tr><th className="text-left font-normal">Asset</th><th className="text-right font-normal">Free</th><th className="text-right font-normal">Locked</th></tr>
        </thead>
        <tbody>
          {[market.base, market.quote].map((asset) => (
            <tr key={asset} data-asset={asset}>
              <td>{asset}</td>
              <td className="num text-right" data-testid={`free-${asset}`}>{format(balances[asset]?.free ?? "0")}</td>
              <td className="num text-right" data-testid={`locked-${asset}`}>{format(balances[asset]?.locked ?? "0")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** The user's orders and fills on this market: stored ones, kept current by the stream. */
function useMyOrders(market: string) {
  const session = useSession();
  const [state, setState] = useState(emptyOrders);
  useReload(() => {
    setState(emptyOrders());
    if (!session) return;
    Promise.all([api.openOrders(market), api.orderHistory(market), api.fills(market)]).then(
      ([open, history, fills]) => setState((s) => mergeFills(mergeOrders(s, [...history, ...open]), fills)),
      () => undefined,
    );
  }, [market, session?.user_id]);
  useStream<StreamMessage>(session ? "orders" : null, (message) => {
    if (message.market === market) setState((s) => applyStream(s, message));
  });
  const placed = (order: Order) => setState((s) => mergeOrders(s, [order]));
  return { state, placed };
}

export function TradingView({ market }: { market: Market }) {
  const { book, version } = useOrderBook(market.name);
  const balances = useBalances();
  const { state, placed } = useMyOrders(market.name);
  const [picked, setPicked] = useState<string | null>(null);
  const [last, setLast] = useState<string | null>(null);
  const bestAsk = book.asks.levels(1)[0]?.[0] ?? null;
  const bestBid = book.bids.levels(1)[0]?.[0] ?? null;

  // Marks the page interactive for the browser test: the book has its snapshot and the
  // order form is on screen.
  useEffect(() => {
    if (book.synced && !document.body.dataset.ready) {
      document.body.dataset.ready = String(Math.round(performance.now()));
    }
  }, [book.synced, version]);

  return (
    <div className="grid grid-cols-1 gap-2 lg:grid-cols-[300px_minmax(0,1fr)_300px]" data-market={market.name}
      data-book-renders={bookStats.renders}>
      <div className="lg:col-span-3"><TickerBar market={market} last={last} /></div>
      <div className="order-3 flex flex-col gap-2 lg:order-1">
        <BookPanel market={market} book={book} version={version} last={last} onPick={setPicked} />
      </div>
      <div className="order-1 flex min-w-0 flex-col gap-2 lg:order-2">
        <PriceChart market={market} />
        <DepthChart book={book} version={version} />
      </div>
      <div className="order-2 flex flex-col gap-2 lg:order-3">
        <OrderForm market={market} balances={balances} price={picked} bestAsk={bestAsk} bestBid={bestBid}
          last={last} onPlaced={placed} />
        <MarketBalances market={market} balances={balances} />
        <TradesTape market={market} onLast={setLast} />
      </div>
      <div className="order-4 lg:col-span-3"><UserOrders state={state} /></div>
    </div>
  );
}
