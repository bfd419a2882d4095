import type { Status } from "@portfolio-stream/client";

const LABELS: Record<Status, string> = {
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting",
  polling: "polling",
  disabled: "disabled",
  unauthorized: "signed out",
  closed: "closed",
};

/** The connection status indicator; `data-status` is the client's status. */
export function StatusPill({ status }: { status: Status }) {
  return (
    <span id="status" className={`status ${status}`} data-status={status} role="status" aria-live="polite">
      {LABELS[status]}
    </span>
  );
}
