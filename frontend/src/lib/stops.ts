// Stop orders and OCO lists for the order form: which stop type a trigger price makes, and the
// api's request bodies. Prices stay decimal strings throughout.

import type { OrderIn, OrderListIn } from "./api";
import { cmp } from "./decimal";

export type Side = "buy" | "sell";
export type StopType = "stop_loss" | "stop_loss_limit" | "take_profit" | "take_profit_limit";

/** The stop type of an order that triggers when the last trade price reaches `stop`: one the
 * price must rise to is a buy's stop-loss or a sell's take-profit, one it must fall to a
 * sell's stop-loss or a buy's take-profit (the engine's rule, Binance's types). Null without
 * a last price, or at it (the order would trigger at once, and the api refuses that). */
export function stopType(side: Side, stop: string, last: string | null, limit: boolean): StopType | null {
  if (last === null) return null;
  const rises = cmp(stop, last);
  if (rises === 0) return null;
  const loss = (side === "buy") === rises > 0;
  const base = loss ? "stop_loss" : "take_profit";
  return limit ? `${base}_limit` : base;
}

/** A stop-limit (with `limitPrice`) or stop-market order of `quantity`. */
export function stopOrder(market: string, side: Side, type: StopType, stop: string, quantity: string,
  limitPrice: string | null): OrderIn {
  return {
    market,
    side,
    type,
    stop_price: stop,
    price: limitPrice ?? undefined,
    quantity,
    tif: "GTC",
    stp: "EXPIRE_MAKER",
  };
}

/** An OCO list: a post-only limit at `limitPrice` that takes profit, and a stop-loss at `stop`
 * (a stop-limit at `stopLimitPrice` if given, else a stop-market). A sell takes profit above
 * the market and stops its loss below; a buy the other way round. */
export function ocoList(market: string, side: Side, quantity: string, limitPrice: string,
  stop: string, stopLimitPrice: string | null): OrderListIn {
  const profit = { type: "limit_maker" as const, price: limitPrice };
  const loss = stopLimitPrice === null
    ? { type: "stop_loss" as const, stop_price: stop }
    : { type: "stop_loss_limit" as const, stop_price: stop, price: stopLimitPrice, tif: "GTC" as const };
  return {
    market,
    side,
    quantity,
    above: side === "sell" ? profit : loss,
    below: side === "sell" ? loss : profit,
    stp: "EXPIRE_MAKER",
  };
}

/** Whether the OCO's prices are on the right sides of the last price: a sell's limit above it
 * and stop below it, a buy's limit below it and stop above it. */
export function ocoPricesValid(side: Side, last: string | null, limitPrice: string, stop: string): boolean {
  if (last === null) return false;
  const above = side === "sell" ? limitPrice : stop;
  const below = side === "sell" ? stop : limitPrice;
  return cmp(above, last) > 0 && cmp(below, last) < 0;
}
