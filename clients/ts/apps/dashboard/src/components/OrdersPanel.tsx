import type { OrderSide, OrderType } from "@portfolio-stream/client";
import { useRealtimeOrders, useRealtimePositions, useSubmitOrder } from "@portfolio-stream/react";
import { useState, type FormEvent } from "react";
import { submitOrder } from "../api.js";
import { money } from "./Money.js";
import { TableSection } from "./Table.js";

const SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL"] as const;
const SIDES: readonly OrderSide[] = ["buy", "sell"];
const TYPES: readonly OrderType[] = ["market", "limit"];

function Choice<T extends string>(props: {
  name: string;
  value: T;
  options: readonly T[];
  onChange: (value: T) => void;
}) {
  return (
    <select name={props.name} value={props.value} onChange={(e) => props.onChange(e.target.value as T)}>
      {props.options.map((option) => (
        <option key={option} value={option}>
          {option}
        </option>
      ))}
    </select>
  );
}

function Amount(props: {
  name: string;
  label: string;
  value: string;
  size: number;
  onChange: (value: string) => void;
}) {
  return (
    <input
      name={props.name}
      value={props.value}
      onChange={(e) => props.onChange(e.target.value)}
      inputMode="decimal"
      size={props.size}
      placeholder={props.label}
      aria-label={props.label}
    />
  );
}

function newClientOrderId(): string {
  return `web-${globalThis.crypto.randomUUID()}`;
}

/** The order ticket (optimistic: a pending row at once) and the open orders. */
export function OrdersPanel() {
  const { data: orders = [] } = useRealtimeOrders();
  const { data: positions = [] } = useRealtimePositions();
  const submit = useSubmitOrder(submitOrder);
  const [symbol, setSymbol] = useState<string>("AAPL");
  const [side, setSide] = useState<OrderSide>("buy");
  const [type, setType] = useState<OrderType>("market");
  const [qty, setQty] = useState("1");
  const [limitPrice, setLimitPrice] = useState("");
  const held = positions.find((p) => p.symbol === symbol);

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    submit.mutate({
      clientOrderId: newClientOrderId(),
      symbol,
      side,
      type,
      qty,
      ...(type === "limit" ? { limitPrice } : {}),
    });
  };

  const ticket = (
    <form id="ticket" onSubmit={onSubmit}>
      <Choice name="symbol" value={symbol} options={SYMBOLS} onChange={setSymbol} />
      <Choice name="side" value={side} options={SIDES} onChange={setSide} />
      <Amount name="qty" label="quantity" value={qty} onChange={setQty} size={6} />
      <Choice name="type" value={type} options={TYPES} onChange={setType} />
      {type === "limit" && (
        <Amount name="limitPrice" label="limit price" value={limitPrice} onChange={setLimitPrice} size={8} />
      )}
      <button type="submit">Submit order</button>
      <span className="hint">{held ? `holding ${held.quantity} @ ${money(held.currentPrice)}` : ""}</span>
      {submit.isError && <span className="error">{String(submit.error.message)}</span>}
    </form>
  );

  return (
    <TableSection
      id="orders"
      title="Orders"
      columns={["Order", "Symbol", "Side", "Type", "Status", "Qty", "Filled", "Limit"]}
      before={ticket}
    >
      {orders.map((o) => (
        <tr key={o.orderId} data-order-id={o.orderId} className={o.pending ? "pending" : ""}>
          <td>{o.orderId}</td>
          <td>{o.symbol}</td>
          <td>{o.side}</td>
          <td>{o.type}</td>
          <td className="order-status">{o.pending ? "pending" : o.status}</td>
          <td>{o.qty}</td>
          <td>{o.filledQty}</td>
          <td>{money(o.limitPrice)}</td>
        </tr>
      ))}
    </TableSection>
  );
}
