import { describe, expect, it } from "vitest";
import {
  MissingBase,
  PortfolioState,
  decodeServerMessage,
  type RestPortfolio,
  type ServerMessage,
} from "../src/index.js";
import { account, event, order, position, rest, snapshot, trade } from "./fakes.js";

function msg(value: unknown): ServerMessage {
  const decoded = decodeServerMessage(JSON.stringify(value));
  if (!decoded.ok) throw new Error(JSON.stringify(decoded.invalid));
  return decoded.message;
}

function restBody(value: unknown): RestPortfolio {
  return value as RestPortfolio;
}

const ALL = ["positions", "orders", "account", "trades"] as const;

describe("PortfolioState", () => {
  it("replaces everything on a snapshot", () => {
    const state = new PortfolioState();
    state.apply(msg(event("position_update", 3, position("AAPL", "1", "10.00"))));
    const change = state.apply(
      msg(snapshot(7, "e1", { positions: [position("MSFT", "2", "20.00")], trades: [trade("t1"), trade("t2")] })),
    );
    expect(change.replaced).toBe(true);
    const view = state.view();
    expect(view.positions.map((p) => p.symbol)).toEqual(["MSFT"]);
    expect(view.seq).toBe(7);
    expect(view.epoch).toBe("e1");
    expect(view.trades.map((t) => t.tradeId)).toEqual(["t2", "t1"]);
  });

  it("skips stale messages and applies one at the same seq", () => {
    const state = new PortfolioState();
    state.apply(msg(snapshot(10, "e1")));
    expect(state.apply(msg(event("position_update", 9, position("AAPL", "1", "10.00")))).channels.size).toBe(0);
    expect(state.view().positions).toHaveLength(0);
    const same = state.apply(msg(event("position_update", 10, position("AAPL", "1", "11.00"))));
    expect([...same.channels]).toEqual(["positions"]);
    expect(state.view().positions[0]?.currentPrice).toBe("11.00");
    state.apply(msg(event("account_update", 11, account("100.00"))));
    expect(state.view().seq).toBe(11);
  });

  it("closes positions at quantity 0 and orders at a closed status", () => {
    const state = new PortfolioState();
    state.apply(msg(event("position_update", 1, position("AAPL", "5", "10.00"))));
    state.apply(msg(event("order_update", 2, order("o1", "accepted"))));
    state.apply(msg(event("order_update", 3, order("o2", "new"))));
    expect(state.view().orders.map((o) => o.orderId)).toEqual(["o1", "o2"]);
    state.apply(msg(event("position_update", 4, position("AAPL", "0", "10.00"))));
    state.apply(msg(event("order_update", 5, order("o1", "filled"))));
    expect(state.view().positions).toHaveLength(0);
    expect(state.view().orders.map((o) => o.orderId)).toEqual(["o2"]);
  });

  it("keeps trades newest first, once each, bounded", () => {
    const state = new PortfolioState(3);
    for (const id of ["t1", "t2", "t2", "t3", "t4"]) state.apply(msg(event("trade_executed", 1, trade(id))));
    expect(state.view().trades.map((t) => t.tradeId)).toEqual(["t4", "t3", "t2"]);
  });

  it("lists trades by execution time, newest first, whatever the arrival order", () => {
    const state = new PortfolioState();
    const at = (id: string, executedAt: string) => ({ ...trade(id), executedAt });
    state.apply(msg(event("trade_executed", 1, at("late", "2026-01-03T15:30:47.000Z"))));
    state.apply(msg(event("trade_executed", 2, at("early", "2026-01-03T15:30:45.000Z"))));
    state.apply(msg(event("trade_executed", 3, at("middle", "2026-01-03T15:30:46.000Z"))));
    expect(state.view().trades.map((t) => t.tradeId)).toEqual(["late", "middle", "early"]);
  });

  it("merges deltas over what it holds", () => {
    const state = new PortfolioState();
    state.apply(msg(event("position_update", 1, position("AAPL", "10", "100.00", { strategyId: "s1" }))));
    state.apply(msg(event("account_update", 1, account("900.00"))));
    state.apply(msg({ ...event("position_update", 2, { symbol: "AAPL", currentPrice: "101.00" }), delta: true }));
    expect(state.view().positions[0]).toMatchObject({ quantity: "10", currentPrice: "101.00", strategyId: "s1" });
    state.apply(
      msg({
        ...event("batch", 3, {
          positions: [{ symbol: "AAPL", quantity: "0" }, { ...position("MSFT", "1", "5.00") }],
          account: { equity: "950.00", timestamp: "2026-01-03T15:31:00.000Z" },
        }),
        delta: true,
      }),
    );
    expect(state.view().positions.map((p) => p.symbol)).toEqual(["MSFT"]);
    expect(state.view().account).toMatchObject({ equity: "950.00", cash: "500.00" });
    expect(state.view().seq).toBe(3);
  });

  it("refuses a delta without a base, changing nothing", () => {
    const state = new PortfolioState();
    state.apply(msg(event("position_update", 1, position("AAPL", "10", "100.00"))));
    const batch = msg({
      ...event("batch", 2, {
        positions: [
          { symbol: "AAPL", currentPrice: "1.00" },
          { symbol: "NEW", currentPrice: "2.00" },
        ],
      }),
      delta: true,
    });
    expect(() => state.apply(batch)).toThrow(MissingBase);
    expect(state.view().positions[0]?.currentPrice).toBe("100.00");
    expect(state.view().seq).toBe(1);
  });

  it("merges a batch and reports its channels", () => {
    const state = new PortfolioState();
    const change = state.apply(
      msg(event("batch", 5, { positions: [position("AAPL", "1", "10.00")], account: account("9.00") })),
    );
    expect([...change.channels].sort()).toEqual(["account", "positions"]);
    expect(state.view().account?.equity).toBe("9.00");
  });

  it("rebuilds only the view that changed", () => {
    const state = new PortfolioState();
    state.apply(msg(event("position_update", 1, position("AAPL", "1", "10.00"))));
    const first = state.view();
    expect(state.view()).toBe(first);
    state.apply(msg(event("position_update", 2, position("AAPL", "1", "11.00"))));
    expect(state.view()).not.toBe(first);
  });

  describe("REST", () => {
    it("adopts an answer that is ahead", () => {
      const state = new PortfolioState();
      state.apply(msg(snapshot(3, "e1")));
      const merge = state.mergeRest(restBody(rest(5, "e1", { positions: [position("AAPL", "1", "10.00")] })), ALL);
      expect(merge).toMatchObject({ adopted: true, differences: 0 });
      expect(state.view().seq).toBe(5);
    });

    it("ignores an answer that is behind", () => {
      const state = new PortfolioState();
      state.apply(msg(snapshot(5, "e1")));
      expect(
        state.mergeRest(restBody(rest(3, "e1", { positions: [position("AAPL", "1", "10.00")] })), ALL).adopted,
      ).toBe(false);
      expect(state.view().positions).toHaveLength(0);
    });

    it("counts and repairs differences at the same seq", () => {
      const state = new PortfolioState();
      state.apply(msg(snapshot(5, "e1", { positions: [position("AAPL", "1", "10.00")], account: account("1.00") })));
      const merge = state.mergeRest(
        restBody(
          rest(5, "e1", {
            positions: [position("AAPL", "1", "12.00"), position("MSFT", "1", "1.00")],
            account: account("1.00"),
          }),
        ),
        ALL,
      );
      expect(merge).toMatchObject({ adopted: true, differences: 2 });
      expect(state.view().positions.map((p) => p.currentPrice)).toEqual(["12.00", "1.00"]);
      expect(
        state.mergeRest(
          restBody(
            rest(5, "e1", {
              positions: [position("AAPL", "1", "12.00"), position("MSFT", "1", "1.00")],
              account: account("1.00"),
            }),
          ),
          ALL,
        ).differences,
      ).toBe(0);
    });

    it("adopts another epoch even when behind", () => {
      const state = new PortfolioState();
      state.apply(msg(snapshot(50, "e1")));
      expect(state.mergeRest(restBody(rest(2, "e2")), ALL).adopted).toBe(true);
      expect(state.view()).toMatchObject({ seq: 2, epoch: "e2" });
    });

    it("keeps only the subscribed channels", () => {
      const state = new PortfolioState();
      state.mergeRest(
        restBody(rest(1, "e1", { positions: [position("AAPL", "1", "1.00")], account: account("1.00") })),
        ["positions"],
      );
      expect(state.view().account).toBeUndefined();
      expect(state.view().positions).toHaveLength(1);
    });
  });
});

describe("differences", () => {
  it("ignore when an account was valued", () => {
    const a = new PortfolioState();
    a.mergeRest(
      { epoch: "e1", seq: 1, positions: [], orders: [], trades: [], account: account("1.00") } as RestPortfolio,
      ALL,
    );
    const later = { ...account("1.00"), timestamp: "2026-01-03T15:31:00.000Z" };
    const b = PortfolioState.fromRest(
      { epoch: "e1", seq: 1, positions: [], orders: [], trades: [], account: later } as RestPortfolio,
      ALL,
    );
    expect(a.differences(b)).toBe(0);
    const richer = PortfolioState.fromRest(
      { epoch: "e1", seq: 1, positions: [], orders: [], trades: [], account: account("2.00") } as RestPortfolio,
      ALL,
    );
    expect(a.differences(richer)).toBe(1);
  });
});
