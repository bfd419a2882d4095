export { PortfolioStreamProvider, writeChannels } from "./provider.js";
export type { PortfolioStreamProviderProps } from "./provider.js";
export { portfolioKeys, useStream } from "./context.js";
export {
  REFETCH_INTERVAL_MS,
  STALE_TIME_MS,
  usePortfolioStream,
  useRealtimeAccount,
  useRealtimeOrders,
  useRealtimePositions,
  useRealtimeTrades,
} from "./hooks.js";
export type { PortfolioStream } from "./hooks.js";
export { keepPending, pendingOrder, useSubmitOrder } from "./orders.js";
export type { DisplayOrder, OrderTicket } from "./orders.js";
export { FrameBatcher } from "./frame.js";
