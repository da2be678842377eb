// The user's orders and fills on one market, merged from the api (what storage holds) and the
// private `orders` stream (what happened since). The stream is ahead of storage, so an order
// the stream saw finish is never brought back by a later, older read.

import type { Fill, Order } from "./api";
import { add } from "./decimal";

/** An order's acceptance on the stream: `new`, or `waiting` for a stop order whose stop price
 * the last trade has not reached. */
interface Accepted {
  type: "order";
  market: string;
  order_id: string;
  client_order_id: string | null;
  side: string;
  order_type: string;
  tif: string;
  price: string;
  qty: string;
  quote_qty: string;
  stop_price?: string | null;
  list_id?: string | null;
  ts: number;
}

export type StreamMessage =
  | (Accepted & { status: "new" })
  | (Accepted & { status: "waiting" })
  | {
      type: "order";
      status: "triggered";
      market: string;
      order_id: string;
      stop_price: string;
      last_price: string;
      ts: number;
    }
  | {
      type: "order";
      status: "filled" | "canceled" | "expired";
      market: string;
      order_id: string;
      side: string;
      filled_qty: string;
      reason: string | null;
      ts: number;
    }
  | { type: "order"; status: "rejected"; market: string; order_id: string; ts: number }
  | {
      type: "fill";
      market: string;
      order_id: string;
      trade_id: number;
      side: string;
      role: "maker" | "taker";
      price: string;
      qty: string;
      quote_qty: string;
      fee: string;
      fee_asset: string;
      ts: number;
    };

export const OPEN = new Set(["new", "partially_filled", "waiting"]);

export interface OrdersState {
  orders: Map<string, Order>;
  fills: Fill[];
  /** Orders the stream saw end: a stale read from storage must not reopen them. */
  ended: Set<string>;
}

export function emptyOrders(): OrdersState {
  return { orders: new Map(), fills: [], ended: new Set() };
}

export function mergeOrders(state: OrdersState, list: Order[]): OrdersState {
  const orders = new Map(state.orders);
  for (const order of list) {
    const known = orders.get(order.order_id);
    if (state.ended.has(order.order_id) && known) continue;
    if (known && OPEN.has(order.status) && !OPEN.has(known.status)) continue;
    orders.set(order.order_id, order);
  }
  return { ...state, orders };
}

export function mergeFills(state: OrdersState, list: Fill[]): OrdersState {
  const seen = new Set(state.fills.map((f) => `${f.trade_id}:${f.order_id}`));
  const fresh = list.filter((f) => !seen.has(`${f.trade_id}:${f.order_id}`));
  const fills = [...state.fills, ...fresh].sort((a, b) => b.time - a.time || b.trade_id - a.trade_id);
  return { ...state, fills };
}

export function applyStream(state: OrdersState, message: StreamMessage): OrdersState {
  const orders = new Map(state.orders);
  if (message.type === "fill") {
    const key = `${message.trade_id}:${message.order_id}`;
    if (state.fills.some((f) => `${f.trade_id}:${f.order_id}` === key)) return state;
    const order = orders.get(message.order_id);
    if (order && OPEN.has(order.status)) {
      orders.set(message.order_id, {
        ...order,
        status: "partially_filled",
        filled_quantity: add(order.filled_quantity ?? "0", message.qty),
      });
    }
    const fill: Fill = {
      market: message.market,
      order_id: message.order_id,
      trade_id: message.trade_id,
      price: message.price,
      quantity: message.qty,
      quote_quantity: message.quote_qty,
      fee: message.fee,
      fee_asset: message.fee_asset,
      liquidity: message.role,
      time: message.ts,
    };
    return mergeFills({ ...state, orders }, [fill]);
  }
  if (message.status === "triggered") {
    const order = orders.get(message.order_id);
    if (order && order.status === "waiting") {
      orders.set(message.order_id, { ...order, status: "new", triggered_at: message.ts });
    }
    return { ...state, orders };
  }
  if (message.status === "new" || message.status === "waiting") {
    if (!state.ended.has(message.order_id)) {
      orders.set(message.order_id, {
        order_id: message.order_id,
        client_order_id: message.client_order_id,
        market: message.market,
        side: message.side,
        type: message.order_type,
        tif: message.tif,
        price: message.price,
        quantity: message.qty,
        stop_price: message.stop_price ?? null,
        list_id: message.list_id ?? null,
        status: message.status,
        filled_quantity: orders.get(message.order_id)?.filled_quantity ?? "0",
        filled_quote: "0",
        created_at: message.ts,
        fills: [],
      });
    }
    return { ...state, orders };
  }
  if (message.status === "rejected") return state;
  const ended = new Set(state.ended).add(message.order_id);
  const order = orders.get(message.order_id);
  if (order) {
    orders.set(message.order_id, {
      ...order,
      status: message.status,
      filled_quantity: message.filled_qty,
      reason: message.reason,
    });
  }
  return { ...state, orders, ended };
}

/** Open orders first by time, newest first. */
export function sortedOrders(state: OrdersState, open: boolean): Order[] {
  return [...state.orders.values()]
    .filter((order) => OPEN.has(order.status) === open)
    .sort((a, b) => (b.created_at ?? 0) - (a.created_at ?? 0));
}
