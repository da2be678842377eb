"use client";

import Link from "next/link";
import { useEffect, useState } from "react";
import { api, ApiError, type Balance, type Market, type Order } from "@/lib/api";
import {
  bps, cmp, div, floorTo, format, isDecimal, isPositive, mul, parse, places, trim,
} from "@/lib/decimal";
import { useSession } from "@/lib/hooks";
import { ocoList, ocoPricesValid, stopOrder, stopType } from "@/lib/stops";

type Kind = "limit" | "market" | "post" | "stop_limit" | "stop_market" | "oco";
const KINDS: [Kind, string][] = [
  ["limit", "Limit"], ["market", "Market"], ["post", "Post only"],
  ["stop_limit", "Stop limit"], ["stop_market", "Stop market"], ["oco", "OCO"],
];
const HAS_STOP = new Set<Kind>(["stop_limit", "stop_market", "oco"]);
const PERCENTS = ["25", "50", "75", "100"];

export function OrderForm({ market, balances, price: picked, bestAsk, bestBid, last, onPlaced }: {
  market: Market; balances: Record<string, Balance>; price: string | null;
  bestAsk: string | null; bestBid: string | null; last: string | null;
  onPlaced: (order: Order) => void;
}) {
  const session = useSession();
  const [side, setSide] = useState<"buy" | "sell">("buy");
  const [kind, setKind] = useState<Kind>("limit");
  const [price, setPrice] = useState("");
  const [amount, setAmount] = useState("");
  const [stop, setStop] = useState("");
  const [stopLimit, setStopLimit] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => { if (picked) setPrice(picked); }, [picked]);

  const tickPlaces = places(market.tick_size);
  const lotPlaces = places(market.lot_size);
  const hasPrice = kind !== "market" && kind !== "stop_market";
  const hasStop = HAS_STOP.has(kind);
  const effectivePrice = kind === "market" ? (side === "buy" ? bestAsk : bestBid)
    : kind === "stop_market" ? stop : price;
  const validPrice = effectivePrice !== null && isDecimal(effectivePrice) && isPositive(effectivePrice);
  const validAmount = isDecimal(amount) && isPositive(amount);
  const total = validPrice && validAmount ? mul(effectivePrice!, amount) : null;
  const feeBps = kind === "post" || kind === "oco" ? market.maker_bps : market.taker_bps;
  // A buyer pays the fee in the base asset, a seller in the quote asset.
  const fee = validAmount && total ? (side === "buy" ? bps(amount, feeBps) : bps(total, feeBps)) : null;
  const feeAsset = side === "buy" ? market.base : market.quote;
  const spendAsset = side === "buy" ? market.quote : market.base;
  const available = balances[spendAsset]?.free ?? "0";

  const percent = (p: string) => {
    const share = div(mul(available, p), "100", parse(available).scale + 2);
    if (side === "sell") setAmount(floorTo(share, market.lot_size));
    else if (validPrice) setAmount(floorTo(div(share, effectivePrice!, lotPlaces + 2), market.lot_size));
  };

  const onGrid = (value: string) => trim(floorTo(value, market.tick_size)) === trim(value);
  const validStop = isDecimal(stop) && isPositive(stop);
  const withStopLimit = kind === "oco" && stopLimit !== "";

  const checkStop = (): string | null => {
    if (!validStop) return "Enter a stop price";
    if (!onGrid(stop)) return `Stop price must be a multiple of ${market.tick_size}`;
    if (last === null) return "No trade yet: a stop needs a last price";
    if (kind === "oco") {
      if (!ocoPricesValid(side, last, price, stop)) {
        return side === "sell"
          ? "A sell OCO takes profit above the last price and stops below it"
          : "A buy OCO takes profit below the last price and stops above it";
      }
      if (withStopLimit && !(isDecimal(stopLimit) && isPositive(stopLimit) && onGrid(stopLimit))) {
        return `Stop limit price must be a multiple of ${market.tick_size}`;
      }
    } else if (stopType(side, stop, last, false) === null) {
      return "The stop price must differ from the last price";
    }
    return null;
  };

  const check = (): string | null => {
    if (hasPrice && !validPrice) return "Enter a price";
    if (hasPrice && !onGrid(price)) {
      return `Price must be a multiple of ${market.tick_size}`;
    }
    if (hasStop) {
      const problem = checkStop();
      if (problem) return problem;
    }
    if (!validAmount) return "Enter an amount";
    if (trim(floorTo(amount, market.lot_size)) !== trim(amount)) {
      return `Amount must be a multiple of ${market.lot_size}`;
    }
    if (hasPrice && total && cmp(total, market.min_notional) < 0) {
      return `Total must be at least ${market.min_notional} ${market.quote}`;
    }
    return null;
  };

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setNotice(null);
    const problem = check();
    setError(problem);
    if (problem) return;
    setBusy(true);
    try {
      if (kind === "oco") {
        const list = await api.placeList(ocoList(market.name, side, trim(amount), trim(price), trim(stop),
          withStopLimit ? trim(stopLimit) : null));
        onPlaced(list.above);
        onPlaced(list.below);
        setNotice("OCO placed");
      } else {
        const type = hasStop ? stopType(side, stop, last, kind === "stop_limit") : null;
        const order = await api.place(type
          ? stopOrder(market.name, side, type, trim(stop), trim(amount), kind === "stop_limit" ? trim(price) : null)
          : {
            market: market.name,
            side,
            type: kind === "market" ? "market" : "limit",
            price: kind === "market" ? undefined : trim(price),
            quantity: trim(amount),
            tif: kind === "post" ? "POST_ONLY" : "GTC",
            stp: "EXPIRE_MAKER",
          });
        onPlaced(order);
        setNotice(order.status === "new" ? "Order placed"
          : order.status === "waiting" ? "Stop order placed" : `Order ${order.status.replace("_", " ")}`);
      }
      setAmount("");
    } catch (caught) {
      setError(caught instanceof ApiError ? `${caught.message} (${caught.code})` : String(caught));
    } finally {
      setBusy(false);
    }
  };

  const sideClass = (s: "buy" | "sell") =>
    s === side ? (s === "buy" ? "bg-up text-black" : "bg-down text-white") : "bg-raised text-muted";

  return (
    <form className="panel flex flex-col gap-2 p-3" onSubmit={submit} data-testid="order-form">
      <div className="grid grid-cols-2 gap-1">
        {(["buy", "sell"] as const).map((s) => (
          <button key={s} type="button" className={`btn capitalize ${sideClass(s)}`} onClick={() => setSide(s)}
            aria-pressed={s === side}>{s}</button>
        ))}
      </div>
      <div className="flex flex-wrap gap-1" role="tablist">
        {KINDS.map(([k, label]) => (
          <button key={k} type="button" role="tab" className="tab" aria-selected={k === kind} onClick={() => setKind(k)}>
            {label}
          </button>
        ))}
      </div>
      <div className="flex justify-between text-xs text-muted">
        <span>Available</span>
        <span className="num" data-testid="available">{format(available)} {spendAsset}</span>
      </div>
      {hasStop && (
        <label className="flex flex-col gap-1 text-xs text-muted">
          Stop price ({market.quote}){last ? ` · last ${format(last)}` : ""}
          <input className="input num text-sm" name="stop_price" inputMode="decimal" value={stop}
            placeholder={format(market.tick_size)}
            onChange={(e) => setStop(e.target.value.trim())}
            onBlur={() => isDecimal(stop) && setStop(floorTo(stop, market.tick_size))} />
        </label>
      )}
      {kind === "oco" && (
        <label className="flex flex-col gap-1 text-xs text-muted">
          Stop limit price ({market.quote}, empty: stop market)
          <input className="input num text-sm" name="stop_limit_price" inputMode="decimal" value={stopLimit}
            placeholder="—"
            onChange={(e) => setStopLimit(e.target.value.trim())}
            onBlur={() => isDecimal(stopLimit) && setStopLimit(floorTo(stopLimit, market.tick_size))} />
        </label>
      )}
      {hasPrice ? (
        <label className="flex flex-col gap-1 text-xs text-muted">
          {kind === "oco" || kind === "stop_limit" ? "Limit price" : "Price"} ({market.quote})
          <input className="input num text-sm" name="price" inputMode="decimal" value={price}
            placeholder={format(market.tick_size)}
            onChange={(e) => setPrice(e.target.value.trim())}
            onBlur={() => isDecimal(price) && setPrice(floorTo(price, market.tick_size))} />
        </label>
      ) : (
        <div className="input num text-muted">{kind === "stop_market" ? "Market price once triggered" : "Market price"}</div>
      )}
      <label className="flex flex-col gap-1 text-xs text-muted">
        Amount ({market.base})
        <input className="input num text-sm" name="amount" inputMode="decimal" value={amount}
          placeholder={format(market.lot_size)}
          onChange={(e) => setAmount(e.target.value.trim())}
          onBlur={() => isDecimal(amount) && setAmount(floorTo(amount, market.lot_size))} />
      </label>
      <div className="grid grid-cols-4 gap-1">
        {PERCENTS.map((p) => (
          <button key={p} type="button" className="rounded bg-raised py-1 text-xs text-muted hover:text-text"
            onClick={() => percent(p)}>{p}%</button>
        ))}
      </div>
      <dl className="grid grid-cols-2 gap-y-1 text-xs text-muted">
        <dt>Total</dt>
        <dd className="num text-right text-text" data-testid="total">
          {total ? `${hasPrice ? "" : "≈ "}${format(total, tickPlaces + lotPlaces)} ${market.quote}` : "—"}
        </dd>
        <dt>Fee ({feeBps / 100}%{kind === "limit" ? " max" : ""})</dt>
        <dd className="num text-right" data-testid="fee">{fee ? `${format(fee)} ${feeAsset}` : "—"}</dd>
      </dl>
      {error && <p role="alert" className="text-down" data-testid="order-error">{error}</p>}
      {notice && <p role="status" className="text-up">{notice}</p>}
      {session ? (
        <button type="submit" disabled={busy || market.trading !== "Enabled"}
          className={`btn capitalize disabled:opacity-50 ${side === "buy" ? "bg-up text-black" : "bg-down text-white"}`}>
          {side} {market.base}
        </button>
      ) : (
        <Link href="/signin/" className="btn bg-accent text-center text-black">Sign in to trade</Link>
      )}
    </form>
  );
}
