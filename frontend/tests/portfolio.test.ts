import { describe, expect, it } from "vitest";
import { chartPoints, merge, signed, tone, totalPnl, type Portfolio } from "@/lib/portfolio";

const portfolio: Portfolio = {
  balances: [{ asset: "USD", free: "1.000000", locked: "0.000000", total: "1.000000", values: { USD: "1.000000" } }],
  positions: [],
  totals: [{ asset: "USD", value: "1.000000", realized_pnl: "1436.939880", unrealized_pnl: "-0.000001" }],
};

describe("portfolio", () => {
  it("adds realized and unrealized P&L exactly", () => {
    expect(totalPnl(portfolio.totals[0])).toBe("1436.939879");
    // 0.1 + 0.2 as floats is 0.30000000000000004; as decimal strings it is exact.
    expect(totalPnl({ asset: "USD", value: "0", realized_pnl: "0.1", unrealized_pnl: "0.2" })).toBe("0.3");
  });

  it("colours gains and losses by sign, beyond float precision", () => {
    expect(tone("0.000001")).toBe("text-up");
    expect(tone("-92233720368547.758071")).toBe("text-down");
    expect(tone("0.000000")).toBe("");
    expect(tone(null)).toBe("");
    expect(signed("2901.000000")).toBe("+2901.000000");
    expect(signed("-1.5")).toBe("-1.5");
  });

  it("turns history into chart points (seconds), from the account's first funds", () => {
    const points = chartPoints({
      quote: "USD",
      interval: "1m",
      unpriced: [],
      points: [
        { time: 0, value: "0.000000", net_transfers: "0.000000", pnl: "0.000000" },
        { time: 60_000, value: "100.000000", net_transfers: "0.000000", pnl: "-30.500000" },
        { time: 120_000, value: "101.000000", net_transfers: "0.000000", pnl: "2901.000000" },
      ],
    });
    expect(points).toEqual([
      { time: 60, value: -30.5 },
      { time: 120, value: 2901 },
    ]);
  });

  it("replaces the portfolio with each stream message, ignoring anything else", () => {
    expect(merge(null, { type: "portfolio", ...portfolio })).toEqual(portfolio);
    expect(merge(portfolio, { type: "balances", balances: {} })).toBe(portfolio);
    expect(merge(portfolio, null)).toBe(portfolio);
  });
});
