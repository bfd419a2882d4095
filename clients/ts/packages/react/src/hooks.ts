// The hooks: the stream's status and seq, and one query per channel whose
// `queryFn` is the REST snapshot (merged into the client's state, so the
// cache and the stream never disagree) and which the stream keeps current.

import { useQuery, useQueryClient, type UseQueryResult } from "@tanstack/react-query";
import { useCallback, useSyncExternalStore } from "react";
import type {
  Account,
  Channel,
  CloseInfo,
  PortfolioClient,
  PortfolioView,
  Position,
  Status,
  Trade,
} from "@portfolio-stream/client";
import { keepPending, type DisplayOrder } from "./orders.js";
import { portfolioKeys, useStream } from "./context.js";

/** The note's query settings: fresh for 60 s, a REST refetch every 5 minutes as a backup. */
export const STALE_TIME_MS = 60_000;
export const REFETCH_INTERVAL_MS = 300_000;

export interface PortfolioStream {
  status: Status;
  /** The highest seq applied. */
  seq: number;
  epoch: string | undefined;
  lastClose: CloseInfo | undefined;
  subscribe(channels: readonly Channel[]): void;
  unsubscribe(channels: readonly Channel[]): void;
  client: PortfolioClient;
}

export function usePortfolioStream(): PortfolioStream {
  const { client } = useStream();
  const onStatus = useCallback((notify: () => void) => client.onStatus(notify), [client]);
  const onChange = useCallback((notify: () => void) => client.onChange(notify), [client]);
  const status = useSyncExternalStore(
    onStatus,
    () => client.getStatus(),
    () => client.getStatus(),
  );
  const seq = useSyncExternalStore(
    onChange,
    () => client.getView().seq,
    () => client.getView().seq,
  );
  const epoch = useSyncExternalStore(
    onChange,
    () => client.getView().epoch,
    () => client.getView().epoch,
  );
  return {
    status,
    seq,
    epoch,
    lastClose: client.getLastClose(),
    subscribe: (channels) => client.subscribe(channels),
    unsubscribe: (channels) => client.unsubscribe(channels),
    client,
  };
}

/** One channel's query: the REST snapshot as `queryFn`, kept current by the provider. */
function useChannel<T>(
  key: (userId: string) => readonly unknown[],
  pick: (view: PortfolioView, cached: T | undefined) => T,
): UseQueryResult<T> {
  const { client, userId } = useStream();
  const queryClient = useQueryClient();
  const queryKey = key(userId);
  return useQuery({
    queryKey,
    queryFn: async () => pick(await client.refresh(), queryClient.getQueryData<T>(queryKey)),
    staleTime: STALE_TIME_MS,
    refetchInterval: REFETCH_INTERVAL_MS,
  });
}

/** Open positions, by symbol. */
export function useRealtimePositions(): UseQueryResult<readonly Position[]> {
  return useChannel(portfolioKeys.positions, (view) => view.positions);
}

/** Open orders, optimistic ones (`pending: true`) first. */
export function useRealtimeOrders(): UseQueryResult<readonly DisplayOrder[]> {
  return useChannel<readonly DisplayOrder[]>(portfolioKeys.orders, (view, cached) =>
    keepPending(view.orders, cached, new Set()),
  );
}

/** The account; `null` until the broker reported one. */
export function useRealtimeAccount(): UseQueryResult<Account | null> {
  return useChannel(portfolioKeys.account, (view) => view.account ?? null);
}

/** Recent trades, newest first. */
export function useRealtimeTrades(): UseQueryResult<readonly Trade[]> {
  return useChannel(portfolioKeys.trades, (view) => view.trades);
}
