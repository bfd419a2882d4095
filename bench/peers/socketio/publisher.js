// The publishing node: a Socket.IO server with no sockets of its own, whose
// emits reach the socket nodes through the Redis stream, plus a plain HTTP
// endpoint the bench posts events to.
//
//   POST /publish {"users": ["u1", …], "event": <JSON>}  → 204 once emitted
//   GET  /health                                        → 200
"use strict";

const http = require("node:http");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-streams-adapter");
const { env, envInt, roomOf, onSignal } = require("./common");

/** Largest request body accepted, in bytes. */
const MAX_BODY = 1 << 20;

async function main() {
  const port = envInt("PORT", 0);
  const redis = createClient({ url: env("REDIS_URL") });
  redis.on("error", (e) => console.error(`redis: ${e.message}`));
  await redis.connect();

  // Not attached to any HTTP server: it only publishes.
  const io = new Server({ adapter: createAdapter(redis) });

  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/health") {
      return res.writeHead(200).end();
    }
    if (req.method !== "POST" || req.url !== "/publish") {
      return fail(res, 404, "not found");
    }
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        fail(res, 413, "body too large");
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on("end", () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return fail(res, 400, "body is not JSON");
      }
      const users = body?.users;
      if (!Array.isArray(users) || users.length === 0 || !users.every((u) => typeof u === "string")) {
        return fail(res, 400, "users must be a non-empty array of strings");
      }
      if (!("event" in body)) {
        return fail(res, 400, "event is missing");
      }
      // Returns once the XADD is queued on the Redis connection, as
      // socket.io's emit does not wait for Redis to answer.
      io.to(users.map(roomOf)).emit("portfolio", body.event);
      res.writeHead(204).end();
    });
  });

  server.listen(port, "127.0.0.1", () => {
    console.log(`READY ${server.address().port}`);
  });

  onSignal(() => {
    server.close();
    server.closeAllConnections();
    redis.destroy();
  });
}

function fail(res, status, error) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error }) + "\n");
}

main().catch((e) => {
  console.error(`publisher: ${e.stack ?? e}`);
  process.exit(1);
});
