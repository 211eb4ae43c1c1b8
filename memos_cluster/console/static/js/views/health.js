// Health and metrics: each shard's health; for admins the shards with their cubes and the
// rebalance, and this gateway replica's request rates, latencies and recent errors
// (GetGatewayStats), refreshed every few seconds while the view is open.
import { api } from "../api.js";
import { h, clear, table, badge, lineChart, barChart, fmtNum, errorBox } from "../ui.js";

const REFRESH_MS = 5000;

function shardCards(shards) {
  return table([
    { label: "Shard", cell: (s) => h("code", {}, s.shard_id) },
    { label: "Health", cell: (s) => badge(s.ok ? "ok" : "down", s.ok ? "ok" : "warn") },
    { label: "Node", cell: (s) => (s.node_id ? s.node_id.slice(0, 12) : "—") },
    { label: "In ring", cell: (s) => (s.in_ring ? "yes" : "leaving") },
    { label: "Cubes", cell: (s) => s.cubes.map((c) => `${c.cube_id} (${c.num_memories})`).join(", ") || "—" },
    { label: "Detail", cell: (s) => s.detail || "" },
  ], shards);
}

function requestCharts(stats) {
  const series = {};
  for (const r of stats.rates) (series[r.transport] ||= []).push([r.time_s, r.requests_per_s]);
  const top = stats.operations.slice(0, 12);
  return h("div", { class: "grid2" },
    h("section", { class: "card" }, h("h2", {}, `Requests per second, by transport (last ${stats.window_s / 60} min)`),
      lineChart(series, { unit: "/s" })),
    h("section", { class: "card" }, h("h2", {}, "p95 latency by operation (ms)"),
      barChart(top.map((o) => ({ label: `${o.rpc} ${o.transport}`, value: o.p95_ms })), { unit: " ms" })),
    h("section", { class: "card wide" }, h("h2", {}, "Operations"), table([
      { label: "Operation", cell: (o) => o.rpc }, { label: "Transport", cell: (o) => o.transport },
      { label: "Requests", class: "num", cell: (o) => o.requests },
      { label: "Errors", class: "num", cell: (o) => o.errors },
      { label: "p50 ms ≤", class: "num", cell: (o) => fmtNum(o.p50_ms, 0) },
      { label: "p95 ms ≤", class: "num", cell: (o) => fmtNum(o.p95_ms, 0) },
    ], stats.operations)),
    h("section", { class: "card wide" }, h("h2", {}, "Recent errors"), table([
      { label: "When", cell: (e) => new Date(e.time_s * 1000).toLocaleTimeString() },
      { label: "Operation", cell: (e) => e.rpc }, { label: "Transport", cell: (e) => e.transport },
      { label: "Code", cell: (e) => badge(e.code, "warn") },
    ], stats.errors, "No errors in the window.")));
}

async function fill(body, isAdmin) {
  const { shards } = await api("GET", "/health");
  const parts = [h("section", { class: "card" }, h("h2", {}, "Shards"),
    isAdmin ? null : table([
      { label: "Shard", cell: (s) => s.shard_id },
      { label: "Health", cell: (s) => badge(s.ok ? "ok" : "down", s.ok ? "ok" : "warn") }], shards))];
  if (isAdmin) {
    const [layout, stats] = await Promise.all([api("GET", "/shards"), api("GET", "/gateway/stats")]);
    const r = layout.rebalance;
    parts[0].append(shardCards(layout.shards),
      h("p", { class: "muted" }, `layout epoch ${layout.epoch}; rebalance ${r.state}` +
        (r.moves_total ? ` (${r.moves_done}/${r.moves_total} moves)` : "") +
        (layout.pending_moves ? `; ${layout.pending_moves} pending` : "")));
    parts.push(requestCharts(stats));
  } else {
    parts.push(h("p", { class: "muted" }, "Shard layout and request metrics are for admins."));
  }
  clear(body, parts);
}

export async function render(main, _args, me) {
  const body = h("div", { id: "health" });
  clear(main, h("div", { class: "view-head" }, h("h1", {}, "Health and metrics"),
    h("span", { class: "muted" }, `refreshes every ${REFRESH_MS / 1000} s`)), body);
  await fill(body, me.role === "admin");
  const timer = setInterval(() => fill(body, me.role === "admin").catch((e) => clear(body, errorBox(e))),
                            REFRESH_MS);
  return () => clearInterval(timer);
}
