// Cubes: the ones this key may read, with sizes, shard and how many memories each tier holds;
// create and delete (with confirmation).
import { api, cubesWithStats, seg } from "../api.js";
import { h, clear, table, notify, confirmAction, busy, fmtTime, badge } from "../ui.js";

async function tierCounts(cubeId) {
  try {
    const { memories } = await api("GET", `/cubes/${seg(cubeId)}/tiers`);
    const count = (tier) => memories.filter((m) => m.tiers.includes(tier)).length;
    return { activation: count("activation"), parametric: count("parametric") };
  } catch { return null; }  // the scheduler is optional: no tier figures then
}

function createForm(onDone) {
  const id = h("input", { name: "cube_id", id: "new-cube-id", required: true,
                          placeholder: "e.g. alice", pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-@]*" });
  const description = h("input", { name: "description", placeholder: "what it remembers" });
  const button = h("button", { type: "submit", id: "create-cube" }, "Create cube");
  return h("form", { class: "card inline-form", onsubmit: (event) => {
    event.preventDefault();
    busy(button, async () => {
      await api("POST", "/cubes", { body: { cube_id: id.value.trim(),
                                            description: description.value } });
      notify(`Created cube ${id.value.trim()}.`, "ok");
      onDone();
    });
  } }, h("label", {}, "New cube ", id), h("label", {}, "Description ", description), button);
}

async function remove(cube, refresh) {
  const n = cube.stats ? Number(cube.stats.num_memories) : "its";
  if (!await confirmAction(`Delete cube ${cube.cube_id} and ${n} memories? This cannot be undone.`)) return;
  const reply = await api("DELETE", `/cubes/${seg(cube.cube_id)}`);
  notify(`Deleted ${cube.cube_id} (${reply.num_memories_deleted} memories).`, "ok");
  refresh();
}

export async function render(main) {
  const refresh = () => render(main);
  const { cubes, total } = await cubesWithStats();
  const tiers = await Promise.all(cubes.map((c) => tierCounts(c.cube_id)));
  const rows = cubes.map((c, i) => ({ ...c, tiers: tiers[i] }));
  clear(main,
    h("div", { class: "view-head" }, h("h1", {}, "Cubes"),
      h("span", { class: "muted" }, `${total} cube${total === 1 ? "" : "s"} this key may read`)),
    createForm(refresh),
    table([
      { label: "Cube", cell: (c) => h("a", { href: `#/memories/${seg(c.cube_id)}`,
                                             class: "cube-link" }, c.cube_id) },
      { label: "Description", cell: (c) => c.description || "" },
      { label: "Memories", class: "num", cell: (c) => (c.stats ? c.stats.num_memories : "—") },
      { label: "Old versions", class: "num",
        cell: (c) => (c.stats ? c.stats.num_history_versions : "—") },
      { label: "Shard", cell: (c) => (c.stats ? c.stats.shard_id : "—") },
      { label: "Tiers", cell: (c) => (c.tiers
        ? h("span", {}, badge("plaintext"), " ",
            badge(`activation ${c.tiers.activation}`, "activation"), " ",
            badge(`parametric ${c.tiers.parametric}`, "parametric"))
        : "—") },
      { label: "Created", cell: (c) => fmtTime(c.created_at_ms) },
      { label: "", cell: (c) => h("span", { class: "actions" },
        h("a", { href: `#/entities/${seg(c.cube_id)}` }, "entities"),
        h("a", { href: `#/tiers/${seg(c.cube_id)}` }, "tiers"),
        h("button", { class: "danger small", "data-delete": c.cube_id,
                      onclick: (e) => busy(e.target, () => remove(c, refresh)) }, "Delete")) },
    ], rows, "No cubes yet: create one above."));
}
