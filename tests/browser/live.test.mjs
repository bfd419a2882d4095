// The dev-mode live page in headless Chromium: sign in as a demo user, see
// the status go live, see a position's P&L change and flash, then restart
// the server and see the page go reconnecting → live again.
//
// Needs the `portfolio-dev` binary (PORTFOLIO_DEV_BIN, default
// $CARGO_TARGET_DIR/debug/portfolio-dev, with ./target as the default target
// directory) and Chromium (CHROMIUM, default /usr/bin/chromium).
// Run: cargo build -p portfolio-dev && (cd tests/browser && npm ci && npm test)

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
const TARGET = resolve(ROOT, process.env.CARGO_TARGET_DIR ?? "target");
const BIN = process.env.PORTFOLIO_DEV_BIN ?? join(TARGET, "debug/portfolio-dev");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SECRET = "browser-test-secret-browser-test-secret-0123";
const SCREENSHOT = process.env.SCREENSHOT ?? join(ROOT, "docs/live-page.png");

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
    server.on("error", fail);
  });
}

function startDev(port) {
  const child = spawn(BIN, [], {
    env: { PATH: process.env.PATH, GATEWAY_ADDR: `127.0.0.1:${port}`, JWT_SECRET: SECRET, DEV_TICK_MS: "200", DEV_ORDER_MS: "1500", RUST_LOG: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return child;
}

async function waitFor(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGINT");
  await exited;
}

test("the live page goes live, flashes P&L changes and rides through a restart", { timeout: 120000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let dev = startDev(port);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Playwright gives every launch a fresh, empty profile.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await waitFor("the server", async () => (await fetch(`${base}/api/health`)).ok);
    await page.goto(base);
    // Not signed in: the socket closes 1008 and the page offers the demo users.
    await page.locator('#demo-users button[data-user="alice"]').click();
    await waitFor("status live", async () => (await page.getAttribute("#status", "data-status")) === "live");
    await waitFor("positions", async () => (await page.locator("#positions tbody tr").count()) > 0);

    // Prices tick every 200 ms: some P&L cell changes and flashes.
    const flashed = await waitFor("a flashing P&L cell", async () => {
      const count = await page.locator("#positions td.pnl.flash-up, #positions td.pnl.flash-down").count();
      return count > 0;
    });
    assert.ok(flashed);
    const before = await page.locator("#positions td.pnl").allTextContents();
    await waitFor("a P&L change", async () => {
      const now = await page.locator("#positions td.pnl").allTextContents();
      return JSON.stringify(now) !== JSON.stringify(before);
    });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Restart the server: the page sees the 1012 close and reconnects.
    await stop(dev);
    await waitFor("status reconnecting", async () => {
      const status = await page.getAttribute("#status", "data-status");
      return status === "reconnecting" || status === "polling";
    });
    dev = startDev(port);
    await waitFor("status live again", async () => (await page.getAttribute("#status", "data-status")) === "live", 60000);
    await waitFor("positions again", async () => (await page.locator("#positions tbody tr").count()) > 0);
  } finally {
    await browser.close();
    await stop(dev);
  }
});
