// What the provider shares with the hooks, and the design note's query keys.

import { createContext, useContext } from "react";
import type { PortfolioClient } from "@portfolio-stream/client";

/** The design note's query keys. */
export const portfolioKeys = {
  positions: (userId: string) => ["positions", userId] as const,
  orders: (userId: string) => ["orders", userId] as const,
  account: (userId: string) => ["account", userId] as const,
  trades: (userId: string) => ["trades", userId] as const,
};

export interface Stream {
  client: PortfolioClient;
  userId: string;
}

export const StreamContext = createContext<Stream | null>(null);

/** The stream of the nearest provider; throws outside one. */
export function useStream(): Stream {
  const stream = useContext(StreamContext);
  if (!stream) throw new Error("usePortfolioStream and the realtime hooks need a <PortfolioStreamProvider>");
  return stream;
}
