"use client";

import Link from "next/link";
import { useEffect, useState } from "react";
import { api, ApiError, type Balance, type Market, type Order } from "@/lib/api";
import {
  bps, cmp, div, floorTo, format, isDecimal, isPositive, mul, parse, places, trim,
} from "@/lib/decimal";
import { useSession } from "@/lib/hooks";

type Kind = "limit" | "market" | "post";
const PERCENTS = ["25", "50", "75", "100"];

export function OrderForm({ market, balances, price: picked, bestAsk, bestBid, onPlaced }: {
  market: Market; balances: Record<string, Balance>; price: string | null;
  bestAsk: string | null; bestBid: string | null; onPlaced: (order: Order) => void;
}) {
  const session = useSession();
  const [side, setSide] = useState<"buy" | "sell">("buy");
  const [kind, setKind] = useState<Kind>("limit");
  const [price, setPrice] = useState("");
  const [amount, setAmount] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => { if (picked) setPrice(picked); }, [picked]);

  const tickPlaces = places(market.tick_size);
  const lotPlaces = places(market.lot_size);
  const effectivePrice = kind === "market" ? (side === "buy" ? bestAsk : bestBid) : price;
  const validPrice = effectivePrice !== null && isDecimal(effectivePrice) && isPositive(effectivePrice);
  const validAmount = isDecimal(amount) && isPositive(amount);
  const total = validPrice && validAmount ? mul(effectivePrice!, amount) : null;
  const feeBps = kind === "post" ? market.maker_bps : market.taker_bps;
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

  const check = (): string | null => {
    if (kind !== "market" && !validPrice) return "Enter a price";
    if (kind !== "market" && trim(floorTo(price, market.tick_size)) !== trim(price)) {
      return `Price must be a multiple of ${market.tick_size}`;
    }
    if (!validAmount) return "Enter an amount";
    if (trim(floorTo(amount, market.lot_size)) !== trim(amount)) {
      return `Amount must be a multiple of ${market.lot_size}`;
    }
    if (kind !== "market" && total && cmp(total, market.min_notional) < 0) {
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
      const order = await api.place({
        market: market.name,
        side,
        type: kind === "market" ? "market" : "limit",
        price: kind === "market" ? undefined : trim(price),
        quantity: trim(amount),
        tif: kind === "post" ? "POST_ONLY" : "GTC",
        stp: "EXPIRE_MAKER",
      });
      onPlaced(order);
      setNotice(order.status === "new" ? "Order placed" : `Order ${order.status.replace("_", " ")}`);
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
      <div className="flex gap-1" role="tablist">
        {([["limit", "Limit"], ["market", "Market"], ["post", "Post only"]] as const).map(([k, label]) => (
          <button key={k} type="button" role="tab" className="tab" aria-selected={k === kind} onClick={() => setKind(k)}>
            {label}
          </button>
        ))}
      </div>
      <div className="flex justify-between text-xs text-muted">
        <span>Available</span>
        <span className="num" data-testid="available">{format(available)} {spendAsset}</span>
      </div>
      {kind !== "market" ? (
        <label className="flex flex-col gap-1 text-xs text-muted">
          Price ({market.quote})
          <input className="input num text-sm" name="price" inputMode="decimal" value={price}
            placeholder={format(market.tick_size)}
            onChange={(e) => setPrice(e.target.value.trim())}
            onBlur={() => isDecimal(price) && setPrice(floorTo(price, market.tick_size))} />
        </label>
      ) : (
        <div className="input num text-muted">Market price</div>
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
          {total ? `${kind === "market" ? "≈ " : ""}${format(total, tickPlaces + lotPlaces)} ${market.quote}` : "—"}
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
