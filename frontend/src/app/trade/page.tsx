"use client";

import { Suspense } from "react";
import { useSearchParams } from "next/navigation";
import { TradingView } from "@/components/trade/TradingView";
import { useMarkets } from "@/lib/hooks";

function Trade() {
  const params = useSearchParams();
  const markets = useMarkets();
  if (markets === null) return <p className="p-8 text-muted">Loading…</p>;
  const name = params.get("market") ?? markets[0]?.name;
  const market = markets.find((m) => m.name === name);
  if (!market) return <p className="p-8 text-muted">No market {name}.</p>;
  return <TradingView key={market.name} market={market} />;
}

// The market is a query parameter, not a path segment: a static export cannot know at build
// time which markets the operator will create.
export default function TradePage() {
  return (
    <Suspense>
      <Trade />
    </Suspense>
  );
}
