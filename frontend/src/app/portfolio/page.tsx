"use client";

import { useState } from "react";
import { PnlChart } from "@/components/portfolio/PnlChart";
import { api } from "@/lib/api";
import { format } from "@/lib/decimal";
import { useReload, useSession, useStream } from "@/lib/hooks";
import { merge, signed, tone, totalPnl, type Portfolio } from "@/lib/portfolio";

function Pnl({ amount, testid }: { amount: string | null; testid?: string }) {
  return (
    <span className={tone(amount)} data-testid={testid}>
      {amount === null ? "–" : signed(format(amount))}
    </span>
  );
}

/** Positions and P&L: `/portfolio`, then kept live by the private `portfolio` stream. */
export default function PortfolioPage() {
  const session = useSession();
  const [portfolio, setPortfolio] = useState<Portfolio | null>(null);
  const [version, setVersion] = useState(0);

  useReload(() => {
    if (!session) {
      setPortfolio(null);
      return;
    }
    api.portfolio().then(setPortfolio, () => undefined);
  }, [session?.user_id]);
  useStream<unknown>(session ? "portfolio" : null, (message) => {
    setPortfolio((current) => merge(current, message));
    setVersion((n) => n + 1);
  });

  if (!session) return <p className="p-8 text-muted">Sign in to see your portfolio.</p>;

  return (
    <div className="mx-auto flex max-w-6xl flex-col gap-4">
      <section className="flex flex-wrap gap-4" data-testid="portfolio-totals">
        {(portfolio?.totals ?? []).map((total) => (
          <div key={total.asset} className="panel flex min-w-64 flex-col gap-1 p-4" data-asset={total.asset}>
            <div className="text-muted">Value in {total.asset}</div>
            <div className="num text-xl font-semibold" data-field="value">{format(total.value)}</div>
            <div className="num text-sm">
              Realized <Pnl amount={total.realized_pnl} testid="total-realized" /> · Unrealized{" "}
              <Pnl amount={total.unrealized_pnl} testid="total-unrealized" /> · P&amp;L{" "}
              <Pnl amount={totalPnl(total)} testid="total-pnl" />
            </div>
          </div>
        ))}
      </section>

      <section className="panel overflow-x-auto p-4">
        <h1 className="mb-3 text-lg font-semibold">Positions</h1>
        <table className="w-full" data-testid="portfolio-positions">
          <thead className="text-left text-muted">
            <tr>
              <th>Market</th><th className="text-right">Position</th><th className="text-right">Avg cost</th>
              <th className="text-right">Last</th><th className="text-right">Cost basis</th>
              <th className="text-right">Realized</th><th className="text-right">Unrealized</th>
              <th className="text-right">Fees</th><th className="text-right">Fills</th>
            </tr>
          </thead>
          <tbody>
            {(portfolio?.positions ?? []).map((p) => (
              <tr key={p.market} data-market={p.market} className="num border-t border-line">
                <td className="py-1">{p.market}</td>
                <td className="text-right" data-field="position">{format(p.position)} {p.base}</td>
                <td className="text-right" data-field="average_cost">{p.average_cost === null ? "–" : format(p.average_cost)}</td>
                <td className="text-right" data-field="last_price">{p.last_price === null ? "–" : format(p.last_price)}</td>
                <td className="text-right">{format(p.cost_basis)}</td>
                <td className="text-right" data-field="realized_pnl"><Pnl amount={p.realized_pnl} /></td>
                <td className="text-right" data-field="unrealized_pnl"><Pnl amount={p.unrealized_pnl} /></td>
                <td className="text-right text-muted">{format(p.fees_base)} {p.base} / {format(p.fees_quote)} {p.quote}</td>
                <td className="text-right">{p.fills}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {portfolio && portfolio.positions.length === 0 && <p className="mt-2 text-muted">No fills yet.</p>}
      </section>

      <PnlChart version={version} />

      <section className="panel overflow-x-auto p-4">
        <h2 className="mb-3 font-semibold">Holdings</h2>
        <table className="w-full" data-testid="portfolio-balances">
          <thead className="text-left text-muted">
            <tr>
              <th>Asset</th><th className="text-right">Free</th><th className="text-right">Locked</th>
              <th className="text-right">Total</th><th className="text-right">Value</th>
            </tr>
          </thead>
          <tbody>
            {(portfolio?.balances ?? []).map((b) => (
              <tr key={b.asset} data-asset={b.asset} className="num border-t border-line">
                <td className="py-1">{b.asset}</td>
                <td className="text-right">{format(b.free)}</td>
                <td className="text-right">{format(b.locked)}</td>
                <td className="text-right" data-field="total">{format(b.total)}</td>
                <td className="text-right text-muted">
                  {Object.entries(b.values).map(([quote, worth]) => `${format(worth)} ${quote}`).join(" · ") || "–"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}
