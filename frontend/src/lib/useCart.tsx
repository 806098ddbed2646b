import { createContext, type ReactNode, useContext, useEffect, useMemo, useState } from "react";
import {
  addToCart,
  type Cart,
  type CartLine,
  loadCart,
  removeLine,
  saveCart,
  setQuantity,
} from "./cart";

interface CartValue {
  cart: Cart;
  add: (item: Omit<CartLine, "quantity">, quantity?: number) => void;
  set: (productId: string, quantity: number) => void;
  remove: (productId: string) => void;
  clear: () => void;
}
const CartContext = createContext<CartValue | null>(null);

export function CartProvider({ children }: { children: ReactNode }) {
  const [cart, setCart] = useState<Cart>(() => loadCart());
  useEffect(() => saveCart(cart), [cart]);
  useEffect(() => {
    const onStorage = (e: StorageEvent) => {
      if (e.key === "ecap.cart") setCart(loadCart());
    };
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }, []);
  const value = useMemo<CartValue>(
    () => ({
      cart,
      add: (item, q = 1) => setCart((c) => addToCart(c, item, q)),
      set: (id, q) => setCart((c) => setQuantity(c, id, q)),
      remove: (id) => setCart((c) => removeLine(c, id)),
      clear: () => setCart([]),
    }),
    [cart],
  );
  return <CartContext.Provider value={value}>{children}</CartContext.Provider>;
}

export function useCart(): CartValue {
  const v = useContext(CartContext);
  if (!v) throw new Error("useCart outside CartProvider");
  return v;
}
