import { describe, expect, it } from "vitest";
import { ocoList, ocoPricesValid, stopOrder, stopType } from "../src/lib/stops";

describe("stopType", () => {
  it("names the stop by where the price must go", () => {
    expect(stopType("sell", "29000.00", "30000.00", true)).toBe("stop_loss_limit");
    expect(stopType("sell", "31000.00", "30000.00", false)).toBe("take_profit");
    expect(stopType("buy", "31000.00", "30000.00", false)).toBe("stop_loss");
    expect(stopType("buy", "29000.00", "30000.00", true)).toBe("take_profit_limit");
  });
  it("compares decimals exactly, whatever their scale", () => {
    expect(stopType("sell", "29999.999999", "30000", false)).toBe("stop_loss");
    expect(stopType("sell", "30000.000001", "30000.00", false)).toBe("take_profit");
  });
  it("has no answer at the last price or without one", () => {
    expect(stopType("sell", "30000.0", "30000.00", false)).toBeNull();
    expect(stopType("buy", "30000.00", null, false)).toBeNull();
  });
});

describe("request bodies", () => {
  it("keeps prices as the strings typed", () => {
    expect(stopOrder("btc-usd", "sell", "stop_loss_limit", "29000.00", "0.0100", "28900.00")).toEqual({
      market: "btc-usd", side: "sell", type: "stop_loss_limit", stop_price: "29000.00",
      price: "28900.00", quantity: "0.0100", tif: "GTC", stp: "EXPIRE_MAKER",
    });
    expect(stopOrder("btc-usd", "buy", "stop_loss", "31000.00", "0.0100", null).price).toBeUndefined();
  });
  it("puts a sell's profit above and its stop below, a buy's the other way", () => {
    const sell = ocoList("btc-usd", "sell", "0.0100", "32000.00", "29000.00", "28900.00");
    expect(sell.above).toEqual({ type: "limit_maker", price: "32000.00" });
    expect(sell.below).toEqual({ type: "stop_loss_limit", stop_price: "29000.00", price: "28900.00", tif: "GTC" });
    const buy = ocoList("btc-usd", "buy", "0.0100", "29000.00", "31000.00", null);
    expect(buy.above).toEqual({ type: "stop_loss", stop_price: "31000.00" });
    expect(buy.below).toEqual({ type: "limit_maker", price: "29000.00" });
  });
  it("checks the prices against the last price", () => {
    expect(ocoPricesValid("sell", "30000.00", "32000.00", "29000.00")).toBe(true);
    expect(ocoPricesValid("sell", "30000.00", "29500.00", "29000.00")).toBe(false);
    expect(ocoPricesValid("buy", "30000.00", "29000.00", "31000.00")).toBe(true);
    expect(ocoPricesValid("buy", null, "29000.00", "31000.00")).toBe(false);
  });
});
