import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CLOSES, decodeServerMessage, isDelta, reconnectAfter } from "../src/index.js";

const golden = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`./golden/${name}`, import.meta.url), "utf8"));

describe("wire types", () => {
  it("accept every message the Rust types write", () => {
    const messages = golden("server-messages.json") as unknown[];
    const types = new Set<string>();
    for (const message of messages) {
      const decoded = decodeServerMessage(JSON.stringify(message));
      expect(decoded, JSON.stringify(message)).toMatchObject({ ok: true });
      if (decoded.ok) types.add(decoded.message.type);
    }
    expect(types.size).toBe(9);
  });

  it("accept every delta message the Rust types write, and tell them from full ones", () => {
    const deltas = golden("delta-messages.json") as unknown[];
    for (const message of deltas) {
      const decoded = decodeServerMessage(JSON.stringify(message));
      expect(decoded, JSON.stringify(message)).toMatchObject({ ok: true });
      if (decoded.ok) expect(isDelta(decoded.message)).toBe(true);
    }
    for (const message of golden("server-messages.json") as unknown[]) {
      const decoded = decodeServerMessage(JSON.stringify(message));
      if (decoded.ok) expect(isDelta(decoded.message)).toBe(false);
    }
  });

  it("refuse a delta of a full type, and a partial object without the marker", () => {
    const partial = {
      type: "position_update",
      seq: 1,
      timestamp: "2026-01-03T15:30:45.123Z",
      userId: "u",
      data: { symbol: "AAPL", currentPrice: "1.00" },
    };
    expect(decodeServerMessage(JSON.stringify(partial)).ok).toBe(false);
    expect(decodeServerMessage(JSON.stringify({ ...partial, delta: true })).ok).toBe(true);
    expect(decodeServerMessage(JSON.stringify({ ...partial, type: "order_update", delta: true })).ok).toBe(false);
  });

  it("keep money as decimal strings", () => {
    const [first] = golden("server-messages.json") as unknown[];
    const decoded = decodeServerMessage(JSON.stringify(first));
    if (!decoded.ok || decoded.message.type !== "position_update") throw new Error("a position update");
    expect(decoded.message.data.currentPrice).toBe("175.50");
    expect(decoded.message.data.marketValue).toBe("17550.00");
  });

  it.each([
    ["not JSON", "{", "json"],
    ["an unknown type", JSON.stringify({ type: "surprise" }), "schema"],
    [
      "money as a number",
      JSON.stringify({
        type: "account_update",
        seq: 1,
        timestamp: "2026-01-03T15:30:45.123Z",
        userId: "u",
        data: {
          equity: 1,
          buyingPower: "1",
          cash: "1",
          portfolioValue: "1",
          dayPnl: "1",
          dayPnlPercent: "1",
          timestamp: "2026-01-03T15:30:45.123Z",
        },
      }),
      "schema",
    ],
    ["a bad timestamp", JSON.stringify({ type: "pong", timestamp: "yesterday" }), "schema"],
    ["a negative seq", JSON.stringify({ type: "subscribed", channels: [], seq: -1 }), "schema"],
    ["an unknown channel", JSON.stringify({ type: "subscribed", channels: ["news"], seq: 1 }), "schema"],
    ["a missing field", JSON.stringify({ type: "error", code: "internal" }), "schema"],
  ])("refuse %s without throwing", (_what, text, kind) => {
    const decoded = decodeServerMessage(text);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.invalid.kind).toBe(kind);
  });
});

describe("close table", () => {
  it("is the Rust one", () => {
    expect(CLOSES).toEqual(golden("close-codes.json"));
  });

  it("decides unlisted closes by code", () => {
    expect(reconnectAfter(1008, "Something new")).toBe("never");
    expect(reconnectAfter(1012, "")).toBe("immediately");
    expect(reconnectAfter(1006, "")).toBe("backoff");
    expect(reconnectAfter(1013, "Real-time portfolio disabled")).toBe("poll");
    expect(reconnectAfter(1008, "Maximum connections exceeded")).toBe("backoff");
  });
});
