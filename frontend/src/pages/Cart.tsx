import { useQueries } from "@tanstack/react-query";
import { Link } from "react-router";
import { client, unwrap } from "../api/client";
import type { Product } from "../api/types";
import { Button, EmptyState, ProductImage } from "../components/ui";
import { cartTotalCents } from "../lib/cart";
import { formatMoney } from "../lib/format";
import { useCart } from "../lib/useCart";

/** Why a line cannot be bought as it is, from the product as the server has it now. */
export function lineProblem(p: Product | undefined | null, quantity: number): string | null {
  if (p === null) return "This product is no longer sold.";
  if (!p) return null;
  if (p.status !== "active") return "This product is no longer sold.";
  if (p.inventory <= 0) return "Sold out.";
  if (quantity > p.inventory) return `Only ${p.inventory} left: lower the quantity.`;
  return null;
}

export function useCartProducts(ids: string[]) {
  return useQueries({
    queries: ids.map((id) => ({
      queryKey: ["product", id],
      queryFn: async () => {
        try {
          return (
            await unwrap<{ product: Product }>(
              client.GET("/api/products/{id}", { params: { path: { id } } }),
            )
          ).product;
        } catch {
          return null;
        }
      },
    })),
  });
}

export default function CartPage() {
  const { cart, set, remove } = useCart();
  const products = useCartProducts(cart.map((l) => l.productId));
  if (cart.length === 0) {
    return (
      <section className="page">
        <h1>Cart</h1>
        <EmptyState title="Your cart is empty">
          <Link className="btn btn-primary" to="/products">
            Browse the shop
          </Link>
        </EmptyState>
      </section>
    );
  }
  const problems = cart.map((l, i) => lineProblem(products[i]?.data, l.quantity));
  return (
    <section className="page narrow" aria-labelledby="cart-title">
      <h1 id="cart-title">Cart</h1>
      <ul className="cart-lines">
        {cart.map((l, i) => {
          const p = products[i]?.data;
          const stock = p ? p.inventory : l.stock;
          return (
            <li key={l.productId} className="card cart-line">
              <ProductImage src={l.image} alt={l.name} size={64} />
              <div className="grow">
                <Link to={`/products/${l.productId}`}>{l.name}</Link>
                <div className="muted">{formatMoney(l.price)} each</div>
                {problems[i] ? (
                  <p className="error-text" role="alert">
                    {problems[i]}
                  </p>
                ) : null}
              </div>
              <label>
                <span className="sr-only">Quantity of {l.name}</span>
                <input
                  className="qty"
                  type="number"
                  min={1}
                  max={Math.max(1, stock)}
                  value={l.quantity}
                  onChange={(e) => set(l.productId, Math.min(Number(e.target.value), stock))}
                />
              </label>
              <strong className="num">
                {formatMoney((Math.round(l.price * 100) * l.quantity) / 100)}
              </strong>
              <Button
                variant="ghost"
                onClick={() => remove(l.productId)}
                aria-label={`Remove ${l.name}`}
              >
                Remove
              </Button>
            </li>
          );
        })}
      </ul>
      <div className="row between card">
        <span>
          Total <strong>{formatMoney(cartTotalCents(cart) / 100)}</strong> · Delivery{" "}
          <strong>FREE</strong>
        </span>
        <Link
          className={`btn btn-primary ${problems.some(Boolean) ? "disabled" : ""}`}
          to="/checkout"
          aria-disabled={problems.some(Boolean)}
        >
          Checkout
        </Link>
      </div>
    </section>
  );
}
