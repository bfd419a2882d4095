export { PortfolioClient, nextAfter } from "./client.js";
export type {
  ChangeListener,
  ClientStats,
  CloseInfo,
  Logger,
  PortfolioClientOptions,
  SocketFactory,
  SocketLike,
  Status,
} from "./client.js";
export { MissingBase, PortfolioState, DEFAULT_MAX_TRADES, isClosedOrder, isClosedPosition } from "./state.js";
export type { Change, PortfolioView, RestMerge } from "./state.js";
export { BACKOFF_DEFAULTS, cappedDelay, reconnectDelay, restartDelay } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { CLOSES, reconnectAfter } from "./close.js";
export type { CloseEntry, Reconnect } from "./close.js";
export * from "./wire.js";
export { compareDecimals, groupDigits, signOf } from "./decimal.js";
