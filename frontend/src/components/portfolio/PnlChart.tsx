"use client";

import {
  BaselineSeries, ColorType, createChart, type IChartApi, type ISeriesApi, type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef, useState } from "react";
import { api } from "@/lib/api";
import { useReload } from "@/lib/hooks";
import { chartPoints, signed, tone, type PortfolioHistory } from "@/lib/portfolio";
import { format } from "@/lib/decimal";

const INTERVALS = ["1m", "1h", "1d"];
const POINTS = 240;
/** After a portfolio change the history is read again, at most this often. */
const RELOAD_MS = 5000;

function colours() {
  const style = getComputedStyle(document.documentElement);
  const v = (name: string) => style.getPropertyValue(name).trim();
  return { bg: v("--panel"), text: v("--muted"), line: v("--line"), up: v("--up"), down: v("--down") };
}

function themed(chart: IChartApi, series: ISeriesApi<"Baseline">) {
  const c = colours();
  chart.applyOptions({
    layout: { background: { type: ColorType.Solid, color: c.bg }, textColor: c.text },
    grid: { vertLines: { color: c.line }, horzLines: { color: c.line } },
  });
  series.applyOptions({ topLineColor: c.up, bottomLineColor: c.down });
}

/** The account's P&L over time (`/portfolio/history`: the journal valued at the klines'
 * closes), read again when the live portfolio changes (`version`). */
export function PnlChart({ version }: { version: number }) {
  const box = useRef<HTMLDivElement>(null);
  const series = useRef<{ chart: IChartApi; line: ISeriesApi<"Baseline"> } | null>(null);
  const [interval, setInterval] = useState("1m");
  const [history, setHistory] = useState<PortfolioHistory | null>(null);
  const [error, setError] = useState<string | null>(null);
  const loadedAt = useRef(0);

  useEffect(() => {
    if (!box.current) return;
    const chart = createChart(box.current, {
      autoSize: true,
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderVisible: false },
    });
    const line = chart.addSeries(BaselineSeries, {
      baseValue: { type: "price", price: 0 },
      topFillColor1: "rgba(14,203,129,.25)", topFillColor2: "rgba(14,203,129,.02)",
      bottomFillColor1: "rgba(246,70,93,.02)", bottomFillColor2: "rgba(246,70,93,.25)",
    });
    themed(chart, line);
    const observer = new MutationObserver(() => themed(chart, line));
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
    series.current = { chart, line };
    return () => {
      observer.disconnect();
      series.current = null;
      chart.remove();
    };
  }, []);

  const load = () => {
    loadedAt.current = Date.now();
    api.portfolioHistory(interval, POINTS).then((body) => {
      setHistory(body);
      setError(null);
      const s = series.current;
      if (!s) return;
      s.line.setData(chartPoints(body).map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
      s.chart.timeScale().fitContent();
    }, (caught) => setError(caught instanceof Error ? caught.message : String(caught)));
  };

  useReload(load, [interval]);

  useEffect(() => {
    if (version === 0) return;
    const wait = Math.max(0, loadedAt.current + RELOAD_MS - Date.now());
    const timer = setTimeout(load, wait);
    return () => clearTimeout(timer);
  }, [version]);

  const last = history?.points.at(-1);
  return (
    <section className="panel flex flex-col p-2" data-testid="pnl-chart">
      <div className="mb-1 flex flex-wrap items-center gap-2">
        <span className="font-semibold">P&amp;L over time</span>
        {INTERVALS.map((i) => (
          <button key={i} className="tab" aria-selected={i === interval} onClick={() => setInterval(i)}>{i}</button>
        ))}
        {last && history && (
          <span className="num ml-auto text-xs text-muted">
            value <b className="text-text">{format(last.value)}</b> {history.quote}, P&amp;L{" "}
            <b className={tone(last.pnl)} data-testid="history-pnl">{signed(format(last.pnl))}</b>
          </span>
        )}
      </div>
      {error && <p className="text-down" role="status">{error}</p>}
      <div ref={box} className="h-[260px] w-full" />
    </section>
  );
}
