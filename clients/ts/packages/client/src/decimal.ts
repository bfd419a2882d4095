// Decimal strings, compared and formatted without ever becoming floats.

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

function parts(value: string): { negative: boolean; int: string; frac: string } {
  const match = DECIMAL.exec(value);
  if (!match) throw new Error(`not a decimal string: ${value}`);
  const int = (match[2] ?? "0").replace(/^0+(?=\d)/, "");
  const frac = (match[3] ?? "").replace(/0+$/, "");
  const zero = int === "0" && frac === "";
  return { negative: match[1] === "-" && !zero, int, frac };
}

/** −1, 0 or 1 as `a` is below, equal to or above `b`. */
export function compareDecimals(a: string, b: string): -1 | 0 | 1 {
  const x = parts(a);
  const y = parts(b);
  const width = Math.max(x.frac.length, y.frac.length);
  const scaled = (p: typeof x) => BigInt(`${p.negative ? "-" : ""}${p.int}${p.frac.padEnd(width, "0")}`);
  const left = scaled(x);
  const right = scaled(y);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** The sign of a decimal string. */
export function signOf(value: string): -1 | 0 | 1 {
  return compareDecimals(value, "0");
}

/** Groups the integer digits: `"-12345.50"` → `"-12,345.50"`. */
export function groupDigits(value: string): string {
  const match = DECIMAL.exec(value);
  if (!match) return value;
  const grouped = (match[2] ?? "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${match[1]}${grouped}${match[3] !== undefined ? `.${match[3]}` : ""}`;
}
