import type { ReactNode } from "react";

/** A section with a heading and a table of `columns`. */
export function TableSection({
  id,
  title,
  columns,
  children,
  before,
}: {
  id: string;
  title: string;
  columns: string[];
  children: ReactNode;
  before?: ReactNode;
}) {
  return (
    <section>
      <h2>{title}</h2>
      {before}
      <table id={id}>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column}>{column}</th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </section>
  );
}
