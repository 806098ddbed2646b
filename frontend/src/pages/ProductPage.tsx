import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { client, unwrap } from "../api/client";
import type { Pagination, Product, Review } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { StockBadge } from "../components/StockBadge";
import { useToast } from "../components/toast";
import { Button, ErrorState, errorMessage, Field, Modal, Skeleton } from "../components/ui";
import { clampQuantity } from "../lib/cart";
import { formatDate, formatMoney, humanize } from "../lib/format";
import { useCart } from "../lib/useCart";

interface LedgerEntry {
  id: number;
  cause: string;
  change: number;
  stockAfter: number;
  reason: string | null;
  createdAt: string;
}

function attributeText(v: unknown): string {
  if (v == null) return "—";
  if (typeof v === "object")
    return Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}: ${String(x)}`)
      .join(", ");
  return String(v);
}

function StockDialog({ product, onClose }: { product: Product; onClose: () => void }) {
  const qc = useQueryClient();
  const notify = useToast();
  const [change, setChange] = useState("");
  const [reason, setReason] = useState("");
  const [error, setError] = useState("");
  const ledger = useQuery({
    queryKey: ["ledger", product.id],
    queryFn: () =>
      unwrap<{ entries: LedgerEntry[]; inventory: number; pagination: Pagination }>(
        client.GET("/api/products/{id}/inventory/history", {
          params: { path: { id: product.id } },
        }),
      ),
  });
  const adjust = useMutation({
    mutationFn: () =>
      unwrap(
        client.PATCH("/api/products/{id}/inventory", {
          params: { path: { id: product.id } },
          body: { change: Number(change), reason: reason.trim() },
        }),
      ),
    onSuccess: () => {
      notify("Stock adjusted");
      setChange("");
      setReason("");
      qc.invalidateQueries({ queryKey: ["product", product.id] });
      qc.invalidateQueries({ queryKey: ["ledger", product.id] });
      qc.invalidateQueries({ queryKey: ["products"] });
    },
    onError: (e) => setError(errorMessage(e)),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError("");
    const n = Number(change);
    if (!Number.isInteger(n) || n === 0)
      return setError("Enter a whole number of units, e.g. 10 or -3");
    if (!reason.trim()) return setError("Give a reason (kept in the ledger)");
    adjust.mutate();
  };
  return (
    <Modal title={`Stock of ${product.name}`} onClose={onClose} wide>
      <form className="row wrap" onSubmit={submit}>
        <Field
          label="Change (units, + or −)"
          type="number"
          step={1}
          value={change}
          onChange={(e) => setChange(e.target.value)}
        />
        <Field label="Reason" value={reason} onChange={(e) => setReason(e.target.value)} />
        <Button type="submit" variant="primary" busy={adjust.isPending}>
          Adjust
        </Button>
      </form>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      <h3>Ledger</h3>
      {ledger.isError ? (
        <ErrorState error={ledger.error} retry={() => ledger.refetch()} />
      ) : !ledger.data ? (
        <Skeleton height={120} />
      ) : (
        <div className="table-wrap">
          <table className="table compact">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Cause</th>
                <th scope="col" className="num">
                  Change
                </th>
                <th scope="col" className="num">
                  Stock after
                </th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {ledger.data.entries.map((e) => (
                <tr key={e.id}>
                  <td>{formatDate(e.createdAt, true)}</td>
                  <td>{humanize(e.cause)}</td>
                  <td className="num">{e.change > 0 ? `+${e.change}` : e.change}</td>
                  <td className="num">{e.stockAfter}</td>
                  <td>{e.reason ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Modal>
  );
}

export default function ProductPage() {
  const { id = "" } = useParams();
  const { user } = useAuth();
  const { add } = useCart();
  const notify = useToast();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [qty, setQty] = useState(1);
  const [image, setImage] = useState(0);
  const [stockOpen, setStockOpen] = useState(false);
  const product = useQuery({
    queryKey: ["product", id],
    queryFn: async () =>
      (
        await unwrap<{ product: Product }>(
          client.GET("/api/products/{id}", { params: { path: { id } } }),
        )
      ).product,
  });
  const reviews = useQuery({
    queryKey: ["reviews", id],
    queryFn: () =>
      unwrap<{ reviews: Review[] }>(
        client.GET("/api/products/{id}/reviews", { params: { path: { id } } }),
      ),
  });
  const archive = useMutation({
    mutationFn: () => unwrap(client.DELETE("/api/products/{id}", { params: { path: { id } } })),
    onSuccess: () => {
      notify("Product archived");
      qc.invalidateQueries({ queryKey: ["products"] });
      navigate("/products");
    },
    onError: (e) => notify(errorMessage(e), "error"),
  });

  if (product.isError) return <ErrorState error={product.error} retry={() => product.refetch()} />;
  const p = product.data;
  if (!p) return <Skeleton height={420} />;
  const manage = user?.role === "admin" || (user?.role === "merchant" && p.ownerId === user.id);
  const shopper = user?.role !== "admin";
  const attrs = Object.entries(p.attributes ?? {});
  return (
    <section className="page" aria-labelledby="product-title">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/products">Products</Link> / <span>{humanize(p.category)}</span>
      </nav>
      <div className="product-detail">
        <div className="gallery">
          {p.images.length ? (
            <>
              <img
                className="hero-img"
                src={p.images[image] ?? p.images[0]}
                alt={p.name}
                width={480}
                height={480}
              />
              {p.images.length > 1 ? (
                <div className="thumbs">
                  {p.images.map((src, i) => (
                    <button
                      key={src}
                      type="button"
                      aria-label={`Image ${i + 1}`}
                      aria-pressed={i === image}
                      onClick={() => setImage(i)}
                    >
                      <img src={src} alt="" width={64} height={64} />
                    </button>
                  ))}
                </div>
              ) : null}
            </>
          ) : (
            <div className="hero-img thumb-empty" aria-hidden="true">
              {p.name.slice(0, 1)}
            </div>
          )}
        </div>
        <div className="stack">
          <h1 id="product-title">{p.name}</h1>
          <p className="price">{formatMoney(p.price)}</p>
          <div className="row">
            <StockBadge inventory={p.inventory} />
            {p.status !== "active" ? <span className="badge stock-out">Archived</span> : null}
            {p.rating.count > 0 ? (
              <span className="pill">
                ★ {p.rating.average.toFixed(1)} · {p.rating.count} reviews
              </span>
            ) : null}
          </div>
          <p>{p.description}</p>
          {shopper && p.status === "active" ? (
            <div className="row">
              <label>
                Quantity{" "}
                <input
                  type="number"
                  min={1}
                  max={Math.max(1, p.inventory)}
                  value={qty}
                  onChange={(e) => setQty(clampQuantity(Number(e.target.value), p.inventory) || 1)}
                  className="qty"
                />
              </label>
              <Button
                variant="primary"
                disabled={p.inventory <= 0}
                onClick={() => {
                  add(
                    {
                      productId: p.id,
                      name: p.name,
                      price: p.price,
                      image: p.images[0] ?? null,
                      stock: p.inventory,
                    },
                    qty,
                  );
                  notify(`Added ${p.name} to the cart`);
                }}
              >
                {p.inventory <= 0 ? "Sold out" : "Add to cart"}
              </Button>
            </div>
          ) : null}
          {manage ? (
            <div className="row wrap">
              <Link className="btn btn-secondary" to={`/products/${p.id}/edit`}>
                Edit
              </Link>
              <Button onClick={() => setStockOpen(true)}>Adjust stock</Button>
              {p.status === "active" ? (
                <Button
                  variant="danger"
                  busy={archive.isPending}
                  onClick={() => window.confirm(`Archive ${p.name}?`) && archive.mutate()}
                >
                  Archive
                </Button>
              ) : null}
            </div>
          ) : null}
          {attrs.length ? (
            <>
              <h2>Details</h2>
              <dl className="attrs">
                {attrs.map(([k, v]) => (
                  <div key={k}>
                    <dt>{humanize(k)}</dt>
                    <dd>{attributeText(v)}</dd>
                  </div>
                ))}
              </dl>
            </>
          ) : null}
        </div>
      </div>
      <h2>Reviews</h2>
      {reviews.isError ? (
        <ErrorState error={reviews.error} retry={() => reviews.refetch()} />
      ) : !reviews.data ? (
        <Skeleton height={80} />
      ) : reviews.data.reviews.length === 0 ? (
        <p className="muted">No reviews yet.</p>
      ) : (
        <ul className="reviews">
          {reviews.data.reviews.map((r) => (
            <li key={`${r.userId}-${r.createdAt}`} className="card">
              <strong>{"★".repeat(r.rating)}</strong>{" "}
              <span className="muted">
                {r.userName} · {formatDate(r.createdAt)}
              </span>
              <p>{r.comment}</p>
            </li>
          ))}
        </ul>
      )}
      {stockOpen ? <StockDialog product={p} onClose={() => setStockOpen(false)} /> : null}
    </section>
  );
}
