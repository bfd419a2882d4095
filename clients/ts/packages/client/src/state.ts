// The portfolio as the client knows it, and how snapshots, batches, events
// and REST answers merge into it. The same rules as the Rust client
// (client/src/state.rs):
//
// - every state-changing message carries `seq`, the highest user sequence
//   number it covers; one below the state's is stale and skipped, one at the
//   same `seq` is applied (the gateway's derived mark updates and settle
//   flushes repeat the current `seq`);
// - a snapshot replaces everything;
// - a position with quantity "0" is closed, an order with a closed status
//   leaves the open set, trades are kept newest first, unique, bounded.

import * as v from "valibot";
import {
  Account as AccountSchema,
  CHANNELS,
  CLOSED_ORDER_STATUSES,
  Position as PositionSchema,
  type Account,
  isDelta,
  type AccountDelta,
  type DeltaServerMessage,
  type FullServerMessage,
  type PositionDelta,
  type Channel,
  type Order,
  type Position,
  type RestPortfolio,
  type ServerMessage,
  type SnapshotData,
  type Trade,
} from "./wire.js";

/** The most recent trades a state keeps (the gateway's snapshot holds 50). */
export const DEFAULT_MAX_TRADES = 50;

/** A read-only view of the state: what the UI renders. */
export interface PortfolioView {
  /** The history `seq` belongs to; undefined until the gateway names one. */
  readonly epoch: string | undefined;
  /** The highest sequence number merged. */
  readonly seq: number;
  /** Open positions, by symbol. */
  readonly positions: readonly Position[];
  /** Open orders, newest submission first. */
  readonly orders: readonly Order[];
  /** The latest balances, once known. */
  readonly account: Account | undefined;
  /** Recent trades, newest execution first. */
  readonly trades: readonly Trade[];
}

/** What one merge changed. */
export interface Change {
  /** The channels whose data changed. */
  readonly channels: ReadonlySet<Channel>;
  /** The merge replaced the state (a snapshot, or REST adopted). */
  readonly replaced: boolean;
  /** Orders an update named (open or closed), e.g. to retire optimistic entries. */
  readonly orderIds?: readonly string[];
}

/** What merging a REST answer did. */
export interface RestMerge extends Change {
  /** REST was taken as the truth. */
  readonly adopted: boolean;
  /** Positions, orders and account that differed (same seq, or another epoch). */
  readonly differences: number;
}

const NOTHING: Change = { channels: new Set(), replaced: false };

/** A delta named a position or account the state does not hold in full. */
export class MissingBase extends Error {
  constructor(what: string) {
    super(`a delta of ${what} without the full object it applies to`);
  }
}
const CLOSED = new Set<string>(CLOSED_ORDER_STATUSES);

export function isClosedPosition(position: Position): boolean {
  return /^-?0+(\.0+)?$/.test(position.quantity);
}

export function isClosedOrder(order: Order): boolean {
  return CLOSED.has(order.status);
}

/**
 * The mutable state one client owns. Views are rebuilt per channel only
 * when that channel changed, so an unchanged channel keeps its arrays (and
 * React keeps its renders).
 */
export class PortfolioState {
  epoch: string | undefined;
  seq = 0;
  private positions = new Map<string, Position>();
  private orders = new Map<string, Order>();
  private account: Account | undefined;
  private trades: Trade[] = [];
  private cached: PortfolioView | undefined;

  constructor(private readonly maxTrades = DEFAULT_MAX_TRADES) {}

  /** Whether the state holds a history to resume from. */
  get resumable(): boolean {
    return this.epoch !== undefined;
  }

  /** The state as arrays; the same object until something changes. */
  view(): PortfolioView {
    this.cached ??= {
      epoch: this.epoch,
      seq: this.seq,
      positions: [...this.positions.values()].sort((a, b) => compare(a.symbol, b.symbol)),
      orders: [...this.orders.values()].sort(
        (a, b) => compare(b.submittedAt ?? "", a.submittedAt ?? "") || compare(a.orderId, b.orderId),
      ),
      account: this.account,
      // Newest execution first; trades of concurrent orders can arrive out
      // of time order (a stable sort keeps arrival order for equal times).
      trades: this.trades.slice().sort((a, b) => compare(b.executedAt, a.executedAt)),
    };
    return this.cached;
  }

