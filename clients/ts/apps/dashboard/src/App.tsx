// The dashboard: sign in (dev mode's demo users), then one client and one
// query cache per signed-in user.

import { PortfolioClient } from "@portfolio-stream/client";
import { PortfolioStreamProvider, usePortfolioStream } from "@portfolio-stream/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { demoUsers, signIn, whoAmI } from "./api.js";
import { AccountPanel } from "./components/AccountPanel.js";
import { OrdersPanel } from "./components/OrdersPanel.js";
import { PositionsTable } from "./components/PositionsTable.js";
import { StatusPill } from "./components/StatusPill.js";
import { TradesTable } from "./components/TradesTable.js";

export function App() {
  // user undefined: still asking; null: signed out. Every sign-in is a new
  // session: a new client and a new cache.
  const [session, setSession] = useState<{ user: string | null | undefined; n: number }>({ user: undefined, n: 0 });
  const signedIn = (user: string | null) => setSession((s) => ({ user, n: s.n + 1 }));
  useEffect(() => {
    whoAmI().then(signedIn, () => signedIn(null));
  }, []);
  if (session.user === undefined) return <Header status="connecting" />;
  if (session.user === null) return <SignIn onSignedIn={signedIn} />;
  return <Dashboard key={`${session.user}:${session.n}`} userId={session.user} onSignedIn={signedIn} />;
}

function Dashboard({ userId, onSignedIn }: { userId: string; onSignedIn: (user: string) => void }) {
  const [client] = useState(() => new PortfolioClient({ baseUrl: window.location.origin, ...settingsFromUrl() }));
  const [queryClient] = useState(() => new QueryClient({ defaultOptions: { queries: { retry: 1 } } }));
  return (
    <QueryClientProvider client={queryClient}>
      <PortfolioStreamProvider client={client} userId={userId}>
        <Live userId={userId} onSignedIn={onSignedIn} />
      </PortfolioStreamProvider>
    </QueryClientProvider>
  );
}

/**
 * Client settings from the page's URL, for trying fallbacks without
 * waiting two minutes: `?maxFailedAttempts=2` (docs/dev-mode.md).
 */
function settingsFromUrl(): { maxFailedAttempts?: number } {
  const attempts = Number(new URLSearchParams(window.location.search).get("maxFailedAttempts"));
  return Number.isInteger(attempts) && attempts > 0 ? { maxFailedAttempts: attempts } : {};
}

function Live({ userId, onSignedIn }: { userId: string; onSignedIn: (user: string) => void }) {
  const { status, seq } = usePortfolioStream();
  if (status === "unauthorized") return <SignIn onSignedIn={onSignedIn} expired />;
  return (
    <>
      <Header status={status} user={userId} seq={seq} />
      <main>
        <AccountPanel />
        <PositionsTable />
        <OrdersPanel />
        <TradesTable />
      </main>
    </>
  );
}

function Header({
  status,
  user,
  seq,
}: {
  status: Parameters<typeof StatusPill>[0]["status"];
  user?: string;
  seq?: number;
}) {
  return (
    <header>
      <h1>Portfolio</h1>
      {user && <span id="user">{user}</span>}
      <StatusPill status={status} />
      {seq !== undefined && (
        <span id="seq" title="last sequence number applied">
          seq {seq}
        </span>
      )}
    </header>
  );
}

function SignIn({ onSignedIn, expired = false }: { onSignedIn: (user: string) => void; expired?: boolean }) {
  const [users, setUsers] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    demoUsers().then(setUsers, () => setUsers([]));
  }, []);
  return (
    <>
      <Header status="unauthorized" />
      <main>
        <section id="signin">
          <h2>{expired ? "Your session ended: sign in again" : "Sign in as a demo user"}</h2>
          <div id="demo-users">
            {users.map((user) => (
              <button
                key={user}
                data-user={user}
                onClick={() =>
                  signIn(user).then(
                    () => onSignedIn(user),
                    (e: unknown) => setError(String(e)),
                  )
                }
              >
                {user}
              </button>
            ))}
          </div>
          {error && <p className="error">{error}</p>}
        </section>
      </main>
    </>
  );
}
