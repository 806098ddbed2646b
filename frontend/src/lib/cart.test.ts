import { describe, expect, it } from "vitest";
import {
  addToCart,
  cartCount,
  cartTotalCents,
  clampQuantity,
  removeLine,
  setQuantity,
} from "./cart";

const kettle = { productId: "p1", name: "Kettle", price: 19.99, image: null, stock: 3 };

describe("cart", () => {
  it("bounds quantities by stock", () => {
    expect(clampQuantity(5, 3)).toBe(3);
    expect(clampQuantity(-2, 3)).toBe(0);
    expect(clampQuantity(2.7, 3)).toBe(2);
    let c = addToCart([], kettle, 2);
    c = addToCart(c, kettle, 5);
    expect(c).toHaveLength(1);
    expect(c[0]?.quantity).toBe(3);
  });
  it("does not add sold-out products", () => {
    expect(addToCart([], { ...kettle, stock: 0 })).toEqual([]);
  });
  it("sums in integer cents", () => {
    const c = addToCart(
      addToCart([], kettle, 3),
      { ...kettle, productId: "p2", price: 0.1, stock: 10 },
      3,
    );
    expect(cartTotalCents(c)).toBe(5997 + 30);
    expect(cartCount(c)).toBe(6);
  });
  it("removes a line set to zero", () => {
    const c = addToCart([], kettle, 2);
    expect(setQuantity(c, "p1", 0)).toEqual([]);
    expect(setQuantity(c, "p1", 9)[0]?.quantity).toBe(3);
    expect(removeLine(c, "p1")).toEqual([]);
  });
});
