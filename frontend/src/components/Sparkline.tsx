import { plot } from "@/lib/decimal";

/** A line through closing prices; numbers are only pixel coordinates here. */
export function Sparkline({ closes, up }: { closes: string[]; up: boolean }) {
  if (closes.length < 2) return <svg width={100} height={28} />;
  const values = closes.map(plot);
  const lo = Math.min(...values);
  const span = Math.max(...values) - lo || 1;
  const points = values
    .map((v, i) => `${((i / (values.length - 1)) * 100).toFixed(1)},${(26 - ((v - lo) / span) * 24).toFixed(1)}`)
    .join(" ");
  return (
    <svg width={100} height={28} viewBox="0 0 100 28" aria-hidden>
      <polyline fill="none" strokeWidth={1.5} stroke={up ? "var(--up)" : "var(--down)"} points={points} />
    </svg>
  );
}
