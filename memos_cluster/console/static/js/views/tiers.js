// Tiers and the scheduler, per cube: decayed access frequencies (a chart), which memories are
// in activation memory and in which adapter version, the migration log as a timeline, training
// jobs with progress; activate and train selected memories; pause/resume/run for admins.
import { api, seg } from "../api.js";
import { h, clear, table, busy, notify, barChart, badge, fmtNum, fmtTime, errorBox } from "../ui.js";

const JOBS_SLOT = "memos.jobs";  // training jobs started from this tab: [{job_id, cube_id}]
const jobs = () => JSON.parse(sessionStorage.getItem(JOBS_SLOT) || "[]");

function tierOf(m) {
  return m.tiers.includes("parametric") ? "parametric"
    : m.tiers.includes("activation") ? "activation" : "plaintext";
}

async function cubeChooser(main) {
  const { cubes } = await api("GET", "/cubes");
  clear(main, h("div", { class: "view-head" }, h("h1", {}, "Tiers")),
    h("p", { class: "muted" }, "Choose a cube:"),
    h("ul", { class: "plain" }, cubes.map((c) => h("li", {},
      h("a", { href: `#/tiers/${seg(c.cube_id)}` }, c.cube_id)))));
}

// The adapter versions trained on this memory (its lineage), the served one marked.
function adapterMarks(adapters, memoryId) {
  const mine = adapters.filter((a) => a.memory_ids.includes(memoryId));
  if (!mine.length) return "—";
  return h("span", {}, mine.map((a) => badge(`v${a.version}${a.current ? " current" : ""}`,
                                             a.current ? "parametric" : "")));
}

function adapterTable(adapters) {
  return table([
    { label: "Version", class: "num", cell: (a) => `v${a.version}` },
    { label: "State", cell: (a) => h("span", {}, a.current ? badge("current", "ok") : null,
        a.stale ? badge("stale", "warn") : null, a.rejected ? badge("rejected", "warn") : null) },
    { label: "Trained on", cell: (a) => a.questions.length
        ? `${a.questions.length} questions` : `${a.memory_ids.length} memories` },
    { label: "Loss (base → adapter)", cell: (a) => (a.metrics.adapter_loss !== undefined
        ? `${fmtNum(a.metrics.base_loss, 2)} → ${fmtNum(a.metrics.adapter_loss, 2)}` : "—") },
    { label: "Created", cell: (a) => fmtTime(a.created_at_ms) },
  ], adapters, "No adapters trained yet.");
}

function timeline(migrations) {
  if (!migrations.length) return h("p", { class: "muted" }, "No migrations yet.");
  return h("ol", { class: "timeline", id: "migrations" }, [...migrations].reverse().map((m) =>
    h("li", { class: m.action }, h("time", {}, new Date(m.time_s * 1000).toLocaleTimeString()),
      badge(m.action), " ", m.memory_id ? h("code", {}, m.memory_id) : "(cube)", " ",
      h("span", { class: "muted" }, m.detail))));
}

async function jobList(cubeId) {
  const mine = jobs().filter((j) => j.cube_id === cubeId);
  const rows = await Promise.all(mine.map((j) =>
    api("GET", `/training-jobs/${seg(j.job_id)}`).catch((error) => ({ ...j, status: error.code }))));
  return table([
    { label: "Job", cell: (j) => h("code", {}, j.job_id) },
    { label: "Status", cell: (j) => badge(j.status) },
    { label: "Progress", cell: (j) => h("progress", { max: j.steps || 1, value: j.step || 0 }) },
    { label: "Step", class: "num", cell: (j) => `${j.step || 0}/${j.steps || "?"}` },
    { label: "Loss", class: "num", cell: (j) => (j.loss ? fmtNum(j.loss, 3) : "—") },
    { label: "Adapter", cell: (j) => (j.version ? `v${j.version}` : j.error || "") },
  ], rows, "No training jobs started from this tab.");
}

