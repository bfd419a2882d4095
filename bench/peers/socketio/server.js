// The socket node: Socket.IO 4 over the Redis Streams adapter, doing what the
// gateway does per connection: authenticate a JWT, put the socket in its
// user's room, and deliver the events another node publishes through Redis.
"use strict";

const http = require("node:http");
const { createClient } = require("redis");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-streams-adapter");
const jwt = require("jsonwebtoken");
const { env, envInt, roomOf, waitForStreamReader, onSignal } = require("./common");

async function main() {
  const port = envInt("PORT", 0);
  const secret = env("JWT_SECRET");
  // The adapter duplicates this client for its stream reader; the name lets
  // `waitForStreamReader` find that reader in CLIENT LIST.
  const name = `bench-socketio-server-${process.pid}`;
  const redis = createClient({ url: env("REDIS_URL"), name });
  redis.on("error", (e) => console.error(`redis: ${e.message}`));
  await redis.connect();

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(redis),
    transports: ["websocket"],
    perMessageDeflate: false, // socket.io 4's default, stated: frames go uncompressed, as the gateway's
    serveClient: false,
    // Optional, for benches holding idle sockets they do not read (pings unanswered).
    pingInterval: envInt("PING_INTERVAL_MS", 25_000),
    pingTimeout: envInt("PING_TIMEOUT_MS", 20_000),
  });

  io.use((socket, next) => {
    let claims;
    try {
      claims = jwt.verify(String(socket.handshake.auth?.token ?? ""), secret, { algorithms: ["HS256"] });
    } catch {
      return next(new Error("unauthorized"));
    }
    if (typeof claims.sub !== "string" || claims.sub === "") {
      return next(new Error("unauthorized"));
    }
    // Joined here, before the CONNECT ack (`40{"sid":…}`) is written: once the
    // client sees the ack, events to its room reach it. A join in the
    // "connection" handler would come after the ack.
    socket.join(roomOf(claims.sub));
    next();
  });

  // The adapter reads the stream from "$" (entries added after its first
  // XREAD): until that XREAD is in, a published event would be missed.
  await waitForStreamReader(redis, name);
  httpServer.listen(port, "127.0.0.1", () => {
    console.log(`READY ${httpServer.address().port}`);
  });

  onSignal(async () => {
    await io.close(); // disconnects every socket, closes the adapter and the HTTP server
    redis.destroy();
  });
}

main().catch((e) => {
  console.error(`server: ${e.stack ?? e}`);
  process.exit(1);
});
