// The portfolio client: one resumable WebSocket session after another, the
// REST fallback, and the state they feed. It mirrors the Rust client
// (client/src/driver.rs, session.rs): the same statuses, the same close
// table, the same backoff, the same merge rules.
//
// Framework-free and DOM-free: it needs `WebSocket` (or a factory), `fetch`,
// `setTimeout` and `AbortController`, which browsers, React Native and
// Node ≥ 20 (with the `ws` package for the socket) all have.

import { BACKOFF_DEFAULTS, cappedDelay, reconnectDelay, restartDelay, type BackoffOptions } from "./backoff.js";
import { reconnectAfter } from "./close.js";
import { MissingBase, PortfolioState, type Change, type PortfolioView, type RestMerge } from "./state.js";
import {
  CHANNELS,
  Health,
  RestPortfolio,
  decodeServerMessage,
  parseBody,
  type Channel,
  type ClientMessage,
  type ServerMessage,
} from "./wire.js";

/**
 * Where the client stands. `unauthorized` and `closed` are final.
 * - connecting: the first attempt is under way;
 * - live: subscribed, updates stream in;
 * - reconnecting: the socket dropped; the next attempt is scheduled;
 * - polling: the socket failed too often; REST every 5 s while it is retried in the background;
 * - disabled: real-time is off for this user (close 1013 or `/api/health`); REST polling;
 * - unauthorized: the gateway refused the credentials; sign in and start a new client;
 * - closed: `stop()` was called.
 */
export type Status = "connecting" | "live" | "reconnecting" | "polling" | "disabled" | "unauthorized" | "closed";

/** The part of the WebSocket API the client uses (browsers, React Native and `ws` have it). */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** Opens a socket; `headers` holds `Authorization` when a token is configured. */
export type SocketFactory = (url: string, headers: Record<string, string>) => SocketLike;

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface PortfolioClientOptions {
  /** The gateway's base URL, e.g. `https://portfolio.example.com` (REST and, with ws/wss, the socket). */
  baseUrl: string;
  /** A bearer token (native apps, Node). Browsers leave it out and use the `session` cookie. */
  token?: string | (() => string | undefined);
  /** The channels to subscribe to; default all four. */
  channels?: readonly Channel[];
  /** Ask for field deltas (docs/protocol.md, "Field deltas"); default true. The state merges them. */
  deltas?: boolean;
  /** Opens the socket; default `new WebSocket(url, [], { headers })` with the global `WebSocket`. */
  socket?: SocketFactory;
  /** Default the global `fetch`. */
  fetch?: typeof fetch;
  /** Uniform draws in [0, 1) for the jitter; default `Math.random`. */
  random?: () => number;
  /** Default: warnings to `console.warn`, nothing else. */
  logger?: Logger;
  /** Sees every valid message before it is merged (latency probes, tests). */
  onMessage?: (message: ServerMessage) => void;
  maxTrades?: number;
  /** Failed attempts in a row before REST polling takes over; default 10. */
  maxFailedAttempts?: number;
  pollIntervalMs?: number;
  reconcileIntervalMs?: number;
  pingIntervalMs?: number;
  /** Silence (no message, no pong) after which the link counts as dead; default 30 s. */
  silenceTimeoutMs?: number;
  /** Time for a socket to open and answer `subscribe`; default 10 s. */
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
}

/** Counters, for logs and tests. */
export interface ClientStats {
  messages: number;
  /** Frames that were not valid messages: counted, logged, dropped. */
  invalid: number;
  snapshots: number;
  batches: number;
  events: number;
  /** Sessions that went live after an earlier live one. */
  reconnects: number;
  polls: number;
  reconciles: number;
  /** Positions, orders and account values REST disagreed on. */
  reconcileDifferences: number;
  restFailures: number;
  deadLinks: number;
}

/** How the last socket was closed by the gateway. */
export interface CloseInfo {
  code: number;
  reason: string;
}

export type ChangeListener = (view: PortfolioView, change: Change) => void;

type Ended =
  | { kind: "closed"; code: number; reason: string }
  | { kind: "failed"; why: string }
  | { kind: "dead" }
  | { kind: "refused" }
  | { kind: "stopped" };

