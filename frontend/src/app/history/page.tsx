"use client";

import { useState } from "react";
import { UserOrders } from "@/components/trade/UserOrders";
import { api } from "@/lib/api";
import { useReload, useSession, useStream } from "@/lib/hooks";
import { applyStream, emptyOrders, mergeFills, mergeOrders, type StreamMessage } from "@/lib/orders";

/** Orders and fills across every market. */
export default function HistoryPage() {
  const session = useSession();
  const [state, setState] = useState(emptyOrders);
  useReload(() => {
    if (!session) return;
    Promise.all([api.openOrders(), api.orderHistory(), api.fills()]).then(
      ([open, history, fills]) => setState((s) => mergeFills(mergeOrders(s, [...history, ...open]), fills)),
      () => undefined,
    );
  }, [session?.user_id]);
  useStream<StreamMessage>(session ? "orders" : null, (message) => setState((s) => applyStream(s, message)));
  if (!session) return <p className="p-8 text-muted">Sign in to see your orders.</p>;
  return (
    <div className="mx-auto max-w-6xl">
      <h1 className="mb-2 text-lg font-semibold">Orders and fills</h1>
      <UserOrders state={state} />
    </div>
  );
}
