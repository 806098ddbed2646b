import { useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useSearchParams } from "react-router";
import { ApiError, client, unwrap } from "../api/client";
import type { Pagination, Role, User } from "../api/types";
import { useAuth } from "../auth/AuthContext";
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
} from "../components/ui";
import { formatDate, formatMoney, formatNumber } from "../lib/format";
import { passwordProblem, validateEmail } from "../lib/validate";

type ListedUser = User & { orderCount: number; totalSpent: number };

interface Details {
  user: User;
  statistics: {
    totalOrders: number;
    completedOrders: number;
    cancelledOrders: number;
    totalSpent: number;
    avgOrderValue: number;
  };
  orders: {
    id: number;
    totalAmount: number;
    status: string;
    createdAt: string;
    items: { product_name: string; quantity: number }[];
  }[];
}

function CreateUser({ onClose, onDone }: { onClose: () => void; onDone: () => void }) {
  const [f, setF] = useState({ name: "", email: "", password: "", phone: "", role: "customer" });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (f.name.trim().length < 2) errs.name = "Name must be at least 2 characters";
    const em = validateEmail(f.email);
    if (em) errs.email = em;
    const pw = passwordProblem(f.password);
    if (pw) errs.password = pw;
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      await unwrap(
        client.POST("/api/users", {
          body: { ...f, role: f.role as Role, phone: f.phone.trim() || null },
        }),
      );
      onDone();
    } catch (err) {
      if (err instanceof ApiError)
        setErrors(Object.fromEntries(err.errors.map((x) => [x.path, x.msg])));
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  const upd = (k: keyof typeof f) => (e: { target: { value: string } }) =>
    setF({ ...f, [k]: e.target.value });
  return (
    <Modal title="Add user / admin" onClose={onClose}>
      <form className="stack" onSubmit={submit} noValidate>
        <Field label="Name" value={f.name} onChange={upd("name")} error={errors.name} required />
        <Field
          label="Email"
          type="email"
          value={f.email}
          onChange={upd("email")}
          error={errors.email}
          required
        />
        <Field
          label="Password"
          type="password"
          autoComplete="new-password"
          value={f.password}
          onChange={upd("password")}
          error={errors.password}
          required
        />
        <Field
          label="Phone (optional)"
          type="tel"
          value={f.phone}
          onChange={upd("phone")}
          error={errors.phone}
        />
        <SelectField label="Role" value={f.role} onChange={upd("role")}>
          <option value="customer">Customer</option>
          <option value="merchant">Merchant</option>
          <option value="admin">Admin</option>
        </SelectField>
        {error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : null}
        <Button type="submit" variant="primary" busy={busy}>
          Create
        </Button>
      </form>
    </Modal>
  );
}

