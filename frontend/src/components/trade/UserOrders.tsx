"use client";

import { useState } from "react";
import { api, ApiError, type Fill, type Order } from "@/lib/api";
import { format } from "@/lib/decimal";
import { sortedOrders, type OrdersState } from "@/lib/orders";

type Tab = "open" | "history" | "fills";

function time(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleString([], { hour12: false }) : "—";
}

/** The order's type as a trader reads it ("stop loss limit", "post only"). */
function typeLabel(order: Order): string {
  if (order.tif === "POST_ONLY") return "post only";
  return (order.type ?? "").replaceAll("_", " ");
}

/** A stop order's trigger: its stop price, and whether the last price has reached it. */
function Trigger({ order }: { order: Order }) {
  if (!order.stop_price) return <>—</>;
  const state = order.triggered_at ? "triggered" : order.status === "waiting" ? "waiting" : null;
  return (
    <>
      {format(order.stop_price)}
      {state && <span className="text-muted">{` (${state})`}</span>}
    </>
  );
}

function OrderRows({ orders, cancel }: { orders: Order[]; cancel?: (id: string) => void }) {
  return (
    <table className="w-full min-w-[640px] text-xs">
      <thead className="text-left text-muted">
        <tr>
          <th className="font-normal">Time</th><th className="font-normal">Market</th>
          <th className="font-normal">Side</th><th className="font-normal">Type</th>
          <th className="text-right font-normal">Price</th><th className="text-right font-normal">Stop</th>
          <th className="text-right font-normal">Amount</th>
          <th className="text-right font-normal">Filled</th><th className="text-right font-normal">Status</th>
          {cancel && <th />}
        </tr>
      </thead>
      <tbody>
        {orders.map((o) => (
          <tr key={o.order_id} className="border-t border-line" data-order-id={o.order_id} data-status={o.status}
            data-type={o.type ?? undefined} data-list-id={o.list_id ?? undefined}>
            <td className="num py-1">{time(o.created_at)}</td>
            <td>{o.market}</td>
            <td className={o.side === "buy" ? "text-up" : "text-down"}>{o.side}</td>
            <td>
              {typeLabel(o)}
              {o.list_id && <span className="rounded bg-raised px-1 text-muted" title={o.list_id}>{" OCO"}</span>}
            </td>
            <td className="num text-right">{o.price ? format(o.price) : "market"}</td>
            <td className="num text-right" data-testid="stop">
              <Trigger order={o} />
            </td>
            <td className="num text-right">{o.quantity ? format(o.quantity) : "—"}</td>
            <td className="num text-right">{format(o.filled_quantity ?? "0")}</td>
            <td className="text-right">{o.status.replace("_", " ")}</td>
            {cancel && (
              <td className="text-right">
                <button className="text-accent hover:underline" onClick={() => cancel(o.order_id)}>Cancel</button>
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function FillRows({ fills }: { fills: Fill[] }) {
  return (
    <table className="w-full min-w-[640px] text-xs">
      <thead className="text-left text-muted">
        <tr>
          <th className="font-normal">Time</th><th className="font-normal">Market</th>
          <th className="text-right font-normal">Price</th><th className="text-right font-normal">Stop</th>
          <th className="text-right font-normal">Amount</th>
          <th className="text-right font-normal">Fee</th><th className="text-right font-normal">Role</th>
        </tr>
      </thead>
      <tbody>
        {fills.map((f) => (
          <tr key={`${f.trade_id}:${f.order_id}`} className="border-t border-line" data-fill={f.trade_id}>
            <td className="num py-1">{time(f.time)}</td>
            <td>{f.market}</td>
            <td className="num text-right">{format(f.price)}</td>
            <td className="num text-right">{format(f.quantity)}</td>
            <td className="num text-right">{format(f.fee)} {f.fee_asset}</td>
            <td className="text-right">{f.liquidity}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Open orders (with cancel), order history and fills, as tabs. */
export function UserOrders({ state }: { state: OrdersState }) {
  const [tab, setTab] = useState<Tab>("open");
  const [error, setError] = useState<string | null>(null);
  const open = sortedOrders(state, true);
  const cancel = async (id: string) => {
    setError(null);
    try {
      await api.cancel(id);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : String(caught));
    }
  };
  const tabs: [Tab, string][] = [["open", `Open orders (${open.length})`], ["history", "Order history"], ["fills", "Fills"]];
  return (
    <section className="panel overflow-x-auto p-2" data-testid="user-orders">
      <div className="mb-2 flex gap-2" role="tablist">
        {tabs.map(([t, label]) => (
          <button key={t} role="tab" className="tab" aria-selected={t === tab} onClick={() => setTab(t)}>{label}</button>
        ))}
      </div>
      {error && <p role="alert" className="text-down">{error}</p>}
      {tab === "open" && <OrderRows orders={open} cancel={cancel} />}
      {tab === "history" && <OrderRows orders={sortedOrders(state, false)} />}
      {tab === "fills" && <FillRows fills={state.fills} />}
    </section>
  );
}
