import { useQuery, useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { client, unwrap } from "../api/client";
import type { BreakdownRow, Dashboard as DashboardData, SeriesPoint } from "../api/types";
import { ErrorState, ProductImage, Skeleton, StatusBadge } from "../components/ui";
import { browserTimeZone, formatChange, formatMoney, formatNumber, humanize } from "../lib/format";
import { type LiveState, openStream } from "../lib/stream";

// Recharts is the heaviest dependency: its own chunk, so the KPI cards render
// before it has loaded.
const RevenueChart = lazy(() => import("../components/RevenueChart"));

const PERIODS = [
  { value: "today", label: "Today" },
  { value: "7d", label: "7 days" },
  { value: "30d", label: "30 days" },
  { value: "90d", label: "90 days" },
  { value: "12m", label: "12 months" },
  { value: "custom", label: "Custom" },
];

const CARDS: {
  key: string;
  label: string;
  kind: "money" | "number" | "percent";
  series: keyof SeriesPoint;
}[] = [
  { key: "netRevenue", label: "Net revenue", kind: "money", series: "revenue" },
  { key: "orders", label: "Orders", kind: "number", series: "orders" },
  { key: "aov", label: "Avg order value", kind: "money", series: "revenue" },
  { key: "units", label: "Items sold", kind: "number", series: "units" },
  { key: "customers", label: "Customers", kind: "number", series: "customers" },
  { key: "cancellationRate", label: "Cancellation rate", kind: "percent", series: "orders" },
];

function Sparkline({ values }: { values: number[] }) {
  if (values.length < 2) return <svg className="spark" aria-hidden="true" />;
  const max = Math.max(...values, 1);
  const step = 100 / (values.length - 1);
  const pts = values
    .map((v, i) => `${(i * step).toFixed(1)},${(28 - (v / max) * 26).toFixed(1)}`)
    .join(" ");
  return (
    <svg className="spark" viewBox="0 0 100 30" preserveAspectRatio="none" aria-hidden="true">
      <polyline
        points={pts}
        fill="none"
        stroke="currentColor"
        strokeWidth="2"
        vectorEffect="non-scaling-stroke"
      />
    </svg>
  );
}

function value(kind: string, v: number | undefined) {
  if (v == null) return "—";
  if (kind === "money") return formatMoney(v);
  if (kind === "percent") return `${(v * 100).toFixed(1)}%`;
  return formatNumber(v);
}

type BreakdownPath =
  | "/api/analytics/top-products"
  | "/api/analytics/categories"
  | "/api/analytics/status-breakdown"
  | "/api/analytics/payment-methods";

function useBreakdown(
  path: BreakdownPath,
  key: string,
  query: Record<string, string>,
  enabled: boolean,
  limit?: string,
) {
  return useQuery({
    queryKey: ["analytics", key, query],
    queryFn: async () =>
      (
        await unwrap<Record<string, BreakdownRow[]>>(
          client.GET(path, { params: { query: limit ? { ...query, limit } : query } }),
        )
      )[key] ?? [],
    enabled,
  });
}

export default function Dashboard() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const period = params.get("period") ?? "30d";
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const [granularity, setGranularity] = useState<string>("");
  const tz = browserTimeZone();
  const [live, setLive] = useState<LiveState>("connecting");
  const marked = useRef(false);

  const query = useMemo(() => {
    const q: Record<string, string> = { period, tz };
    if (period === "custom") {
      if (from) q.from = from;
      if (to) q.to = to;
    }
    return q;
  }, [period, from, to, tz]);
  const ready = period !== "custom" || (from && to);
  const qs = new URLSearchParams(query).toString();

  const dash = useQuery({
    queryKey: ["analytics", "dashboard", query],
    queryFn: () =>
      unwrap<DashboardData>(client.GET("/api/analytics/dashboard", { params: { query } })),
    enabled: Boolean(ready),
  });
  const revenue = useQuery({
    queryKey: ["analytics", "revenue", query, granularity],
    queryFn: () =>
      unwrap<{ revenue: SeriesPoint[]; granularity: string }>(
        client.GET("/api/analytics/revenue", {
          params: { query: granularity ? { ...query, granularity } : query },
        }),
      ),
    enabled: Boolean(ready),
  });
  const on = Boolean(ready);
  const top = useBreakdown("/api/analytics/top-products", "products", query, on, "5");
  const cats = useBreakdown("/api/analytics/categories", "categories", query, on, "8");
  const statuses = useBreakdown("/api/analytics/status-breakdown", "statuses", query, on);
  const payments = useBreakdown("/api/analytics/payment-methods", "paymentMethods", query, on);

  // Live: the stream pushes the dashboard after every change; the other
  // figures are re-read at most once per push.
  useEffect(() => {
    if (!ready) return;
    return openStream<DashboardData>({
      url: `/api/analytics/stream?${qs}`,
      event: "dashboard",
      onState: setLive,
      onData: (d) => {
        qc.setQueryData(["analytics", "dashboard", query], d);
        qc.invalidateQueries({
          predicate: (q) => q.queryKey[0] === "analytics" && q.queryKey[1] !== "dashboard",
        });
      },
    });
  }, [qs, ready, qc, query]);

  useEffect(() => {
    if (dash.data && !marked.current) {
      marked.current = true;
      performance.mark("ecap:kpis-visible");
    }
  }, [dash.data]);

  const series = revenue.data?.revenue ?? [];
  const setPeriod = (p: string) => {
    const next = new URLSearchParams(params);
    next.set("period", p);
    setParams(next, { replace: true });
  };

  return (
    <section className="page" aria-labelledby="dash-title">
      <div className="page-head">
        <div>
          <h1 id="dash-title">Dashboard</h1>
          <p className="muted">
            {dash.data
              ? `${dash.data.period.firstDay} – ${dash.data.period.lastDay} · ${tz}`
              : "\u00a0"}
          </p>
        </div>
        <div className="toolbar">
          <span className={`live live-${live}`} role="status">
            <span className="dot" aria-hidden="true" />
            {live === "live"
              ? "Live"
              : live === "connecting"
                ? "Connecting…"
                : live === "offline"
                  ? "Offline"
                  : "Reconnecting…"}
          </span>
          <div className="segmented" role="group" aria-label="Period">
            {PERIODS.map((p) => (
              <button
                key={p.value}
                type="button"
                aria-pressed={period === p.value}
                onClick={() => setPeriod(p.value)}
              >
                {p.label}
              </button>
            ))}
          </div>
        </div>
      </div>
      {period === "custom" ? (
        <div className="toolbar">
          <label>
            From{" "}
            <input
              type="date"
              value={from}
              onChange={(e) => {
                const n = new URLSearchParams(params);
                n.set("from", e.target.value);
                setParams(n, { replace: true });
              }}
            />
          </label>
          <label>
            To{" "}
            <input
              type="date"
              value={to}
              onChange={(e) => {
                const n = new URLSearchParams(params);
                n.set("to", e.target.value);
                setParams(n, { replace: true });
              }}
            />
          </label>
        </div>
      ) : null}
      {dash.isError ? <ErrorState error={dash.error} retry={() => dash.refetch()} /> : null}
      <div className="kpis" data-testid="kpis">
        {CARDS.map((c) => {
          const k = dash.data?.kpis[c.key];
          const up = (k?.changePercent ?? 0) >= 0;
          const good = c.key === "cancellationRate" ? !up : up;
          return (
            <article className="card kpi" key={c.key} data-kpi={c.key}>
              <h2 className="kpi-label">{c.label}</h2>
              {k ? (
                <>
                  <p className="kpi-value">{value(c.kind, k.value)}</p>
                  <p className="kpi-prev">
                    <span
                      className={`change ${k.changePercent == null ? "" : good ? "good" : "bad"}`}
                    >
                      {formatChange(k.changePercent)}
                    </span>{" "}
                    vs {value(c.kind, k.previous)}
                  </p>
                </>
              ) : (
                <>
                  <Skeleton height={32} width="70%" />
                  <Skeleton height={14} width="50%" />
                </>
              )}
              <Sparkline values={series.map((p) => Number(p[c.series]) || 0)} />
            </article>
          );
        })}
      </div>

      <div className="grid-2">
        <article className="card span-2">
          <div className="card-head">
            <h2>Revenue</h2>
            <div className="toolbar">
              <label className="sr-only" htmlFor="granularity">
                Granularity
              </label>
              <select
                id="granularity"
                value={granularity}
                onChange={(e) => setGranularity(e.target.value)}
              >
                <option value="">Automatic</option>
                <option value="hour">Hourly</option>
                <option value="day">Daily</option>
                <option value="week">Weekly</option>
                <option value="month">Monthly</option>
              </select>
              <a
                className="btn btn-secondary"
                href={`/api/analytics/export?report=revenue&${qs}${granularity ? `&granularity=${granularity}` : ""}`}
                download
              >
                Export CSV
              </a>
            </div>
          </div>
          <div className="chart">
            {revenue.isError ? (
              <ErrorState error={revenue.error} retry={() => revenue.refetch()} />
            ) : revenue.data ? (
              <Suspense fallback={<Skeleton height={280} />}>
                <RevenueChart series={series} granularity={revenue.data?.granularity} />
              </Suspense>
            ) : (
              <Skeleton height={280} />
            )}
          </div>
        </article>

        <article className="card">
          <div className="card-head">
            <h2>Top products</h2>
            <a
              className="btn btn-secondary"
              href={`/api/analytics/export?report=top-products&${qs}`}
              download
            >
              Export CSV
            </a>
          </div>
          {top.isError ? (
            <ErrorState error={top.error} retry={() => top.refetch()} />
          ) : !top.data ? (
            <Skeleton height={200} />
          ) : top.data.length === 0 ? (
            <p className="muted">No sales in this period yet.</p>
          ) : (
            <ol className="rank">
              {top.data.map((p) => (
                <li key={p.key}>
                  <ProductImage src={p.image} alt={p.name ?? p.key} size={40} />
                  <span className="grow">
                    <Link to={`/products/${p.key}`}>{p.name ?? `Product ${p.key}`}</Link>
                    <small className="muted"> {p.category ?? ""}</small>
                  </span>
                  <span className="num">
                    {formatNumber(p.unitsSold)} sold · {formatMoney(p.revenue)}
                  </span>
                </li>
              ))}
            </ol>
          )}
        </article>

        <article className="card">
          <h2>Categories</h2>
          {cats.isError ? (
            <ErrorState error={cats.error} retry={() => cats.refetch()} />
          ) : !cats.data ? (
            <Skeleton height={200} />
          ) : cats.data.length === 0 ? (
            <p className="muted">No sales in this period yet.</p>
          ) : (
            <ul className="bars">
              {cats.data.map((c) => {
                const max = Math.max(...cats.data.map((x) => x.revenue), 1);
                return (
                  <li key={c.key}>
                    <span className="bar-label">{humanize(c.key)}</span>
                    <span
                      className="bar"
                      style={{ width: `${(c.revenue / max) * 100}%` }}
                      aria-hidden="true"
                    />
                    <span className="num">{formatMoney(c.revenue)}</span>
                  </li>
                );
              })}
            </ul>
          )}
        </article>

        <article className="card">
          <h2>Orders by status</h2>
          {statuses.isError ? (
            <ErrorState error={statuses.error} retry={() => statuses.refetch()} />
          ) : !statuses.data ? (
            <Skeleton height={200} />
          ) : (
            <ul className="status-list">
              {statuses.data.map((s) => (
                <li key={s.key}>
                  <button
                    type="button"
                    className="row-btn"
                    onClick={() => navigate(`/orders?status=${s.key}`)}
                  >
                    <StatusBadge status={s.key} />
                    <span className="num">{formatNumber(s.orders)}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </article>

        <article className="card">
          <h2>Payment methods</h2>
          {payments.isError ? (
            <ErrorState error={payments.error} retry={() => payments.refetch()} />
          ) : !payments.data ? (
            <Skeleton height={200} />
          ) : payments.data.length === 0 ? (
            <p className="muted">No orders in this period yet.</p>
          ) : (
            <table className="table compact">
              <thead>
                <tr>
                  <th scope="col">Method</th>
                  <th scope="col" className="num">
                    Orders
                  </th>
                  <th scope="col" className="num">
                    Revenue
                  </th>
                </tr>
              </thead>
              <tbody>
                {payments.data.map((p) => (
                  <tr key={p.key}>
                    <td>{p.key.toUpperCase()}</td>
                    <td className="num">{formatNumber(p.orders)}</td>
                    <td className="num">{formatMoney(p.revenue)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </article>
      </div>
    </section>
  );
}
