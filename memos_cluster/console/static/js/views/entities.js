// Entities of a cube: the people, places and things its memories mention, as the memory reader
// resolved them (ListEntities: paged, filtered by name and label), and one entity (GetEntity):
// its other names, the memories that mention it, its relations and its neighbourhood drawn as a
// graph in inline SVG. memoryMarks() gives the Memories and Search views a memory's resolved
// dates and its mentions as links into this view.
import { api, seg } from "../api.js";
import { h, clear, table, errorBox, badge, short, svg } from "../ui.js";

const PAGE = 50;  // rows per page
const MAX_NEIGHBOURS = 16;  // drawn on the circle; the list below the graph names them all
// spaCy's labels (and CONCEPT, a noun phrase), offered in the label filter.
const LABELS = ["PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "PRODUCT", "WORK_OF_ART",
                "LANGUAGE", "LAW", "CONCEPT"];

// #/entities/cube/ref: ref is an entity's id, or a name (GetEntity takes either).
export const entityHref = (cubeId, ref) => `#/entities/${seg(cubeId)}/${seg(ref)}`;
const refOf = (e) => e.entity_id || e.name;
const labelClass = (label) => `lbl-${String(label || "none").replace(/[^A-Za-z0-9_-]/g, "")}`;
const isoDay = (ms) => new Date(Number(ms)).toISOString().slice(0, 10);
const dayOf = (ms) => new Date(Number(ms)).toLocaleDateString(undefined,
  { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });

// A memory's resolved dates as tags: "yesterday → 7 May 2023" (the phrase, then the period it
// means, read against the memory's event time); unresolved phrases are left out.
export function dateTags(memory) {
  return (memory.structure?.times || []).filter((t) => t.resolved).map((t) => {
    const label = t.label || isoDay(t.start_ms);
    const same = !t.span || t.span.toLowerCase() === label.toLowerCase();
    const [first, last] = [isoDay(t.start_ms), isoDay(Number(t.end_ms) - 1)];  // end_ms: exclusive
    return h("span", { class: "date-tag", title: `${t.granularity || "period"}: ${first}` +
                                                 (last !== first ? ` to ${last}` : "") },
      same ? label : `${t.span} → ${label}`);
  });
}

// A memory's entity mentions as links to the entity, each entity once.
export function entityLinks(memory, cubeId = memory.cube_id) {
  const seen = new Set();
  return (memory.structure?.entities || []).filter((m) => {
    const key = m.entity_id || (m.name || "").toLowerCase();
    if (!key || seen.has(key)) return false;
    seen.add(key);
    return true;
  }).map((m) => h("a", { class: `entity-link ${labelClass(m.label)}`, href: entityHref(cubeId, refOf(m)),
                         "data-entity": refOf(m), title: `${m.label}: “${m.span}”` }, m.name));
}

// Both, in one line under a memory's text; null when the reader found neither.
export function memoryMarks(memory, cubeId = memory.cube_id) {
  const marks = [...dateTags(memory), ...entityLinks(memory, cubeId)];
  return marks.length ? h("div", { class: "marks" }, marks) : null;
}

async function cubeChooser(main) {
  const { cubes } = await api("GET", "/cubes");
  clear(main, h("div", { class: "view-head" }, h("h1", {}, "Entities")),
    h("p", { class: "muted" }, "Choose a cube:"),
    h("ul", { class: "plain" }, cubes.map((c) => h("li", {},
      h("a", { href: `#/entities/${seg(c.cube_id)}` }, c.cube_id)))));
}

