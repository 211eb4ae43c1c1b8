// Chat: a conversation with memory (POST /v1/chat, server-sent events). Each answer streams,
// then shows the prompt tokens reused from the conversation's cache, the time to first token,
// and the memories placed before the message with the tier that served each.
import { api, stream } from "../api.js";
import { h, clear, busy, errorBox, badge, fmtNum } from "../ui.js";
import { memoryTexts } from "./generate.js";
import { cubePicker, picked } from "./search.js";

function turnStats(stats, texts) {
  const g = stats.generate;
  const share = g.prompt_tokens ? (100 * g.prefill_tokens_saved) / g.prompt_tokens : 0;
  const line = h("div", { class: "muted chat-stats" },
    `${g.prefill_tokens_saved} of ${g.prompt_tokens} prompt tokens reused (${fmtNum(share, 0)}%)`
    + ` · first token after ${fmtNum(g.ttft_ms, 0)} ms · ${g.num_generated} tokens`
    + (stats.remembered.length ? " · remembered" : ""));
  const memories = h("ul", { class: "chat-memories" }, ...g.memories.map((m) =>
    h("li", {}, badge(m.tier), " ", texts.get(`${m.cube_id}/${m.memory_id}`) || m.memory_id)));
  return h("div", {}, line, g.memories.length ? memories : h("div", { class: "muted" },
    "no new memories placed before this message"));
}

export async function render(main) {
  const { cubes } = await api("GET", "/cubes");
  const messages = [];  // the conversation as sent: {role, content}
  const log = h("div", { class: "chat-log", id: "chat-log" });
  const input = h("input", { name: "message", id: "chat-message", required: true, class: "grow",
                             placeholder: "Say something; the answer draws on the cubes" });
  const button = h("button", { type: "submit", id: "chat-send" }, "Send");
  const form = h("form", { class: "card", onsubmit: (e) => {
    e.preventDefault();
    busy(button, () => send(form, input, log, messages));
  } },
    h("div", { class: "row" }, input, button),
    h("div", { class: "row" },
      h("label", {}, "Max new tokens ", h("input", { name: "max_new_tokens", type: "number",
                                                     min: 1, max: 512, value: 48 })),
      h("label", {}, h("input", { type: "checkbox", name: "remember", checked: true }),
        " remember the turns in the first cube"),
      h("button", { type: "button", onclick: () => { messages.length = 0; clear(log); } },
        "New conversation")),
    cubePicker(cubes));
  clear(main, h("div", { class: "view-head" }, h("h1", {}, "Chat")), form, log);
  return null;
}

async function send(form, input, log, messages) {
  const data = new FormData(form);
  const text = input.value.trim();
  if (!text) return;
  const asked = [...messages, { role: "user", content: text }];
  const answer = h("div", { class: "chat-answer" });
  const after = h("div", {});
  log.append(h("div", { class: "chat-turn user" }, h("strong", {}, "you "), text),
             h("div", { class: "chat-turn assistant" }, h("strong", {}, "memos "), answer, after));
  const request = { cube_ids: picked(form), messages: asked,
                    max_new_tokens: Number(data.get("max_new_tokens")),
                    remember: data.get("remember") === "on" };
  try {
    for await (const { event, data: payload } of stream("/chat", request)) {
      if (event === "token") answer.append(payload.text);
      else if (event === "error") { after.append(errorBox(payload)); return; }
      else if (event === "stats") {
        messages.push(asked[asked.length - 1], { role: "assistant", content: payload.answer });
        after.append(turnStats(payload, await memoryTexts(payload.generate.memories)));
        input.value = "";
      }
    }
  } catch (error) { after.append(errorBox(error)); }
}
