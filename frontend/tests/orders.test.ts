import { describe, expect, it } from "vitest";
import type { Order } from "@/lib/api";
import { applyStream, emptyOrders, mergeOrders, sortedOrders, type StreamMessage } from "@/lib/orders";

const accepted: StreamMessage = {
  type: "order", status: "new", market: "btc-usd", order_id: "btc-usd.1", client_order_id: null,
  side: "buy", order_type: "limit", tif: "GTC", price: "100.00", qty: "0.3000", quote_qty: "0",
  ts: 1000,
};

function fill(qty: string, trade: number): StreamMessage {
  return {
    type: "fill", market: "btc-usd", order_id: "btc-usd.1", trade_id: trade, side: "buy",
    role: "maker", price: "100.00", qty, quote_qty: "10.000000", fee: "0.00010000",
    fee_asset: "BTC", ts: 2000 + trade,
  };
}

const stored = (status: string, filled = "0.0000"): Order => ({
  order_id: "btc-usd.1", market: "btc-usd", side: "buy", status, filled_quantity: filled,
  filled_quote: "0", fills: [], price: "100.00", quantity: "0.3000", created_at: 1000,
});

describe("orders from storage and the private stream", () => {
  it("follows an order from accepted through fills to done", () => {
    let state = applyStream(emptyOrders(), accepted);
    expect(sortedOrders(state, true).map((o) => o.order_id)).toEqual(["btc-usd.1"]);
    state = applyStream(state, fill("0.1000", 1));
    state = applyStream(state, fill("0.1000", 2));
    expect(state.orders.get("btc-usd.1")?.filled_quantity).toBe("0.2000");
    expect(state.orders.get("btc-usd.1")?.status).toBe("partially_filled");
    state = applyStream(state, {
      type: "order", status: "canceled", market: "btc-usd", order_id: "btc-usd.1", side: "buy",
      filled_qty: "0.2000", reason: null, ts: 3000,
    });
    expect(sortedOrders(state, true)).toEqual([]);
    expect(sortedOrders(state, false)[0].status).toBe("canceled");
    expect(state.fills.map((f) => f.trade_id)).toEqual([2, 1]);
  });

  it("never reopens an order the stream saw end when storage lags behind", () => {
    let state = applyStream(emptyOrders(), accepted);
    state = applyStream(state, {
      type: "order", status: "filled", market: "btc-usd", order_id: "btc-usd.1", side: "buy",
      filled_qty: "0.3000", reason: null, ts: 3000,
    });
    state = mergeOrders(state, [stored("new")]);
    expect(state.orders.get("btc-usd.1")?.status).toBe("filled");
  });

  it("counts a fill once whether storage or the stream brings it first", () => {
    let state = applyStream(emptyOrders(), accepted);
    state = applyStream(state, fill("0.1000", 7));
    state = applyStream(state, fill("0.1000", 7));
    expect(state.fills).toHaveLength(1);
    expect(state.orders.get("btc-usd.1")?.filled_quantity).toBe("0.1000");
  });

  it("keeps a stop order open while it waits, and marks its trigger", () => {
    let state = applyStream(emptyOrders(), {
      ...accepted, status: "waiting", order_type: "stop_loss_limit", stop_price: "95.00",
      list_id: "btc-usd.list",
    });
    const waiting = sortedOrders(state, true)[0];
    expect([waiting.status, waiting.stop_price, waiting.list_id]).toEqual(["waiting", "95.00", "btc-usd.list"]);
    state = applyStream(state, {
      type: "order", status: "triggered", market: "btc-usd", order_id: "btc-usd.1",
      stop_price: "95.00", last_price: "94.99", ts: 1500,
    });
    const triggered = state.orders.get("btc-usd.1");
    expect([triggered?.status, triggered?.triggered_at]).toEqual(["new", 1500]);
    state = applyStream(state, {
      type: "order", status: "expired", market: "btc-usd", order_id: "btc-usd.1", side: "buy",
      filled_qty: "0.0000", reason: "oco", ts: 2000,
    });
    expect(sortedOrders(state, true)).toEqual([]);
    expect(state.orders.get("btc-usd.1")?.reason).toBe("oco");
  });
});
