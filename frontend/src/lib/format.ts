// Money from the API's decimal amounts through integer cents, dates in the
// browser's locale and time zone.
const money = new Intl.NumberFormat(undefined, { style: "currency", currency: "INR" });
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const number = new Intl.NumberFormat();

/** Rounds an API amount (decimal with ≤ 2 places) to integer cents. */
export const toCents = (amount: number): number => Math.round(amount * 100);

export function formatMoney(amount: number | null | undefined): string {
  if (amount == null || Number.isNaN(amount)) return "—";
  return money.format(toCents(amount) / 100);
}

export function formatCompactMoney(amount: number): string {
  return `₹${compact.format(amount)}`;
}

export const formatNumber = (n: number | null | undefined): string =>
  n == null ? "—" : number.format(n);

export function formatDate(iso: string | null | undefined, withTime = false): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    ...(withTime ? { hour: "2-digit", minute: "2-digit" } : {}),
  });
}

/** A time bucket of the revenue series, as short as its granularity allows. */
export function formatBucket(iso: string, granularity: string | undefined): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  switch (granularity) {
    case "hour":
      return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    case "month":
      return d.toLocaleDateString(undefined, { year: "numeric", month: "short" });
    default:
      return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }
}

export function formatChange(pct: number | null | undefined): string {
  if (pct == null || !Number.isFinite(pct)) return "—";
  const sign = pct > 0 ? "+" : "";
  return `${sign}${pct.toFixed(1)}%`;
}

export const browserTimeZone = (): string =>
  Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

export function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((p) => p[0]?.toUpperCase() ?? "")
    .join("");
}

export const humanize = (s: string): string =>
  s.replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());
