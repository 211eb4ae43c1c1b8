// The console's shell: sign-in, the navigation and a hash router (#/view/arg). Each view module
// exports render(main, args) and rebuilds its part of the page from the API.
import { api, session, ApiError } from "./api.js";
import { h, clear, notify } from "./ui.js";
import * as cubes from "./views/cubes.js";
import * as memories from "./views/memories.js";
import * as search from "./views/search.js";
import * as entities from "./views/entities.js";
import * as generate from "./views/generate.js";
import * as chat from "./views/chat.js";
import * as tiers from "./views/tiers.js";
import * as health from "./views/health.js";
import * as admin from "./views/admin.js";

const VIEWS = { cubes, memories, search, entities, generate, chat, tiers, health, admin };
const main = document.getElementById("main");
export const me = { user_id: "", role: "", key_id: "" };  // filled in by whoami at sign-in
let stopView = null;  // a view's cleanup (timers), run when the page changes
let generation = 0;  // which route() call owns the page: a slower, older one must not draw

function goTo(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;  // the hashchange event routes
}

function signInView(reason) {
  generation++;  // nothing pending may draw over the form
  document.body.classList.add("signed-out");
  clear(document.getElementById("who"));
  const key = h("input", { type: "password", id: "api-key", name: "api-key", required: true,
                           autocomplete: "off", placeholder: "msk_…", "aria-label": "API key" });
  const form = h("form", { class: "card signin", onsubmit: async (event) => {
    event.preventDefault();
    session.signIn(key.value.trim());
    try { await whoami(); goTo("#/cubes"); }
    catch (error) { session.signOut(); notify(error, "error"); }
  } },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Use an API key of this cluster (memos-cluster keys create, or ",
      "an admin's Admin view). The key stays in this browser tab only."),
    h("label", { for: "api-key" }, "API key"), key,
    h("button", { type: "submit", id: "sign-in" }, "Sign in"));
  clear(main, reason ? h("p", { class: "notice error inline" }, reason) : null, form);
  key.focus();
}

async function whoami() {
  Object.assign(me, await api("GET", "/whoami"));
  document.body.classList.remove("signed-out");
  document.body.classList.toggle("is-admin", me.role === "admin");
  clear(document.getElementById("who"),
    h("span", { id: "who-user" }, `${me.user_id} `), h("span", { class: "badge" }, me.role),
    h("button", { class: "secondary small", id: "sign-out", onclick: () => {
      session.signOut(); me.user_id = ""; goTo("#/signin");
    } }, "Sign out"));
}

async function route() {
  if (stopView) { stopView(); stopView = null; }
  clear(document.getElementById("notice"));
  const [name = "cubes", ...args] = location.hash.replace(/^#\/?/, "").split("/")
    .map(decodeURIComponent);
  if (!session.key || name === "signin") return signInView();
  if (!me.user_id) {
    try { await whoami(); } catch (error) {
      session.signOut();
      return signInView(error instanceof ApiError ? error.message : String(error));
    }
  }
  const view = VIEWS[name] || cubes;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.view === (name === "memories" ? "cubes" : name));
  }
  clear(main, h("p", { class: "muted" }, "Loading…"));
  // Each view draws into its own element, shown only if no newer route() began meanwhile.
  const mine = ++generation, root = h("div", { class: "view", "data-view": name });
  let stop = null;
  try {
    stop = (await view.render(root, args, me)) || null;
  } catch (error) {
    if (error.status === 401) { session.signOut(); return signInView(error.message); }
    clear(root, h("div", { class: "notice error inline" }, `${error.code || "ERROR"}: ${error.message}`));
  }
  if (mine !== generation) { if (stop) stop(); return; }
  stopView = stop;
  clear(main, root);
}

window.addEventListener("hashchange", route);
route();
