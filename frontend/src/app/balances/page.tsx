"use client";

import { useState } from "react";
import { api, ApiError } from "@/lib/api";
import { format, isDecimal, isPositive } from "@/lib/decimal";
import { useBalances, useMarkets, useSession } from "@/lib/hooks";

export default function BalancesPage() {
  const session = useSession();
  const balances = useBalances();
  const markets = useMarkets() ?? [];
  const assets = [...new Set(markets.flatMap((m) => [m.base, m.quote]))].sort();
  const [asset, setAsset] = useState("");
  const [amount, setAmount] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const chosen = asset || assets[0] || "";

  if (!session) return <p className="p-8 text-muted">Sign in to see your balances.</p>;

  const faucet = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!isDecimal(amount) || !isPositive(amount)) {
      setMessage({ ok: false, text: "Enter a positive amount" });
      return;
    }
    try {
      await api.faucet(chosen, amount);
      setMessage({ ok: true, text: `Received ${amount} ${chosen}` });
      setAmount("");
    } catch (caught) {
      setMessage({ ok: false, text: caught instanceof ApiError ? caught.message : String(caught) });
    }
  };

  return (
    <div className="mx-auto flex max-w-3xl flex-col gap-4">
      <section className="panel p-4">
        <h1 className="mb-3 text-lg font-semibold">Balances</h1>
        <table className="w-full" data-testid="balances">
          <thead className="text-left text-muted">
            <tr><th>Asset</th><th className="text-right">Free</th><th className="text-right">Locked</th></tr>
          </thead>
          <tbody>
            {assets.map((name) => (
              <tr key={name} data-asset={name} className="border-t border-line">
                <td className="py-1">{name}</td>
                <td className="num text-right">{format(balances[name]?.free ?? "0")}</td>
                <td className="num text-right">{format(balances[name]?.locked ?? "0")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <form className="panel flex flex-wrap items-end gap-3 p-4" onSubmit={faucet} data-testid="faucet">
        <div className="w-full font-semibold">Demo faucet</div>
        <label className="flex flex-col gap-1 text-muted">
          Asset
          <select className="input" value={chosen} onChange={(e) => setAsset(e.target.value)} name="asset">
            {assets.map((name) => <option key={name}>{name}</option>)}
          </select>
        </label>
        <label className="flex flex-col gap-1 text-muted">
          Amount
          <input className="input num" name="amount" inputMode="decimal" value={amount}
            onChange={(e) => setAmount(e.target.value.trim())} placeholder="1000" />
        </label>
        <button className="btn bg-accent text-black" type="submit">Get funds</button>
        {message && <p role="status" className={message.ok ? "text-up" : "text-down"}>{message.text}</p>}
      </form>
    </div>
  );
}
