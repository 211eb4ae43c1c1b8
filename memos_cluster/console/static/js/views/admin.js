// Admin: users (admins), API keys (an admin: anyone's; a user: their own; a new key is shown
// once), and cube grants (for cubes the key administers).
import { api, seg } from "../api.js";
import { h, clear, table, busy, notify, confirmAction, fmtTime, badge, errorBox } from "../ui.js";

function usersCard(users, onPick, refresh) {
  const id = h("input", { id: "new-user-id", required: true, placeholder: "user id" });
  const role = h("select", { id: "new-user-role" }, h("option", { value: "user" }, "user"),
                 h("option", { value: "admin" }, "admin"));
  const button = h("button", { type: "submit", id: "create-user" }, "Create user");
  return h("section", { class: "card" }, h("h2", {}, "Users"),
    h("form", { class: "inline-form", onsubmit: (e) => {
      e.preventDefault();
      busy(button, async () => {
        await api("POST", "/users", { body: { user_id: id.value.trim(), role: role.value } });
        notify(`Created user ${id.value.trim()}.`, "ok");
        refresh();
      });
    } }, id, role, button),
    table([
      { label: "User", cell: (u) => h("button", { class: "link", "data-user": u.user_id,
                                                  onclick: () => onPick(u.user_id) }, u.user_id) },
      { label: "Role", cell: (u) => badge(u.role) },
      { label: "Created", cell: (u) => fmtTime(u.created_at_ms) },
      { label: "", cell: (u) => h("button", { class: "small danger", onclick: (e) => busy(e.target, async () => {
          if (!await confirmAction(`Delete user ${u.user_id} and revoke all their keys?`)) return;
          await api("DELETE", `/users/${seg(u.user_id)}`);
          refresh();
        }) }, "Delete") },
    ], users));
}

async function keysCard(card, userId) {
  const { keys } = await api("GET", `/users/${seg(userId)}/keys`);
  const name = h("input", { id: "new-key-name", placeholder: "label, e.g. planner-agent" });
  const shown = h("div", { id: "new-key" });
  const button = h("button", { type: "submit", id: "create-key" }, "Create key");
  clear(card, h("h2", {}, `API keys of ${userId}`),
    h("form", { class: "inline-form", onsubmit: (e) => {
      e.preventDefault();
      busy(button, async () => {
        const reply = await api("POST", `/users/${seg(userId)}/keys`, { body: { name: name.value } });
        await keysCard(card, userId);
        card.querySelector("#new-key").replaceWith(h("div", { class: "notice ok inline", id: "new-key" },
          "The new key, shown this once (only its hash is stored): ",
          h("code", { id: "new-key-value", class: "secret" }, reply.api_key), " ",
          h("button", { class: "small secondary", onclick: () => navigator.clipboard?.writeText(reply.api_key) }, "Copy")));
      });
    } }, name, button), shown,
    table([
      { label: "Key id", cell: (k) => h("code", {}, k.key_id) },
      { label: "Name", cell: (k) => k.name },
      { label: "Created", cell: (k) => fmtTime(k.created_at_ms) },
      { label: "Expires", cell: (k) => (Number(k.expires_at_ms) ? fmtTime(k.expires_at_ms) : "never") },
      { label: "State", cell: (k) => (Number(k.revoked_at_ms) ? badge("revoked", "warn") : badge("active", "ok")) },
      { label: "", cell: (k) => (Number(k.revoked_at_ms) ? "" : h("button", { class: "small danger",
          onclick: (e) => busy(e.target, async () => {
            if (!await confirmAction(`Revoke key ${k.key_id}? Agents using it stop working.`)) return;
            await api("DELETE", `/keys/${seg(k.key_id)}`);
            await keysCard(card, userId);
          }) }, "Revoke")) },
    ], keys, "No keys."));
}

async function grantsCard(card, cubeId, cubes) {
  const picker = h("select", { id: "grant-cube", onchange: () => grantsCard(card, picker.value, cubes) },
    cubes.map((c) => h("option", { value: c.cube_id, selected: c.cube_id === cubeId }, c.cube_id)));
  const head = [h("h2", {}, "Cube grants"), h("label", {}, "Cube ", picker)];
  if (!cubeId) { clear(card, head, h("p", { class: "muted" }, "No cubes.")); return; }
  let access;
  try { access = await api("GET", `/cubes/${seg(cubeId)}/access`); }
  catch (error) { clear(card, head, errorBox(error)); return; }
  const user = h("input", { id: "grant-user", required: true, placeholder: "user id" });
  const permission = h("select", { id: "grant-permission" },
    ["read", "write", "admin"].map((p) => h("option", { value: p }, p)));
  const button = h("button", { type: "submit", id: "share-cube" }, "Grant");
  clear(card, head, h("p", {}, "Owner: ", h("strong", {}, access.owner || "(deleted user)")),
    h("form", { class: "inline-form", onsubmit: (e) => {
      e.preventDefault();
      busy(button, async () => {
        await api("PUT", `/cubes/${seg(cubeId)}/access/${seg(user.value.trim())}`,
                  { body: { permission: permission.value } });
        await grantsCard(card, cubeId, cubes);
      });
    } }, user, permission, button),
    table([
      { label: "User", cell: (g) => g.user_id }, { label: "Permission", cell: (g) => badge(g.permission) },
      { label: "", cell: (g) => h("button", { class: "small danger", onclick: (e) => busy(e.target, async () => {
          await api("DELETE", `/cubes/${seg(cubeId)}/access/${seg(g.user_id)}`);
          await grantsCard(card, cubeId, cubes);
        }) }, "Revoke") },
    ], access.grants, "No grants besides the owner."));
}

export async function render(main, _args, me) {
  const refresh = () => render(main, _args, me);
  const keys = h("section", { class: "card", id: "keys" });
  const grants = h("section", { class: "card", id: "grants" });
  const { cubes } = await api("GET", "/cubes");
  let users = null;
  if (me.role === "admin") users = (await api("GET", "/users")).users;
  clear(main, h("div", { class: "view-head" }, h("h1", {}, "Admin")),
    users ? usersCard(users, (id) => keysCard(keys, id), refresh)
          : h("p", { class: "muted" }, "Users are managed by admins; here are your own keys."),
    keys, grants);
  await Promise.all([keysCard(keys, me.user_id), grantsCard(grants, cubes[0]?.cube_id, cubes)]);
  return null;
}
