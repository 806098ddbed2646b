import { describe, expect, it } from "vitest";
import { allowedFromConflict, canCancel, nextSteps, progressIndex, returnDaysLeft } from "./orders";

describe("order rules", () => {
  it("offers the transition table's next steps", () => {
    expect(nextSteps("pending")).toEqual(["processing", "cancelled"]);
    expect(nextSteps("shipped")).toEqual(["out_for_delivery", "cancelled"]);
    expect(nextSteps("delivered")).toEqual([]);
    expect(nextSteps("cancelled")).toEqual(["refund_processing"]);
  });
  it("reads the allowed steps from the API's 409", () => {
    expect(
      allowedFromConflict(
        "Cannot change order status from processing to delivered. Allowed next: shipped, cancelled",
      ),
    ).toEqual(["shipped", "cancelled"]);
    expect(allowedFromConflict("Cannot change … Allowed next: none")).toEqual([]);
    expect(allowedFromConflict("other")).toEqual([]);
  });
  it("lets customers cancel only before shipping", () => {
    expect(canCancel("pending")).toBe(true);
    expect(canCancel("processing")).toBe(true);
    expect(canCancel("shipped")).toBe(false);
  });
  it("counts the 7-day return window", () => {
    const now = Date.parse("2026-01-10T12:00:00Z");
    expect(returnDaysLeft({ status: "delivered", deliveredAt: "2026-01-09T12:00:00Z" }, now)).toBe(
      6,
    );
    expect(returnDaysLeft({ status: "delivered", deliveredAt: "2026-01-01T12:00:00Z" }, now)).toBe(
      0,
    );
    expect(returnDaysLeft({ status: "shipped", deliveredAt: null }, now)).toBe(0);
  });
  it("places statuses on the progress bar", () => {
    expect(progressIndex("pending")).toBe(0);
    expect(progressIndex("delivered")).toBe(4);
    expect(progressIndex("cancelled")).toBe(-1);
  });
});
