import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { client, unwrap } from "../api/client";
import type { DetailRequestBody, Order, OrderStatus, Pagination } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { Progress, Timeline } from "../components/OrderBits";
import { useToast } from "../components/toast";
import {
  Button,
  EmptyState,
  ErrorState,
  errorMessage,
  Modal,
  Pager,
  ProductImage,
  SelectField,
  SkeletonRows,
  StatusBadge,
  TextArea,
} from "../components/ui";
import { formatDate, formatMoney } from "../lib/format";
import {
  CANCEL_REASONS,
  canCancel,
  DETAIL_REASONS,
  PAYMENT_METHODS,
  RETURN_REASONS,
  returnDaysLeft,
  STATUS_LABEL,
  STATUS_TABS,
} from "../lib/orders";

type Dialog =
  | { kind: "cancel"; order: Order }
  | { kind: "return"; order: Order; type: "Return" | "Replace" }
  | { kind: "review"; order: Order; productId: string; name: string }
  | { kind: "detail"; order: Order }
  | { kind: "restore"; order: Order };

function useInvalidate() {
  const qc = useQueryClient();
  return () => qc.invalidateQueries({ queryKey: ["orders"] });
}

function CancelDialog({
  order,
  type,
  onClose,
}: {
  order: Order;
  type?: "Return" | "Replace";
  onClose: () => void;
}) {
  const notify = useToast();
  const invalidate = useInvalidate();
  const reasons = type ? RETURN_REASONS : CANCEL_REASONS;
  const [reason, setReason] = useState("");
  const [other, setOther] = useState("");
  const [images, setImages] = useState("");
  const [error, setError] = useState("");
  const m = useMutation({
    mutationFn: () => {
      const text = type
        ? `${type} – ${reason}${other.trim() ? `: ${other.trim()}` : ""}`
        : reason.startsWith("Other")
          ? other.trim()
          : reason;
      return unwrap(
        client.POST("/api/orders/{id}/cancel-request", {
          params: { path: { id: order.id } },
          body: { reason: text, images: images.split(/\s+/).filter(Boolean) },
        }),
      );
    },
    onSuccess: () => {
      notify(type ? `${type} requested` : "Cancellation requested");
      invalidate();
      onClose();
    },
    onError: (e) => setError(errorMessage(e)),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!reason) return setError("Choose a reason");
    if (reason.startsWith("Other") && !other.trim()) return setError("Tell us the reason");
    m.mutate();
  };
  return (
    <Modal
      title={
        type ? `${type} order #${order.userOrderNumber}` : `Cancel order #${order.userOrderNumber}`
      }
      onClose={onClose}
    >
      <form className="stack" onSubmit={submit}>
        <SelectField label="Reason" value={reason} onChange={(e) => setReason(e.target.value)}>
          <option value="">Choose…</option>
          {reasons.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </SelectField>
        <TextArea
          label={reason.startsWith("Other") ? "Your reason" : "Details (optional)"}
          value={other}
          onChange={(e) => setOther(e.target.value)}
        />
        {type ? (
          <TextArea
            label="Photo links (optional, one per line)"
            value={images}
            onChange={(e) => setImages(e.target.value)}
          />
        ) : null}
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
        <Button type="submit" variant="primary" busy={m.isPending}>
          {type ? `Request ${type.toLowerCase()}` : "Request cancellation"}
        </Button>
      </form>
    </Modal>
  );
}

function ReviewDialog({
  order,
  productId,
  name,
  onClose,
}: {
  order: Order;
  productId: string;
  name: string;
  onClose: () => void;
}) {
  const { user } = useAuth();
  const notify = useToast();
  const qc = useQueryClient();
  const [rating, setRating] = useState(5);
  const [comment, setComment] = useState("");
  const [error, setError] = useState("");
  const m = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST("/api/orders/{id}/review", {
          params: { path: { id: order.id } },
          body: { productId, rating, comment: comment.trim(), userName: user?.name ?? "" },
        }),
      ),
    onSuccess: () => {
      notify("Thanks for your review");
      qc.invalidateQueries({ queryKey: ["reviews", productId] });
      onClose();
    },
    onError: (e) => setError(errorMessage(e)),
  });
  return (
    <Modal title={`Review ${name}`} onClose={onClose}>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
      >
        <SelectField
          label="Rating"
          value={String(rating)}
          onChange={(e) => setRating(Number(e.target.value))}
        >
          {[5, 4, 3, 2, 1].map((r) => (
            <option key={r} value={r}>
              {"★".repeat(r)} ({r})
            </option>
          ))}
        </SelectField>
        <TextArea
          label="Comment"
          value={comment}
          onChange={(e) => setComment(e.target.value)}
          maxLength={2000}
        />
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
        <Button type="submit" variant="primary" busy={m.isPending}>
          Submit review
        </Button>
      </form>
    </Modal>
  );
}

