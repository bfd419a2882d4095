import { useRealtimeAccount } from "@portfolio-stream/react";
import { money } from "./Money.js";

export function AccountPanel() {
  const { data: account } = useRealtimeAccount();
  return (
    <section id="account">
      <h2>Account</h2>
      <table>
        <tbody>
          <tr>
            <th>Equity</th>
            <td id="equity">{money(account?.equity)}</td>
            <th>Cash</th>
            <td id="cash">{money(account?.cash)}</td>
            <th>Buying power</th>
            <td id="buyingPower">{money(account?.buyingPower)}</td>
            <th>Day P&amp;L</th>
            <td id="dayPnl" className={account && account.dayPnl.startsWith("-") ? "neg" : "pos"}>
              {account ? `${money(account.dayPnl)} (${account.dayPnlPercent}%)` : "—"}
            </td>
          </tr>
        </tbody>
      </table>
    </section>
  );
}
