import {
  Area,
  AreaChart,
  CartesianGrid,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import type { SeriesPoint } from "../api/types";
import { formatBucket, formatCompactMoney, formatDate, formatMoney } from "../lib/format";

export default function RevenueChart({
  series,
  granularity,
}: {
  series: SeriesPoint[];
  granularity?: string;
}) {
  return (
    <ResponsiveContainer width="100%" height={280}>
      <AreaChart data={series} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
        <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
        <XAxis
          dataKey="date"
          tickFormatter={(v: string) => formatBucket(v, granularity)}
          tick={{ fontSize: 12, fill: "var(--muted)" }}
          minTickGap={24}
        />
        <YAxis
          tickFormatter={(v: number) => formatCompactMoney(v)}
          tick={{ fontSize: 12, fill: "var(--muted)" }}
          width={64}
        />
        <Tooltip
          formatter={(v) => formatMoney(Number(v))}
          labelFormatter={(v) => formatDate(String(v), granularity === "hour")}
          contentStyle={{
            background: "var(--surface)",
            border: "1px solid var(--border)",
          }}
        />
        <Area
          type="monotone"
          dataKey="revenue"
          name="Net revenue"
          stroke="var(--accent)"
          fill="var(--accent-soft)"
        />
      </AreaChart>
    </ResponsiveContainer>
  );
}