function DetailDialog({ order, onClose }: { order: Order; onClose: () => void }) {
  const notify = useToast();
  const invalidate = useInvalidate();
  const [reason, setReason] = useState("");
  const [other, setOther] = useState("");
  const [error, setError] = useState("");
  const m = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST("/api/orders/{id}/detail-request", {
          params: { path: { id: order.id } },
          body: { reason, otherReason: other.trim() || null } as DetailRequestBody,
        }),
      ),
    onSuccess: () => {
      notify("Request sent");
      invalidate();
      onClose();
    },
    onError: (e) => setError(errorMessage(e)),
  });
  return (
    <Modal title={`Request details of #${order.userOrderNumber}`} onClose={onClose}>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (!reason) return setError("Choose a reason");
          if (reason === "Other" && !other.trim()) return setError("Tell us the reason");
          m.mutate();
        }}
      >
        <SelectField label="Reason" value={reason} onChange={(e) => setReason(e.target.value)}>
          <option value="">Choose…</option>
          {DETAIL_REASONS.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </SelectField>
        {reason === "Other" ? (
          <TextArea label="Your reason" value={other} onChange={(e) => setOther(e.target.value)} />
        ) : null}
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
        <Button type="submit" variant="primary" busy={m.isPending}>
          Send request
        </Button>
      </form>
    </Modal>
  );
}

function RestoreDialog({ order, onClose }: { order: Order; onClose: () => void }) {
  const notify = useToast();
  const invalidate = useInvalidate();
  const [reason, setReason] = useState("");
  const [error, setError] = useState("");
  const m = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST("/api/orders/{id}/restore-request", {
          params: { path: { id: order.id } },
          body: { reason: reason.trim() },
        }),
      ),
    onSuccess: () => {
      notify("Restoration requested");
      invalidate();
      onClose();
    },
    onError: (e) => setError(errorMessage(e)),
  });
  return (
    <Modal title={`Restore order #${order.userOrderNumber}`} onClose={onClose}>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (reason.trim().length < 10) return setError("Give a reason of at least 10 characters");
          m.mutate();
        }}
      >
        <TextArea
          label="Why should it be restored?"
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          error={error}
        />
        <Button type="submit" variant="primary" busy={m.isPending}>
          Request restoration
        </Button>
      </form>
    </Modal>
  );
}

