// Test doubles for the unit tests: a socket the test drives by hand and a
// fetch that answers from a function. (The integration tests use the real
// gateway instead: gateway.test.ts.)

import type { SocketLike } from "../src/index.js";

export class FakeSocket implements SocketLike {
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  readonly sent: unknown[] = [];
  closedWith: { code?: number; reason?: string } | undefined;

  constructor(
    readonly url: string,
    readonly headers: Record<string, string>,
  ) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
  }

  // --- driven by the test ---
  open(): void {
    this.onopen?.({});
  }

  receive(message: unknown): void {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }

  serverClose(code: number, reason = ""): void {
    this.onclose?.({ code, reason });
  }
}

export class Sockets {
  readonly all: FakeSocket[] = [];
  readonly factory = (url: string, headers: Record<string, string>): FakeSocket => {
    const socket = new FakeSocket(url, headers);
    this.all.push(socket);
    return socket;
  };

  get last(): FakeSocket {
    const socket = this.all.at(-1);
    if (!socket) throw new Error("no socket opened yet");
    return socket;
  }
}

export const TS = "2026-01-03T15:30:45.123Z";

export function position(symbol: string, quantity: string, price: string, extra: Record<string, unknown> = {}) {
  return {
    symbol,
    quantity,
    currentPrice: price,
    entryPrice: "100.00",
    unrealizedPnl: "0.00",
    unrealizedPnlPercent: "0.00",
    marketValue: price,
    side: "long",
    ...extra,
  };
}

export function order(orderId: string, status: string, extra: Record<string, unknown> = {}) {
  return {
    orderId,
    symbol: "TSLA",
    side: "buy",
    type: "limit",
    status,
    qty: "10",
    filledQty: "0",
    submittedAt: TS,
    ...extra,
  };
}

export function account(equity: string) {
  return {
    equity,
    buyingPower: "1000.00",
    cash: "500.00",
    portfolioValue: equity,
    dayPnl: "1.00",
    dayPnlPercent: "0.10",
    timestamp: TS,
  };
}

export function trade(tradeId: string) {
  return { tradeId, symbol: "NVDA", side: "sell", quantity: "1", price: "520.50", executedAt: TS };
}

export function event(type: string, seq: number, data: unknown) {
  return { type, seq, timestamp: TS, userId: "alice", data };
}

export function snapshot(seq: number, epoch: string, data: Record<string, unknown> = {}) {
  return { type: "snapshot", seq, epoch, timestamp: TS, data: { positions: [], orders: [], trades: [], ...data } };
}

export function subscribed(seq: number, epoch: string) {
  return { type: "subscribed", channels: ["positions", "orders", "account", "trades"], seq, epoch };
}

export function rest(seq: number, epoch: string, data: Record<string, unknown> = {}) {
  return { epoch, seq, positions: [], orders: [], account: null, trades: [], ...data };
}

/** A fetch answering `GET path` with what `answer` returns (a body, or a Response). */
export function fakeFetch(answer: (path: string) => unknown): typeof fetch & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (input: string | URL | Request) => {
    const path = new URL(String(input)).pathname;
    calls.push(path);
    const body = answer(path);
    if (body instanceof Response) return body;
    return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
  };
  return Object.assign(fn, { calls }) as typeof fetch & { calls: string[] };
}

export const quiet = { debug: () => {}, info: () => {}, warn: () => {} };
