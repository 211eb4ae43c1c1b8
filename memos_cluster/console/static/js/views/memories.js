// A cube's memories: a paged, filtered table (ListMemories) with each memory's resolved dates
// and entity links, add (with an event date), a memory's versions as a diff, edit with
// expected_version (a conflict is shown, the typed text kept), delete, and feedback (wrong,
// outdated with a successor, useful); a state filter shows superseded, archived and expired
// memories beside the active ones the table shows by default (docs/lifecycle.md).
import { api, seg } from "../api.js";
import { h, clear, table, notify, errorBox, confirmAction, busy, fmtTime, short, wordDiff, badge }
  from "../ui.js";
import { memoryMarks } from "./entities.js";

const PAGE = 25;  // rows per page

function dayMs(value, endOfDay) {
  if (!value) return null;
  const t = new Date(value + "T00:00:00").getTime();
  return endOfDay ? t + 86_400_000 : t;
}

function filterOf(form) {
  const data = new FormData(form);
  const range = { start: dayMs(data.get("from"), false), end: dayMs(data.get("to"), true) };
  const time = {};
  if (range.start !== null) Object.assign(time, { has_start: true, start_ms: range.start });
  if (range.end !== null) Object.assign(time, { has_end: true, end_ms: range.end });
  const filter = {};
  if (data.get("type")) filter.memory_types = [data.get("type").trim()];
  if (Object.keys(time).length) filter[data.get("time_field")] = time;
  if (data.get("state") === "all") filter.states = ["active", "superseded", "archived", "expired"];
  else if (data.get("state")) filter.states = [data.get("state")];
  return { text_contains: data.get("text").trim(), filter };
}

function filterForm(onChange) {
  const form = h("form", { class: "card inline-form filters", id: "memory-filters",
                           onsubmit: (e) => { e.preventDefault(); onChange(); } },
    h("label", {}, "Text ", h("input", { name: "text", id: "filter-text", placeholder: "contains…" })),
    h("label", {}, "Type ", h("input", { name: "type", placeholder: "fact", size: 8 })),
    h("label", {}, "Time ", h("select", { name: "time_field" },
      h("option", { value: "event_time" }, "event time"),
      h("option", { value: "created_at" }, "created"))),
    h("label", {}, "from ", h("input", { name: "from", type: "date" })),
    h("label", {}, "to ", h("input", { name: "to", type: "date" })),
    h("label", {}, "State ", h("select", { name: "state", id: "filter-state" },
      ["active", "superseded", "archived", "expired", "all"].map(
        (s) => h("option", { value: s === "active" ? "" : s }, s)))),
    h("button", { type: "submit", id: "apply-filters" }, "Filter"));
  return form;
}

function addForm(cubeId, onDone) {
  const text = h("textarea", { name: "text", id: "new-memory-text", rows: 2, required: true,
                               placeholder: "Something to remember" });
  const type = h("input", { name: "memory_type", placeholder: "fact", size: 8 });
  // When it happened: the reader reads "yesterday" in the text against it. A day is sent as
  // its noon UTC, which is the same day in nearly every time zone.
  const day = h("input", { name: "event_day", id: "new-memory-day", type: "date",
                           title: "when it happened (optional)" });
  const button = h("button", { type: "submit", id: "add-memory" }, "Add memory");
  return h("form", { class: "card inline-form", onsubmit: (e) => {
    e.preventDefault();
    busy(button, async () => {
      const memory = { text: text.value, memory_type: type.value.trim() };
      if (day.value) {
        const [y, m, d] = day.value.split("-").map(Number);
        Object.assign(memory, { has_event_time: true, event_time_ms: Date.UTC(y, m - 1, d, 12) });
      }
      const reply = await api("POST", `/cubes/${seg(cubeId)}/memories`, { body: { memories: [memory] } });
      notify(`Added memory ${reply.ids[0]}.`, "ok");
      text.value = "";
      onDone();
    });
  } }, h("label", { class: "grow" }, "New memory ", text), h("label", {}, "Type ", type),
    h("label", {}, "Event ", day), button);
}

async function showHistory(panel, cubeId, memory) {
  const { versions } = await api("GET", `/cubes/${seg(cubeId)}/memories/${seg(memory.id)}/history`);
  clear(panel, h("h2", {}, `History of ${memory.id}`),
    versions.map((v, i) => h("div", { class: "version" },
      h("div", { class: "muted" }, `version ${v.version} · ${fmtTime(v.updated_at_ms)} · ` +
        stateLine(v)),
      i === 0 ? h("p", { class: "diff" }, v.text) : wordDiff(versions[i - 1].text, v.text))));
  panel.scrollIntoView({ block: "nearest" });
}

// Edit: the update carries the version the person started from; if someone else wrote a newer
// one meanwhile the server refuses (FAILED_PRECONDITION) and the console says so, keeping the
// typed text, instead of overwriting theirs.
function showEdit(panel, cubeId, memory, onDone, onConflict) {
  const text = h("textarea", { id: "edit-text", rows: 4 }, memory.text);
  const save = h("button", { id: "save-edit" }, "Save");
  const status = h("div", { id: "edit-status" });
  save.addEventListener("click", () => busy(save, async () => {
    try {
      await api("PATCH", `/cubes/${seg(cubeId)}/memories/${seg(memory.id)}`, { body: {
        text: text.value, expected_version: memory.version } });
      notify(`Saved ${memory.id} as version ${Number(memory.version) + 1}.`, "ok");
      onDone();
    } catch (error) {
      if (error.code !== "FAILED_PRECONDITION") throw error;
      const [now] = (await api("GET", `/cubes/${seg(cubeId)}/memories`,
                               { query: { ids: memory.id } })).memories;
      clear(status, h("div", { class: "notice error inline conflict" },
        `Conflict: ${error.message}. Someone saved version ${now ? now.version : "?"} after you `,
        `opened version ${memory.version}; nothing was overwritten. Their text:`,
        h("blockquote", {}, now ? now.text : "(deleted)"),
        "Your text is still in the box: reopen the memory to edit the new version."));
      onConflict();  // the table shows the version now stored
    }
  }));
  clear(panel, h("h2", {}, `Edit ${memory.id} (version ${memory.version})`), text,
    h("div", { class: "row" }, save,
      h("button", { class: "secondary", onclick: () => clear(panel) }, "Cancel")), status);
  text.focus();
}

