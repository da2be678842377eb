// Exact arithmetic on decimal strings ("30000.01"), the form the api and ws send every amount
// in. A value is held as a BigInt count of 10^-scale units, so nothing ever passes through a
// float: what is shown and what is sent is exactly what the server would compute.

export interface Fixed {
  units: bigint;
  scale: number;
}

const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;

export class DecimalError extends Error {}

export function isDecimal(text: string): boolean {
  return DECIMAL.test(text);
}

export function parse(text: string): Fixed {
  const trimmed = text.trim();
  if (!DECIMAL.test(trimmed)) throw new DecimalError(`not a decimal: ${JSON.stringify(text)}`);
  const negative = trimmed.startsWith("-");
  const body = negative ? trimmed.slice(1) : trimmed;
  const [whole, fraction = ""] = body.split(".");
  const units = BigInt(whole + fraction);
  return { units: negative ? -units : units, scale: fraction.length };
}

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/** `value` rescaled to `scale` places; refuses to drop a non-zero digit. */
function rescale(value: Fixed, scale: number): bigint {
  if (scale >= value.scale) return value.units * pow10(scale - value.scale);
  const divisor = pow10(value.scale - scale);
  if (value.units % divisor !== 0n) {
    throw new DecimalError(`${render(value)} has more than ${scale} decimals`);
  }
  return value.units / divisor;
}

export function render(value: Fixed): string {
  const negative = value.units < 0n;
  const digits = (negative ? -value.units : value.units).toString().padStart(value.scale + 1, "0");
  const cut = digits.length - value.scale;
  const text = value.scale > 0 ? `${digits.slice(0, cut)}.${digits.slice(cut)}` : digits;
  return negative ? `-${text}` : text;
}

/** Exact conversion of a decimal string to integer units of 10^-scale (throws if inexact). */
export function toUnits(text: string, scale: number): bigint {
  return rescale(parse(text), scale);
}

export function fromUnits(units: bigint, scale: number): string {
  return render({ units, scale });
}

/** The canonical form: no trailing fractional zeros ("1.500" -> "1.5", "2.00" -> "2"). */
export function trim(text: string): string {
  let { units, scale } = parse(text);
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n;
    scale -= 1;
  }
  return render({ units, scale });
}

function aligned(a: string, b: string): [bigint, bigint, number] {
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.scale, y.scale);
  return [rescale(x, scale), rescale(y, scale), scale];
}

export function add(a: string, b: string): string {
  const [x, y, scale] = aligned(a, b);
  return fromUnits(x + y, scale);
}

export function sub(a: string, b: string): string {
  const [x, y, scale] = aligned(a, b);
  return fromUnits(x - y, scale);
}

export function mul(a: string, b: string): string {
  const x = parse(a);
  const y = parse(b);
  return fromUnits(x.units * y.units, x.scale + y.scale);
}

/** a / b with `scale` places, rounded toward zero. */
export function div(a: string, b: string, scale: number): string {
  const x = parse(a);
  const y = parse(b);
  if (y.units === 0n) throw new DecimalError("division by zero");
  // a/b = (xu / 10^xs) / (yu / 10^ys); scaled by 10^scale.
  const numerator = x.units * pow10(scale + y.scale);
  const denominator = y.units * pow10(x.scale);
  return fromUnits(numerator / denominator, scale);
}

export function cmp(a: string, b: string): -1 | 0 | 1 {
  const [x, y] = aligned(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function compareFixed(a: Fixed, b: Fixed): number {
  const scale = Math.max(a.scale, b.scale);
  const x = a.units * pow10(scale - a.scale);
  const y = b.units * pow10(scale - b.scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function isZero(a: string): boolean {
  return parse(a).units === 0n;
}

export function isPositive(a: string): boolean {
  return parse(a).units > 0n;
}

export function min(a: string, b: string): string {
  return cmp(a, b) <= 0 ? a : b;
}

/** The largest multiple of `step` not above `value` (price ticks and quantity lots). */
export function floorTo(value: string, step: string): string {
  const [x, s, scale] = aligned(value, step);
  if (s <= 0n) throw new DecimalError("step must be positive");
  let q = x / s;
  if (x < 0n && x % s !== 0n) q -= 1n;
  return fromUnits(q * s, scale);
}

/** The smallest multiple of `step` not below `value`. */
export function ceilTo(value: string, step: string): string {
  const [x, s, scale] = aligned(value, step);
  if (s <= 0n) throw new DecimalError("step must be positive");
  let q = x / s;
  if (x > 0n && x % s !== 0n) q += 1n;
  return fromUnits(q * s, scale);
}

/** Decimal places of a step such as a tick size ("0.01" -> 2, "5" -> 0, "0.50" -> 1). */
export function places(step: string): number {
  return parse(trim(step)).scale;
}

/** a × bps / 10 000, exact (fees are in basis points). */
export function bps(a: string, basisPoints: number): string {
  const x = parse(a);
  return fromUnits(x.units * BigInt(basisPoints), x.scale + 4);
}

/** `a` with exactly `decimals` places, rounded toward zero (never shows more than there is). */
export function fix(a: string, decimals: number): string {
  const x = parse(a);
  if (decimals >= x.scale) return fromUnits(x.units * pow10(decimals - x.scale), decimals);
  return fromUnits(x.units / pow10(x.scale - decimals), decimals);
}

/** For display: `decimals` places (default: as given) and thousands separators. */
export function format(a: string, decimals?: number, group = true): string {
  const text = decimals === undefined ? a : fix(a, decimals);
  if (!group) return text;
  const negative = text.startsWith("-");
  const body = negative ? text.slice(1) : text;
  const [whole, fraction] = body.split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${fraction !== undefined ? `.${fraction}` : ""}`;
}

/** part / whole as a fraction in [0, 1] for drawing only (bar widths), never for amounts. */
export function ratio(part: string, whole: string): number {
  const [x, y] = aligned(part, whole);
  if (y <= 0n) return 0;
  return Number((x * 10000n) / y) / 10000;
}

/** A decimal string as a JavaScript number, for chart coordinates only. */
export function plot(a: string): number {
  return Number(a);
}
