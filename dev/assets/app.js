// The live page: speaks the gateway's protocol (docs/protocol.md) with no
// build step. Subscribes with `since`/`epoch` to resume after a drop,
// reconnects with backoff and jitter, falls back to REST polling, and
// flashes P&L cells that change.

const CHANNELS = ["positions", "orders", "account", "trades"];
const BACKOFF_BASE_MS = 1000, BACKOFF_CAP_MS = 30000, MAX_ATTEMPTS = 10, POLL_MS = 5000;
const PING_MS = 15000, DEAD_MS = 30000;

const state = { seq: 0, epoch: null, positions: new Map(), orders: new Map(), account: null, trades: [] };
let status = "connecting", attempts = 0, pollTimer = null, socket = null, lastHeard = 0;

const $ = (id) => document.getElementById(id);
const CLOSED_ORDER = new Set(["filled", "canceled", "expired", "replaced", "rejected", "failed"]);

function setStatus(next) {
  status = next;
  const el = $("status");
  el.textContent = next;
  el.className = `status ${next}`;
  el.dataset.status = next;
}

// ---- state ----------------------------------------------------------------

function applyPosition(p) {
  if (p.quantity === "0" || Number(p.quantity) === 0) state.positions.delete(p.symbol);
  else state.positions.set(p.symbol, p);
}
function applyOrder(o) {
  if (CLOSED_ORDER.has(o.status)) state.orders.delete(o.orderId);
  else state.orders.set(o.orderId, o);
}
function applyTrade(t) {
  if (state.trades.some((x) => x.tradeId === t.tradeId)) return;
  state.trades.unshift(t);
  state.trades.length = Math.min(state.trades.length, 50);
}
function replaceWith(data) {
  state.positions.clear(); state.orders.clear(); state.trades = [];
  (data.positions || []).forEach(applyPosition);
  (data.orders || []).forEach(applyOrder);
  state.account = data.account || null;
  (data.trades || []).slice().reverse().forEach(applyTrade);
}

function apply(msg) {
  if (typeof msg.seq === "number" && msg.seq < state.seq && msg.type !== "snapshot") return;
  switch (msg.type) {
    case "snapshot": replaceWith(msg.data); state.epoch = msg.epoch ?? state.epoch; state.seq = msg.seq; break;
    case "subscribed": if (!state.epoch && msg.epoch) state.epoch = msg.epoch; break;
    case "position_update": applyPosition(msg.data); break;
    case "order_update": applyOrder(msg.data); break;
    case "account_update": state.account = msg.data; break;
    case "trade_executed": applyTrade(msg.data); break;
    case "batch":
      (msg.data.positions || []).forEach(applyPosition);
      (msg.data.orders || []).forEach(applyOrder);
      if (msg.data.account) state.account = msg.data.account;
      (msg.data.trades || []).forEach(applyTrade);
      break;
    case "pong": case "error": return;
    default: return;
  }
  if (typeof msg.seq === "number" && msg.type !== "subscribed") state.seq = Math.max(state.seq, msg.seq);
  render();
}

// ---- rendering ------------------------------------------------------------

const money = (v) => v == null ? "—" : Number(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const sign = (v) => Number(v) > 0 ? "pos" : Number(v) < 0 ? "neg" : "";
const previousPnl = new Map();

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }

function render() {
  $("seq").textContent = `seq ${state.seq}`;
  const a = state.account;
  $("equity").textContent = money(a?.equity);
  $("cash").textContent = money(a?.cash);
  $("buyingPower").textContent = money(a?.buyingPower);
  const day = $("dayPnl"); day.textContent = money(a?.dayPnl); day.className = sign(a?.dayPnl);

  const pbody = $("positions").querySelector("tbody");
  pbody.replaceChildren(...[...state.positions.values()].sort((x, y) => x.symbol.localeCompare(y.symbol)).map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.symbol = p.symbol;
    const pnl = cell(money(p.unrealizedPnl), `pnl ${sign(p.unrealizedPnl)}`);
    const before = previousPnl.get(p.symbol);
    if (before !== undefined && before !== p.unrealizedPnl) {
      pnl.classList.add(Number(p.unrealizedPnl) > Number(before) ? "flash-up" : "flash-down");
    }
    previousPnl.set(p.symbol, p.unrealizedPnl);
    tr.append(cell(p.symbol), cell(p.side), cell(p.quantity), cell(money(p.entryPrice)), cell(money(p.currentPrice)),
      cell(money(p.marketValue)), pnl, cell(`${p.unrealizedPnlPercent}%`, sign(p.unrealizedPnlPercent)));
    return tr;
  }));

  const obody = $("orders").querySelector("tbody");
  obody.replaceChildren(...[...state.orders.values()].map((o) => {
    const tr = document.createElement("tr");
    tr.append(cell(o.orderId), cell(o.symbol), cell(o.side), cell(o.type), cell(o.status), cell(o.qty), cell(o.filledQty), cell(money(o.limitPrice)));
    return tr;
  }));

  const tbody = $("trades").querySelector("tbody");
  tbody.replaceChildren(...state.trades.slice(0, 15).map((t) => {
    const tr = document.createElement("tr");
    tr.append(cell(new Date(t.executedAt).toLocaleTimeString()), cell(t.symbol), cell(t.side), cell(t.quantity), cell(money(t.price)), cell(money(t.pnl), sign(t.pnl)));
    return tr;
  }));
}

