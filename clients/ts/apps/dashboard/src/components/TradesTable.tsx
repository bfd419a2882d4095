import { useRealtimeTrades } from "@portfolio-stream/react";
import { money } from "./Money.js";
import { TableSection } from "./Table.js";

function time(timestamp: string): string {
  return new Date(timestamp).toLocaleTimeString();
}

/** Recent trades, newest first, with the realized P&L of closing trades. */
export function TradesTable() {
  const { data: trades = [] } = useRealtimeTrades();
  return (
    <TableSection
      id="trades"
      title="Recent trades"
      columns={["Time", "Symbol", "Side", "Qty", "Price", "Realized P&L"]}
    >
      {trades.map((t) => (
        <tr key={t.tradeId} data-trade-id={t.tradeId} data-executed-at={t.executedAt}>
          <td>{time(t.executedAt)}</td>
          <td>{t.symbol}</td>
          <td>{t.side}</td>
          <td>{t.quantity}</td>
          <td>{money(t.price)}</td>
          <td className={t.pnl === undefined ? "" : t.pnl.startsWith("-") ? "neg" : "pos"}>{money(t.pnl)}</td>
        </tr>
      ))}
    </TableSection>
  );
}
