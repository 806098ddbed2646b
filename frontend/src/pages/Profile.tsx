import { useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useEffect, useState } from "react";
import { ApiError, client, unwrap } from "../api/client";
import type { Address, ProfileBody, User } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { useToast } from "../components/toast";
import {
  Button,
  EmptyState,
  ErrorState,
  errorMessage,
  Field,
  Modal,
  SkeletonRows,
} from "../components/ui";
import { useAddresses } from "../lib/queries";

type Tab = "info" | "addresses" | "security";
const EMPTY = {
  label: "",
  street: "",
  city: "",
  state: "",
  zipCode: "",
  phone: "",
  country: "India",
  isDefault: false,
};

function AddressForm({ initial, onClose }: { initial: Address | null; onClose: () => void }) {
  const qc = useQueryClient();
  const notify = useToast();
  const [f, setF] = useState(initial ? { ...EMPTY, ...initial } : EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const errs: Record<string, string> = {};
    for (const k of ["label", "street", "city", "state", "zipCode", "phone"] as const)
      if (!String(f[k]).trim()) errs[k] = "Required";
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    const body = {
      label: f.label,
      street: f.street,
      city: f.city,
      state: f.state,
      zipCode: f.zipCode,
      phone: f.phone,
      country: f.country,
      isDefault: f.isDefault,
    };
    try {
      if (initial)
        await unwrap(
          client.PUT("/api/users/addresses/{id}", { params: { path: { id: initial.id } }, body }),
        );
      else await unwrap(client.POST("/api/users/addresses", { body }));
      notify(initial ? "Address updated" : "Address added");
      qc.invalidateQueries({ queryKey: ["addresses"] });
      onClose();
    } catch (err) {
      if (err instanceof ApiError)
        setErrors(Object.fromEntries(err.errors.map((x) => [x.path, x.msg])));
      notify(errorMessage(err), "error");
    } finally {
      setBusy(false);
    }
  };
  const upd = (k: keyof typeof EMPTY) => (e: { target: { value: string } }) =>
    setF({ ...f, [k]: e.target.value });
  return (
    <Modal title={initial ? "Edit address" : "New address"} onClose={onClose}>
      <form className="grid-form" onSubmit={submit} noValidate>
        <Field
          label="Label"
          value={f.label}
          onChange={upd("label")}
          error={errors.label}
          required
        />
        <Field
          label="Street"
          value={f.street}
          onChange={upd("street")}
          error={errors.street}
          required
        />
        <Field label="City" value={f.city} onChange={upd("city")} error={errors.city} required />
        <Field
          label="State"
          value={f.state}
          onChange={upd("state")}
          error={errors.state}
          required
        />
        <Field
          label="PIN code"
          value={f.zipCode}
          onChange={upd("zipCode")}
          error={errors.zipCode}
          required
        />
        <Field
          label="Phone"
          type="tel"
          value={f.phone}
          onChange={upd("phone")}
          error={errors.phone}
          required
        />
        <Field label="Country" value={f.country} onChange={upd("country")} />
        <label className="check">
          <input
            type="checkbox"
            checked={f.isDefault}
            onChange={(e) => setF({ ...f, isDefault: e.target.checked })}
          />{" "}
          Default address
        </label>
        <Button type="submit" variant="primary" busy={busy}>
          Save
        </Button>
      </form>
    </Modal>
  );
}

