// The portfolio page's arithmetic, on decimal strings (never JavaScript numbers for amounts):
// the sign of a P&L for its colour, the total P&L of a quote asset, and the history's points
// as chart coordinates (the only conversion to number, for drawing).

import type { components } from "@/api/schema";
import { add, cmp, plot } from "./decimal";

type Schemas = components["schemas"];
export type Portfolio = Schemas["PortfolioOut"];
export type Position = Schemas["PositionOut"];
export type PortfolioTotal = Schemas["TotalOut"];
export type PortfolioHistory = Schemas["HistoryOut"];
export type HistoryPoint = Schemas["HistoryPointOut"];

/** The colour class of an amount: gains green, losses red, zero and unknown plain. */
export function tone(amount: string | null | undefined): string {
  if (!amount) return "";
  const sign = cmp(amount, "0");
  return sign > 0 ? "text-up" : sign < 0 ? "text-down" : "";
}

/** Realized + unrealized, exactly. */
export function totalPnl(total: PortfolioTotal): string {
  return add(total.realized_pnl, total.unrealized_pnl);
}

/** `amount` with a leading "+" when positive (a P&L reads better signed). */
export function signed(amount: string): string {
  return cmp(amount, "0") > 0 ? `+${amount}` : amount;
}

/** The history as chart points: seconds and P&L as numbers, for drawing only. The buckets
 * before the account first held anything (worth nothing, nothing moved) are left out, so the
 * chart starts where the account does. */
export function chartPoints(history: PortfolioHistory): { time: number; value: number }[] {
  const first = history.points.findIndex(
    (point) => cmp(point.value, "0") !== 0 || cmp(point.net_transfers, "0") !== 0,
  );
  return history.points
    .slice(first < 0 ? history.points.length : first)
    .map((point) => ({ time: point.time / 1000, value: plot(point.pnl) }));
}

/** The stream sends the whole portfolio: it replaces what REST loaded, unless the message is
 * not a portfolio (then the current one stays). */
export function merge(current: Portfolio | null, message: unknown): Portfolio | null {
  const candidate = message as Partial<Portfolio> & { type?: string };
  if (candidate?.type !== "portfolio" || !Array.isArray(candidate.positions)) return current;
  const { balances, positions, totals } = candidate as Portfolio;
  return { balances, positions, totals };
}
