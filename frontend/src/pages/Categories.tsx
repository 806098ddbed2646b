import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Link } from "react-router";
import { client, unwrap } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { useToast } from "../components/toast";
import {
  Button,
  EmptyState,
  ErrorState,
  errorMessage,
  Field,
  SkeletonRows,
} from "../components/ui";
import { formatMoney, formatNumber, humanize } from "../lib/format";
import { useCategories } from "../lib/queries";

export default function Categories() {
  const { user } = useAuth();
  const isAdmin = user?.role === "admin";
  const cats = useCategories();
  const qc = useQueryClient();
  const notify = useToast();
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const [renaming, setRenaming] = useState<{ from: string; to: string } | null>(null);
  const refresh = () => qc.invalidateQueries({ queryKey: ["categories"] });
  const run = async (p: Promise<unknown>, msg: string) => {
    try {
      await p;
      notify(msg);
      refresh();
      return true;
    } catch (e) {
      notify(errorMessage(e), "error");
      return false;
    }
  };
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError("");
    if (!name.trim()) return setError("Name the category");
    if (
      await run(
        unwrap(client.POST("/api/categories", { body: { name: name.trim() } })),
        "Category created",
      )
    )
      setName("");
  };
  const details = cats.data?.details ?? [];
  const totals = details.reduce(
    (t, c) => ({
      products: t.products + c.productCount,
      units: t.units + c.unitsInStock,
      value: t.value + c.stockValue,
    }),
    { products: 0, units: 0, value: 0 },
  );
  return (
    <section className="page" aria-labelledby="cat-title">
      <h1 id="cat-title">Categories</h1>
      <div className="kpis">
        {[
          ["Total categories", formatNumber(details.length)],
          ["Total products", formatNumber(totals.products)],
          ["Total inventory", formatNumber(totals.units)],
          ["Portfolio value", formatMoney(totals.value)],
        ].map(([label, v]) => (
          <article className="card kpi" key={label}>
            <h2 className="kpi-label">{label}</h2>
            <p className="kpi-value">{cats.data ? v : "\u00a0"}</p>
          </article>
        ))}
      </div>
      {isAdmin ? (
        <form className="row wrap card" onSubmit={create}>
          <Field
            label="New category"
            value={name}
            onChange={(e) => setName(e.target.value)}
            error={error}
          />
          <Button type="submit" variant="primary">
            Create
          </Button>
        </form>
      ) : null}
      {cats.isError ? (
        <ErrorState error={cats.error} retry={() => cats.refetch()} />
      ) : !cats.data ? (
        <SkeletonRows rows={6} />
      ) : details.length === 0 ? (
        <EmptyState title="No categories yet" />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Category</th>
                <th scope="col" className="num">
                  Products
                </th>
                <th scope="col" className="num">
                  Units in stock
                </th>
                <th scope="col" className="num">
                  Stock value
                </th>
                {isAdmin ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {details.map((c) => (
                <tr key={c.name}>
                  <td>
                    {renaming?.from === c.name ? (
                      <form
                        className="row"
                        onSubmit={async (e) => {
                          e.preventDefault();
                          if (
                            await run(
                              unwrap(
                                client.PUT("/api/categories/{name}", {
                                  params: { path: { name: c.name } },
                                  body: { name: renaming.to.trim() },
                                }),
                              ),
                              "Category renamed",
                            )
                          )
                            setRenaming(null);
                        }}
                      >
                        <label className="sr-only" htmlFor={`rename-${c.id}`}>
                          New name
                        </label>
                        <input
                          id={`rename-${c.id}`}
                          value={renaming.to}
                          onChange={(e) => setRenaming({ ...renaming, to: e.target.value })}
                        />
                        <Button type="submit">Save</Button>
                        <Button variant="ghost" onClick={() => setRenaming(null)}>
                          Cancel
                        </Button>
                      </form>
                    ) : (
                      <Link to={`/products?category=${encodeURIComponent(c.name)}`}>
                        {humanize(c.name)}
                      </Link>
                    )}
                  </td>
                  <td className="num">{formatNumber(c.productCount)}</td>
                  <td className="num">{formatNumber(c.unitsInStock)}</td>
                  <td className="num">{formatMoney(c.stockValue)}</td>
                  {isAdmin ? (
                    <td>
                      <div className="row">
                        <Button
                          variant="ghost"
                          onClick={() => setRenaming({ from: c.name, to: c.name })}
                        >
                          Rename
                        </Button>
                        <Button
                          variant="ghost"
                          onClick={() =>
                            window.confirm(`Delete the category ${c.name}?`) &&
                            run(
                              unwrap(
                                client.DELETE("/api/categories/{name}", {
                                  params: { path: { name: c.name } },
                                }),
                              ),
                              "Category deleted",
                            )
                          }
                        >
                          Delete
                        </Button>
                      </div>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