// ---- transport ------------------------------------------------------------

function backoff(attempt) {
  const exp = BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1);
  return Math.min(exp + Math.random() * 1000, BACKOFF_CAP_MS);
}

async function fetchPortfolio() {
  const res = await fetch("/api/portfolio", { credentials: "same-origin" });
  if (res.status === 401 || res.status === 403) { setStatus("unauthorized"); showSignIn(); throw new Error("unauthorized"); }
  if (!res.ok) throw new Error(`portfolio ${res.status}`);
  const p = await res.json();
  if (p.epoch !== state.epoch || p.seq >= state.seq) {
    replaceWith(p); state.epoch = p.epoch; state.seq = p.seq; render();
  }
}

function startPolling(next) {
  setStatus(next);
  if (pollTimer) return;
  const tick = () => fetchPortfolio().catch(() => {});
  tick();
  pollTimer = setInterval(tick, POLL_MS);
}
function stopPolling() { if (pollTimer) clearInterval(pollTimer); pollTimer = null; }

async function realtimeEnabled() {
  try {
    const res = await fetch("/api/health", { credentials: "same-origin" });
    const body = await res.json();
    return body.features?.realtimePortfolio === true;
  } catch { return true; }
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/portfolio`;
  const ws = new WebSocket(url);
  socket = ws;
  let live = false;
  ws.onopen = () => {
    lastHeard = Date.now();
    const subscribe = { type: "subscribe", channels: CHANNELS };
    if (state.epoch && state.seq > 0) { subscribe.since = state.seq; subscribe.epoch = state.epoch; }
    ws.send(JSON.stringify(subscribe));
  };
  ws.onmessage = (event) => {
    lastHeard = Date.now();
    const msg = JSON.parse(event.data);
    if (msg.type === "subscribed") { live = true; attempts = 0; stopPolling(); setStatus("live"); }
    apply(msg);
  };
  ws.onclose = async (event) => {
    socket = null;
    const next = reconnectAfter(event.code, event.reason || "");
    if (next === "never") { setStatus("unauthorized"); showSignIn(); return; }
    if (next === "poll") {
      startPolling("disabled");
      setTimeout(async function retry() { (await realtimeEnabled()) ? connect() : setTimeout(retry, BACKOFF_CAP_MS); }, BACKOFF_CAP_MS);
      return;
    }
    if (next === "immediately" && live) { setStatus("reconnecting"); setTimeout(connect, Math.random() * 250); return; }
    attempts += 1;
    if (attempts >= MAX_ATTEMPTS) startPolling("polling"); else setStatus("reconnecting");
    setTimeout(connect, backoff(attempts));
  };
}

// What to do after a close: the gateway's own table (served from the
// protocol crate's `Close::ALL`, so no reason string is copied here), then
// the same fallbacks as `Close::reconnect_after`: an unknown 1008 is an auth
// failure, 1012 a restart, anything else a failure to back off from.
let closeTable = [];
async function loadCloseTable() {
  try { closeTable = await (await fetch("/assets/close-codes.json")).json(); } catch { closeTable = []; }
}
function reconnectAfter(code, reason) {
  const known = closeTable.find((c) => c.code === code && c.reason === reason);
  if (known) return known.reconnect;
  if (code === 1008) return "never";
  if (code === 1012) return "immediately";
  return "backoff";
}

// Browsers cannot see WebSocket pings: send app-level pings and treat 30 s
// of silence as a dead link.
setInterval(() => {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  if (Date.now() - lastHeard > DEAD_MS) { socket.close(); return; }
  socket.send(JSON.stringify({ type: "ping", id: Date.now() }));
}, PING_MS);

// ---- demo sign-in ---------------------------------------------------------

async function showSignIn() {
  const box = $("signin");
  box.hidden = false;
  try {
    const users = await (await fetch("/dev/users")).json();
    $("demo-users").replaceChildren(...users.map((u) => {
      const b = document.createElement("button");
      b.textContent = u; b.dataset.user = u;
      b.onclick = async () => { await fetch(`/dev/signin?user=${encodeURIComponent(u)}`, { method: "POST" }); location.reload(); };
      return b;
    }));
  } catch { /* not in dev mode */ }
}

async function start() {
  await loadCloseTable();
  try {
    const me = await fetch("/dev/me");
    if (me.ok) $("user").textContent = (await me.json()).user ?? "";
  } catch { /* not in dev mode */ }
  if (!(await realtimeEnabled())) { startPolling("disabled"); return; }
  connect();
}

start();
