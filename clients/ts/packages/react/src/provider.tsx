// The provider: starts the app's PortfolioClient, and writes what the
// stream changes into the TanStack Query cache under the design note's keys
// (["positions", userId], …), once per animation frame.

import { notifyManager, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { useEffect, type ReactNode } from "react";
import type { Channel, PortfolioClient, PortfolioView } from "@portfolio-stream/client";
import { StreamContext, portfolioKeys } from "./context.js";
import { FrameBatcher } from "./frame.js";
import { keepPending, type DisplayOrder } from "./orders.js";

export interface PortfolioStreamProviderProps {
  /** The app's client (create it once, e.g. in `useState(() => new PortfolioClient(…))`). */
  client: PortfolioClient;
  /** The signed-in user: part of every query key, so two users never share a cache entry. */
  userId: string;
  /** Start the client on mount and stop it on unmount; default true. */
  manage?: boolean;
  children?: ReactNode;
}

export function PortfolioStreamProvider({ client, userId, manage = true, children }: PortfolioStreamProviderProps) {
  const queryClient = useQueryClient();
  useEffect(() => {
    const touched = new Set<string>();
    const batcher = new FrameBatcher<Channel>((channels) => {
      const closed = new Set(touched);
      touched.clear();
      writeChannels(queryClient, userId, client.getView(), channels, closed);
    });
    const off = client.onChange((_view, change) => {
      change.orderIds?.forEach((id) => touched.add(id));
      batcher.add(change.channels);
    });
    // What the client already holds (e.g. a provider remounted) goes in at once.
    batcher.add(["positions", "orders", "account", "trades"]);
    if (manage) client.start();
    return () => {
      off();
      batcher.stop();
      if (manage) client.stop();
    };
  }, [client, userId, manage, queryClient]);
  return <StreamContext.Provider value={{ client, userId }}>{children}</StreamContext.Provider>;
}

/** Writes the changed channels of `view` into the cache, in one notification batch (one render). */
export function writeChannels(
  queryClient: QueryClient,
  userId: string,
  view: PortfolioView,
  channels: ReadonlySet<Channel>,
  touchedOrders: ReadonlySet<string> = new Set(),
): void {
  notifyManager.batch(() => {
    if (channels.has("positions")) queryClient.setQueryData(portfolioKeys.positions(userId), view.positions);
    if (channels.has("orders")) {
      queryClient.setQueryData<readonly DisplayOrder[]>(portfolioKeys.orders(userId), (old) =>
        keepPending(view.orders, old, touchedOrders),
      );
    }
    if (channels.has("account")) queryClient.setQueryData(portfolioKeys.account(userId), view.account ?? null);
    if (channels.has("trades")) queryClient.setQueryData(portfolioKeys.trades(userId), view.trades);
  });
}
