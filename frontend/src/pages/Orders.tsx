import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useSearchParams } from "react-router";
import { ApiError, client, unwrap } from "../api/client";
import type { Order, OrderStatus, Pagination, SettableStatus } from "../api/types";
import { Timeline } from "../components/OrderBits";
import { useToast } from "../components/toast";
import {
  Button,
  Drawer,
  EmptyState,
  ErrorState,
  errorMessage,
  Field,
  Modal,
  Pager,
  SelectField,
  SkeletonRows,
  StatusBadge,
  TextArea,
} from "../components/ui";
import { formatDate, formatMoney } from "../lib/format";
import {
  allowedFromConflict,
  COURIERS,
  nextSteps,
  STATUS_LABEL,
  STATUS_TABS,
  STEP_ACTION,
} from "../lib/orders";

type AdminOrder = Order & { customerEmail?: string | null };

interface DetailRequest {
  id: number;
  order_id: number;
  reason: string;
  other_reason: string | null;
  status: string;
  created_at: string;
  order_status: string;
}

function useRefresh() {
  const qc = useQueryClient();
  return () => {
    qc.invalidateQueries({ queryKey: ["orders"] });
    qc.invalidateQueries({ queryKey: ["analytics"] });
  };
}

/** The transition table's next steps for an order, as buttons. */
export function NextStepButtons({
  status,
  busy,
  onStep,
}: {
  status: OrderStatus;
  busy?: boolean;
  onStep: (to: OrderStatus) => void;
}) {
  return (
    <>
      {nextSteps(status).map((to) => (
        <Button
          key={to}
          variant={to === "cancelled" ? "ghost" : "secondary"}
          busy={busy}
          onClick={() => onStep(to)}
        >
          {STEP_ACTION[to] ?? STATUS_LABEL[to]}
        </Button>
      ))}
    </>
  );
}

function ShipDialog({
  order,
  onDone,
  onClose,
}: {
  order: Order;
  onDone: () => void;
  onClose: () => void;
}) {
  const [tracking, setTracking] = useState("");
  const [courier, setCourier] = useState("");
  const [eta, setEta] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const today = new Date().toISOString().slice(0, 10);
  const m = useMutation({
    mutationFn: () =>
      unwrap(
        client.PUT("/api/orders/{id}/status", {
          params: { path: { id: order.id } },
          body: {
            status: "shipped",
            trackingNumber: tracking.trim(),
            courierName: courier,
            estimatedDelivery: eta || null,
          },
        }),
      ),
    onSuccess: onDone,
    onError: (e) => setError(errorMessage(e)),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!tracking.trim()) errs.tracking = "Tracking number is required";
    if (!courier) errs.courier = "Choose a courier";
    if (eta && eta < today) errs.eta = "The estimated date cannot be in the past";
    setErrors(errs);
    if (!Object.keys(errs).length) m.mutate();
  };
  return (
    <Modal title={`Ship order #${order.id}`} onClose={onClose}>
      <form className="stack" onSubmit={submit} noValidate>
        <Field
          label="Tracking number"
          value={tracking}
          onChange={(e) => setTracking(e.target.value)}
          error={errors.tracking}
          required
        />
        <SelectField
          label="Courier"
          value={courier}
          onChange={(e) => setCourier(e.target.value)}
          error={errors.courier}
          required
        >
          <option value="">Choose…</option>
          {COURIERS.map((c) => (
            <option key={c}>{c}</option>
          ))}
        </SelectField>
        <Field
          label="Estimated delivery (optional)"
          type="date"
          min={today}
          value={eta}
          onChange={(e) => setEta(e.target.value)}
          error={errors.eta}
        />
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
        <Button type="submit" variant="primary" busy={m.isPending}>
          Mark shipped
        </Button>
      </form>
    </Modal>
  );
}