function OrderCard({ order, open }: { order: Order; open: (d: Dialog) => void }) {
  const [expanded, setExpanded] = useState(false);
  const notify = useToast();
  const invalidate = useInvalidate();
  const days = returnDaysLeft(order);
  const remove = useMutation({
    mutationFn: () =>
      unwrap(client.DELETE("/api/orders/{id}/soft", { params: { path: { id: order.id } } })),
    onSuccess: () => {
      notify("Order removed from your list");
      invalidate();
    },
    onError: (e) => notify(errorMessage(e), "error"),
  });
  return (
    <article className="card order-card" aria-labelledby={`order-${order.id}`}>
      <header className="row between wrap">
        <h2 id={`order-${order.id}`} className="order-number">
          Order #{order.userOrderNumber}
        </h2>
        <StatusBadge status={order.status} />
      </header>
      <p className="muted">
        {formatDate(order.createdAt, true)} ·{" "}
        {PAYMENT_METHODS.find((m) => m.value === order.paymentMethod)?.label ?? order.paymentMethod}{" "}
        · <strong>{formatMoney(order.totalAmount)}</strong>
      </p>
      {order.canViewDetails ? (
        <ul className="order-items">
          {order.items.map((it) => (
            <li key={it.productId}>
              <ProductImage src={it.image} alt={it.name} size={40} />
              <Link to={`/products/${it.productId}`} className="grow">
                {it.name}
              </Link>
              <span className="num">
                {it.quantity} × {formatMoney(it.price)}
              </span>
              {order.status === "delivered" ? (
                <Button
                  variant="ghost"
                  onClick={() =>
                    open({ kind: "review", order, productId: it.productId, name: it.name })
                  }
                >
                  Review
                </Button>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">Details are hidden for this order.</p>
      )}
      {order.shippingAddress ? (
        <p className="muted">
          Deliver to {order.shippingAddress.street}, {order.shippingAddress.city}{" "}
          {order.shippingAddress.zipCode}
        </p>
      ) : null}
      <Progress order={order} />
      {order.cancellationRejected ? (
        <p className="banner">
          Your request was declined
          {order.cancellationRejectionReason ? `: ${order.cancellationRejectionReason}` : ""}.
        </p>
      ) : null}
      <div className="row wrap">
        <Button variant="ghost" aria-expanded={expanded} onClick={() => setExpanded((e) => !e)}>
          {expanded ? "Hide tracking" : "Track"}
        </Button>
        {canCancel(order.status) ? (
          <Button onClick={() => open({ kind: "cancel", order })}>Cancel</Button>
        ) : null}
        {days > 0 ? (
          <>
            <Button onClick={() => open({ kind: "return", order, type: "Return" })}>
              Return ({days} days left)
            </Button>
            <Button onClick={() => open({ kind: "return", order, type: "Replace" })}>
              Replace
            </Button>
          </>
        ) : null}
        {!order.canViewDetails && order.canRequestDetails ? (
          <Button onClick={() => open({ kind: "detail", order })}>Request details</Button>
        ) : null}
        {["delivered", "cancelled", "refunded"].includes(order.status) ? (
          <Button
            variant="ghost"
            busy={remove.isPending}
            onClick={() =>
              window.confirm(
                "Remove this order from your list? You can ask to restore it within 30 days.",
              ) && remove.mutate()
            }
          >
            Delete
          </Button>
        ) : null}
      </div>
      {expanded ? <Timeline orderId={order.id} /> : null}
    </article>
  );
}

export default function MyOrders() {
  const [params, setParams] = useSearchParams();
  const status = (params.get("status") ?? "all") as OrderStatus | "all";
  const page = Number(params.get("page") ?? 1) || 1;
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const query: Record<string, string> = { page: String(page), limit: "10" };
  if (status !== "all") query.status = status;
  const orders = useQuery({
    queryKey: ["orders", "mine", query],
    queryFn: () =>
      unwrap<{ orders: Order[]; pagination: Pagination }>(
        client.GET("/api/orders", { params: { query } }),
      ),
    placeholderData: (p) => p,
  });
  const deleted = useQuery({
    queryKey: ["orders", "deleted"],
    queryFn: async () =>
      (await unwrap<{ orders: Order[] }>(client.GET("/api/orders/deleted"))).orders,
  });
  const setStatus = (s: string) => setParams(s === "all" ? {} : { status: s }, { replace: true });
  return (
    <section className="page" aria-labelledby="my-orders-title">
      <h1 id="my-orders-title">My Orders</h1>
      <div className="chips" role="group" aria-label="Filter by status">
        {STATUS_TABS.map((s) => (
          <button
            key={s}
            type="button"
            className="chip"
            aria-pressed={status === s}
            onClick={() => setStatus(s)}
          >
            {s === "all" ? "All" : STATUS_LABEL[s]}
          </button>
        ))}
      </div>
      {orders.isError ? (
        <ErrorState error={orders.error} retry={() => orders.refetch()} />
      ) : !orders.data ? (
        <SkeletonRows rows={3} height={180} />
      ) : orders.data.orders.length === 0 ? (
        <EmptyState title="No orders here yet">
          <Link className="btn btn-primary" to="/products">
            Start shopping
          </Link>
        </EmptyState>
      ) : (
        <div className="stack">
          {orders.data.orders.map((o) => (
            <OrderCard key={o.id} order={o} open={setDialog} />
          ))}
        </div>
      )}
      {orders.data ? (
        <Pager
          page={page}
          pages={orders.data.pagination.pages}
          onPage={(p) => {
            const n = new URLSearchParams(params);
            n.set("page", String(p));
            setParams(n);
          }}
        />
      ) : null}
      {deleted.data?.length ? (
        <>
          <h2>Deleted orders</h2>
          <ul className="stack">
            {deleted.data.map((o) => (
              <li key={o.id} className="card row between wrap">
                <span>
                  Order #{o.userOrderNumber} · {formatMoney(o.totalAmount)} · deleted{" "}
                  {formatDate(o.deletedAt)}
                  {o.restorationStatus ? ` · restoration ${o.restorationStatus}` : ""}
                </span>
                {!o.restorationStatus ? (
                  <Button onClick={() => setDialog({ kind: "restore", order: o })}>
                    Request restore
                  </Button>
                ) : null}
              </li>
            ))}
          </ul>
        </>
      ) : null}
      {dialog?.kind === "cancel" ? (
        <CancelDialog order={dialog.order} onClose={() => setDialog(null)} />
      ) : null}
      {dialog?.kind === "return" ? (
        <CancelDialog order={dialog.order} type={dialog.type} onClose={() => setDialog(null)} />
      ) : null}
      {dialog?.kind === "review" ? (
        <ReviewDialog
          order={dialog.order}
          productId={dialog.productId}
          name={dialog.name}
          onClose={() => setDialog(null)}
        />
      ) : null}
      {dialog?.kind === "detail" ? (
        <DetailDialog order={dialog.order} onClose={() => setDialog(null)} />
      ) : null}
      {dialog?.kind === "restore" ? (
        <RestoreDialog order={dialog.order} onClose={() => setDialog(null)} />
      ) : null}
    </section>
  );
}
