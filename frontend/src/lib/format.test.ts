import { describe, expect, it } from "vitest";
import { formatBucket, formatChange, formatMoney, initials, toCents } from "./format";
import { passwordProblem, validateEmail } from "./validate";

describe("formatting", () => {
  it("goes through integer cents", () => {
    expect(toCents(0.1 + 0.2)).toBe(30);
    expect(toCents(19.99)).toBe(1999);
    expect(formatMoney(1234.5)).toMatch(/1,?234\.50/);
    expect(formatMoney(null)).toBe("—");
  });
  it("signs changes", () => {
    expect(formatChange(12.345)).toBe("+12.3%");
    expect(formatChange(-3)).toBe("-3.0%");
    expect(formatChange(null)).toBe("—");
  });
  it("labels chart buckets by granularity, never as raw ISO", () => {
    const iso = "2026-03-05T00:00:00Z";
    for (const g of ["hour", "day", "week", "month", undefined]) {
      const label = formatBucket(iso, g);
      expect(label).not.toContain("T");
      expect(label.length).toBeLessThan(14);
    }
    expect(formatBucket("not a date", "day")).toBe("not a date");
  });
  it("makes initials", () => {
    expect(initials("Jane van Doe")).toBe("JV");
  });
});

describe("form rules", () => {
  it("checks e-mails and passwords like the server", () => {
    expect(validateEmail("a@b.co")).toBeNull();
    expect(validateEmail("nope")).not.toBeNull();
    expect(passwordProblem("Secret1!")).toBeNull();
    expect(passwordProblem("short")).toMatch(/8 characters/);
    expect(passwordProblem("alllowercase1!")).toMatch(/uppercase/);
  });
});