function ReasonDialog({
  title,
  label,
  action,
  onClose,
}: {
  title: string;
  label: string;
  action: (reason: string) => Promise<unknown>;
  onClose: () => void;
}) {
  const [reason, setReason] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <Modal title={title} onClose={onClose}>
      <form
        className="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          if (!reason.trim()) return setError("A reason is required");
          setBusy(true);
          try {
            await action(reason.trim());
            onClose();
          } catch (err) {
            setError(errorMessage(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <TextArea
          label={label}
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          error={error}
        />
        <Button type="submit" variant="primary" busy={busy}>
          Confirm
        </Button>
      </form>
    </Modal>
  );
}

function OrderDrawer({ id, onClose }: { id: number; onClose: () => void }) {
  const o = useQuery({
    queryKey: ["orders", "detail", id],
    queryFn: async () =>
      (
        await unwrap<{
          order: Record<string, unknown> & {
            items: {
              product_id: string;
              product_name: string;
              quantity: number;
              price: string;
              subtotal: string;
            }[];
            shippingAddress: Record<string, string> | null;
          };
        }>(client.GET("/api/orders/{id}", { params: { path: { id } } }))
      ).order,
  });
  return (
    <Drawer title={`Order #${id}`} onClose={onClose}>
      {o.isError ? (
        <ErrorState error={o.error} retry={() => o.refetch()} />
      ) : !o.data ? (
        <SkeletonRows rows={4} />
      ) : (
        <div className="stack">
          <p>
            <StatusBadge status={String(o.data.status)} /> ·{" "}
            {formatMoney(Number(o.data.total_amount))} · {String(o.data.payment_method)}
          </p>
          <h3>Items</h3>
          <ul className="order-items">
            {o.data.items.map((it) => (
              <li key={it.product_id}>
                <span className="grow">{it.product_name}</span>
                <span className="num">
                  {it.quantity} × {formatMoney(Number(it.price))}
                </span>
              </li>
            ))}
          </ul>
          {o.data.shippingAddress ? (
            <>
              <h3>Address</h3>
              <p>
                {o.data.shippingAddress.street}, {o.data.shippingAddress.city},{" "}
                {o.data.shippingAddress.state} {o.data.shippingAddress.zipCode}
                <br />
                {o.data.shippingAddress.phone}
              </p>
            </>
          ) : null}
          {o.data.cancellation_reason ? (
            <p>
              <strong>Cancellation:</strong> {String(o.data.cancellation_reason)}
            </p>
          ) : null}
          {Array.isArray(o.data.cancellation_images) && o.data.cancellation_images.length ? (
            <div className="thumbs">
              {(o.data.cancellation_images as string[]).map((src) => (
                <a key={src} href={src} target="_blank" rel="noreferrer">
                  <img src={src} alt="Attached by the customer" width={64} height={64} />
                </a>
              ))}
            </div>
          ) : null}
          <h3>Timeline</h3>
          <Timeline orderId={id} />
        </div>
      )}
    </Drawer>
  );
}

function Queues() {
  const notify = useToast();
  const refresh = useRefresh();
  const details = useQuery({
    queryKey: ["orders", "detail-requests"],
    queryFn: async () =>
      (
        await unwrap<{ requests: DetailRequest[] }>(
          client.GET("/api/orders/detail-requests/list", {
            params: { query: { status: "pending" } },
          }),
        )
      ).requests,
  });
  const restores = useQuery({
    queryKey: ["orders", "restorations"],
    queryFn: async () =>
      (
        await unwrap<{ requests: (Order & { restorationReason: string })[] }>(
          client.GET("/api/orders/restoration-requests"),
        )
      ).requests,
  });
  const act = async (p: Promise<unknown>, msg: string) => {
    try {
      await p;
      notify(msg);
      refresh();
    } catch (e) {
      notify(errorMessage(e), "error");
    }
  };
  if (!details.data?.length && !restores.data?.length) return null;
  return (
    <div className="grid-2">
      {details.data?.length ? (
        <article className="card">
          <h2>Detail requests</h2>
          <ul className="stack">
            {details.data.slice(0, 10).map((r) => (
              <li key={r.id} className="row between wrap">
                <span>
                  Order #{r.order_id}: {r.reason}
                  {r.other_reason ? ` — ${r.other_reason}` : ""}
                </span>
                <span className="row">
                  <Button
                    onClick={() =>
                      act(
                        unwrap(
                          client.PUT("/api/orders/detail-requests/{requestId}/{action}", {
                            params: { path: { requestId: r.id, action: "approve" } },
                            body: {},
                          }),
                        ),
                        "Request approved",
                      )
                    }
                  >
                    Approve
                  </Button>
                  <Button
                    variant="ghost"
                    onClick={() =>
                      act(
                        unwrap(
                          client.PUT("/api/orders/detail-requests/{requestId}/{action}", {
                            params: { path: { requestId: r.id, action: "reject" } },
                            body: {},
                          }),
                        ),
                        "Request rejected",
                      )
                    }
                  >
                    Reject
                  </Button>
                </span>
              </li>
            ))}
          </ul>
        </article>
      ) : null}
      {restores.data?.length ? (
        <article className="card">
          <h2>Restoration requests</h2>
          <ul className="stack">
            {restores.data.map((o) => (
              <li key={o.id} className="row between wrap">
                <span>
                  Order #{o.id}: {o.restorationReason}
                </span>
                <span className="row">
                  <Button
                    onClick={() =>
                      act(
                        unwrap(
                          client.POST("/api/orders/{id}/restoration/approve", {
                            params: { path: { id: o.id } },
                          }),
                        ),
                        "Order restored",
                      )
                    }
                  >
                    Approve
                  </Button>
                  <Button
                    variant="ghost"
                    onClick={() =>
                      act(
                        unwrap(
                          client.POST("/api/orders/{id}/restoration/reject", {
                            params: { path: { id: o.id } },
                            body: {},
                          }),
                        ),
                        "Restoration rejected",
                      )
                    }
                  >
                    Reject
                  </Button>
                </span>
              </li>
            ))}
          </ul>
        </article>
      ) : null}
    </div>
  );
}

export default function Orders() {
  const [params, setParams] = useSearchParams();
  const notify = useToast();
  const refresh = useRefresh();
  const status = (params.get("status") ?? "all") as OrderStatus | "all";
  const page = Number(params.get("page") ?? 1) || 1;
  const [search, setSearch] = useState(params.get("search") ?? "");
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [ship, setShip] = useState<Order | null>(null);
  const [reason, setReason] = useState<{ order: Order; kind: "cancel" | "reject" } | null>(null);
  const [drawer, setDrawer] = useState<number | null>(null);
  const [busy, setBusy] = useState<string>("");

  const set = (k: string, v: string) => {
    const n = new URLSearchParams(params);
    if (v) n.set(k, v);
    else n.delete(k);
    if (k !== "page") n.delete("page");
    setParams(n, { replace: true });
    setSelected(new Set());
  };
  const query: Record<string, string> = { page: String(page), limit: "15" };
  if (status !== "all") query.status = status;
  for (const k of ["search", "from", "to"]) {
    const v = params.get(k);
    if (v) query[k] = k === "to" ? `${v}T23:59:59.999Z` : k === "from" ? `${v}T00:00:00.000Z` : v;
  }
  const orders = useQuery({
    queryKey: ["orders", "admin", query],
    queryFn: () =>
      unwrap<{ orders: AdminOrder[]; pagination: Pagination }>(
        client.GET("/api/orders", { params: { query } }),
      ),
    placeholderData: (p) => p,
  });

  const step = async (o: Order, to: OrderStatus) => {
    if (to === "shipped") return setShip(o);
    if (to === "cancelled") return setReason({ order: o, kind: "cancel" });
    setBusy(`${o.id}`);
    try {
      await unwrap(
        client.PUT("/api/orders/{id}/status", {
          params: { path: { id: o.id } },
          body: { status: to as SettableStatus },
        }),
      );
      notify(`Order #${o.id}: ${STATUS_LABEL[to]}`);
      refresh();
    } catch (e) {
      const allowed =
        e instanceof ApiError && e.status === 409 ? allowedFromConflict(e.message) : [];
      notify(allowed.length ? `${e instanceof Error ? e.message : ""}` : errorMessage(e), "error");
      refresh();
    } finally {
      setBusy("");
    }
  };
  const decide = async (o: Order, approve: boolean) => {
    if (!approve) return setReason({ order: o, kind: "reject" });
    try {
      await unwrap(
        client.PUT("/api/orders/{id}/approve-cancel", { params: { path: { id: o.id } } }),
      );
      notify("Cancellation approved");
      refresh();
    } catch (e) {
      notify(errorMessage(e), "error");
    }
  };
  const bulkDelete = async () => {
    if (
      !window.confirm(
        `Delete ${selected.size} order(s)? Stock is restored; customers can ask to restore within 30 days.`,
      )
    )
      return;
    try {
      await unwrap(client.POST("/api/orders/bulk-delete", { body: { ids: [...selected] } }));
      notify(`${selected.size} order(s) deleted`);
      setSelected(new Set());
      refresh();
    } catch (e) {
      notify(errorMessage(e), "error");
    }
  };
  const sync = async (undo: boolean) => {
    try {
      const r = await unwrap<{ synced?: number; restoredOrderCount?: number }>(
        client.POST(undo ? "/api/orders/undo-sync-inventory" : "/api/orders/sync-inventory"),
      );
      notify(
        undo
          ? `Stock restored for ${r.restoredOrderCount ?? 0} order(s)`
          : `Stock synced for ${r.synced ?? 0} order(s)`,
      );
      refresh();
    } catch (e) {
      notify(errorMessage(e), "error");
    }
  };

  const list = orders.data?.orders ?? [];
  const allSelected = list.length > 0 && list.every((o) => selected.has(o.id));
  return (
    <section className="page" aria-labelledby="orders-title">
      <div className="page-head">
        <h1 id="orders-title">Order Management</h1>
        <div className="toolbar">
          <Button onClick={() => sync(false)}>Sync inventory</Button>
          <Button variant="ghost" onClick={() => sync(true)}>
            Undo sync
          </Button>
        </div>
      </div>
      <Queues />
      <div className="tabs scroll" role="tablist" aria-label="Status">
        {STATUS_TABS.map((s) => (
          <button
            key={s}
            type="button"
            role="tab"
            aria-selected={status === s}
            onClick={() => set("status", s === "all" ? "" : s)}
          >
            {s === "all" ? "All" : STATUS_LABEL[s]}
          </button>
        ))}
      </div>
      <form
        className="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          set("search", search.trim());
        }}
      >
        <label>
          <span>Search</span>
          <input
            type="search"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
            placeholder="Order number or e-mail"
          />
        </label>
        <label>
          <span>From</span>
          <input
            type="date"
            value={params.get("from") ?? ""}
            onChange={(e) => set("from", e.target.value)}
          />
        </label>
        <label>
          <span>To</span>
          <input
            type="date"
            value={params.get("to") ?? ""}
            onChange={(e) => set("to", e.target.value)}
          />
        </label>
        <Button type="submit">Search</Button>
      </form>
      {selected.size ? (
        <div className="bulk-bar" role="region" aria-label="Bulk actions">
          {selected.size} selected{" "}
          <Button variant="danger" onClick={bulkDelete}>
            Delete selected
          </Button>
        </div>
      ) : null}
      {orders.isError ? (
        <ErrorState error={orders.error} retry={() => orders.refetch()} />
      ) : !orders.data ? (
        <SkeletonRows rows={8} />
      ) : list.length === 0 ? (
        <EmptyState title="No orders match" />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select all on this page"
                    checked={allSelected}
                    onChange={() =>
                      setSelected(allSelected ? new Set() : new Set(list.map((o) => o.id)))
                    }
                  />
                </th>
                <th scope="col">Order</th>
                <th scope="col">Customer</th>
                <th scope="col">Placed</th>
                <th scope="col">Items</th>
                <th scope="col" className="num">
                  Total
                </th>
                <th scope="col">Status</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.map((o) => (
                <tr key={o.id} data-order={o.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select order ${o.id}`}
                      checked={selected.has(o.id)}
                      onChange={() => {
                        const n = new Set(selected);
                        if (n.has(o.id)) n.delete(o.id);
                        else n.add(o.id);
                        setSelected(n);
                      }}
                    />
                  </td>
                  <td>
                    <button type="button" className="link-btn" onClick={() => setDrawer(o.id)}>
                      #{o.id}
                    </button>
                  </td>
                  <td>{o.customerEmail ?? `User ${o.userId}`}</td>
                  <td>{formatDate(o.createdAt, true)}</td>
                  <td>
                    {o.items[0] ? `${o.items[0].quantity} × ${o.items[0].name}` : "—"}
                    {o.items.length > 1 ? ` +${o.items.length - 1}` : ""}
                    {o.trackingNumber ? (
                      <small className="muted block">
                        {o.courierName} {o.trackingNumber}
                      </small>
                    ) : null}
                    {o.cancellationReason ? (
                      <small className="muted block">Reason: {o.cancellationReason}</small>
                    ) : null}
                  </td>
                  <td className="num">{formatMoney(o.totalAmount)}</td>
                  <td>
                    <StatusBadge status={o.status} />
                  </td>
                  <td>
                    <div className="row wrap">
                      {o.status === "cancel_requested" ? (
                        <>
                          <Button variant="primary" onClick={() => decide(o, true)}>
                            Approve
                          </Button>
                          <Button onClick={() => decide(o, false)}>Reject</Button>
                        </>
                      ) : (
                        <NextStepButtons
                          status={o.status}
                          busy={busy === `${o.id}`}
                          onStep={(to) => step(o, to)}
                        />
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {orders.data ? (
        <Pager
          page={page}
          pages={orders.data.pagination.pages}
          onPage={(p) => set("page", String(p))}
        />
      ) : null}
      {ship ? (
        <ShipDialog
          order={ship}
          onClose={() => setShip(null)}
          onDone={() => {
            notify(`Order #${ship.id} shipped`);
            setShip(null);
            refresh();
          }}
        />
      ) : null}
      {reason ? (
        <ReasonDialog
          title={
            reason.kind === "cancel"
              ? `Cancel order #${reason.order.id}`
              : `Reject the request on #${reason.order.id}`
          }
          label="Reason"
          onClose={() => setReason(null)}
          action={async (text) => {
            if (reason.kind === "cancel") {
              await unwrap(
                client.PUT("/api/orders/{id}/status", {
                  params: { path: { id: reason.order.id } },
                  body: { status: "cancelled", cancellationReason: text },
                }),
              );
              notify("Order cancelled");
            } else {
              await unwrap(
                client.PUT("/api/orders/{id}/reject-cancel", {
                  params: { path: { id: reason.order.id } },
                  body: { rejectionReason: text },
                }),
              );
              notify("Request rejected");
            }
            refresh();
          }}
        />
      ) : null}
      {drawer ? <OrderDrawer id={drawer} onClose={() => setDrawer(null)} /> : null}
    </section>
  );
}