async function schedulerCard(isAdmin, refresh) {
  if (!isAdmin) return h("p", { class: "muted" }, "The scheduler's controls are for admins.");
  const control = (action) => api("POST", "/scheduler", { body: { action } });
  let state;
  try { state = await control("status"); } catch (error) { return errorBox(error); }
  const act = (action) => h("button", { class: "small secondary", id: `scheduler-${action}`,
    onclick: (e) => busy(e.target, async () => { await control(action); notify(`Scheduler: ${action}.`, "ok"); refresh(); }) }, action);
  return h("div", { class: "stats", id: "scheduler" },
    h("div", { class: "stat" }, h("span", { class: "muted" }, "state"),
      h("strong", {}, state.paused ? "paused" : "running")),
    ["events", "dropped", "tracked", "promoted", "demoted", "consolidations", "retired", "expired",
     "expired_total"].map((k) =>
      h("div", { class: "stat" }, h("span", { class: "muted" }, k), h("strong", {}, state[k]))),
    h("div", { class: "row" }, act(state.paused ? "resume" : "pause"), act("run")));
}

export async function render(main, [cubeId], me) {
  if (!cubeId) return cubeChooser(main);
  const refresh = () => render(main, [cubeId], me);
  const [status, listing] = await Promise.all([
    api("GET", `/cubes/${seg(cubeId)}/tiers`),
    api("GET", `/cubes/${seg(cubeId)}/adapters`).catch(() => ({ adapters: [] }))]);
  const hot = [...status.memories].sort((a, b) => b.frequency - a.frequency);
  const selectedIds = () => [...main.querySelectorAll("input[name=tier-pick]:checked")].map((i) => i.value);
  const act = async (what) => {
    const ids = selectedIds();
    if (!ids.length) { notify("Select memories first.", "error"); return; }
    if (what === "activate") {
      const r = await api("POST", `/cubes/${seg(cubeId)}/activation`, { body: { memory_ids: ids } });
      notify(`Activated ${ids.length} ${ids.length === 1 ? "memory" : "memories"}: ` +
             `${r.num_tokens} tokens in the block, ${r.prefill_tokens} prefilled.`, "ok");
    } else {
      const job = await api("POST", `/cubes/${seg(cubeId)}/adapters`, { body: { memory_ids: ids } });
      sessionStorage.setItem(JOBS_SLOT, JSON.stringify([...jobs(), { job_id: job.job_id, cube_id: cubeId }]));
      notify(`Training job ${job.job_id} started.`, "ok");
    }
    refresh();
  };
  clear(main,
    h("div", { class: "view-head" }, h("h1", {}, `Tiers of ${cubeId}`),
      h("a", { href: `#/memories/${seg(cubeId)}` }, "memories →"),
      h("button", { class: "small secondary", onclick: refresh }, "Refresh")),
    h("section", { class: "card" }, h("h2", {}, "Access frequency (decayed), hottest first"),
      barChart(hot.slice(0, 25).map((m) => ({ label: m.memory_id, value: m.frequency, kind: tierOf(m) }))),
      h("div", { class: "legend" }, ["plaintext", "activation", "parametric"].map((t) => badge(t)))),
    h("section", { class: "card" }, h("h2", {}, "Memories and their tiers"),
      h("div", { class: "row" },
        h("button", { id: "activate-selected", onclick: (e) => busy(e.target, () => act("activate")) }, "Activate selected"),
        h("button", { id: "train-selected", class: "secondary", onclick: (e) => busy(e.target, () => act("train")) }, "Train adapter on selected")),
      table([
        { label: "", cell: (m) => h("input", { type: "checkbox", name: "tier-pick", value: m.memory_id }) },
        { label: "Memory", cell: (m) => h("code", {}, m.memory_id) },
        { label: "Ver.", class: "num", cell: (m) => m.version },
        { label: "Frequency", class: "num", cell: (m) => fmtNum(m.frequency, 2) },
        { label: "Tiers", cell: (m) => h("span", { class: "tiers" }, m.tiers.map((t) => badge(t))) },
        { label: "In adapter", cell: (m) => adapterMarks(listing.adapters, m.memory_id) },
      ], hot, "The scheduler has seen no access to this cube yet.")),
    h("section", { class: "card" }, h("h2", {}, "Adapters"), adapterTable(listing.adapters)),
    h("section", { class: "card" }, h("h2", {}, "Training jobs"), await jobList(cubeId)),
    h("section", { class: "card" }, h("h2", {}, "Migrations"), timeline(status.migrations)),
    h("section", { class: "card" }, h("h2", {}, "Scheduler"), await schedulerCard(me.role === "admin", refresh)));
  return null;
}
