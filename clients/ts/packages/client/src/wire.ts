// The wire types of docs/protocol.md, as valibot schemas: the one source of
// truth on this side. Every TypeScript type of a server message is inferred
// from its schema, and every message from the gateway is checked against it
// before anything reads it. The Rust types (common/src/protocol.rs,
// common/src/event.rs) are the other side of the contract; the golden files
// in test/golden, written by a Rust test from those types, hold the two
// together (docs/decisions.md, "TypeScript wire types").
//
// Money and quantities stay decimal strings: nothing here turns them into
// numbers.

import * as v from "valibot";

/** A decimal string as the gateway writes it: `"175.50"`, `"-3.08"`, `"0"`. */
export const Decimal = v.pipe(v.string(), v.regex(/^-?\d+(\.\d+)?$/, "a decimal string"));
/** An RFC 3339 instant in UTC with milliseconds: `"2026-01-03T15:30:45.123Z"`. */
export const Timestamp = v.pipe(v.string(), v.isoTimestamp("an RFC 3339 timestamp"));
const Seq = v.pipe(v.number(), v.integer(), v.minValue(0));

export const CHANNELS = ["positions", "orders", "account", "trades"] as const;
export const Channel = v.picklist(CHANNELS);
export type Channel = v.InferOutput<typeof Channel>;

export const Position = v.object({
  symbol: v.string(),
  quantity: Decimal,
  currentPrice: Decimal,
  entryPrice: Decimal,
  unrealizedPnl: Decimal,
  unrealizedPnlPercent: Decimal,
  marketValue: Decimal,
  side: v.picklist(["long", "short"]),
  strategyId: v.optional(v.string()),
  openedAt: v.optional(Timestamp),
});
export type Position = v.InferOutput<typeof Position>;

/** Order statuses after which an order leaves the open set. */
export const CLOSED_ORDER_STATUSES = ["filled", "canceled", "expired", "replaced", "rejected", "failed"] as const;
export const OrderStatus = v.picklist([
  "pending_new",
  "new",
  "accepted",
  "accepted_for_bidding",
  "partially_filled",
  "done_for_day",
  "pending_cancel",
  "pending_replace",
  "stopped",
  "suspended",
  "calculated",
  ...CLOSED_ORDER_STATUSES,
]);
export type OrderStatus = v.InferOutput<typeof OrderStatus>;
export const OrderSide = v.picklist(["buy", "sell"]);
export type OrderSide = v.InferOutput<typeof OrderSide>;
export const OrderType = v.picklist(["market", "limit", "stop", "stop_limit", "trailing_stop"]);
export type OrderType = v.InferOutput<typeof OrderType>;

export const Order = v.object({
  orderId: v.string(),
  brokerOrderId: v.optional(v.string()),
  symbol: v.string(),
  side: OrderSide,
  type: OrderType,
  status: OrderStatus,
  qty: Decimal,
  filledQty: Decimal,
  filledAvgPrice: v.optional(Decimal),
  limitPrice: v.optional(Decimal),
  stopPrice: v.optional(Decimal),
  submittedAt: v.optional(Timestamp),
  filledAt: v.optional(Timestamp),
  reason: v.optional(v.string()),
});
export type Order = v.InferOutput<typeof Order>;

export const Account = v.object({
  equity: Decimal,
  buyingPower: Decimal,
  cash: Decimal,
  portfolioValue: Decimal,
  dayPnl: Decimal,
  dayPnlPercent: Decimal,
  timestamp: Timestamp,
});
export type Account = v.InferOutput<typeof Account>;

export const Trade = v.object({
  tradeId: v.string(),
  symbol: v.string(),
  side: OrderSide,
  quantity: Decimal,
  price: Decimal,
  /** Realized P&L of a closing trade, when the broker says. */
  pnl: v.optional(Decimal),
  executedAt: Timestamp,
  strategyId: v.optional(v.string()),
});
export type Trade = v.InferOutput<typeof Trade>;

function envelopeOf<const T extends string, D extends v.GenericSchema, M extends v.GenericSchema>(
  type: T,
  data: D,
  delta: M,
) {
  return v.object({
    type: v.literal(type),
    seq: v.optional(Seq),
    timestamp: Timestamp,
    userId: v.string(),
    delta,
    data,
  });
}

/** An event's envelope: full objects (`delta` absent or `false`). */
function envelope<const T extends string, D extends v.GenericSchema>(type: T, data: D) {
  return envelopeOf(type, data, v.optional(v.literal(false)));
}

/** A message marked `"delta": true`: its positions and account carry only changed fields. */
function deltaEnvelope<const T extends string, D extends v.GenericSchema>(type: T, data: D) {
  return envelopeOf(type, data, v.literal(true));
}

/** A position's changed fields (docs/protocol.md, "Field deltas"); `symbol` always. */
export const PositionDelta = v.object({
  symbol: v.string(),
  quantity: v.optional(Decimal),
  currentPrice: v.optional(Decimal),
  entryPrice: v.optional(Decimal),
  unrealizedPnl: v.optional(Decimal),
  unrealizedPnlPercent: v.optional(Decimal),
  marketValue: v.optional(Decimal),
  side: v.optional(v.picklist(["long", "short"])),
  strategyId: v.optional(v.string()),
  openedAt: v.optional(Timestamp),
});
export type PositionDelta = v.InferOutput<typeof PositionDelta>;

