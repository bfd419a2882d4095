// Imported and rendered on a server (no DOM): nothing touches `window`.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { renderToString } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { PortfolioClient } from "@portfolio-stream/client";
import { PortfolioStreamProvider, usePortfolioStream, useRealtimePositions } from "../src/index.js";

function Page() {
  const { status } = usePortfolioStream();
  const { data } = useRealtimePositions();
  return <p>{`${status}:${data?.length ?? "loading"}`}</p>;
}

describe("server-side rendering", () => {
  it("renders without a window", () => {
    expect(typeof (globalThis as { window?: unknown }).window).toBe("undefined");
    const client = new PortfolioClient({
      baseUrl: "http://gateway.test",
      socket: () => {
        throw new Error("no socket on a server");
      },
    });
    const html = renderToString(
      <QueryClientProvider client={new QueryClient()}>
        <PortfolioStreamProvider client={client} userId="alice">
          <Page />
        </PortfolioStreamProvider>
      </QueryClientProvider>,
    );
    expect(html).toContain("connecting:loading");
  });
});
