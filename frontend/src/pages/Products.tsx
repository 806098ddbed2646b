import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { client, unwrap } from "../api/client";
import type { Pagination, Product } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { StockBadge } from "../components/StockBadge";
import { useToast } from "../components/toast";
import { Button, EmptyState, ErrorState, Pager, ProductImage, Skeleton } from "../components/ui";
import { formatMoney, humanize } from "../lib/format";
import { useCategories } from "../lib/queries";
import { useCart } from "../lib/useCart";

const SORTS = [
  { value: "-createdAt", label: "Newest" },
  { value: "price", label: "Price: low to high" },
  { value: "-price", label: "Price: high to low" },
  { value: "name", label: "Name A–Z" },
  { value: "-name", label: "Name Z–A" },
];

export default function Products() {
  const [params, setParams] = useSearchParams();
  const { user } = useAuth();
  const { add } = useCart();
  const notify = useToast();
  const categories = useCategories();
  const view = params.get("view") === "table" ? "table" : "grid";
  const page = Number(params.get("page") ?? 1) || 1;
  const [search, setSearch] = useState(params.get("search") ?? "");
  // On a phone the filters other than search fold behind one button, so the
  // products stay above the fold; on wider screens they are always shown.
  const [filtersOpen, setFiltersOpen] = useState(false);
  const activeFilters = ["category", "minPrice", "maxPrice", "sort", "inStock"].filter((k) =>
    params.get(k),
  ).length;
  const canEdit = user?.role === "admin" || user?.role === "merchant";
  const shopper = user?.role !== "admin";

  const set = (k: string, v: string) => {
    const n = new URLSearchParams(params);
    if (v) n.set(k, v);
    else n.delete(k);
    if (k !== "page") n.delete("page");
    setParams(n, { replace: k !== "page" });
  };

  // Search as you type, applied after a pause; the header search writes the URL too.
  const urlSearch = params.get("search") ?? "";
  useEffect(() => setSearch(urlSearch), [urlSearch]);
  useEffect(() => {
    const t = setTimeout(() => {
      if (search.trim() !== urlSearch) set("search", search.trim());
    }, 300);
    return () => clearTimeout(t);
    // eslint-style exhaustive deps are intentionally narrow: `set` reads the latest params
  });

  const query: Record<string, string> = { page: String(page), limit: "24" };
  for (const k of ["search", "category", "minPrice", "maxPrice", "sort", "inStock"]) {
    const v = params.get(k);
    if (v) query[k] = v;
  }
  const products = useQuery({
    queryKey: ["products", query],
    queryFn: () =>
      unwrap<{ products: Product[]; pagination: Pagination }>(
        client.GET("/api/products", { params: { query } }),
      ),
    placeholderData: (prev) => prev,
  });

  useEffect(() => {
    if (products.data) performance.mark("ecap:products-visible");
  }, [products.data]);

  const list = products.data?.products ?? [];
  return (
    <section className="page" aria-labelledby="products-title">
      <div className="page-head">
        <h1 id="products-title">{shopper ? "Shop" : "Products"}</h1>
        <div className="toolbar">
          <div className="segmented" role="group" aria-label="View">
            <button type="button" aria-pressed={view === "grid"} onClick={() => set("view", "")}>
              Grid
            </button>
            <button
              type="button"
              aria-pressed={view === "table"}
              onClick={() => set("view", "table")}
            >
              Table
            </button>
          </div>
          {canEdit ? (
            <Link className="btn btn-primary" to="/products/new">
              New product
            </Link>
          ) : null}
        </div>
      </div>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          <span>Search</span>
          <input
            type="search"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
            placeholder="Name or description"
          />
        </label>
        <button
          type="button"
          className="btn btn-secondary filters-toggle"
          aria-expanded={filtersOpen}
          aria-controls="more-filters"
          onClick={() => setFiltersOpen((o) => !o)}
        >
          Filters{activeFilters ? ` (${activeFilters})` : ""}
        </button>
        <div id="more-filters" className={filtersOpen ? "filters-more open" : "filters-more"}>
          <label>
            <span>Category</span>
            <select
              value={params.get("category") ?? ""}
              onChange={(e) => set("category", e.target.value)}
            >
              <option value="">All</option>
              {categories.data?.categories.map((c) => (
                <option key={c} value={c}>
                  {humanize(c)}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>Min price</span>
            <input
              type="number"
              min={0}
              inputMode="decimal"
              value={params.get("minPrice") ?? ""}
              onChange={(e) => set("minPrice", e.target.value)}
            />
          </label>
          <label>
            <span>Max price</span>
            <input
              type="number"
              min={0}
              inputMode="decimal"
              value={params.get("maxPrice") ?? ""}
              onChange={(e) => set("maxPrice", e.target.value)}
            />
          </label>
          <label>
            <span>Sort</span>
            <select
              value={params.get("sort") ?? "-createdAt"}
              onChange={(e) => set("sort", e.target.value === "-createdAt" ? "" : e.target.value)}
            >
              {SORTS.map((s) => (
                <option key={s.value} value={s.value}>
                  {s.label}
                </option>
              ))}
            </select>
          </label>
          <label className="check">
            <input
              type="checkbox"
              checked={params.get("inStock") === "true"}
              onChange={(e) => set("inStock", e.target.checked ? "true" : "")}
            />
            <span>In stock only</span>
          </label>
        </div>
      </form>

      {products.isError ? (
        <ErrorState error={products.error} retry={() => products.refetch()} />
      ) : !products.data ? (
        <div className="grid-cards">
          {Array.from({ length: 8 }, (_, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: placeholders
            <Skeleton key={i} height={280} />
          ))}
        </div>
      ) : list.length === 0 ? (
        <EmptyState title="No products match">
          <p className="muted">Try another search or clear the filters.</p>
          <Button onClick={() => setParams(new URLSearchParams(), { replace: true })}>
            Clear filters
          </Button>
        </EmptyState>
      ) : view === "grid" ? (
        <ul className="grid-cards">
          {list.map((p) => (
            <li key={p.id} className="card product-card">
              <Link to={`/products/${p.id}`} className="product-link">
                <ProductImage src={p.images[0]} alt={p.name} size={200} />
                <span className="product-name">{p.name}</span>
              </Link>
              <div className="row between">
                <strong>{formatMoney(p.price)}</strong>
                <StockBadge inventory={p.inventory} />
              </div>
              <div className="row between">
                <small className="muted">{humanize(p.category)}</small>
                {p.rating.count > 0 ? (
                  <span className="pill" title={`${p.rating.count} reviews`}>
                    ★ {p.rating.average.toFixed(1)} ({p.rating.count})
                  </span>
                ) : null}
              </div>
              {shopper ? (
                <Button
                  variant="primary"
                  disabled={p.inventory <= 0}
                  onClick={() => {
                    add({
                      productId: p.id,
                      name: p.name,
                      price: p.price,
                      image: p.images[0] ?? null,
                      stock: p.inventory,
                    });
                    notify(`Added ${p.name} to the cart`);
                  }}
                >
                  {p.inventory <= 0 ? "Sold out" : "Add to cart"}
                </Button>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Category</th>
                <th scope="col" className="num">
                  Price
                </th>
                <th scope="col">Stock</th>
                <th scope="col">Rating</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((p) => (
                <tr key={p.id}>
                  <td>
                    <span className="row">
                      <ProductImage src={p.images[0]} alt={p.name} size={36} />
                      <Link to={`/products/${p.id}`}>{p.name}</Link>
                    </span>
                  </td>
                  <td>{humanize(p.category)}</td>
                  <td className="num">{formatMoney(p.price)}</td>
                  <td>
                    <StockBadge inventory={p.inventory} />
                  </td>
                  <td>{p.rating.count > 0 ? `★ ${p.rating.average.toFixed(1)}` : "—"}</td>
                  <td>
                    {user?.role === "admin" ||
                    (user?.role === "merchant" && p.ownerId === user.id) ? (
                      <Link to={`/products/${p.id}/edit`}>Edit</Link>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {products.data ? (
        <Pager
          page={page}
          pages={products.data.pagination.pages}
          onPage={(p) => set("page", String(p))}
        />
      ) : null}
    </section>
  );
}
