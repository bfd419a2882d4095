// @vitest-environment happy-dom
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, cleanup, render, screen, waitFor } from "@testing-library/react";
import { Profiler, StrictMode, type ReactNode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { PortfolioClient } from "@portfolio-stream/client";
import {
  PortfolioStreamProvider,
  portfolioKeys,
  usePortfolioStream,
  useRealtimeAccount,
  useRealtimeOrders,
  useRealtimePositions,
  useSubmitOrder,
  type OrderTicket,
} from "../src/index.js";
import {
  Sockets,
  account,
  event,
  fakeFetch,
  order,
  position,
  quiet,
  rest,
  snapshot,
  subscribed,
} from "../../client/test/fakes.js";

afterEach(cleanup);

function setup(restBody: unknown = rest(0, "e1")) {
  const sockets = new Sockets();
  const client = new PortfolioClient({
    baseUrl: "http://gateway.test",
    socket: sockets.factory,
    fetch: fakeFetch(() => restBody),
    logger: quiet,
  });
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const wrap = (children: ReactNode, strict = false) => {
    const tree = (
      <QueryClientProvider client={queryClient}>
        <PortfolioStreamProvider client={client} userId="alice">
          {children}
        </PortfolioStreamProvider>
      </QueryClientProvider>
    );
    return strict ? <StrictMode>{tree}</StrictMode> : tree;
  };
  const goLive = (seq = 1, data: Record<string, unknown> = {}) =>
    act(() => {
      sockets.last.open();
      sockets.last.receive(snapshot(seq, "e1", data));
      sockets.last.receive(subscribed(seq, "e1"));
    });
  return { sockets, client, queryClient, wrap, goLive };
}

function Positions() {
  const { data } = useRealtimePositions();
  return (
    <ul>
      {(data ?? []).map((p) => (
        <li key={p.symbol} data-testid={`pos-${p.symbol}`}>
          {p.quantity}@{p.currentPrice}
        </li>
      ))}
    </ul>
  );
}

function Status() {
  const { status, seq } = usePortfolioStream();
  return (
    <p data-testid="status">
      {status}:{seq}
    </p>
  );
}

describe("the realtime hooks", () => {
  it("fill the cache from the snapshot and merge events under the note's keys", async () => {
    const { wrap, goLive, sockets, queryClient } = setup();
    render(
      wrap(
        <>
          <Status />
          <Positions />
        </>,
      ),
    );
    await goLive(1, { positions: [position("AAPL", "10", "175.50")] });
    await waitFor(() => expect(screen.getByTestId("pos-AAPL").textContent).toBe("10@175.50"));
    expect(screen.getByTestId("status").textContent).toBe("live:1");
    act(() => sockets.last.receive(event("position_update", 2, position("AAPL", "12", "176.00"))));
    await waitFor(() => expect(screen.getByTestId("pos-AAPL").textContent).toBe("12@176.00"));
    act(() => sockets.last.receive(event("position_update", 3, position("AAPL", "0", "176.00"))));
    await waitFor(() => expect(screen.queryByTestId("pos-AAPL")).toBeNull());
    expect(queryClient.getQueryData(portfolioKeys.positions("alice"))).toEqual([]);
  });

  it("turn a burst of updates into one render", async () => {
    const { wrap, goLive, sockets } = setup();
    const renders = { count: 0 };
    const counted = (
      <Profiler id="positions" onRender={() => (renders.count += 1)}>
        <Positions />
      </Profiler>
    );
    render(wrap(counted));
    await goLive(1, { positions: [position("AAPL", "1", "100.00")] });
    await waitFor(() => expect(screen.getByTestId("pos-AAPL").textContent).toBe("1@100.00"));
    const before = renders.count;
    act(() => {
      for (let i = 1; i <= 100; i += 1) {
        sockets.last.receive(event("position_update", 1 + i, position("AAPL", "1", `${100 + i}.00`)));
      }
    });
    await waitFor(() => expect(screen.getByTestId("pos-AAPL").textContent).toBe("1@200.00"));
    expect(renders.count - before).toBe(1);
  });

  it("take the REST snapshot as the queryFn", async () => {
    const { wrap } = setup(rest(4, "e1", { account: account("1234.50") }));
    function Equity() {
      const { data } = useRealtimeAccount();
      return <p data-testid="equity">{data?.equity ?? "none"}</p>;
    }
    render(wrap(<Equity />));
    await waitFor(() => expect(screen.getByTestId("equity").textContent).toBe("1234.50"));
  });

  it("work under StrictMode and stop the client on unmount", async () => {
    const { wrap, goLive, client } = setup();
    const view = render(wrap(<Status />, true));
    await goLive(3);
    expect(screen.getByTestId("status").textContent).toBe("live:3");
    view.unmount();
    expect(client.getStatus()).toBe("closed");
  });
});

describe("useSubmitOrder", () => {
  const ticket: OrderTicket = {
    clientOrderId: "cli-1",
    symbol: "AAPL",
    side: "buy",
    type: "limit",
    qty: "5",
    limitPrice: "170.00",
  };

  function Ticket({ submit }: { submit: (t: OrderTicket) => Promise<unknown> }) {
    const { data } = useRealtimeOrders();
    const mutation = useSubmitOrder(submit);
    return (
      <div>
        <button onClick={() => mutation.mutate(ticket)}>buy</button>
        <ul>
          {(data ?? []).map((o) => (
            <li key={o.orderId} data-testid={`order-${o.orderId}`}>
              {o.pending ? "pending" : o.status}
            </li>
          ))}
        </ul>
      </div>
    );
  }

  it("shows a pending order at once, replaced by the real order_update", async () => {
    const { wrap, goLive, sockets } = setup();
    render(wrap(<Ticket submit={async () => ({ ok: true })} />));
    await goLive(1, { orders: [order("older", "accepted")] });
    await waitFor(() => expect(screen.getByTestId("order-older")).toBeTruthy());
    act(() => screen.getByText("buy").click());
    await waitFor(() => expect(screen.getByTestId("order-cli-1").textContent).toBe("pending"));
    // Another order's update does not drop the pending row.
    act(() => sockets.last.receive(event("order_update", 2, order("older", "partially_filled"))));
    await waitFor(() => expect(screen.getByTestId("order-older").textContent).toBe("partially_filled"));
    expect(screen.getByTestId("order-cli-1").textContent).toBe("pending");
    act(() => sockets.last.receive(event("order_update", 3, order("cli-1", "accepted"))));
    await waitFor(() => expect(screen.getByTestId("order-cli-1").textContent).toBe("accepted"));
  });

  it("drops the pending row when its order closes before it was seen open", async () => {
    const { wrap, goLive, sockets } = setup();
    render(wrap(<Ticket submit={async () => ({ ok: true })} />));
    await goLive(1);
    act(() => screen.getByText("buy").click());
    await waitFor(() => expect(screen.getByTestId("order-cli-1").textContent).toBe("pending"));
    act(() => sockets.last.receive(event("order_update", 2, order("cli-1", "filled"))));
    await waitFor(() => expect(screen.queryByTestId("order-cli-1")).toBeNull());
  });

  it("rolls the pending row back when the submission fails", async () => {
    const { wrap, goLive } = setup();
    let fail: (error: Error) => void = () => {};
    const submit = () => new Promise<never>((_, reject) => (fail = reject));
    render(wrap(<Ticket submit={submit} />));
    await goLive(1, { orders: [order("older", "accepted")] });
    act(() => screen.getByText("buy").click());
    await waitFor(() => expect(screen.getByTestId("order-cli-1").textContent).toBe("pending"));
    await act(async () => fail(new Error("rejected by the API")));
    await waitFor(() => expect(screen.queryByTestId("order-cli-1")).toBeNull());
    expect(screen.getByTestId("order-older").textContent).toBe("accepted");
  });
});