async function listView(main, cubeId) {
  const body = h("div", { id: "entity-table" });
  const name = h("input", { name: "name_contains", id: "entity-name", placeholder: "contains…" });
  const label = h("input", { name: "label", id: "entity-label", list: "entity-labels", size: 10,
                             placeholder: "any", autocomplete: "off" });
  let offset = 0;
  const form = h("form", { class: "card inline-form filters", id: "entity-filters", onsubmit: (e) => {
    e.preventDefault(); offset = 0; load();
  } },
    h("label", {}, "Name ", name), h("label", {}, "Label ", label),
    h("datalist", { id: "entity-labels" }, LABELS.map((l) => h("option", { value: l }))),
    h("button", { type: "submit", id: "apply-entity-filters" }, "Filter"));
  async function load() {
    let page;
    try {
      page = await api("GET", `/cubes/${seg(cubeId)}/entities`, { query: {
        name_contains: name.value.trim(), label: label.value.trim().toUpperCase(),
        page_size: PAGE, page_token: offset ? String(offset) : "" } });
    } catch (error) { clear(body, errorBox(error)); return; }
    const entities = page.entities || [], total = Number(page.total || 0), next = page.next_page_token;
    clear(body, table([
      { label: "Name", cell: (e) => h("a", { href: entityHref(cubeId, refOf(e)), class: "entity-name",
                                             "data-entity": refOf(e) }, e.name) },
      { label: "Label", cell: (e) => badge(e.label || "—", `entity-label ${labelClass(e.label)}`) },
      { label: "Mentions", class: "num", cell: (e) => Number(e.num_mentions || 0) },
      { label: "Also called", class: "text", cell: (e) => short((e.aliases || []).join(", "), 160) },
    ], entities, "No entities match: the reader finds them in memories as they are written."),
    h("div", { class: "pager" },
      h("button", { class: "secondary small", disabled: offset === 0, id: "entity-prev-page",
                    onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "← Previous"),
      h("span", { class: "muted", id: "entity-page-range" }, total
        ? `${offset + 1}–${offset + entities.length} of ${total}` : "0 of 0"),
      h("button", { class: "secondary small", disabled: !next, id: "entity-next-page",
                    onclick: () => { offset = Number(next); load(); } }, "Next →")));
  }
  clear(main, h("div", { class: "view-head" }, h("h1", {}, `Entities of ${cubeId}`),
    h("span", { class: "muted" }, "most mentioned first"),
    h("a", { href: `#/memories/${seg(cubeId)}` }, "memories →")), form, body);
  await load();
}

// One node of the graph: a link to the entity, its circle sized by mentions, its name outside
// the circle (away from the centre), the full name and counts in a tooltip.
function graphNode(cubeId, entity, { x, y, angle, r, kind, tip, font, chars }) {
  let tx = x, ty = y + r + font, anchor = "middle";  // the centre: its name below it
  if (kind !== "centre") {
    const cos = Math.cos(angle), sin = Math.sin(angle);
    if (Math.abs(cos) < 0.35) ty = sin < 0 ? y - r - font / 2 : y + r + font;  // top and bottom
    else {  // left and right: beside the node, away from the centre
      tx = x + (r + 6) * Math.sign(cos);
      ty = y + font / 3 + sin * 6;
      anchor = cos > 0 ? "start" : "end";
    }
  }
  return svg("a", { href: entityHref(cubeId, refOf(entity)), "data-entity": refOf(entity),
                    class: `graph-node ${kind} ${labelClass(entity.label)}` },
    svg("title", {}, tip),
    svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r }),
    svg("text", { x: tx.toFixed(1), y: ty.toFixed(1), "text-anchor": anchor },
      short(entity.name, chars)));
}

// The entity in the centre, its neighbours (most shared first) on a circle, each edge as thick
// as the memories the two share. At a phone's width the drawing shrinks by about half, so it
// draws a smaller circle with larger names, cut shorter, to stay readable.
export function neighbourGraph(cubeId, entity, neighbours) {
  const shown = neighbours.slice(0, MAX_NEIGHBOURS);
  const narrow = window.matchMedia("(max-width: 720px)").matches;
  const k = narrow ? 1.5 : 1, font = 13 * k, chars = narrow ? 11 : 18;
  const width = 520, height = narrow ? 380 : 400, cx = width / 2, cy = height / 2;
  const radius = narrow ? 112 : 145;
  const most = Math.max(4, ...shown.map((n) => Number(n.num_shared || 0)));
  const size = (e) => Math.round(k * (6 + Math.min(8, 2 * Math.log2(1 + Number(e.num_mentions || 0)))));
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const edges = svg("g", { class: "edges" }), nodes = svg("g", { class: "nodes" });
  shown.forEach((n, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / shown.length;
    const x = cx + radius * Math.cos(angle), y = cy + radius * Math.sin(angle);
    const shared = Number(n.num_shared || 0);
    edges.append(svg("line", { x1: cx, y1: cy, x2: x.toFixed(1), y2: y.toFixed(1), class: "edge",
                               "stroke-width": (k * (1.5 + (6.5 * shared) / most)).toFixed(1) },
      svg("title", {}, `${entity.name} and ${n.entity.name}: ` +
                       `${plural(shared, "shared memory", "shared memories")}`)));
    nodes.append(graphNode(cubeId, n.entity, { x, y, angle, r: size(n.entity), kind: "neighbour",
      font, chars, tip: `${n.entity.name} (${n.entity.label}): ` +
        `${plural(Number(n.entity.num_mentions || 0), "mention", "mentions")}, ${shared} shared` }));
  });
  nodes.append(graphNode(cubeId, entity, { x: cx, y: cy, angle: 0, r: 16 * k, kind: "centre",
    font, chars, tip: `${entity.name} (${entity.label}): ` +
      `${plural(Number(entity.num_mentions || 0), "mention", "mentions")}` }));
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, class: narrow ? "graph narrow" : "graph",
                      role: "img", "aria-label": `${entity.name} and its neighbouring entities` },
    edges, nodes);
}