  /**
   * Merges one message from the socket. Deltas (`"delta": true`) merge
   * over what the state holds (`{...old, ...update}`); one of a position or
   * account it does not hold throws {@link MissingBase}, changing nothing.
   */
  apply(delivered: ServerMessage): Change {
    if (isDelta(delivered)) return this.applyDelta(delivered);
    const message: FullServerMessage = delivered;
    switch (message.type) {
      case "snapshot":
        this.replace(message.epoch, message.seq, message.data);
        return { channels: new Set(CHANNELS), replaced: true };
      case "subscribed":
        this.learnEpoch(message.epoch);
        return NOTHING;
      case "position_update":
        return this.advance(message.seq, () => this.putPosition(message.data), ["positions"]);
      case "order_update":
        return this.advance(message.seq, () => this.putOrder(message.data), ["orders"], [message.data.orderId]);
      case "account_update":
        return this.advance(message.seq, () => (this.account = message.data), ["account"]);
      case "trade_executed":
        return this.advance(message.seq, () => this.putTrade(message.data), ["trades"]);
      case "batch": {
        const { positions, orders, account, trades } = message.data;
        const channels: Channel[] = [];
        if (positions.length > 0) channels.push("positions");
        if (orders.length > 0) channels.push("orders");
        if (account) channels.push("account");
        if (trades.length > 0) channels.push("trades");
        return this.advance(
          message.seq,
          () => {
            positions.forEach((p) => this.putPosition(p));
            orders.forEach((o) => this.putOrder(o));
            if (account) this.account = account;
            trades.forEach((t) => this.putTrade(t));
          },
          channels,
          orders.map((o) => o.orderId),
        );
      }
      case "pong":
      case "error":
        return NOTHING;
    }
  }

  private applyDelta(message: DeltaServerMessage): Change {
    switch (message.type) {
      case "position_update": {
        const position = this.mergePosition(message.data);
        return this.advance(message.seq, () => this.putPosition(position), ["positions"]);
      }
      case "account_update": {
        const account = this.mergeAccount(message.data);
        return this.advance(message.seq, () => (this.account = account), ["account"]);
      }
      case "batch": {
        const { orders, trades } = message.data;
        // Everything is resolved before anything changes.
        const positions = message.data.positions.map((p) => this.mergePosition(p));
        const account = message.data.account && this.mergeAccount(message.data.account);
        const full: FullServerMessage = { ...message, delta: false, data: { positions, orders, account, trades } };
        return this.apply(full);
      }
    }
  }

  private mergePosition(delta: PositionDelta): Position {
    const merged = v.safeParse(PositionSchema, { ...this.positions.get(delta.symbol), ...delta });
    if (!merged.success) throw new MissingBase(`position ${delta.symbol}`);
    return merged.output;
  }

  private mergeAccount(delta: AccountDelta): Account {
    const merged = v.safeParse(AccountSchema, { ...this.account, ...delta });
    if (!merged.success) throw new MissingBase("the account");
    return merged.output;
  }

  /**
   * Merges a REST answer (already limited to the subscribed channels):
   * adopted when it is ahead or names another history, compared when it is
   * at the same seq (and adopted if it differs: REST is the truth), ignored
   * when it is behind.
   */
  mergeRest(rest: RestPortfolio, channels: readonly Channel[]): RestMerge {
    const remote = PortfolioState.fromRest(rest, channels, this.maxTrades);
    const all = new Set<Channel>(CHANNELS);
    if (this.epoch !== undefined && remote.epoch !== undefined && this.epoch !== remote.epoch) {
      const differences = this.differences(remote);
      this.adopt(remote);
      return { channels: all, replaced: true, adopted: true, differences };
    }
    if (remote.seq > this.seq) {
      this.adopt(remote);
      return { channels: all, replaced: true, adopted: true, differences: 0 };
    }
    if (remote.seq < this.seq) return { ...NOTHING, adopted: false, differences: 0 };
    const learnt = this.learnEpoch(remote.epoch);
    const differences = this.differences(remote);
    if (differences > 0) {
      this.adopt(remote);
      return { channels: all, replaced: true, adopted: true, differences };
    }
    return { channels: new Set(), replaced: learnt, adopted: false, differences: 0 };
  }

