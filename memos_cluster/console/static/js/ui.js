// Small DOM helpers shared by the views: an element builder, tables, notices, a confirmation
// dialog, SVG elements and charts, and a word diff. No framework: the views rebuild their part
// of the page.

// h("button", {class: "x", onclick}, "text", child...): attributes named on* become listeners.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// columns: [{label, cell: (row) => node|text, class?}]
export function table(columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {},
      columns.map((c) => h("td", { class: c.class, "data-label": c.label }, c.cell(row))))))));
}

// A message at the top of the page; errors show their code and, where given, the field.
export function notify(message, kind = "info") {
  const box = document.getElementById("notice");
  const text = message instanceof Error
    ? `${message.code ? message.code + ": " : ""}${message.message}` +
      (message.field ? ` (field: ${message.field})` : "")
    : message;
  clear(box, h("div", { class: `notice ${kind}` }, text,
    h("button", { class: "link", "aria-label": "dismiss", onclick: () => clear(box) }, "×")));
}

export function errorBox(error) {
  return h("div", { class: "notice error inline" },
    `${error.code || "ERROR"}: ${error.message}` + (error.field ? ` (field: ${error.field})` : ""));
}

export function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// Runs an async action from a button, disabling it meanwhile; errors become a notice.
export async function busy(button, action) {
  button.disabled = true;
  try { return await action(); } catch (error) { notify(error, "error"); }
  finally { button.disabled = false; }
}

export const fmtTime = (ms) => (ms && Number(ms) ? new Date(Number(ms)).toLocaleString() : "—");
export const fmtNum = (x, digits = 1) => Number(x).toFixed(digits);
export const badge = (text, kind = text) => h("span", { class: `badge ${kind}` }, text);
export const short = (text, n = 140) => (text.length > n ? text.slice(0, n - 1) + "…" : text);

const SVG = "http://www.w3.org/2000/svg";
// svg("circle", {r: 4}, child...): an SVG element (attributes set as given, no listeners).
export function svg(tag, attrs = {}, ...children) { return s(tag, attrs, ...children); }
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(child));
  return el;
}

// Horizontal bars: items [{label, value, kind}] (kind colours the bar), value axis in `unit`.
export function barChart(items, { unit = "", width = 560 } = {}) {
  if (!items.length) return h("p", { class: "muted" }, "No data yet.");
  const row = 22, left = 170, max = Math.max(...items.map((i) => i.value), 1e-9);
  const svg = s("svg", { viewBox: `0 0 ${width} ${items.length * row + 8}`, class: "chart",
                         role: "img" });
  items.forEach((item, i) => {
    const y = i * row + 4, w = ((width - left - 70) * item.value) / max;
    svg.append(s("text", { x: left - 6, y: y + 14, "text-anchor": "end", class: "label" },
                 short(item.label, 20)),
               s("rect", { x: left, y, width: Math.max(w, 1), height: row - 6,
                           class: `bar ${item.kind || ""}` }, s("title", {}, `${item.label}: ${item.value}`)),
               s("text", { x: left + w + 6, y: y + 14, class: "value" },
                 `${fmtNum(item.value, item.value < 10 ? 2 : 0)}${unit}`));
  });
  return svg;
}

// Lines over time: series {name: [[time_s, y], ...]}, one colour per series, a legend below.
export function lineChart(series, { unit = "", width = 560, height = 180 } = {}) {
  const points = Object.values(series).flat();
  if (!points.length) return h("p", { class: "muted" }, "No requests in the window yet.");
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], y1 = Math.max(...ys, 1e-9);
  const pad = 34, X = (x) => pad + ((width - pad - 8) * (x - x0)) / Math.max(x1 - x0, 1);
  const Y = (y) => height - 20 - ((height - 30) * y) / y1;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" },
    s("line", { x1: pad, y1: height - 20, x2: width - 8, y2: height - 20, class: "axis" }),
    s("text", { x: 2, y: 14, class: "label" }, `${fmtNum(y1, 1)}${unit}`),
    s("text", { x: 2, y: height - 22, class: "label" }, "0"));
  const legend = h("div", { class: "legend" });
  Object.entries(series).forEach(([name, pts], i) => {
    svg.append(s("polyline", { class: `line c${i % 6}`, fill: "none",
                               points: pts.map(([x, y]) => `${X(x)},${Y(y)}`).join(" ") }));
    legend.append(h("span", { class: `key c${i % 6}` }, name));
  });
  return h("figure", { class: "line-chart" }, svg, legend);
}

// A word-level diff of two texts (longest common subsequence): removed words in <del>, added
// in <ins>. Memories are at most a few thousand words, so the quadratic table is fine.
export function wordDiff(before, after) {
  const a = before.split(/(\s+)/), b = after.split(/(\s+)/);
  const n = a.length, m = b.length;
  const keep = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      keep[i][j] = a[i] === b[j] ? keep[i + 1][j + 1] + 1 : Math.max(keep[i + 1][j], keep[i][j + 1]);
    }
  }
  const ops = [];  // [kind, token]: "=", "-" or "+"
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { ops.push(["=", a[i]]); i++; j++; }
    else if (j < m && (i === n || keep[i][j + 1] >= keep[i + 1][j])) ops.push(["+", b[j++]]);
    else ops.push(["-", a[i++]]);
  }
  // Read as phrases: blanks kept between two changes join the change, and each changed stretch
  // shows all it removed, then all it added ("a grey cat" -> "two cats," not word by word).
  ops.forEach((op, k) => {
    const changed = (other) => other && other[0] !== "=";
    if (op[0] === "=" && !op[1].trim() && changed(ops[k - 1]) && changed(ops[k + 1])) {
      op[0] = "~";
    }
  });
  const out = h("p", { class: "diff" });
  for (let k = 0; k < ops.length;) {
    if (ops[k][0] === "=") { out.append(ops[k++][1]); continue; }
    let removed = "", added = "";
    for (; k < ops.length && ops[k][0] !== "="; k++) {
      const [kind, token] = ops[k];
      if (kind !== "+") removed += token;
      if (kind !== "-") added += token;
    }
    if (removed) out.append(h("del", {}, removed));
    if (added) out.append(h("ins", {}, added));
  }
  return out;
}