/** An account's changed fields; `timestamp` always. */
export const AccountDelta = v.object({
  equity: v.optional(Decimal),
  buyingPower: v.optional(Decimal),
  cash: v.optional(Decimal),
  portfolioValue: v.optional(Decimal),
  dayPnl: v.optional(Decimal),
  dayPnlPercent: v.optional(Decimal),
  timestamp: Timestamp,
});
export type AccountDelta = v.InferOutput<typeof AccountDelta>;

const BatchData = v.object({
  positions: v.optional(v.array(Position), []),
  orders: v.optional(v.array(Order), []),
  account: v.optional(Account),
  trades: v.optional(v.array(Trade), []),
});

/** The state for the subscribed channels; trades oldest first. */
export const SnapshotData = v.object({
  positions: v.optional(v.array(Position), []),
  orders: v.optional(v.array(Order), []),
  account: v.optional(Account),
  trades: v.optional(v.array(Trade), []),
});
export type SnapshotData = v.InferOutput<typeof SnapshotData>;

export const ERROR_CODES = [
  "invalid_json",
  "unknown_type",
  "invalid_message",
  "message_too_large",
  "rate_limited",
  "binary_not_supported",
  "internal",
] as const;

const DeltaBatchData = v.object({
  positions: v.optional(v.array(PositionDelta), []),
  orders: v.optional(v.array(Order), []),
  account: v.optional(AccountDelta),
  trades: v.optional(v.array(Trade), []),
});

export const ServerMessage = v.variant("type", [
  v.variant("delta", [envelope("position_update", Position), deltaEnvelope("position_update", PositionDelta)]),
  envelope("order_update", Order),
  v.variant("delta", [envelope("account_update", Account), deltaEnvelope("account_update", AccountDelta)]),
  envelope("trade_executed", Trade),
  v.variant("delta", [envelope("batch", BatchData), deltaEnvelope("batch", DeltaBatchData)]),
  v.object({
    type: v.literal("subscribed"),
    channels: v.array(Channel),
    seq: Seq,
    epoch: v.optional(v.string()),
  }),
  v.object({
    type: v.literal("snapshot"),
    seq: Seq,
    epoch: v.optional(v.string()),
    timestamp: Timestamp,
    data: SnapshotData,
  }),
  v.object({
    type: v.literal("pong"),
    id: v.optional(v.union([v.number(), v.string()])),
    timestamp: Timestamp,
  }),
  v.object({
    type: v.literal("error"),
    code: v.picklist(ERROR_CODES),
    message: v.string(),
  }),
]);
export type ServerMessage = v.InferOutput<typeof ServerMessage>;
/** A message whose positions and account carry only changed fields. */
export type DeltaServerMessage = Extract<ServerMessage, { delta: true }>;
/** Every other message: full objects only. */
export type FullServerMessage = Exclude<ServerMessage, { delta: true }>;

export function isDelta(message: ServerMessage): message is DeltaServerMessage {
  return "delta" in message && message.delta === true;
}
/** The four events of the design note. */
export type EventMessage = Extract<
  ServerMessage,
  { type: "position_update" | "order_update" | "account_update" | "trade_executed" }
>;

/** `GET /api/portfolio`: the whole state; trades oldest first. */
export const RestPortfolio = v.object({
  epoch: v.optional(v.nullable(v.string())),
  seq: Seq,
  positions: v.optional(v.array(Position), []),
  orders: v.optional(v.array(Order), []),
  account: v.optional(v.nullable(Account)),
  trades: v.optional(v.array(Trade), []),
});
export type RestPortfolio = v.InferOutput<typeof RestPortfolio>;

/** `GET /api/health`; a missing flag means real-time is on. */
export const Health = v.object({
  status: v.optional(v.string()),
  features: v.optional(v.object({ realtimePortfolio: v.optional(v.boolean(), true) }), { realtimePortfolio: true }),
});
export type Health = v.InferOutput<typeof Health>;

/** What the client sends (docs/protocol.md, "Client → server"). */
export type ClientMessage =
  | { type: "subscribe"; channels: Channel[]; since?: number; epoch?: string; deltas?: boolean }
  | { type: "unsubscribe"; channels: Channel[] }
  | { type: "catch_up"; since_sequence: number; epoch?: string }
  | { type: "ping"; id?: number | string };

/** Why a text frame was dropped. */
export type Invalid = { kind: "json"; error: string } | { kind: "schema"; issues: string[] };

/**
 * Parses and validates one text frame. Never throws: an invalid frame comes
 * back as `{ ok: false }` with what was wrong.
 */
export function decodeServerMessage(
  text: string,
): { ok: true; message: ServerMessage } | { ok: false; invalid: Invalid } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, invalid: { kind: "json", error: String(error) } };
  }
  const result = v.safeParse(ServerMessage, json);
  if (result.success) return { ok: true, message: result.output };
  return { ok: false, invalid: { kind: "schema", issues: issueTexts(result.issues) } };
}

/** Validates a REST body against `schema`; throws a readable error. */
export function parseBody<S extends v.GenericSchema>(schema: S, body: unknown, what: string): v.InferOutput<S> {
  const result = v.safeParse(schema, body);
  if (result.success) return result.output;
  throw new Error(`${what}: unexpected body (${issueTexts(result.issues).join("; ")})`);
}

function issueTexts(issues: readonly v.BaseIssue<unknown>[]): string[] {
  return issues.map((issue) => {
    const path = issue.path?.map((item) => String(item.key)).join(".");
    return path ? `${path}: ${issue.message}` : issue.message;
  });
}
