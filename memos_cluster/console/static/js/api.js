// The console's only way to the server: the public HTTP API (/v1), with the key the person
// signed in with. The key lives in sessionStorage (this tab only, gone when it closes); the
// page never holds any other key.
const KEY_SLOT = "memos.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY_SLOT); },
  signIn(key) { sessionStorage.setItem(KEY_SLOT, key); },
  signOut() { sessionStorage.clear(); },
};

// An error reply in the API's one shape: {"error": {"code", "message", "field"}}.
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;  // the HTTP status
    this.code = code;      // the gRPC status name, e.g. "FAILED_PRECONDITION"
    this.field = field || "";
  }
}

export const seg = (value) => encodeURIComponent(value);

function url(path, query) {
  const target = new URL("/v1" + path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    for (const one of [].concat(value)) {
      if (one !== undefined && one !== null && one !== "") target.searchParams.append(name, one);
    }
  }
  return target;
}

function headers() {
  const out = { "content-type": "application/json" };
  if (session.key) out.authorization = `Bearer ${session.key}`;
  return out;
}

async function failure(response) {
  let detail = {};
  try { detail = (await response.json()).error || {}; } catch { /* not JSON: keep the status */ }
  return new ApiError(response.status, detail.code || `HTTP_${response.status}`,
                      detail.message || response.statusText, detail.field);
}

// One unary call: the reply's JSON, or an ApiError.
export async function api(method, path, { body, query } = {}) {
  const response = await fetch(url(path, query), {
    method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

// Generate: server-sent events read from a fetch body (EventSource cannot POST or send the key).
// Yields {event, data} for each `token`, the `stats` and an `error` event.
export async function* stream(path, body) {
  const response = await fetch(url(path), {
    method: "POST", headers: headers(), body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) yield { event, data: JSON.parse(data) };
    }
  }
}

// Every cube the key may read, with its statistics (one GetCube each, at most `limit`).
export async function cubesWithStats(limit = 100) {
  const { cubes } = await api("GET", "/cubes");
  const shown = cubes.slice(0, limit);
  const stats = await Promise.all(shown.map((c) =>
    api("GET", `/cubes/${seg(c.cube_id)}`).then((r) => r.stats, () => null)));
  return { cubes: shown.map((c, i) => ({ ...c, stats: stats[i] })), total: cubes.length };
}
