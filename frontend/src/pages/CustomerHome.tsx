import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { client, unwrap } from "../api/client";
import type { Order, Pagination } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { EmptyState, ErrorState, ProductImage, SkeletonRows, StatusBadge } from "../components/ui";
import { formatDate, formatMoney, formatNumber } from "../lib/format";

const NOT_SPENT = new Set([
  "cancelled",
  "cancel_requested",
  "refund_processing",
  "refunded",
  "deleted",
]);

export function customerFigures(orders: Order[]) {
  let spent = 0;
  let items = 0;
  for (const o of orders) {
    if (!NOT_SPENT.has(o.status)) spent += Math.round(o.totalAmount * 100);
    for (const it of o.items) items += it.quantity;
  }
  return { count: orders.length, spent: spent / 100, items };
}

export default function CustomerHome() {
  const { user } = useAuth();
  const orders = useQuery({
    queryKey: ["orders", "home"],
    queryFn: () =>
      unwrap<{ orders: Order[]; pagination: Pagination }>(
        client.GET("/api/orders", { params: { query: { limit: 1000 } } }),
      ),
  });
  const f = orders.data ? customerFigures(orders.data.orders) : null;
  return (
    <section className="page" aria-labelledby="home-title">
      <h1 id="home-title">Hello, {user?.name.split(" ")[0]}</h1>
      <div className="kpis">
        {[
          ["My orders", f ? formatNumber(orders.data?.pagination.total ?? f.count) : null],
          ["Total spent", f ? formatMoney(f.spent) : null],
          ["Items purchased", f ? formatNumber(f.items) : null],
        ].map(([label, v]) => (
          <article className="card kpi" key={label}>
            <h2 className="kpi-label">{label}</h2>
            <p className="kpi-value">{v ?? "\u00a0"}</p>
          </article>
        ))}
      </div>
      <div className="page-head">
        <h2>Recent orders</h2>
        <Link to="/my-orders">All my orders</Link>
      </div>
      {orders.isError ? (
        <ErrorState error={orders.error} retry={() => orders.refetch()} />
      ) : !orders.data ? (
        <SkeletonRows rows={4} />
      ) : orders.data.orders.length === 0 ? (
        <EmptyState title="No orders yet">
          <Link className="btn btn-primary" to="/products">
            Start shopping
          </Link>
        </EmptyState>
      ) : (
        <ul className="stack">
          {orders.data.orders.slice(0, 5).map((o) => (
            <li key={o.id} className="card row between wrap">
              <span className="row">
                <ProductImage src={o.items[0]?.image} alt={o.items[0]?.name ?? "Order"} size={40} />
                <span>
                  <strong>#{o.userOrderNumber}</strong> {o.items[0]?.name}
                  {o.items.length > 1 ? ` +${o.items.length - 1}` : ""}
                  <br />
                  <small className="muted">{formatDate(o.createdAt)}</small>
                </span>
              </span>
              <span className="row">
                <StatusBadge status={o.status} />
                <strong>{formatMoney(o.totalAmount)}</strong>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