export default function Profile() {
  const { setUser } = useAuth();
  const notify = useToast();
  const qc = useQueryClient();
  const [tab, setTab] = useState<Tab>("info");
  const profile = useQuery({
    queryKey: ["profile"],
    queryFn: async () => (await unwrap<{ user: User }>(client.GET("/api/users/profile"))).user,
  });
  const addresses = useAddresses(tab === "addresses");
  const [info, setInfo] = useState({ name: "", email: "", phone: "" });
  const [pw, setPw] = useState({ current: "", next: "", confirm: "" });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [editing, setEditing] = useState<Address | null | "new">(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (profile.data)
      setInfo({
        name: profile.data.name,
        email: profile.data.email,
        phone: profile.data.phone ?? "",
      });
  }, [profile.data]);

  const save = async (body: Record<string, string | null>, done: string) => {
    setBusy(true);
    try {
      const r = await unwrap<{ user: User }>(
        client.PUT("/api/users/profile", { body: body as ProfileBody }),
      );
      setUser({ ...r.user });
      qc.invalidateQueries({ queryKey: ["profile"] });
      notify(done);
      return true;
    } catch (e) {
      if (e instanceof ApiError)
        setErrors(Object.fromEntries(e.errors.map((x) => [x.path, x.msg])));
      notify(errorMessage(e), "error");
      return false;
    } finally {
      setBusy(false);
    }
  };
  const act = async (p: Promise<unknown>, msg: string) => {
    try {
      await p;
      notify(msg);
      qc.invalidateQueries({ queryKey: ["addresses"] });
    } catch (e) {
      notify(errorMessage(e), "error");
    }
  };

  return (
    <section className="page narrow" aria-labelledby="profile-title">
      <h1 id="profile-title">My Account</h1>
      <div className="tabs" role="tablist" aria-label="Account sections">
        {(
          [
            ["info", "Profile Info"],
            ["addresses", "Delivery Addresses"],
            ["security", "Security"],
          ] as const
        ).map(([k, l]) => (
          <button
            key={k}
            type="button"
            role="tab"
            aria-selected={tab === k}
            onClick={() => setTab(k)}
          >
            {l}
          </button>
        ))}
      </div>
      {profile.isError ? (
        <ErrorState error={profile.error} retry={() => profile.refetch()} />
      ) : null}
      {tab === "info" ? (
        <form
          className="stack card"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            const errs: Record<string, string> = {};
            if (!info.name.trim()) errs.name = "Name is required";
            if (!info.email.trim()) errs.email = "Email is required";
            setErrors(errs);
            if (!Object.keys(errs).length)
              save(
                {
                  name: info.name.trim(),
                  email: info.email.trim(),
                  phone: info.phone.trim() || null,
                },
                "Profile updated",
              );
          }}
        >
          <Field
            label="Name"
            value={info.name}
            onChange={(e) => setInfo({ ...info, name: e.target.value })}
            error={errors.name}
            required
          />
          <Field
            label="Email"
            type="email"
            value={info.email}
            onChange={(e) => setInfo({ ...info, email: e.target.value })}
            error={errors.email}
            required
          />
          <Field
            label="Phone"
            type="tel"
            value={info.phone}
            onChange={(e) => setInfo({ ...info, phone: e.target.value })}
            error={errors.phone}
          />
          <Button type="submit" variant="primary" busy={busy}>
            Save
          </Button>
        </form>
      ) : null}
      {tab === "security" ? (
        <form
          className="stack card"
          noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            const errs: Record<string, string> = {};
            if (!pw.current) errs.currentPassword = "Enter your current password";
            if (pw.next.length < 8) errs.newPassword = "Password must be at least 8 characters";
            if (pw.next !== pw.confirm) errs.confirm = "New passwords do not match";
            setErrors(errs);
            if (Object.keys(errs).length || !profile.data) return;
            if (
              await save(
                {
                  name: profile.data.name,
                  email: profile.data.email,
                  phone: profile.data.phone ?? null,
                  currentPassword: pw.current,
                  newPassword: pw.next,
                },
                "Password changed",
              )
            )
              setPw({ current: "", next: "", confirm: "" });
          }}
        >
          <Field
            label="Current password"
            type="password"
            autoComplete="current-password"
            value={pw.current}
            onChange={(e) => setPw({ ...pw, current: e.target.value })}
            error={errors.currentPassword}
          />
          <Field
            label="New password"
            type="password"
            autoComplete="new-password"
            value={pw.next}
            onChange={(e) => setPw({ ...pw, next: e.target.value })}
            error={errors.newPassword}
          />
          <Field
            label="Confirm new password"
            type="password"
            autoComplete="new-password"
            value={pw.confirm}
            onChange={(e) => setPw({ ...pw, confirm: e.target.value })}
            error={errors.confirm}
          />
          <Button type="submit" variant="primary" busy={busy}>
            Change password
          </Button>
        </form>
      ) : null}
      {tab === "addresses" ? (
        <div className="stack">
          <Button variant="primary" onClick={() => setEditing("new")}>
            Add address
          </Button>
          {addresses.isError ? (
            <ErrorState error={addresses.error} retry={() => addresses.refetch()} />
          ) : !addresses.data ? (
            <SkeletonRows rows={2} height={96} />
          ) : addresses.data.length === 0 ? (
            <EmptyState title="No saved addresses" />
          ) : (
            <ul className="grid-cards">
              {addresses.data.map((a) => (
                <li key={a.id} className="card stack">
                  <strong>
                    {a.label} {a.isDefault ? <span className="badge stock-ok">Default</span> : null}
                  </strong>
                  <span>
                    {a.street}, {a.city}, {a.state} {a.zipCode}, {a.country}
                  </span>
                  <span className="muted">{a.phone}</span>
                  <div className="row wrap">
                    <Button onClick={() => setEditing(a)}>Edit</Button>
                    {!a.isDefault ? (
                      <Button
                        onClick={() =>
                          act(
                            unwrap(
                              client.PUT("/api/users/addresses/{id}/default", {
                                params: { path: { id: a.id } },
                              }),
                            ),
                            "Default address updated",
                          )
                        }
                      >
                        Make default
                      </Button>
                    ) : null}
                    <Button
                      variant="ghost"
                      onClick={() =>
                        window.confirm("Delete this address?") &&
                        act(
                          unwrap(
                            client.DELETE("/api/users/addresses/{id}", {
                              params: { path: { id: a.id } },
                            }),
                          ),
                          "Address deleted",
                        )
                      }
                    >
                      Delete
                    </Button>
                  </div>
                </li>
              ))}
            </ul>
          )}
        </div>
      ) : null}
      {editing ? (
        <AddressForm
          initial={editing === "new" ? null : editing}
          onClose={() => setEditing(null)}
        />
      ) : null}
    </section>
  );
}