function UserDrawer({ id, onClose }: { id: number; onClose: () => void }) {
  const d = useQuery({
    queryKey: ["users", "details", id],
    queryFn: () =>
      unwrap<Details>(client.GET("/api/users/{id}/details", { params: { path: { id } } })),
  });
  return (
    <Drawer title="User details" onClose={onClose}>
      {d.isError ? (
        <ErrorState error={d.error} retry={() => d.refetch()} />
      ) : !d.data ? (
        <SkeletonRows rows={4} />
      ) : (
        <div className="stack">
          <p>
            <strong>{d.data.user.name}</strong> · {d.data.user.email} ·{" "}
            {d.data.user.phone ?? "no phone"} · {d.data.user.role}
          </p>
          <div className="kpis small">
            {[
              ["Total spent", formatMoney(d.data.statistics.totalSpent)],
              ["Orders", formatNumber(d.data.statistics.totalOrders)],
              ["Completed", formatNumber(d.data.statistics.completedOrders)],
              ["Avg order", formatMoney(d.data.statistics.avgOrderValue)],
            ].map(([l, v]) => (
              <article className="card kpi" key={l}>
                <h3 className="kpi-label">{l}</h3>
                <p className="kpi-value">{v}</p>
              </article>
            ))}
          </div>
          <h3>Recent orders</h3>
          {d.data.orders.length === 0 ? (
            <p className="muted">No orders.</p>
          ) : (
            <ul className="stack">
              {d.data.orders.slice(0, 5).map((o) => (
                <li key={o.id} className="row between">
                  <span>
                    #{o.id} · {formatDate(o.createdAt)} ·{" "}
                    {o.items.map((i) => `${i.quantity}× ${i.product_name}`).join(", ")}
                  </span>
                  <span className="row">
                    <StatusBadge status={o.status} /> {formatMoney(o.totalAmount)}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </Drawer>
  );
}

export default function Users() {
  const { user: me } = useAuth();
  const [params, setParams] = useSearchParams();
  const qc = useQueryClient();
  const notify = useToast();
  const page = Number(params.get("page") ?? 1) || 1;
  const [search, setSearch] = useState(params.get("search") ?? "");
  const [creating, setCreating] = useState(false);
  const [viewing, setViewing] = useState<number | null>(null);
  const [deleting, setDeleting] = useState<ListedUser | null>(null);
  const [typed, setTyped] = useState("");
  const [deleteAll, setDeleteAll] = useState(false);
  const query: Record<string, string> = {
    page: String(page),
    limit: "20",
    sort: params.get("sort") ?? "-createdAt",
  };
  for (const k of ["search", "role"]) {
    const v = params.get(k);
    if (v) query[k] = v;
  }
  const users = useQuery({
    queryKey: ["users", query],
    queryFn: () =>
      unwrap<{ users: ListedUser[]; pagination: Pagination }>(
        client.GET("/api/users", { params: { query } }),
      ),
    placeholderData: (p) => p,
  });
  const refresh = () => qc.invalidateQueries({ queryKey: ["users"] });
  const set = (k: string, v: string) => {
    const n = new URLSearchParams(params);
    if (v) n.set(k, v);
    else n.delete(k);
    if (k !== "page") n.delete("page");
    setParams(n, { replace: true });
  };
  const changeRole = async (u: ListedUser, role: Role) => {
    try {
      await unwrap(
        client.PATCH("/api/users/{id}/role", { params: { path: { id: u.id } }, body: { role } }),
      );
      notify(`${u.name} is now ${role}`);
      refresh();
    } catch (e) {
      notify(errorMessage(e), "error");
    }
  };
  return (
    <section className="page" aria-labelledby="users-title">
      <div className="page-head">
        <h1 id="users-title">User Management</h1>
        <Button variant="primary" onClick={() => setCreating(true)}>
          Add user / admin
        </Button>
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
            placeholder="Name or e-mail"
          />
        </label>
        <label>
          <span>Role</span>
          <select value={params.get("role") ?? ""} onChange={(e) => set("role", e.target.value)}>
            <option value="">All</option>
            <option value="customer">Customers</option>
            <option value="merchant">Merchants</option>
            <option value="admin">Admins</option>
          </select>
        </label>
        <label>
          <span>Sort</span>
          <select value={query.sort} onChange={(e) => set("sort", e.target.value)}>
            <option value="-createdAt">Newest</option>
            <option value="createdAt">Oldest</option>
            <option value="name">Name</option>
            <option value="email">E-mail</option>
            <option value="role">Role</option>
          </select>
        </label>
        <Button type="submit">Search</Button>
      </form>
      {users.isError ? (
        <ErrorState error={users.error} retry={() => users.refetch()} />
      ) : !users.data ? (
        <SkeletonRows rows={8} />
      ) : users.data.users.length === 0 ? (
        <EmptyState title="No users match" />
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">E-mail</th>
                <th scope="col">Role</th>
                <th scope="col" className="num">
                  Orders
                </th>
                <th scope="col" className="num">
                  Spent
                </th>
                <th scope="col">Joined</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {users.data.users.map((u) => (
                <tr key={u.id}>
                  <td>
                    <button type="button" className="link-btn" onClick={() => setViewing(u.id)}>
                      {u.name}
                    </button>
                  </td>
                  <td>{u.email}</td>
                  <td>
                    <label className="sr-only" htmlFor={`role-${u.id}`}>
                      Role of {u.name}
                    </label>
                    <select
                      id={`role-${u.id}`}
                      value={u.role}
                      disabled={u.id === me?.id}
                      onChange={(e) => changeRole(u, e.target.value as Role)}
                    >
                      <option value="customer">Customer</option>
                      <option value="merchant">Merchant</option>
                      <option value="admin">Admin</option>
                    </select>
                  </td>
                  <td className="num">{formatNumber(u.orderCount)}</td>
                  <td className="num">{formatMoney(u.totalSpent)}</td>
                  <td>{formatDate(u.createdAt)}</td>
                  <td>
                    {u.id !== me?.id ? (
                      <Button variant="ghost" onClick={() => setDeleting(u)}>
                        Delete
                      </Button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {users.data ? (
        <Pager
          page={page}
          pages={users.data.pagination.pages}
          onPage={(p) => set("page", String(p))}
        />
      ) : null}
      <details className="danger-zone">
        <summary>Danger zone</summary>
        <p className="muted">
          Deleting every customer and merchant works only when the server runs with dangerous
          operations enabled.
        </p>
        <Button variant="danger" onClick={() => setDeleteAll(true)}>
          Delete all non-admin users
        </Button>
      </details>
      {creating ? (
        <CreateUser
          onClose={() => setCreating(false)}
          onDone={() => {
            setCreating(false);
            notify("User created");
            refresh();
          }}
        />
      ) : null}
      {viewing ? <UserDrawer id={viewing} onClose={() => setViewing(null)} /> : null}
      {deleting ? (
        <Modal title={`Delete ${deleting.name}?`} onClose={() => setDeleting(null)}>
          <form
            className="stack"
            onSubmit={async (e) => {
              e.preventDefault();
              try {
                await unwrap(
                  client.DELETE("/api/users/{id}", { params: { path: { id: deleting.id } } }),
                );
                notify(`${deleting.name} deleted`);
                setDeleting(null);
                setTyped("");
                refresh();
              } catch (err) {
                notify(errorMessage(err), "error");
              }
            }}
          >
            <p>
              This removes the account, its addresses and its orders. Type the e-mail address to
              confirm.
            </p>
            <Field
              label={`Type ${deleting.email}`}
              value={typed}
              onChange={(e) => setTyped(e.target.value)}
            />
            <Button type="submit" variant="danger" disabled={typed.trim() !== deleting.email}>
              Delete user
            </Button>
          </form>
        </Modal>
      ) : null}
      {deleteAll ? (
        <Modal title="Delete all non-admin users?" onClose={() => setDeleteAll(false)}>
          <form
            className="stack"
            onSubmit={async (e) => {
              e.preventDefault();
              try {
                await unwrap(client.DELETE("/api/users/all", { body: { includeAdmins: false } }));
                notify("Users deleted");
                setDeleteAll(false);
                refresh();
              } catch (err) {
                notify(errorMessage(err), "error");
              }
            }}
          >
            <Field
              label="Type DELETE ALL to confirm"
              value={typed}
              onChange={(e) => setTyped(e.target.value)}
            />
            <Button type="submit" variant="danger" disabled={typed !== "DELETE ALL"}>
              Delete all
            </Button>
          </form>
        </Modal>
      ) : null}
    </section>
  );
}