type Next = "unauthorized" | "stop" | "restart" | "disabled" | "backoff";

/** The one mapping from how a session ended to what happens next (client/src/close.rs). */
export function nextAfter(ended: Ended, live: boolean): Next {
  switch (ended.kind) {
    case "stopped":
      return "stop";
    case "refused":
      return "unauthorized";
    case "closed":
      switch (reconnectAfter(ended.code, ended.reason)) {
        case "never":
          return "unauthorized";
        case "poll":
          return "disabled";
        // A restart close before `subscribed` is a plain failure, so a gateway
        // that keeps closing new sockets with 1012 cannot make clients spin.
        case "immediately":
          return live ? "restart" : "backoff";
        case "backoff":
          return "backoff";
      }
      return "backoff";
    case "failed":
    case "dead":
      return "backoff";
  }
}

class Unauthorized extends Error {}

interface Session {
  socket: SocketLike;
  live: boolean;
  ended: boolean;
  lastHeard: number;
  timers: ReturnType<typeof setTimeout>[];
  intervals: ReturnType<typeof setInterval>[];
}

const consoleLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (message, fields) => console.warn(`[portfolio-stream] ${message}`, fields ?? {}),
};

function defaultSocket(url: string, headers: Record<string, string>): SocketLike {
  const WS = (globalThis as { WebSocket?: new (url: string, protocols?: string[], options?: unknown) => SocketLike })
    .WebSocket;
  if (!WS) throw new Error("no global WebSocket: pass `socket` (e.g. from the `ws` package)");
  // Browsers ignore the third argument (they send the cookie); React Native
  // and `ws` send the headers.
  return Object.keys(headers).length > 0 ? new WS(url, [], { headers }) : new WS(url);
}

export class PortfolioClient {
  readonly stats: ClientStats = {
    messages: 0,
    invalid: 0,
    snapshots: 0,
    batches: 0,
    events: 0,
    reconnects: 0,
    polls: 0,
    reconciles: 0,
    reconcileDifferences: 0,
    restFailures: 0,
    deadLinks: 0,
  };
  private readonly options: Required<
    Omit<PortfolioClientOptions, "token" | "channels" | "onMessage" | "backoff" | "baseUrl" | "deltas">
  > & { backoff: BackoffOptions };
  private readonly base: string;
  private readonly wsUrl: string;
  private channels: Channel[];
  private state: PortfolioState;
  private status: Status = "connecting";
  private lastClose: CloseInfo | undefined;
  private readonly changeListeners = new Set<ChangeListener>();
  private readonly statusListeners = new Set<(status: Status) => void>();
  private running = false;
  private session: Session | undefined;
  private failures = 0;
  private disabled = false;
  private beenLive = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private poller: ReturnType<typeof setInterval> | undefined;
  private rest: Promise<RestMerge> | undefined;