  /** Forgets what `channels` no longer deliver. */
  retain(channels: readonly Channel[]): Change {
    const dropped = CHANNELS.filter((c) => !channels.includes(c));
    for (const channel of dropped) {
      if (channel === "positions") this.positions.clear();
      if (channel === "orders") this.orders.clear();
      if (channel === "account") this.account = undefined;
      if (channel === "trades") this.trades = [];
    }
    this.cached = undefined;
    return { channels: new Set(dropped), replaced: false };
  }

  /**
   * How many positions, orders and account values differ (a key on one
   * side only counts once). Trades are a bounded recent list, not state.
   */
  differences(other: PortfolioState): number {
    return (
      keyedDifferences(this.positions, other.positions) +
      keyedDifferences(this.orders, other.orders) +
      (sameAccount(this.account, other.account) ? 0 : 1)
    );
  }

  static fromRest(rest: RestPortfolio, channels: readonly Channel[], maxTrades = DEFAULT_MAX_TRADES): PortfolioState {
    const state = new PortfolioState(maxTrades);
    state.replace(rest.epoch ?? undefined, rest.seq, {
      positions: rest.positions,
      orders: rest.orders,
      account: rest.account ?? undefined,
      trades: rest.trades,
    });
    state.retain(channels);
    return state;
  }

  private replace(epoch: string | undefined, seq: number, data: SnapshotData): void {
    this.epoch = epoch;
    this.seq = seq;
    this.positions.clear();
    this.orders.clear();
    this.trades = [];
    data.positions.forEach((p) => this.putPosition(p));
    data.orders.forEach((o) => this.putOrder(o));
    this.account = data.account;
    data.trades.forEach((t) => this.putTrade(t));
    this.cached = undefined;
  }

  private adopt(remote: PortfolioState): void {
    this.epoch = remote.epoch;
    this.seq = remote.seq;
    this.positions = new Map(remote.positions);
    this.orders = new Map(remote.orders);
    this.account = remote.account;
    this.trades = remote.trades.slice();
    this.cached = undefined;
  }

  private advance(seq: number | undefined, change: () => void, channels: Channel[], orderIds?: string[]): Change {
    if (seq !== undefined && seq < this.seq) return NOTHING;
    change();
    if (seq !== undefined) this.seq = seq;
    this.cached = undefined;
    return orderIds
      ? { channels: new Set(channels), replaced: false, orderIds }
      : { channels: new Set(channels), replaced: false };
  }

  private learnEpoch(epoch: string | undefined): boolean {
    if (this.epoch === undefined && epoch !== undefined) {
      this.epoch = epoch;
      this.cached = undefined;
      return true;
    }
    return false;
  }

  private putPosition(position: Position): void {
    if (isClosedPosition(position)) this.positions.delete(position.symbol);
    else this.positions.set(position.symbol, position);
  }

  private putOrder(order: Order): void {
    if (isClosedOrder(order)) this.orders.delete(order.orderId);
    else this.orders.set(order.orderId, order);
  }

  /** Trades arrive oldest first; each goes in front, once. */
  private putTrade(trade: Trade): void {
    if (this.trades.some((t) => t.tradeId === trade.tradeId)) return;
    this.trades.unshift(trade);
    if (this.trades.length > this.maxTrades) this.trades.length = this.maxTrades;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function keyedDifferences<V extends object>(a: Map<string, V>, b: Map<string, V>): number {
  let count = 0;
  for (const [key, value] of a) if (!same(value, b.get(key))) count += 1;
  for (const key of b.keys()) if (!a.has(key)) count += 1;
  return count;
}

/**
 * Accounts are equal whatever their `timestamp`: the gateway stamps an
 * account with the time it valued it at the latest marks, so two answers a
 * moment apart differ there without any event between them.
 */
function sameAccount(a: Account | undefined, b: Account | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return same({ ...a, timestamp: "" }, { ...b, timestamp: "" });
}

/** Structural equality of two wire objects (flat, string-valued). */
function same(a: object | undefined, b: object | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  const left = Object.entries(a).filter(([, value]) => value !== undefined);
  const right = Object.entries(b).filter(([, value]) => value !== undefined);
  if (left.length !== right.length) return false;
  const other = b as Record<string, unknown>;
  return left.every(([key, value]) => other[key] === value);
}
