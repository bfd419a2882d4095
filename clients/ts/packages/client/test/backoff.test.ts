import { describe, expect, it } from "vitest";
import { cappedDelay, reconnectDelay, restartDelay } from "../src/index.js";

describe("backoff", () => {
  it("follows the note: 1 s · 2^(n−1) + 0–1 s jitter, capped at 30 s", () => {
    const low = [1, 2, 3, 4, 5, 6, 7].map((n) => reconnectDelay(n, 0));
    const high = [1, 2, 3, 4, 5, 6, 7].map((n) => reconnectDelay(n, 0.999));
    expect(low).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(high.map(Math.round)).toEqual([1999, 2999, 4999, 8999, 16999, 30000, 30000]);
  });

  it("never overflows", () => {
    expect(reconnectDelay(10_000, 0.5)).toBe(30_000);
    expect(cappedDelay(0)).toBe(30_000);
  });

  it("restarts within 250 ms", () => {
    expect(restartDelay(0)).toBe(0);
    expect(restartDelay(0.999)).toBeLessThan(250);
  });
});
