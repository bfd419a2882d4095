// Optimistic order submission, as the design note's `useMutation` example:
// a pending order appears at once, the stream's real `order_update`
// (matched by the client order id, which the app sends as the work queue's
// `orderId`) replaces it, and an error rolls it back.

import { useMutation, useQueryClient, type UseMutationResult } from "@tanstack/react-query";
import type { Order, OrderSide, OrderType } from "@portfolio-stream/client";
import { portfolioKeys, useStream } from "./context.js";

/** An order as the orders query holds it: the stream's, or an optimistic one. */
export type DisplayOrder = Order & { pending?: true };

/** What the order ticket submits. */
export interface OrderTicket {
  /** The app's id for the order; the gateway's `order_update` carries it as `orderId`. */
  clientOrderId: string;
  symbol: string;
  side: OrderSide;
  type: OrderType;
  qty: string;
  limitPrice?: string;
  stopPrice?: string;
}

/** The optimistic row for a ticket: status `pending_new`, nothing filled. */
export function pendingOrder(ticket: OrderTicket, now: Date = new Date()): DisplayOrder {
  const order: DisplayOrder = {
    orderId: ticket.clientOrderId,
    symbol: ticket.symbol,
    side: ticket.side,
    type: ticket.type,
    status: "pending_new",
    qty: ticket.qty,
    filledQty: "0",
    submittedAt: now.toISOString(),
    pending: true,
  };
  if (ticket.limitPrice !== undefined) order.limitPrice = ticket.limitPrice;
  if (ticket.stopPrice !== undefined) order.stopPrice = ticket.stopPrice;
  return order;
}

/**
 * The stream's open orders, with the optimistic ones still waiting in
 * front: a pending row goes once the stream names its order (open: the
 * real row replaces it; closed: it is gone).
 */
export function keepPending(
  orders: readonly Order[],
  old: readonly DisplayOrder[] | undefined,
  touched: ReadonlySet<string>,
): readonly DisplayOrder[] {
  const waiting = (old ?? []).filter(
    (o) => o.pending && !touched.has(o.orderId) && !orders.some((real) => real.orderId === o.orderId),
  );
  return waiting.length === 0 ? orders : [...waiting, ...orders];
}

/**
 * Submits an order through the app's own API (`mutationFn`) with the
 * note's optimistic update. On error only the pending row is removed, so
 * stream updates that arrived meanwhile stay.
 */
export function useSubmitOrder<TData = unknown, TError = Error>(
  mutationFn: (ticket: OrderTicket) => Promise<TData>,
): UseMutationResult<TData, TError, OrderTicket> {
  const queryClient = useQueryClient();
  const { userId } = useStream();
  const key = portfolioKeys.orders(userId);
  return useMutation<TData, TError, OrderTicket>({
    mutationFn,
    onMutate: async (ticket) => {
      await queryClient.cancelQueries({ queryKey: key });
      queryClient.setQueryData<readonly DisplayOrder[]>(key, (old) => [
        pendingOrder(ticket),
        ...(old ?? []).filter((o) => o.orderId !== ticket.clientOrderId),
      ]);
    },
    onError: (_error, ticket) => {
      queryClient.setQueryData<readonly DisplayOrder[]>(key, (old) =>
        (old ?? []).filter((o) => !(o.pending && o.orderId === ticket.clientOrderId)),
      );
    },
  });
}
