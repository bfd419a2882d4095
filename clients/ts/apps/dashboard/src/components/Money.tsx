// Money cells: decimal strings shown as they come (digits grouped), coloured
// by sign, and flashing green or red when the value goes up or down.

import { compareDecimals, groupDigits, signOf } from "@portfolio-stream/client";
import { useEffect, useState } from "react";

export function money(value: string | undefined): string {
  return value === undefined ? "—" : groupDigits(value);
}

function tone(value: string): string {
  const sign = signOf(value);
  return sign > 0 ? "pos" : sign < 0 ? "neg" : "";
}

/**
 * A `<td>` that flashes (`flash-up` / `flash-down`, 1 s) when `value`
 * changes. The cell is keyed by its value, so a second change restarts the
 * animation.
 */
export function FlashCell({
  value,
  className = "",
  signed = false,
  suffix = "",
}: {
  value: string;
  className?: string;
  signed?: boolean;
  suffix?: string;
}) {
  const [seen, setSeen] = useState(value);
  const [direction, setDirection] = useState<"up" | "down" | null>(null);
  if (seen !== value) {
    setSeen(value);
    setDirection(compareDecimals(value, seen) >= 0 ? "up" : "down");
  }
  useEffect(() => {
    if (direction === null) return;
    const timer = setTimeout(() => setDirection(null), 1_000);
    return () => clearTimeout(timer);
  }, [direction, seen]);
  const classes = [className, signed ? tone(value) : "", direction ? `flash-${direction}` : ""]
    .filter(Boolean)
    .join(" ");
  return (
    <td key={value} className={classes}>
      {money(value)}
      {suffix}
    </td>
  );
}
