import { describe, expect, it } from "vitest";
import {
  add, bps, ceilTo, cmp, div, fix, floorTo, format, fromUnits, isDecimal, mul, places, ratio,
  sub, toUnits, trim,
} from "@/lib/decimal";

describe("decimal strings", () => {
  it("round-trips units exactly, beyond what a float holds", () => {
    expect(toUnits("30000.01", 2)).toBe(3000001n);
    expect(fromUnits(3000001n, 2)).toBe("30000.01");
    expect(toUnits("0.1", 8)).toBe(10000000n);
    expect(fromUnits(5n, 8)).toBe("0.00000005");
    expect(fromUnits(-5n, 2)).toBe("-0.05");
    const big = "92233720368547.75807";
    expect(fromUnits(toUnits(big, 5), 5)).toBe(big);
  });

  it("refuses to lose digits", () => {
    expect(() => toUnits("0.001", 2)).toThrow();
    expect(toUnits("0.100", 1)).toBe(1n);
    expect(() => toUnits("1e5", 0)).toThrow();
    expect(() => toUnits("", 0)).toThrow();
  });

  it("adds and subtracts without float error", () => {
    expect(add("0.1", "0.2")).toBe("0.3");
    expect(sub("0.3", "0.1")).toBe("0.2");
    expect(sub("1", "1.005")).toBe("-0.005");
    expect(add("-0.5", "0.25")).toBe("-0.25");
  });

  it("multiplies exactly and divides toward zero", () => {
    expect(mul("30000.01", "0.0003")).toBe("9.000003");
    expect(div("10", "3", 4)).toBe("3.3333");
    expect(div("1000", "30000.01", 4)).toBe("0.0333");
    expect(div("-10", "3", 2)).toBe("-3.33");
    expect(() => div("1", "0", 2)).toThrow();
  });

  it("compares across scales", () => {
    expect(cmp("1.10", "1.1")).toBe(0);
    expect(cmp("1.09", "1.1")).toBe(-1);
    expect(cmp("10", "9.999")).toBe(1);
  });

  it("snaps to ticks and lots", () => {
    expect(floorTo("30000.017", "0.01")).toBe("30000.010");
    expect(ceilTo("30000.011", "0.01")).toBe("30000.020");
    expect(floorTo("30017.55", "10")).toBe("30010.00");
    expect(ceilTo("30010.00", "10")).toBe("30010.00");
    expect(floorTo("0.12345", "0.0001")).toBe("0.12340");
    expect(floorTo("-0.5", "1")).toBe("-1.0");
  });

  it("computes fees in basis points", () => {
    expect(bps("9.000003", 20)).toBe("0.0180000060");
    expect(bps("100", 10)).toBe("0.1000");
  });

  it("formats for display without rounding up", () => {
    expect(format("1234567.891", 2)).toBe("1,234,567.89");
    expect(format("0.999", 2)).toBe("0.99");
    expect(format("-1234.5")).toBe("-1,234.5");
    expect(format("12", 3)).toBe("12.000");
    expect(fix("1.23456789", 4)).toBe("1.2345");
    expect(trim("1.500")).toBe("1.5");
    expect(trim("2.00")).toBe("2");
    expect(places("0.0100")).toBe(2);
    expect(places("5")).toBe(0);
  });

  it("checks syntax and draws ratios", () => {
    expect(isDecimal("1.5")).toBe(true);
    expect(isDecimal("1.")).toBe(false);
    expect(isDecimal("abc")).toBe(false);
    expect(ratio("1", "4")).toBe(0.25);
    expect(ratio("1", "0")).toBe(0);
  });
});
