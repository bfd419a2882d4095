import { describe, expect, it } from "vitest";
import { compareDecimals, groupDigits, signOf } from "../src/index.js";

describe("decimal strings", () => {
  it("compare without floats", () => {
    expect(compareDecimals("175.50", "175.5")).toBe(0);
    expect(compareDecimals("0.1", "0.10000000000000000001")).toBe(-1);
    expect(compareDecimals("-3.08", "-3.1")).toBe(1);
    expect(compareDecimals("10", "9.99")).toBe(1);
    expect(compareDecimals("-0.00", "0")).toBe(0);
    expect(compareDecimals("12345678901234567890.12", "12345678901234567890.11")).toBe(1);
    expect(signOf("-0.01")).toBe(-1);
  });

  it("group the integer digits", () => {
    expect(groupDigits("-12345.50")).toBe("-12,345.50");
    expect(groupDigits("999")).toBe("999");
    expect(groupDigits("1000000")).toBe("1,000,000");
  });

  it("refuse what is not a decimal", () => {
    expect(() => compareDecimals("1e3", "1")).toThrow(/not a decimal/);
  });
});
