import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PortfolioClient, reconnectDelay, type PortfolioClientOptions, type Status } from "../src/index.js";
import { Sockets, event, fakeFetch, position, quiet, rest, snapshot, subscribed } from "./fakes.js";

const BASE = "http://gateway.test";

function client(sockets: Sockets, extra: Partial<PortfolioClientOptions> = {}) {
  const statuses: Status[] = [];
  const c = new PortfolioClient({
    baseUrl: BASE,
    socket: sockets.factory,
    fetch: fakeFetch(() => rest(0, "e1")),
    random: () => 0.5,
    logger: quiet,
    ...extra,
  });
  c.onStatus((s) => statuses.push(s));
  return { c, statuses };
}

/** Opens the last socket and makes it live at `seq`. */
function live(sockets: Sockets, seq = 1, epoch = "e1") {
  sockets.last.open();
  sockets.last.receive(snapshot(seq, epoch));
  sockets.last.receive(subscribed(seq, epoch));
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("PortfolioClient", () => {
  it("subscribes on open and goes live on subscribed", () => {
    const sockets = new Sockets();
    const { c, statuses } = client(sockets);
    c.start();
    expect(sockets.last.url).toBe("ws://gateway.test/ws/portfolio");
    sockets.last.open();
    expect(sockets.last.sent).toEqual([
      { type: "subscribe", channels: ["positions", "orders", "account", "trades"], deltas: true },
    ]);
    live(sockets, 4);
    expect(statuses).toEqual(["live"]);
    expect(c.getView().seq).toBe(4);
    c.stop();
    expect(c.getStatus()).toBe("closed");
    expect(sockets.last.closedWith).toEqual({ code: 1000, reason: "Client closing" });
  });

  it("sends the bearer token as a header", () => {
    const sockets = new Sockets();
    const { c } = client(sockets, { token: () => "jwt-1" });
    c.start();
    expect(sockets.last.headers).toEqual({ Authorization: "Bearer jwt-1" });
    c.stop();
  });

  it("resumes with since and epoch after a drop, with the note's backoff", async () => {
    const sockets = new Sockets();
    const { c, statuses } = client(sockets);
    c.start();
    live(sockets, 1);
    sockets.last.receive(event("position_update", 2, position("AAPL", "1", "10.00")));
    sockets.last.serverClose(1006);
    expect(c.getStatus()).toBe("reconnecting");
    // First failure: 1 s + 0.5 · 1 s of jitter.
    await vi.advanceTimersByTimeAsync(1_499);
    expect(sockets.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets.all).toHaveLength(2);
    sockets.last.open();
    expect(sockets.last.sent).toEqual([
      {
        type: "subscribe",
        channels: ["positions", "orders", "account", "trades"],
        deltas: true,
        since: 2,
        epoch: "e1",
      },
    ]);
    // A failed attempt doubles the delay: 2 s + 0.5 s.
    sockets.last.serverClose(1006);
    await vi.advanceTimersByTimeAsync(2_499);
    expect(sockets.all).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets.all).toHaveLength(3);
    sockets.last.open();
    sockets.last.receive(event("batch", 3, { positions: [position("AAPL", "2", "11.00")] }));
    sockets.last.receive(subscribed(3, "e1"));
    expect(c.getView().positions[0]?.quantity).toBe("2");
    expect(statuses).toEqual(["live", "reconnecting", "live"]);
    expect(c.stats.reconnects).toBe(1);
    c.stop();
  });

  it("reconnects at once, jittered, after a restart close", async () => {
    const sockets = new Sockets();
    const { c } = client(sockets);
    c.start();
    live(sockets);
    sockets.last.serverClose(1012, "Server restarting");
    await vi.advanceTimersByTimeAsync(125); // 0.5 · 250 ms
    expect(sockets.all).toHaveLength(2);
    c.stop();
  });

  it("never retries after an auth 1008", async () => {
    const sockets = new Sockets();
    const { c, statuses } = client(sockets);
    c.start();
    sockets.last.open();
    sockets.last.serverClose(1008, "Session expired");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sockets.all).toHaveLength(1);
    expect(statuses).toEqual(["unauthorized"]);
    expect(c.getLastClose()).toEqual({ code: 1008, reason: "Session expired" });
    // Signed in again, the same client starts over.
    c.start();
    expect(sockets.all).toHaveLength(2);
    c.stop();
  });

  it("retries a connection-limit 1008 with backoff", async () => {
    const sockets = new Sockets();
    const { c } = client(sockets);
    c.start();
    sockets.last.serverClose(1008, "Maximum connections exceeded");
    expect(c.getStatus()).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(1_500);
    expect(sockets.all).toHaveLength(2);
    c.stop();
  });

  it("polls REST every 5 s when disabled, and goes live when health says it is back", async () => {
    const sockets = new Sockets();
    let enabled = false;
    const fetch = fakeFetch((path) =>
      path === "/api/health" ? { status: "ok", features: { realtimePortfolio: enabled } } : rest(3, "e1"),
    );
    const { c, statuses } = client(sockets, { fetch });
    c.start();
    sockets.last.serverClose(1013, "Real-time portfolio disabled");
    expect(c.getStatus()).toBe("disabled");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fetch.calls.filter((p) => p === "/api/portfolio")).toHaveLength(3); // at once, 5 s, 10 s
    expect(c.getView().seq).toBe(3);
    // The capped retry (30 s + jitter) asks health first; still off: no socket.
    await vi.advanceTimersByTimeAsync(21_000);
    expect(fetch.calls).toContain("/api/health");
    expect(sockets.all).toHaveLength(1);
    enabled = true;
    await vi.advanceTimersByTimeAsync(31_000);
    expect(sockets.all).toHaveLength(2);
    live(sockets, 3);
    expect(statuses).toEqual(["disabled", "live"]);
    const polls = fetch.calls.filter((p) => p === "/api/portfolio").length;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(fetch.calls.filter((p) => p === "/api/portfolio")).toHaveLength(polls);
    c.stop();
  });

  it("falls back to polling after 10 failed attempts", async () => {
    const sockets = new Sockets();
    const { c } = client(sockets);
    c.start();
    for (let attempt = 1; attempt <= 10; attempt += 1) {
      sockets.last.serverClose(1006);
      if (attempt < 10) {
        expect(c.getStatus()).toBe("reconnecting");
        await vi.advanceTimersByTimeAsync(reconnectDelay(attempt, 0.5));
        expect(sockets.all).toHaveLength(attempt + 1);
      }
    }
    expect(c.getStatus()).toBe("polling");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(c.stats.polls).toBe(2); // at once, then every 5 s
    c.stop();
  });

  it("treats 30 s of silence as a dead link, and pings every 15 s", async () => {
    const sockets = new Sockets();
    const { c } = client(sockets);
    c.start();
    live(sockets);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(sockets.last.sent).toContainEqual({ type: "ping" });
    sockets.last.receive({ type: "pong", timestamp: "2026-01-03T15:30:45.123Z" });
    await vi.advanceTimersByTimeAsync(29_000);
    expect(c.getStatus()).toBe("live");
    await vi.advanceTimersByTimeAsync(1_000);
    expect(c.getStatus()).toBe("reconnecting");
    expect(c.stats.deadLinks).toBe(1);
    c.stop();
  });

  it("resumes when a delta has no base", async () => {
    const sockets = new Sockets();
    const { c } = client(sockets);
    c.start();
    live(sockets, 1);
    sockets.last.receive({ ...event("position_update", 2, { symbol: "AAPL", currentPrice: "1.00" }), delta: true });
    expect(c.stats.invalid).toBe(1);
    expect(c.getStatus()).toBe("reconnecting");
    expect(c.getView().positions).toHaveLength(0);
    c.stop();
  });

  it("counts and drops invalid messages without throwing", () => {
    const sockets = new Sockets();
    const warnings: string[] = [];
    const { c } = client(sockets, { logger: { ...quiet, warn: (m) => warnings.push(m) } });
    let changes = 0;
    c.onChange(() => (changes += 1));
    c.start();
    live(sockets, 1);
    changes = 0;
    sockets.last.receive("{not json");
    sockets.last.receive({ type: "position_update", seq: 2, timestamp: "x", userId: "u", data: {} });
    sockets.last.receive(event("account_update", 2, { equity: 1 }));
    expect(c.stats.invalid).toBe(3);
    expect(changes).toBe(0);
    expect(warnings).toHaveLength(3);
    sockets.last.receive(event("position_update", 2, position("AAPL", "1", "10.00")));
    expect(changes).toBe(1);
    c.stop();
  });

  it("reconciles with REST every 60 s, counting differences", async () => {
    const sockets = new Sockets();
    const fetch = fakeFetch(() => rest(1, "e1", { positions: [position("AAPL", "1", "99.00")] }));
    const { c } = client(sockets, { fetch, silenceTimeoutMs: 120_000 });
    c.start();
    live(sockets, 1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(c.stats.reconciles).toBe(1);
    expect(c.stats.reconcileDifferences).toBe(1);
    expect(c.getView().positions[0]?.currentPrice).toBe("99.00");
    c.stop();
  });

  it("stops when REST refuses the credentials", async () => {
    const sockets = new Sockets();
    const fetch = fakeFetch(() => new Response("", { status: 401 }));
    const { c } = client(sockets, { fetch });
    c.start();
    sockets.last.serverClose(1013, "Real-time portfolio disabled");
    await vi.advanceTimersByTimeAsync(0);
    expect(c.getStatus()).toBe("unauthorized");
  });

  it("asks for a fresh snapshot when channels are added, and forgets removed ones", () => {
    const sockets = new Sockets();
    const { c } = client(sockets, { channels: ["positions"] });
    c.start();
    live(sockets);
    c.subscribe(["account", "positions"]);
    expect(sockets.last.sent.at(-1)).toEqual({ type: "subscribe", channels: ["positions", "account"], deltas: true });
    sockets.last.receive(event("position_update", 2, position("AAPL", "1", "10.00")));
    c.unsubscribe(["positions"]);
    expect(sockets.last.sent.at(-1)).toEqual({ type: "unsubscribe", channels: ["positions"] });
    expect(c.getView().positions).toHaveLength(0);
    c.stop();
  });
});
