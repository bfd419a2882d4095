// What the browser tests share: free ports, the `portfolio-dev` process,
// waiting on conditions, signed ingest requests, and a TCP proxy between
// Chromium and the server that can drop every connection or refuse
// WebSocket upgrades (a network fault on loopback only).

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { createServer, connect } from "node:net";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const ROOT = resolve(import.meta.dirname, "../..");
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target");
const BIN = process.env.PORTFOLIO_DEV_BIN ?? join(TARGET, "debug/portfolio-dev");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const JWT_SECRET = "browser-test-secret-browser-test-secret-0123";
export const INGEST_SECRET = "browser-test-ingest-secret-0123456789";

export function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
    server.on("error", fail);
  });
}

/** Starts portfolio-dev on `port`; `env` adds to (or overrides) the defaults. */
export function startDev(port, env = {}) {
  return spawn(BIN, [], {
    env: {
      PATH: process.env.PATH,
      GATEWAY_ADDR: `127.0.0.1:${port}`,
      JWT_SECRET,
      INGEST_SECRET,
      DEV_TICK_MS: "200",
      DEV_ORDER_MS: "1500",
      RUST_LOG: "warn",
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

export async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGINT");
  await exited;
}

/** Polls `check` every 50 ms until it returns something truthy. */
export async function waitFor(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function waitForServer(base) {
  await waitFor("the server", async () => (await fetch(`${base}/api/health`)).ok);
}

/** Posts price ticks to the functions' route, signed like the feed signs them. */
export async function postTicks(base, ticks) {
  const body = JSON.stringify({ ticks });
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac("sha256", INGEST_SECRET).update(`${t}.${body}`).digest("hex");
  const response = await fetch(`${base}/ingest/prices`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-webhook-signature": `t=${t},v1=${v1}` },
    body,
  });
  if (!response.ok) throw new Error(`ticks refused: ${response.status} ${await response.text()}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Playwright gives every launch a fresh, empty profile.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * A TCP proxy on loopback in front of `target`. `drop()` resets every open
 * connection; `blockSockets(true)` resets every WebSocket upgrade (REST
 * still passes).
 */
export async function startProxy(targetPort) {
  const port = await freePort();
  const open = new Set();
  let block = false;
  const server = createServer((client) => {
    client.once("data", (first) => {
      if (block && /upgrade:\s*websocket/i.test(first.toString("latin1"))) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(targetPort, "127.0.0.1");
      const pair = { client, upstream };
      open.add(pair);
      const close = () => {
        open.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    client.on("error", () => {});
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return {
    port,
    drop() {
      for (const { client, upstream } of open) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      open.clear();
    },
    blockSockets(on) {
      block = on;
    },
    close: () => new Promise((ok) => server.close(ok)),
  };
}

/** Records every value `#status[data-status]` takes, from the first paint on. */
export function recordStatuses(page) {
  return page.addInitScript(() => {
    window.__statuses = [];
    const seen = () => {
      const status = document.querySelector("#status")?.getAttribute("data-status");
      if (status && window.__statuses.at(-1) !== status) window.__statuses.push(status);
    };
    new MutationObserver(seen).observe(document, { subtree: true, childList: true, attributes: true });
  });
}

export const statuses = (page) => page.evaluate(() => window.__statuses);
export const status = (page) => page.getAttribute("#status", "data-status");

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
