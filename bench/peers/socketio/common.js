// What the two nodes share: configuration, the room naming, readiness, shutdown.
"use strict";

/** A required environment variable; a missing one stops the process. */
function env(name) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}

/** An optional whole-number environment variable, or `fallback`. */
function envInt(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === "") return fallback;
  if (!/^[0-9]+$/.test(value)) {
    console.error(`${name} must be a whole number, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return Number(value);
}

/** The room of one user: the gateway's per-user channel. */
function roomOf(user) {
  return `user:${user}`;
}

/**
 * Resolves once a connection named `name` is blocked in XREAD, i.e. the
 * adapter's stream reader is in place and will see every later entry.
 */
async function waitForStreamReader(redis, name, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const clients = await redis.sendCommand(["CLIENT", "LIST"]);
    const reading = clients
      .split("\n")
      .some((line) => line.includes(` name=${name} `) && line.includes(" cmd=xread"));
    if (reading) return;
    if (Date.now() > deadline) throw new Error("the adapter's stream reader did not start");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Largest time a shutdown may take before the process exits anyway. */
const GRACE_MS = 2000;

/**
 * Runs `close` (may be async) on SIGTERM or SIGINT, then exits 0. The exit is
 * explicit: the adapter's reader may sit in a blocking XREAD for seconds.
 */
function onSignal(close) {
  const stop = () => {
    setTimeout(() => process.exit(0), GRACE_MS).unref();
    Promise.resolve()
      .then(close)
      .catch((e) => console.error(`shutdown: ${e.message}`))
      .finally(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

module.exports = { env, envInt, roomOf, waitForStreamReader, onSignal };
