// The cart lives in the browser (localStorage), one line per product, each
// quantity bounded by the stock seen when it was added or last refreshed.
export interface CartLine {
  productId: string;
  name: string;
  price: number;
  image: string | null;
  quantity: number;
  /** Stock when last seen; the server re-checks at checkout. */
  stock: number;
}

export type Cart = CartLine[];

export const clampQuantity = (quantity: number, stock: number): number =>
  Math.max(0, Math.min(Math.floor(quantity) || 0, Math.max(0, stock)));

export function addToCart(cart: Cart, item: Omit<CartLine, "quantity">, quantity = 1): Cart {
  const existing = cart.find((l) => l.productId === item.productId);
  if (existing) {
    return cart.map((l) =>
      l.productId === item.productId
        ? { ...l, ...item, quantity: clampQuantity(l.quantity + quantity, item.stock) }
        : l,
    );
  }
  const q = clampQuantity(quantity, item.stock);
  return q > 0 ? [...cart, { ...item, quantity: q }] : cart;
}

export function setQuantity(cart: Cart, productId: string, quantity: number): Cart {
  return cart
    .map((l) =>
      l.productId === productId ? { ...l, quantity: clampQuantity(quantity, l.stock) } : l,
    )
    .filter((l) => l.quantity > 0);
}

export const removeLine = (cart: Cart, productId: string): Cart =>
  cart.filter((l) => l.productId !== productId);

/** Total in integer cents (no float drift over many lines). */
export const cartTotalCents = (cart: Cart): number =>
  cart.reduce((sum, l) => sum + Math.round(l.price * 100) * l.quantity, 0);

export const cartCount = (cart: Cart): number => cart.reduce((n, l) => n + l.quantity, 0);

const KEY = "ecap.cart";

export function loadCart(): Cart {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? "[]") as unknown;
    if (!Array.isArray(raw)) return [];
    return raw.filter(
      (l): l is CartLine =>
        typeof l === "object" &&
        l !== null &&
        typeof (l as CartLine).productId === "string" &&
        typeof (l as CartLine).quantity === "number",
    );
  } catch {
    return [];
  }
}

export function saveCart(cart: Cart): void {
  localStorage.setItem(KEY, JSON.stringify(cart));
}

/** A fresh idempotency key for one checkout attempt. */
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}
