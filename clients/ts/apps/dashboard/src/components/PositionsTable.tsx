import { useRealtimePositions } from "@portfolio-stream/react";
import { FlashCell, money } from "./Money.js";
import { TableSection } from "./Table.js";

export function PositionsTable() {
  const { data: positions = [], isPending } = useRealtimePositions();
  return (
    <TableSection
      id="positions"
      title="Positions"
      columns={["Symbol", "Side", "Qty", "Entry", "Price", "Market value", "Unrealized P&L", "%"]}
    >
      {positions.map((p) => (
        <tr key={p.symbol} data-symbol={p.symbol}>
          <td>{p.symbol}</td>
          <td>{p.side}</td>
          <td>{p.quantity}</td>
          <td>{money(p.entryPrice)}</td>
          <FlashCell value={p.currentPrice} className="price" />
          <td>{money(p.marketValue)}</td>
          <FlashCell value={p.unrealizedPnl} className="pnl" signed />
          <FlashCell value={p.unrealizedPnlPercent} className="pct" signed suffix="%" />
        </tr>
      ))}
      {positions.length === 0 && (
        <tr className="empty">
          <td colSpan={8}>{isPending ? "Loading…" : "No open positions"}</td>
        </tr>
      )}
    </TableSection>
  );
}