function stateLine(m) {
  const parts = [m.state || "active"];
  if (m.superseded_by) parts.push(`by ${m.superseded_by}`);
  if (m.supersedes && m.supersedes.length) parts.push(`supersedes ${m.supersedes.join(", ")}`);
  if (m.state_reason) parts.push(m.state_reason);
  return parts.join(" · ");
}

// Feedback: the three kinds, with an optional text (outdated: what holds now, stored as the
// memory's successor). A memory judged by someone else meanwhile is refused, and said so.
function showFeedback(panel, cubeId, memory, onDone) {
  const text = h("textarea", { id: "feedback-text", rows: 2,
                               placeholder: "outdated: what holds now (optional); else a note" });
  const send = (kind) => (e) => busy(e.target, async () => {
    const reply = await api("POST", `/cubes/${seg(cubeId)}/memories/${seg(memory.id)}/feedback`,
                            { body: { kind, text: text.value } });
    notify(`${memory.id}: ${reply.memory.state}` +
           (reply.successor ? `, successor ${reply.successor.id}` : "") + ".", "ok");
    onDone();
  });
  clear(panel, h("h2", {}, `Feedback on ${memory.id}`), h("p", {}, short(memory.text, 200)),
    text, h("div", { class: "row" },
      h("button", { id: "feedback-useful", class: "secondary", onclick: send("useful") }, "Useful"),
      h("button", { id: "feedback-outdated", onclick: send("outdated") }, "Outdated"),
      h("button", { id: "feedback-wrong", class: "danger", onclick: send("wrong") }, "Wrong"),
      h("button", { class: "secondary", onclick: () => clear(panel) }, "Cancel")));
  text.focus();
}

export async function render(main, [cubeId]) {
  if (!cubeId) { location.hash = "#/cubes"; return null; }
  const body = h("div", { id: "memory-table" });
  const panel = h("section", { class: "card panel", id: "memory-panel" });
  let offset = 0;
  const filters = filterForm(() => { offset = 0; load(); });
  async function load() {
    let page;
    try {
      page = await api("POST", `/cubes/${seg(cubeId)}/memories/list`,
                       { body: { ...filterOf(filters), page_size: PAGE, page_token: offset ? String(offset) : "" } });
    } catch (error) { clear(body, errorBox(error)); return; }
    const total = Number(page.total), next = page.next_page_token;
    clear(body, table([
      { label: "Id", cell: (m) => h("code", {}, m.id) },
      { label: "Text", class: "text", cell: (m) => h("div", {}, short(m.text, 200),
          memoryMarks(m, cubeId)) },
      { label: "Type", cell: (m) => badge(m.memory_type, "type") },
      { label: "State", cell: (m) => h("span", { title: stateLine(m), "data-state": m.id },
          badge(m.state || "active", m.state === "active" ? "type" : "warn")) },
      { label: "Ver.", class: "num", cell: (m) => m.version },
      { label: "Updated", cell: (m) => fmtTime(m.updated_at_ms) },
      { label: "Event", cell: (m) => (m.has_event_time ? fmtTime(m.event_time_ms) : "—") },
      { label: "", cell: (m) => h("span", { class: "actions" },
        h("button", { class: "small secondary", "data-history": m.id,
                      onclick: (e) => busy(e.target, () => showHistory(panel, cubeId, m)) }, "History"),
        h("button", { class: "small secondary", "data-feedback": m.id,
                      onclick: () => showFeedback(panel, cubeId, m, () => { clear(panel); load(); }) },
          "Feedback"),
        h("button", { class: "small", "data-edit": m.id,
                      onclick: () => showEdit(panel, cubeId, m, () => { clear(panel); load(); }, load) }, "Edit"),
        h("button", { class: "small danger", "data-delete": m.id, onclick: (e) => busy(e.target, async () => {
          if (!await confirmAction(`Delete memory ${m.id} and its history?`)) return;
          await api("DELETE", `/cubes/${seg(cubeId)}/memories`, { query: { ids: m.id } });
          notify(`Deleted ${m.id}.`, "ok");
          clear(panel);
          load();
        }) }, "Delete")) },
    ], page.memories, "No memories match."),
    h("div", { class: "pager" },
      h("button", { class: "secondary small", disabled: offset === 0, id: "prev-page",
                    onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "← Newer"),
      h("span", { class: "muted", id: "page-range" }, total
        ? `${offset + 1}–${offset + page.memories.length} of ${total}` : "0 of 0"),
      h("button", { class: "secondary small", disabled: !next, id: "next-page",
                    onclick: () => { offset = Number(next); load(); } }, "Older →")));
  }
  clear(main, h("div", { class: "view-head" }, h("h1", {}, `Memories of ${cubeId}`),
    h("a", { href: `#/entities/${seg(cubeId)}` }, "entities →"),
    h("a", { href: `#/tiers/${seg(cubeId)}` }, "tiers →")),
    addForm(cubeId, load), filters, body, panel);
  await load();
  return null;
}
