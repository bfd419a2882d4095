// What a client does after each close the gateway sends (docs/protocol.md,
// "Close codes"). The table is the Rust `common::protocol::close::Close::ALL`
// (test/golden/close-codes.json is written from it and checked against this
// one), and `reconnectAfter` is its `reconnect_after`: a listed code and
// reason by its row; an unlisted 1008 as an auth failure (the safe side), an
// unlisted 1012 as a restart, anything else with backoff.

/** never: sign in again · backoff: retry with backoff and resume · immediately: restart, resume at once · poll: REST polling. */
export type Reconnect = "never" | "backoff" | "immediately" | "poll";

export interface CloseEntry {
  code: number;
  reason: string;
  reconnect: Reconnect;
}

export const POLICY = 1008;
export const RESTART = 1012;

export const CLOSES: readonly CloseEntry[] = [
  { code: 1008, reason: "Origin not allowed", reconnect: "never" },
  { code: 1008, reason: "Authentication required", reconnect: "never" },
  { code: 1008, reason: "Session expired", reconnect: "never" },
  { code: 1008, reason: "Token not yet valid", reconnect: "never" },
  { code: 1008, reason: "Invalid token", reconnect: "never" },
  { code: 1008, reason: "Authentication unavailable", reconnect: "never" },
  { code: 1008, reason: "Maximum connections exceeded", reconnect: "backoff" },
  { code: 1008, reason: "Rate limit exceeded", reconnect: "backoff" },
  { code: 1008, reason: "Too many invalid messages", reconnect: "backoff" },
  { code: 1009, reason: "Message too big", reconnect: "backoff" },
  { code: 1001, reason: "Heartbeat timeout", reconnect: "backoff" },
  { code: 1012, reason: "Server restarting", reconnect: "immediately" },
  { code: 1013, reason: "Real-time portfolio disabled", reconnect: "poll" },
  { code: 1013, reason: "Server capacity reached - try again later", reconnect: "backoff" },
  { code: 4001, reason: "Send queue full - resume from your last seq", reconnect: "backoff" },
  { code: 1013, reason: "Event log unavailable - resume later", reconnect: "backoff" },
];

export function reconnectAfter(code: number, reason: string): Reconnect {
  const entry = CLOSES.find((c) => c.code === code && c.reason === reason);
  if (entry) return entry.reconnect;
  if (code === POLICY) return "never";
  if (code === RESTART) return "immediately";
  return "backoff";
}
