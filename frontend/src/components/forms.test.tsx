// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { validateProduct } from "../pages/ProductEditor";
import { Field, StatusBadge } from "./ui";

afterEach(cleanup);

describe("forms", () => {
  it("a field shows its error and is marked invalid", () => {
    render(<Field label="Email" error="Valid email is required" defaultValue="x" />);
    const input = screen.getByLabelText("Email");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByRole("alert").textContent).toBe("Valid email is required");
    fireEvent.change(input, { target: { value: "a@b.co" } });
    expect((input as HTMLInputElement).value).toBe("a@b.co");
  });
  it("validates a product before sending it", () => {
    const errs = validateProduct(
      { name: "", description: "d", price: "1.234", inventory: "-1", category: "" },
      true,
    );
    expect(Object.keys(errs).sort()).toEqual(["category", "inventory", "name", "price"]);
    expect(
      validateProduct(
        { name: "n", description: "d", price: "10.50", inventory: "3", category: "books" },
        true,
      ),
    ).toEqual({});
    expect(
      validateProduct(
        { name: "n", description: "d", price: "10", inventory: "", category: "books" },
        false,
      ),
    ).toEqual({});
  });
  it("labels statuses", () => {
    render(<StatusBadge status="out_for_delivery" />);
    expect(screen.getByText("Out for delivery").className).toContain("status-out_for_delivery");
  });
});

describe("transition buttons", () => {
  it("offer the next steps and report the chosen one", async () => {
    const { NextStepButtons } = await import("../pages/Orders");
    const chosen: string[] = [];
    render(<NextStepButtons status="processing" onStep={(s) => chosen.push(s)} />);
    expect(screen.getAllByRole("button").map((b) => b.textContent)).toEqual(["Ship", "Cancel"]);
    fireEvent.click(screen.getByRole("button", { name: "Ship" }));
    expect(chosen).toEqual(["shipped"]);
    cleanup();
    render(<NextStepButtons status="delivered" onStep={() => undefined} />);
    expect(screen.queryAllByRole("button")).toHaveLength(0);
  });
});
