import { describe, expect, it } from "vitest";
import type { Order, Product } from "../api/types";
import { lineProblem } from "./Cart";
import { customerFigures } from "./CustomerHome";

const product = (p: Partial<Product>): Product =>
  ({ status: "active", inventory: 5, ...p }) as Product;

describe("cart lines against the catalog", () => {
  it("explains out-of-stock and archived lines", () => {
    expect(lineProblem(product({}), 2)).toBeNull();
    expect(lineProblem(product({ inventory: 0 }), 1)).toBe("Sold out.");
    expect(lineProblem(product({ inventory: 1 }), 2)).toMatch(/Only 1 left/);
    expect(lineProblem(product({ status: "archived" }), 1)).toMatch(/no longer sold/);
    expect(lineProblem(null, 1)).toMatch(/no longer sold/);
  });
});

describe("customer figures", () => {
  it("leaves cancelled orders out of spending", () => {
    const o = (status: string, total: number, qty: number) =>
      ({ status, totalAmount: total, items: [{ quantity: qty }] }) as unknown as Order;
    expect(
      customerFigures([o("delivered", 10.1, 1), o("cancelled", 99, 2), o("pending", 0.2, 3)]),
    ).toEqual({ count: 3, spent: 10.3, items: 6 });
  });
});
