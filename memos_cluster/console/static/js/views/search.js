// The search playground: one query over one or more cubes, the hits with their scores, tier
// marks, resolved dates and entity links. "Explain" asks the server for each hit's score parts
// (ScoreParts): its rank and score in the dense and BM25 lists, then what the fusion, the
// neighbour spread and the date, "when" and entity boosts added.
import { api, seg } from "../api.js";
import { h, clear, table, busy, errorBox, badge, fmtNum } from "../ui.js";
import { memoryMarks } from "./entities.js";

export function cubePicker(cubes, name = "cubes") {
  if (!cubes.length) return h("p", { class: "muted" }, "No cubes this key may read.");
  return h("fieldset", { class: "cube-picker" }, h("legend", {}, "Cubes"),
    cubes.map((c, i) => h("label", { class: "check" },
      h("input", { type: "checkbox", name, value: c.cube_id, checked: i === 0 }), c.cube_id)));
}

export const picked = (form, name = "cubes") =>
  [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);

// Proto3 JSON leaves a zero number out or writes 64-bit ones as strings: read each as a Number.
const num = (value) => Number(value || 0);

function parts(hit) {
  const p = hit.explain;
  const ranks = ["dense", "bm25"].map((mode) => num(p[`${mode}_rank`])
    ? `${mode} #${num(p[`${mode}_rank`])} (${fmtNum(num(p[`${mode}_score`]), 3)})`
    : `${mode}: not a candidate`);
  const added = ["fused", "neighbour", "date", "when", "entity"].filter((k) => num(p[k]))
    .map((k) => `${k} +${fmtNum(num(p[k]), 3)}`);
  return [...ranks, ...(added.length ? [added.join(" ")] : [])].join(" · ");
}

export async function render(main) {
  const { cubes } = await api("GET", "/cubes");
  const results = h("div", { id: "search-results" });
  const query = h("input", { name: "query", id: "search-query", required: true,
                             placeholder: "What does Alice like?", class: "grow" });
  const button = h("button", { type: "submit", id: "run-search" }, "Search");
  const form = h("form", { class: "card", onsubmit: (e) => {
    e.preventDefault();
    busy(button, () => run(form, results));
  } },
    h("div", { class: "row" }, query, button),
    h("div", { class: "row" },
      h("label", {}, "Top k ", h("input", { name: "top_k", type: "number", min: 1, max: 200, value: 10 })),
      h("label", {}, "Mode ", h("select", { name: "mode" },
        ["SEARCH_MODE_HYBRID", "SEARCH_MODE_DENSE", "SEARCH_MODE_BM25"].map((m) =>
          h("option", { value: m }, m.replace("SEARCH_MODE_", "").toLowerCase())))),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "explain", id: "explain" }),
        "explain (ranks and score parts)")),
    cubePicker(cubes));
  clear(main, h("div", { class: "view-head" }, h("h1", {}, "Search")), form, results);
  return null;
}

async function run(form, results) {
  const data = new FormData(form);
  const request = { cube_ids: picked(form), query: data.get("query"),
                    top_k: Number(data.get("top_k")), mode: data.get("mode"),
                    explain: Boolean(data.get("explain")) };
  let reply;
  const began = performance.now();
  try { reply = await api("POST", "/search", { body: request }); }
  catch (error) { clear(results, errorBox(error)); return; }
  const elapsed = performance.now() - began;
  clear(results, h("p", { class: "muted" }, `${reply.hits.length} hits in ${fmtNum(elapsed, 0)} ms ` +
      "(round trip from this browser)"),
    table([
      { label: "#", class: "num", cell: (hit) => reply.hits.indexOf(hit) + 1 },
      { label: "Score", class: "num", cell: (hit) => fmtNum(hit.score, 3) },
      { label: "Memory", class: "text", cell: (hit) => h("div", {}, hit.memory.text,
          memoryMarks(hit.memory),
          hit.explain ? h("div", { class: "muted small why" }, parts(hit)) : null) },
      { label: "Cube / id", cell: (hit) => h("a", { href: `#/memories/${seg(hit.memory.cube_id)}` },
          `${hit.memory.cube_id} / ${hit.memory.id}`) },
      { label: "Tier", cell: (hit) => h("span", {}, badge(hit.tier || "plaintext"),
          Number(hit.adapter_version) ? [" ", badge(`adapter v${hit.adapter_version}`, "parametric")] : null) },
    ], reply.hits, "No hits."));
}
