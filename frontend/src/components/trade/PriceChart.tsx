"use client";

import {
  CandlestickSeries, ColorType, HistogramSeries, createChart,
  type IChartApi, type ISeriesApi, type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef, useState } from "react";
import { api, type Kline, type Market } from "@/lib/api";
import { format, parse, places, plot } from "@/lib/decimal";
import { useReload, useStream } from "@/lib/hooks";

const INTERVALS = ["1m", "5m", "1h", "1d"];

interface Series {
  chart: IChartApi;
  candles: ISeriesApi<"Candlestick">;
  volume: ISeriesApi<"Histogram">;
}

function colours() {
  const style = getComputedStyle(document.documentElement);
  const v = (name: string) => style.getPropertyValue(name).trim();
  return { bg: v("--panel"), text: v("--muted"), line: v("--line"), up: v("--up"), down: v("--down") };
}

function themed(chart: IChartApi, candles: ISeriesApi<"Candlestick">) {
  const c = colours();
  chart.applyOptions({
    layout: { background: { type: ColorType.Solid, color: c.bg }, textColor: c.text },
    grid: { vertLines: { color: c.line }, horzLines: { color: c.line } },
  });
  candles.applyOptions({ upColor: c.up, downColor: c.down, wickUpColor: c.up, wickDownColor: c.down });
}

// The chart library plots numbers; the decimal strings become numbers only here, for drawing.
function bar(k: Kline) {
  return {
    time: (k.open_time / 1000) as UTCTimestamp,
    open: plot(k.open), high: plot(k.high), low: plot(k.low), close: plot(k.close),
  };
}

function volumeBar(k: Kline) {
  const up = parse(k.close).units >= parse(k.open).units;
  return { time: (k.open_time / 1000) as UTCTimestamp, value: plot(k.volume), color: up ? "rgba(14,203,129,.4)" : "rgba(246,70,93,.4)" };
}

/** Candles and volume of one interval, from /klines and then the `kline_<interval>` stream. */
export function PriceChart({ market }: { market: Market }) {
  const box = useRef<HTMLDivElement>(null);
  const series = useRef<Series | null>(null);
  const [interval, setInterval] = useState("1m");
  const [latest, setLatest] = useState<Kline | null>(null);
  const intervals = INTERVALS.filter((i) => market.kline_intervals.includes(i));

  useEffect(() => {
    if (!box.current) return;
    const precision = places(market.tick_size);
    const chart = createChart(box.current, {
      autoSize: true,
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderVisible: false },
    });
    const candles = chart.addSeries(CandlestickSeries, {
      borderVisible: false,
      priceFormat: { type: "price", precision, minMove: plot(market.tick_size) },
    });
    const volume = chart.addSeries(HistogramSeries, {
      priceScaleId: "", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false,
    });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    themed(chart, candles);
    const observer = new MutationObserver(() => themed(chart, candles));
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
    series.current = { chart, candles, volume };
    return () => {
      observer.disconnect();
      series.current = null;
      chart.remove();
    };
  }, [market.tick_size]);

  useReload(() => {
    api.klines(market.name, interval).then((rows) => {
      const s = series.current;
      if (!s) return;
      s.candles.setData(rows.map(bar));
      s.volume.setData(rows.map(volumeBar));
      s.chart.timeScale().scrollToRealTime();
      setLatest(rows.at(-1) ?? null);
    }, () => undefined);
  }, [market.name, interval]);

  useStream<Kline & { interval: string }>(`kline_${interval}@${market.name}`, (k) => {
    const s = series.current;
    if (!s || k.interval !== interval) return;
    s.candles.update(bar(k));
    s.volume.update(volumeBar(k));
    setLatest(k);
  });

  const decimals = places(market.tick_size);
  return (
    <section className="panel flex flex-col p-2" data-testid="chart">
      <div className="mb-1 flex flex-wrap items-center gap-2">
        {intervals.map((i) => (
          <button key={i} className="tab" aria-selected={i === interval} onClick={() => setInterval(i)}>{i}</button>
        ))}
        {latest && (
          <span className="num ml-auto text-xs text-muted" data-testid="candle">
            O <b className="text-text">{format(latest.open, decimals)}</b>{" "}
            H <b className="text-text">{format(latest.high, decimals)}</b>{" "}
            L <b className="text-text">{format(latest.low, decimals)}</b>{" "}
            C <b className="text-text" data-testid="candle-close">{format(latest.close, decimals)}</b>{" "}
            V <b className="text-text" data-testid="candle-volume">{format(latest.volume)}</b>
          </span>
        )}
      </div>
      <div ref={box} className="h-[280px] w-full lg:h-[360px]" />
    </section>
  );
}
