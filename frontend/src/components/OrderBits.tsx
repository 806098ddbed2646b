import { useQuery } from "@tanstack/react-query";
import { client, unwrap } from "../api/client";
import type { Order } from "../api/types";
import { formatDate } from "../lib/format";
import { PROGRESS, progressIndex, STATUS_LABEL } from "../lib/orders";
import { ErrorState, Skeleton } from "./ui";

export function Progress({ order }: { order: Order }) {
  const reached = progressIndex(order.status);
  if (reached < 0) {
    return (
      <p className={`banner banner-${order.status}`} role="status">
        {STATUS_LABEL[order.status]}
        {order.cancellationReason ? ` — ${order.cancellationReason}` : ""}
        {order.refundStatus ? ` · refund ${order.refundStatus}` : ""}
      </p>
    );
  }
  return (
    <ol className="progress" aria-label={`Progress: ${STATUS_LABEL[order.status]}`}>
      {PROGRESS.map((s, i) => (
        <li
          key={s.status}
          className={i <= reached ? "done" : ""}
          aria-current={i === reached ? "step" : undefined}
        >
          <span className="step-dot" aria-hidden="true" />
          <span className="step-label">{s.label}</span>
          <small className="muted">
            {i <= reached ? formatDate(order[s.at] as string | null) : ""}
          </small>
        </li>
      ))}
    </ol>
  );
}

interface Tracking {
  trackingNumber: string | null;
  courierName: string | null;
  estimatedDelivery: string | null;
  timeline: { status: string; timestamp: string; label: string }[];
}

export function Timeline({ orderId }: { orderId: number }) {
  const t = useQuery({
    queryKey: ["tracking", orderId],
    queryFn: async () =>
      (
        await unwrap<{ tracking: Tracking }>(
          client.GET("/api/orders/{id}/tracking", { params: { path: { id: orderId } } }),
        )
      ).tracking,
  });
  if (t.isError) return <ErrorState error={t.error} retry={() => t.refetch()} />;
  if (!t.data) return <Skeleton height={80} />;
  return (
    <div className="stack">
      {t.data.trackingNumber ? (
        <p>
          {t.data.courierName} · tracking <strong>{t.data.trackingNumber}</strong>
          {t.data.estimatedDelivery ? ` · expected ${formatDate(t.data.estimatedDelivery)}` : ""}
        </p>
      ) : null}
      <ol className="timeline" aria-label="Timeline">
        {t.data.timeline.map((e) => (
          <li key={`${e.status}-${e.timestamp}`}>
            <strong>{e.label}</strong>{" "}
            <span className="muted">{formatDate(e.timestamp, true)}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}