  constructor(private readonly config: PortfolioClientOptions) {
    this.base = config.baseUrl.replace(/\/+$/, "");
    if (!/^https?:\/\//.test(this.base)) throw new Error(`baseUrl must be http(s)://…, got ${config.baseUrl}`);
    this.wsUrl = `${this.base.replace(/^http/, "ws")}/ws/portfolio`;
    this.channels = [...(config.channels ?? CHANNELS)];
    this.options = {
      socket: config.socket ?? defaultSocket,
      fetch: config.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      random: config.random ?? Math.random,
      logger: config.logger ?? consoleLogger,
      maxTrades: config.maxTrades ?? 50,
      maxFailedAttempts: config.maxFailedAttempts ?? 10,
      pollIntervalMs: config.pollIntervalMs ?? 5_000,
      reconcileIntervalMs: config.reconcileIntervalMs ?? 60_000,
      pingIntervalMs: config.pingIntervalMs ?? 15_000,
      silenceTimeoutMs: config.silenceTimeoutMs ?? 30_000,
      connectTimeoutMs: config.connectTimeoutMs ?? 10_000,
      requestTimeoutMs: config.requestTimeoutMs ?? 10_000,
      backoff: { ...BACKOFF_DEFAULTS, ...config.backoff },
    };
    this.state = new PortfolioState(this.options.maxTrades);
  }

  /**
   * Starts connecting; does nothing while running. A stopped (or refused)
   * client can be started again, e.g. after a new sign-in, and resumes from
   * the state it holds.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    this.disabled = false;
    this.setStatus("connecting");
    void this.attempt();
  }

  /** Closes the socket, stops polling; the status becomes `closed`. */
  stop(): void {
    if (this.session) this.end(this.session, { kind: "stopped" });
    this.finish("closed");
  }

  getStatus(): Status {
    return this.status;
  }

  getView(): PortfolioView {
    return this.state.view();
  }

  getChannels(): readonly Channel[] {
    return this.channels;
  }

  /** How the gateway last closed a socket, if it did. */
  getLastClose(): CloseInfo | undefined {
    return this.lastClose;
  }

  onStatus(listener: (status: Status) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  onChange(listener: ChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Adds channels: a live session asks for a fresh snapshot of all of them. */
  subscribe(channels: readonly Channel[]): void {
    const added = channels.filter((c) => !this.channels.includes(c));
    if (added.length === 0) return;
    this.channels = CHANNELS.filter((c) => this.channels.includes(c) || added.includes(c));
    if (this.session?.live) {
      this.send(this.session, { type: "subscribe", channels: this.channels, deltas: this.config.deltas ?? true });
    }
  }

  /** Drops channels and what they delivered. */
  unsubscribe(channels: readonly Channel[]): void {
    const removed = channels.filter((c) => this.channels.includes(c));
    if (removed.length === 0) return;
    this.channels = this.channels.filter((c) => !removed.includes(c));
    if (this.session?.live) this.send(this.session, { type: "unsubscribe", channels: removed });
    this.emit(this.state.retain(this.channels));
  }

  /**
   * Fetches `GET /api/portfolio` and merges it (REST is the truth when it
   * is ahead or disagrees); concurrent calls share one request.
   */
  refresh(): Promise<PortfolioView> {
    return this.fetchRest().then(() => this.state.view());
  }

  // --- the attempt loop -------------------------------------------------

  private async attempt(): Promise<void> {
    this.retry = undefined;
    if (!this.running) return;
    if (this.offline()) {
      let enabled: boolean | undefined;
      try {
        enabled = await this.realtimeEnabled();
      } catch (error) {
        if (error instanceof Unauthorized) return this.finish("unauthorized");
        enabled = undefined; // unknown: the gateway may be down; try the socket
      }
      if (!this.running) return;
      if (enabled === false) {
        this.disabled = true;
        this.goOffline();
        return this.schedule(cappedDelay(this.options.random(), this.options.backoff));
      }
    }
    this.open();
  }

  private open(): void {
    let socket: SocketLike;
    try {
      socket = this.options.socket(this.wsUrl, this.headers());
    } catch (error) {
      this.options.logger.warn("Cannot open the socket.", { error: String(error) });
      return this.after({ kind: "failed", why: String(error) }, false);
    }
    const session: Session = { socket, live: false, ended: false, lastHeard: Date.now(), timers: [], intervals: [] };
    this.session = session;
    socket.onopen = () => {
      session.lastHeard = Date.now();
      const subscribe: ClientMessage = { type: "subscribe", channels: this.channels };
      if (this.config.deltas ?? true) subscribe.deltas = true;
      if (this.state.resumable) {
        subscribe.since = this.state.seq;
        if (this.state.epoch !== undefined) subscribe.epoch = this.state.epoch;
      }
      this.send(session, subscribe);
    };
    socket.onmessage = (event) => this.onFrame(session, event.data);
    socket.onclose = (event) => this.end(session, { kind: "closed", code: event.code, reason: event.reason });
    socket.onerror = () => {}; // a close event follows
    session.timers.push(
      setTimeout(() => {
        if (!session.live) this.end(session, { kind: "failed", why: "no answer to subscribe in time" });
      }, this.options.connectTimeoutMs),
    );
    session.intervals.push(setInterval(() => this.send(session, { type: "ping" }), this.options.pingIntervalMs));
    this.watchSilence(session);
  }

  /** Ends the session once the link has been silent too long (re-armed, no per-message timer). */
  private watchSilence(session: Session): void {
    const due = session.lastHeard + this.options.silenceTimeoutMs - Date.now();
    session.timers.push(
      setTimeout(
        () => {
          if (session.ended) return;
          if (Date.now() - session.lastHeard >= this.options.silenceTimeoutMs) {
            this.stats.deadLinks += 1;
            this.options.logger.info("No message or pong in time; reconnecting.");
            this.end(session, { kind: "dead" });
          } else {
            this.watchSilence(session);
          }
        },
        Math.max(due, 0),
      ),
    );
  }

  private onFrame(session: Session, data: unknown): void {
    if (session.ended) return;
    session.lastHeard = Date.now();
    this.stats.messages += 1;
    if (typeof data !== "string") {
      this.stats.invalid += 1;
      this.options.logger.warn("Binary frame dropped.");
      return;
    }
    const decoded = decodeServerMessage(data);
    if (!decoded.ok) {
      this.stats.invalid += 1;
      this.options.logger.warn("Invalid message dropped.", { invalid: decoded.invalid, frame: data.slice(0, 200) });
      return;
    }
    const message = decoded.message;
    this.config.onMessage?.(message);
    switch (message.type) {
      case "snapshot":
        this.stats.snapshots += 1;
        break;
      case "batch":
        this.stats.batches += 1;
        break;
      case "error":
        this.options.logger.warn("The gateway refused a message.", { code: message.code, message: message.message });
        break;
      case "subscribed":
      case "pong":
        break;
      default:
        this.stats.events += 1;
    }
    let change: Change;
    try {
      change = this.state.apply(message);
    } catch (error) {
      if (!(error instanceof MissingBase)) throw error;
      // The gateway sends full objects first; a delta without one means the
      // state cannot be trusted: resume (its batch is full).
      this.stats.invalid += 1;
      this.options.logger.warn("Delta without a base; resuming.", { error: error.message });
      return this.end(session, { kind: "failed", why: error.message });
    }
    if (message.type === "subscribed" && !session.live) {
      session.live = true;
      this.wentLive(session);
    }
    this.emit(change);
  }

  private wentLive(session: Session): void {
    if (this.beenLive) this.stats.reconnects += 1;
    this.beenLive = true;
    this.failures = 0;
    this.disabled = false;
    this.stopPolling();
    this.setStatus("live");
    session.intervals.push(setInterval(() => void this.reconcile(session), this.options.reconcileIntervalMs));
  }

  private async reconcile(session: Session): Promise<void> {
    if (session.ended || !session.live) return;
    try {
      const merge = await this.fetchRest();
      this.stats.reconciles += 1;
      this.options.logger.debug("Reconciled.", { adopted: merge.adopted, differences: merge.differences });
    } catch (error) {
      if (error instanceof Unauthorized) this.end(session, { kind: "refused" });
    }
  }

  /** Ends `session` once; decides what comes next. */
  private end(session: Session, ended: Ended): void {
    if (session.ended) return;
    session.ended = true;
    session.timers.forEach(clearTimeout);
    session.intervals.forEach(clearInterval);
    const socket = session.socket;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    if (ended.kind !== "closed") {
      try {
        socket.close(1000, ended.kind === "stopped" ? "Client closing" : "Client reconnecting");
      } catch {
        // already closed
      }
    } else {
      this.lastClose = { code: ended.code, reason: ended.reason };
    }
    if (this.session === session) this.session = undefined;
    this.after(ended, session.live);
  }

  private after(ended: Ended, live: boolean): void {
    if (!this.running) return;
    const next = nextAfter(ended, live);
    this.options.logger.debug("Session ended.", { ended, live, next, failures: this.failures });
    const { backoff, random } = this.options;
    switch (next) {
      case "stop":
        return this.finish("closed");
      case "unauthorized":
        return this.finish("unauthorized");
      case "restart":
        this.failures = 0;
        this.setStatus("reconnecting");
        return this.schedule(restartDelay(random(), backoff));
      case "disabled":
        this.disabled = true;
        this.goOffline();
        return this.schedule(cappedDelay(random(), backoff));
      case "backoff":
        this.failures = live ? 1 : this.failures + 1;
        if (this.offline()) {
          this.goOffline();
          return this.schedule(cappedDelay(random(), backoff));
        }
        this.setStatus("reconnecting");
        return this.schedule(reconnectDelay(this.failures, random(), backoff));
    }
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.retry = setTimeout(() => void this.attempt(), delayMs);
  }

  private offline(): boolean {
    return this.disabled || this.failures >= this.options.maxFailedAttempts;
  }

  private goOffline(): void {
    this.setStatus(this.disabled ? "disabled" : "polling");
    if (this.poller !== undefined) return;
    this.poller = setInterval(() => void this.poll(), this.options.pollIntervalMs);
    void this.poll();
  }

  private stopPolling(): void {
    if (this.poller !== undefined) clearInterval(this.poller);
    this.poller = undefined;
  }

  private async poll(): Promise<void> {
    try {
      await this.fetchRest();
      this.stats.polls += 1;
    } catch (error) {
      if (error instanceof Unauthorized) {
        this.options.logger.info("REST refused the credentials; stopping.");
        if (this.session) this.end(this.session, { kind: "refused" });
        this.finish("unauthorized");
      }
    }
  }

  private finish(status: Status): void {
    this.running = false;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
    this.stopPolling();
    if (this.session) this.end(this.session, { kind: "stopped" });
    this.setStatus(status);
  }

  // --- REST ---------------------------------------------------------------

  private fetchRest(): Promise<RestMerge> {
    this.rest ??= this.get("/api/portfolio")
      .then(async (response) => {
        if (!response.ok) throw new Error(`GET /api/portfolio: HTTP ${response.status}`);
        const rest = parseBody(RestPortfolio, await response.json(), "GET /api/portfolio");
        const merge = this.state.mergeRest(rest, this.channels);
        if (merge.differences > 0) {
          this.stats.reconcileDifferences += merge.differences;
          this.options.logger.warn("State differed from the REST snapshot; adopted REST.", {
            differences: merge.differences,
          });
        }
        this.emit(merge);
        return merge;
      })
      .catch((error: unknown) => {
        if (!(error instanceof Unauthorized)) {
          this.stats.restFailures += 1;
          this.options.logger.debug("REST request failed.", { error: String(error) });
        }
        throw error;
      })
      .finally(() => {
        this.rest = undefined;
      });
    return this.rest;
  }

  /** `GET /api/health`'s flag for this user; throws when it cannot tell. */
  private async realtimeEnabled(): Promise<boolean> {
    const response = await this.get("/api/health");
    if (!response.ok && response.status !== 503) throw new Error(`GET /api/health: HTTP ${response.status}`);
    const health = parseBody(Health, await response.json(), "GET /api/health");
    return health.features.realtimePortfolio;
  }

  private async get(path: string): Promise<Response> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.options.requestTimeoutMs);
    try {
      const headers = this.headers();
      const response = await this.options.fetch(`${this.base}${path}`, {
        headers,
        credentials: Object.keys(headers).length > 0 ? "omit" : "include",
        signal: abort.signal,
      });
      if (response.status === 401 || response.status === 403) throw new Unauthorized(`${path}: ${response.status}`);
      return response;
    } finally {
      clearTimeout(timer);
    }
  }

  // --- helpers ------------------------------------------------------------

  private headers(): Record<string, string> {
    const token = typeof this.config.token === "function" ? this.config.token() : this.config.token;
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  private send(session: Session, message: ClientMessage): void {
    if (session.ended) return;
    try {
      session.socket.send(JSON.stringify(message));
    } catch {
      // not open yet or already closing: the close event decides
    }
  }

  private emit(change: Change): void {
    if (change.channels.size === 0 && !change.replaced) return;
    const view = this.state.view();
    for (const listener of this.changeListeners) listener(view, change);
  }

  private setStatus(status: Status): void {
    if (this.status === status) return;
    this.status = status;
    this.options.logger.info("Status changed.", { status });
    for (const listener of this.statusListeners) listener(status);
  }
}
