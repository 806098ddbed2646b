import { useMutation, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useRef, useState } from "react";
import { Link } from "react-router";
import { ApiError, client, unwrap } from "../api/client";
import type { Address, Order, PaymentMethod } from "../api/types";
import {
  Button,
  EmptyState,
  ErrorState,
  errorMessage,
  Field,
  Skeleton,
  StatusBadge,
} from "../components/ui";
import { cartTotalCents, newIdempotencyKey } from "../lib/cart";
import { formatMoney } from "../lib/format";
import { PAYMENT_METHODS } from "../lib/orders";
import { useAddresses } from "../lib/queries";
import { useCart } from "../lib/useCart";
import { lineProblem, useCartProducts } from "./Cart";

const EMPTY = {
  label: "Home",
  street: "",
  city: "",
  state: "",
  zipCode: "",
  phone: "",
  country: "India",
};

export default function Checkout() {
  const { cart, clear } = useCart();
  const qc = useQueryClient();
  const addresses = useAddresses();
  const products = useCartProducts(cart.map((l) => l.productId));
  const [addressId, setAddressId] = useState<number | "new" | null>(null);
  const [address, setAddress] = useState(EMPTY);
  const [addrErrors, setAddrErrors] = useState<Record<string, string>>({});
  const [payment, setPayment] = useState("cod");
  const [error, setError] = useState("");
  const [lineErrors, setLineErrors] = useState<Record<string, string>>({});
  const [placed, setPlaced] = useState<Order | null>(null);
  // One key per checkout attempt: a double click or a retry after a network
  // error sends the same key, so the server places one order.
  const key = useRef(newIdempotencyKey());

  const chosen =
    addressId ?? addresses.data?.find((a) => a.isDefault)?.id ?? addresses.data?.[0]?.id ?? "new";

  const place = useMutation({
    mutationFn: async () => {
      let id = chosen;
      if (id === "new") {
        const a = await unwrap<{ address: Address }>(
          client.POST("/api/users/addresses", {
            body: { ...address, isDefault: !addresses.data?.length },
          }),
        );
        qc.invalidateQueries({ queryKey: ["addresses"] });
        setAddressId(a.address.id);
        id = a.address.id;
      }
      return unwrap<{ order: Order }>(
        client.POST("/api/orders", {
          body: {
            items: cart.map((l) => ({ productId: l.productId, quantity: l.quantity })),
            paymentMethod: payment as PaymentMethod,
            addressId: id,
          },
          headers: { "Idempotency-Key": key.current },
        }),
      );
    },
    onSuccess: (d) => {
      setPlaced(d.order);
      clear();
      key.current = newIdempotencyKey();
      qc.invalidateQueries({ queryKey: ["orders"] });
      qc.invalidateQueries({ queryKey: ["products"] });
    },
    onError: (e) => {
      if (e instanceof ApiError) {
        const pid = (e.body as { productId?: string } | undefined)?.productId;
        if (pid) setLineErrors({ [pid]: e.message });
        setAddrErrors(Object.fromEntries(e.errors.map((f) => [f.path, f.msg])));
        // A refused request (4xx) is final for this key's body: the next attempt gets a new key.
        if (e.status >= 400 && e.status < 500 && e.status !== 409)
          key.current = newIdempotencyKey();
      }
      setError(errorMessage(e));
    },
  });

  if (placed) {
    return (
      <section className="page narrow center-page" aria-labelledby="done-title">
        <h1 id="done-title">Order placed</h1>
        <p className="order-number">Order #{placed.userOrderNumber}</p>
        <p>
          {formatMoney(placed.totalAmount)} · <StatusBadge status={placed.status} /> ·{" "}
          {PAYMENT_METHODS.find((m) => m.value === placed.paymentMethod)?.label ??
            placed.paymentMethod}
        </p>
        <div className="row">
          <Link className="btn btn-primary" to="/my-orders">
            See my orders
          </Link>
          <Link className="btn btn-secondary" to="/products">
            Keep shopping
          </Link>
        </div>
      </section>
    );
  }
  if (cart.length === 0) {
    return (
      <section className="page">
        <EmptyState title="Nothing to check out">
          <Link className="btn btn-primary" to="/products">
            Browse the shop
          </Link>
        </EmptyState>
      </section>
    );
  }

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError("");
    setLineErrors({});
    if (chosen === "new") {
      const errs: Record<string, string> = {};
      for (const k of ["street", "city", "state", "zipCode", "phone"] as const)
        if (!address[k].trim()) errs[k] = "Required";
      setAddrErrors(errs);
      if (Object.keys(errs).length) return setError("Fill in all address fields");
    }
    if (place.isPending) return;
    place.mutate();
  };
  const upd = (k: keyof typeof EMPTY) => (e: { target: { value: string } }) =>
    setAddress({ ...address, [k]: e.target.value });
  return (
    <section className="page narrow" aria-labelledby="checkout-title">
      <h1 id="checkout-title">Checkout</h1>
      <form className="stack" onSubmit={submit} noValidate>
        <fieldset className="card stack">
          <legend>Delivery address</legend>
          {addresses.isError ? (
            <ErrorState error={addresses.error} retry={() => addresses.refetch()} />
          ) : !addresses.data ? (
            <Skeleton height={60} />
          ) : (
            <div className="stack">
              {addresses.data.map((a) => (
                <label key={a.id} className="choice">
                  <input
                    type="radio"
                    name="address"
                    checked={chosen === a.id}
                    onChange={() => setAddressId(a.id)}
                  />
                  <span>
                    <strong>{a.label}</strong>{" "}
                    {a.isDefault ? <span className="badge">Default</span> : null}
                    <br />
                    {a.street}, {a.city}, {a.state} {a.zipCode} · {a.phone}
                  </span>
                </label>
              ))}
              <label className="choice">
                <input
                  type="radio"
                  name="address"
                  checked={chosen === "new"}
                  onChange={() => setAddressId("new")}
                />
                <span>A new address</span>
              </label>
            </div>
          )}
          {chosen === "new" ? (
            <div className="grid-form">
              <Field
                label="Label"
                value={address.label}
                onChange={upd("label")}
                error={addrErrors.label}
              />
              <Field
                label="Street"
                autoComplete="street-address"
                value={address.street}
                onChange={upd("street")}
                error={addrErrors.street}
                required
              />
              <Field
                label="City"
                autoComplete="address-level2"
                value={address.city}
                onChange={upd("city")}
                error={addrErrors.city}
                required
              />
              <Field
                label="State"
                autoComplete="address-level1"
                value={address.state}
                onChange={upd("state")}
                error={addrErrors.state}
                required
              />
              <Field
                label="PIN code"
                autoComplete="postal-code"
                value={address.zipCode}
                onChange={upd("zipCode")}
                error={addrErrors.zipCode}
                required
              />
              <Field
                label="Phone"
                type="tel"
                autoComplete="tel"
                value={address.phone}
                onChange={upd("phone")}
                error={addrErrors.phone}
                required
              />
            </div>
          ) : null}
        </fieldset>
        <fieldset className="card stack">
          <legend>Payment</legend>
          {PAYMENT_METHODS.map((m) => (
            <label key={m.value} className="choice">
              <input
                type="radio"
                name="payment"
                value={m.value}
                checked={payment === m.value}
                onChange={() => setPayment(m.value)}
              />
              <span>{m.label}</span>
            </label>
          ))}
        </fieldset>
        <div className="card stack">
          <h2>Summary</h2>
          <ul className="summary">
            {cart.map((l, i) => {
              const problem = lineErrors[l.productId] ?? lineProblem(products[i]?.data, l.quantity);
              return (
                <li key={l.productId}>
                  <span>
                    {l.quantity} × {l.name}
                    {problem ? (
                      <span className="error-text" role="alert">
                        {" "}
                        — {problem}
                      </span>
                    ) : null}
                  </span>
                  <span className="num">
                    {formatMoney((Math.round(l.price * 100) * l.quantity) / 100)}
                  </span>
                </li>
              );
            })}
          </ul>
          <p className="row between">
            <span>Delivery</span> <strong>FREE</strong>
          </p>
          <p className="row between total">
            <span>Total</span> <strong>{formatMoney(cartTotalCents(cart) / 100)}</strong>
          </p>
          {error ? (
            <p className="form-error" role="alert">
              {error}
            </p>
          ) : null}
          <Button type="submit" variant="primary" busy={place.isPending}>
            Place order
          </Button>
        </div>
      </form>
    </section>
  );
}
