// The core against the real gateway: the `portfolio-dev` binary (gateway,
// ingest routes and simulated broker in one process, in-memory event log),
// spawned on a free port, with the `ws` package as the socket and a TCP
// proxy on loopback to kill the socket from outside.
//
// Needs the binary: `cargo build -p portfolio-dev` (PORTFOLIO_DEV_BIN, or
// $CARGO_TARGET_DIR/debug/portfolio-dev with ./target as the default).

import { spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  PortfolioClient,
  RestPortfolio,
  parseBody,
  type PortfolioView,
  type SocketLike,
  type Status,
} from "../src/index.js";
import { quiet } from "./fakes.js";

const ROOT = resolve(import.meta.dirname, "../../../../..");
const BIN =
  process.env.PORTFOLIO_DEV_BIN ?? resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target", "debug/portfolio-dev");
const JWT_SECRET = "gateway-test-secret-gateway-test-secret-01";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? ok(address.port) : fail(new Error("no port"))));
    });
  });
}

async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(check()).catch(() => undefined);
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function startDev(env: Record<string, string> = {}): Promise<string> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`cargo build -p portfolio-dev\` first`);
  const port = await freePort();
  const child: ChildProcess = spawn(BIN, [], {
    env: {
      PATH: process.env.PATH,
      GATEWAY_ADDR: `127.0.0.1:${port}`,
      JWT_SECRET,
      // Quiet market, no random orders: the test makes the events.
      DEV_TICK_MS: "3600000",
      DEV_ORDER_MS: "3600000",
      DEV_FILL_MS: "50",
      RUST_LOG: "warn",
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGINT");
    await exited;
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor("the gateway", async () => (await fetch(`${base}/api/health`)).ok);
  return base;
}

function jwt(sub: string, secret = JWT_SECRET): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/** A TCP proxy on loopback; `drop()` resets every connection through it. */
async function proxy(target: string): Promise<{ base: string; drop: () => void }> {
  const upstreamPort = Number(new URL(target).port);
  const open = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPort, "127.0.0.1");
    const pair: [Socket, Socket] = [client, upstream];
    open.add(pair);
    const close = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close).pipe(upstream);
    upstream.on("error", close).on("close", close).pipe(client);
  });
  const port = await freePort();
  await new Promise<void>((ok) => server.listen(port, "127.0.0.1", ok));
  cleanups.push(() => new Promise<void>((ok) => server.close(() => ok())));
  return {
    base: `http://127.0.0.1:${port}`,
    drop: () => {
      for (const [client, upstream] of open) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      open.clear();
    },
  };
}

const sockets = { opened: 0 };
const wsSocket = (url: string, headers: Record<string, string>): SocketLike => {
  sockets.opened += 1;
  return new WebSocket(url, { headers }) as unknown as SocketLike;
};

function newClient(base: string, token: string) {
  const statuses: Status[] = [];
  const client = new PortfolioClient({ baseUrl: base, token, socket: wsSocket, logger: quiet });
  client.onStatus((s) => statuses.push(s));
  cleanups.push(() => client.stop());
  return { client, statuses };
}

async function order(base: string, token: string, clientOrderId: string, qty: string) {
  const response = await fetch(`${base}/dev/orders`, {
    method: "POST",
    headers: { cookie: `session=${token}`, "content-type": "application/json" },
    body: JSON.stringify({ clientOrderId, symbol: "TSLA", side: "buy", type: "market", qty }),
  });
  expect(response.status).toBe(202);
}

async function rest(base: string, token: string) {
  const response = await fetch(`${base}/api/portfolio`, { headers: { authorization: `Bearer ${token}` } });
  return parseBody(RestPortfolio, await response.json(), "GET /api/portfolio");
}

/**
 * What a view and a REST answer must agree on: everything but the account's
 * `timestamp`, which is when it was valued (at the latest marks).
 */
function comparable(view: Pick<PortfolioView, "seq" | "epoch" | "positions" | "orders" | "account">) {
  const bySymbol = [...view.positions].sort((a, b) => a.symbol.localeCompare(b.symbol));
  const byId = [...view.orders].sort((a, b) => a.orderId.localeCompare(b.orderId));
  const account = view.account ? { ...view.account, timestamp: undefined } : undefined;
  return { seq: view.seq, epoch: view.epoch, positions: bySymbol, orders: byId, account };
}

describe("the client against the real gateway", () => {
  it("resumes without loss across a killed socket", async () => {
    const base = await startDev();
    const net = await proxy(base);
    const token = jwt("alice");
    const { client, statuses } = newClient(net.base, token);
    client.start();
    await waitFor("live", () => client.getStatus() === "live");
    await order(base, token, "it-1", "1");
    await waitFor("it-1 in the state", () => client.getView().trades.length > 0 && client.getView().seq > 0);
    const before = client.getView().seq;

    // Kill the socket, and make history while the client is away.
    net.drop();
    await waitFor("reconnecting", () => client.getStatus() === "reconnecting");
    await order(base, token, "it-2", "2");
    await order(base, token, "it-3", "3");
    await waitFor("the missed orders filled", async () => (await rest(base, token)).trades.length >= 3 + 3);

    await waitFor("live again", () => client.getStatus() === "live", 10_000);
    const remote = await rest(base, token);
    await waitFor("the resume applied", () => client.getView().seq >= remote.seq);
    expect(client.getView().seq).toBeGreaterThan(before);
    expect(comparable(client.getView())).toEqual(
      comparable({ ...remote, epoch: remote.epoch ?? undefined, account: remote.account ?? undefined }),
    );
    const tradeIds = client.getView().trades.map((t) => t.tradeId);
    expect(new Set(tradeIds).size).toBe(tradeIds.length);
    // The resume was a batch from `since`, not a second snapshot.
    expect(client.stats.snapshots).toBe(1);
    expect(client.stats.reconnects).toBe(1);
    expect(client.stats.invalid).toBe(0);
    expect(statuses).toEqual(["live", "reconnecting", "live"]);
  });

  it("polls REST when the flag is off", async () => {
    const base = await startDev({ ENABLE_REALTIME_PORTFOLIO: "false" });
    const token = jwt("bob");
    const { client } = newClient(base, token);
    client.start();
    await waitFor("disabled", () => client.getStatus() === "disabled");
    await waitFor("a poll", () => client.stats.polls >= 1);
    // The starting portfolio may still be filling: polls converge on REST.
    await waitFor(
      "the state REST has",
      async () => {
        const remote = await rest(base, token);
        return remote.positions.length > 0 && client.getView().seq === remote.seq;
      },
      12_000,
    );
    expect(client.getLastClose()).toEqual({ code: 1013, reason: "Real-time portfolio disabled" });
  });

  it("treats an auth 1008 as terminal", async () => {
    const base = await startDev();
    const { client, statuses } = newClient(base, jwt("carol", "another-secret-another-secret-another-0"));
    const opened = sockets.opened;
    client.start();
    await waitFor("unauthorized", () => client.getStatus() === "unauthorized");
    expect(client.getLastClose()).toEqual({ code: 1008, reason: "Invalid token" });
    await new Promise((r) => setTimeout(r, 2_500)); // longer than the first backoff step
    expect(sockets.opened - opened).toBe(1);
    expect(statuses).toEqual(["unauthorized"]);
  });
});