// The memory's text with this entity's mentions marked (offsets count code points, as Python's).
function highlighted(memory, entity) {
  const chars = Array.from(memory.text);
  const spans = (memory.structure?.entities || [])
    .filter((m) => (m.entity_id ? m.entity_id === entity.entity_id : m.name === entity.name))
    .map((m) => [Number(m.start_char || 0), Number(m.end_char || 0)]).sort((a, b) => a[0] - b[0]);
  const out = [];
  let at = 0;
  for (const [start, end] of spans) {
    if (start < at || end > chars.length || start >= end) continue;
    out.push(chars.slice(at, start).join(""), h("mark", {}, chars.slice(start, end).join("")));
    at = end;
  }
  out.push(chars.slice(at).join(""));
  return out;
}

function graphCard(cubeId, entity, neighbours) {
  if (!neighbours.length) {
    return h("section", { class: "card", id: "entity-graph" }, h("h2", {}, "Neighbourhood"),
      h("p", { class: "muted" }, "No other entity shares a memory with it."));
  }
  return h("section", { class: "card", id: "entity-graph" }, h("h2", {}, "Neighbourhood"),
    neighbourGraph(cubeId, entity, neighbours),
    h("p", { class: "small muted neighbours" }, "Shares memories with ",
      neighbours.flatMap((n, i) => [i ? ", " : "",
        h("a", { href: entityHref(cubeId, refOf(n.entity)) }, n.entity.name),
        ` (${Number(n.num_shared || 0)})`]),
      ". The thicker the line, the more memories they share."));
}

// Relations naming the entity; a party that is an entity (this one's names, its neighbours',
// the ones its memories mention) links to it.
function relationsCard(cubeId, entity, relations, memories, neighbours) {
  const known = new Map();
  for (const m of memories) for (const e of m.structure?.entities || []) known.set(e.name, refOf(e));
  for (const n of neighbours) known.set(n.entity.name, refOf(n.entity));
  const own = new Set([entity.name, ...(entity.aliases || [])]);
  const party = (name) => (own.has(name) ? h("strong", {}, name)
    : known.has(name) ? h("a", { href: entityHref(cubeId, known.get(name)) }, name) : name);
  return h("section", { class: "card", id: "entity-relations" }, h("h2", {}, "Relations"),
    table([
      { label: "Subject", cell: (r) => party(r.subject) },
      { label: "Predicate", cell: (r) => h("em", {}, r.predicate) },
      { label: "Object", cell: (r) => party(r.object) },
      { label: "When", cell: (r) => (r.has_time ? dayOf(r.time_ms) : "—") },
    ], relations, "No relations found for it."));
}

function memoriesCard(cubeId, entity, memories) {
  const mentions = Number(entity.num_mentions || 0);
  return h("section", { class: "card", id: "entity-memories" },
    h("h2", {}, "Memories that mention it",
      memories.length < mentions ? ` (the newest ${memories.length})` : ""),
    table([
      { label: "Event", cell: (m) => (m.has_event_time ? dayOf(m.event_time_ms) : "—") },
      { label: "Memory", class: "text", cell: (m) => h("div", {},
          h("div", {}, highlighted(m, entity)), memoryMarks(m, cubeId)) },
      { label: "Id", cell: (m) => h("code", {}, m.id) },
    ], memories, "No current memory mentions it."));
}

async function entityView(main, cubeId, ref) {
  window.scrollTo(0, 0);
  const back = h("a", { href: `#/entities/${seg(cubeId)}`, id: "entity-back" },
    `← entities of ${cubeId}`);
  let detail;
  try { detail = await api("GET", `/cubes/${seg(cubeId)}/entities/${seg(ref)}`); }
  catch (error) {
    clear(main, h("div", { class: "view-head" }, h("h1", {}, ref), back), errorBox(error));
    return;
  }
  const { entity } = detail;
  const memories = detail.memories || [], neighbours = detail.neighbours || [];
  const mentions = Number(entity.num_mentions || 0);
  clear(main,
    h("div", { class: "view-head" }, h("h1", { id: "entity-title" }, entity.name),
      badge(entity.label || "—", `entity-label ${labelClass(entity.label)}`),
      h("span", { class: "muted" },
        `${mentions} ${mentions === 1 ? "memory mentions" : "memories mention"} it`),
      back),
    h("div", { class: "grid2" },
      graphCard(cubeId, entity, neighbours),
      h("div", {},
        h("section", { class: "card", id: "entity-aliases" }, h("h2", {}, "Also called"),
          (entity.aliases || []).length
            ? h("div", { class: "chips" }, entity.aliases.map((a) => h("span", { class: "chip" }, a)))
            : h("p", { class: "muted" }, "No other names."),
          h("p", { class: "small muted" }, "Id ", h("code", {}, entity.entity_id))),
        relationsCard(cubeId, entity, detail.relations || [], memories, neighbours))),
    memoriesCard(cubeId, entity, memories));
}

export async function render(main, [cubeId, ref]) {
  if (!cubeId) return cubeChooser(main);
  if (ref) return entityView(main, cubeId, ref);
  return listView(main, cubeId);
}
