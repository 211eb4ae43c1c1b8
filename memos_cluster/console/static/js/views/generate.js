// Generate: an answer streamed token by token, then its statistics (TTFT, tokens, prefill
// saved) and the prompt's memories with the tier that served each.
import { api, stream, seg } from "../api.js";
import { h, clear, table, busy, errorBox, badge, fmtNum } from "../ui.js";
import { cubePicker, picked } from "./search.js";

// The memories' texts by "cube/id" (one GetMemories a cube); the chat view uses it too.
export async function memoryTexts(served) {
  const byCube = {};
  for (const m of served) (byCube[m.cube_id] ||= []).push(m.memory_id);
  const texts = new Map();
  await Promise.all(Object.entries(byCube).map(async ([cube, ids]) => {
    const reply = await api("GET", `/cubes/${seg(cube)}/memories`, { query: { ids } });
    for (const m of reply.memories) texts.set(`${cube}/${m.id}`, m.text);
  }));
  return texts;
}

function statsBlock(stats) {
  const item = (label, value) => h("div", { class: "stat" }, h("span", { class: "muted" }, label),
                                   h("strong", {}, value));
  return h("div", { class: "stats", id: "generate-stats" },
    item("TTFT", `${fmtNum(stats.ttft_ms, 0)} ms`), item("total", `${fmtNum(stats.total_ms, 0)} ms`),
    item("prompt tokens", stats.prompt_tokens), item("prefilled", stats.prefill_tokens),
    item("reused from activation", stats.prefill_tokens_saved),
    item("generated", `${stats.num_generated} (${stats.finish_reason})`),
    item("adapters", stats.adapters_used.join(", ") || "none"));
}

export async function render(main) {
  const { cubes } = await api("GET", "/cubes");
  const out = h("pre", { class: "answer", id: "answer" });
  const after = h("div", { id: "generate-after" });
  const button = h("button", { type: "submit", id: "run-generate" }, "Generate");
  const form = h("form", { class: "card", onsubmit: (e) => {
    e.preventDefault();
    busy(button, () => run(form, out, after));
  } },
    h("div", { class: "row" }, h("input", { name: "query", id: "generate-query", required: true,
                                            class: "grow", placeholder: "Ask something the memory knows" }), button),
    h("div", { class: "row" },
      h("label", {}, "Max new tokens ", h("input", { name: "max_new_tokens", type: "number", min: 1,
                                                     max: 512, value: 48 })),
      h("label", {}, "Memory ", h("select", { name: "memory_mode" },
        h("option", { value: "auto" }, "auto (the system picks the tiers)"),
        h("option", { value: "plaintext" }, "retrieved text only (no caches, no adapter)")))),
    cubePicker(cubes));
  clear(main, h("div", { class: "view-head" }, h("h1", {}, "Generate")), form, out, after);
  return null;
}

async function run(form, out, after) {
  const data = new FormData(form);
  const auto = data.get("memory_mode") === "auto";
  const request = { cube_ids: picked(form), query: data.get("query"),
                    max_new_tokens: Number(data.get("max_new_tokens")),
                    ...(auto ? { memory_mode: "auto" }
                             : { memory_mode: "explicit", use_retrieved_memories: true }) };
  clear(out); clear(after);
  try {
    for await (const { event, data: payload } of stream("/generate", request)) {
      if (event === "token") out.append(payload.text);
      else if (event === "error") { after.append(errorBox(payload)); return; }
      else if (event === "stats") await showStats(payload, after);
    }
  } catch (error) { after.append(errorBox(error)); }
}

async function showStats(stats, after) {
  const texts = await memoryTexts(stats.memories);
  clear(after, statsBlock(stats), h("h2", {}, "The prompt's memories"),
    table([
      { label: "#", class: "num", cell: (m) => stats.memories.indexOf(m) + 1 },
      { label: "Memory", class: "text", cell: (m) => texts.get(`${m.cube_id}/${m.memory_id}`) || m.memory_id },
      { label: "Cube / id", cell: (m) => `${m.cube_id} / ${m.memory_id} v${m.version}` },
      { label: "Served by", cell: (m) => badge(m.tier) },
    ], stats.memories, "No memories in the prompt."));
}
