// Dev mode's own endpoints (dev/src/page.rs): who is signed in, the demo
// sign-in, and the order API the ticket submits to. A real app has its own.

import type { OrderTicket } from "@portfolio-stream/react";

export async function whoAmI(): Promise<string | null> {
  const response = await fetch("/dev/me", { credentials: "include" });
  if (!response.ok) return null;
  const body = (await response.json()) as { user?: unknown };
  return typeof body.user === "string" ? body.user : null;
}

export async function demoUsers(): Promise<string[]> {
  const response = await fetch("/dev/users");
  return response.ok ? ((await response.json()) as string[]) : [];
}

export async function signIn(user: string): Promise<void> {
  const response = await fetch(`/dev/signin?user=${encodeURIComponent(user)}`, {
    method: "POST",
    credentials: "include",
  });
  if (!response.ok) throw new Error(`sign-in refused: HTTP ${response.status}`);
}

/** Submits an order; the stream's `order_update` then carries `clientOrderId` as its `orderId`. */
export async function submitOrder(ticket: OrderTicket): Promise<void> {
  const response = await fetch("/dev/orders", {
    method: "POST",
    credentials: "include",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ticket),
  });
  if (!response.ok) throw new Error((await response.text()) || `order refused: HTTP ${response.status}`);
}
