"""`memos-cluster chat --cube X`: a conversation on stdin, each answer streamed from memory with
the turn's statistics (prompt tokens reused from the cached conversation, time to first token,
the memories placed). Interactive with a prompt on a terminal; piped, each input line is a
user message (`echo "Where did Caroline go?" | memos-cluster chat --cube sample`).

Who calls it: memos_cluster.cli.main, which registers the parser and dispatches.
"""
from __future__ import annotations

import sys
from typing import TextIO

from memos_cluster.cli.common import client_for
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.tier_types import ChatMessage, ChatStats, TokenEvent


def add_chat_command(sub) -> object:
    chat = sub.add_parser("chat", help="talk with memory: each stdin line a message, answers "
                                       "streamed with each turn's reuse and timing")
    chat.add_argument("--cube", action="append", required=True,
                      help="a cube to answer from (repeat for several); the first remembers")
    chat.add_argument("--system", default="", help="a system message opening the chat")
    chat.add_argument("--name", default="", help="your name, as remembered turns give it")
    chat.add_argument("--max-new-tokens", type=int, default=0)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--no-remember", action="store_true",
                      help="do not add the turns to the first cube")
    return chat


def cmd_chat(args, config: MemosConfig, stdin: TextIO = sys.stdin) -> int:
    client = client_for(args, config)
    messages = [ChatMessage("system", args.system)] if args.system else []
    interactive = stdin.isatty()
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = stdin.readline()
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        messages.append(ChatMessage("user", text, args.name))
        answer = _turn(client, args, messages)
        messages.append(ChatMessage("assistant", answer))
    return 0


def _turn(client, args, messages: list[ChatMessage]) -> str:
    """One turn: the answer streamed to stdout, then its statistics; the answer's text."""
    print("memos> ", end="", flush=True)
    stats = None
    for event in client.chat(args.cube, messages, max_new_tokens=args.max_new_tokens,
                             temperature=args.temperature,
                             remember=False if args.no_remember else None):
        if isinstance(event, TokenEvent):
            print(event.text, end="", flush=True)
        elif isinstance(event, ChatStats):
            stats = event
    g = stats.generate
    share = g.prefill_tokens_saved / g.prompt_tokens if g.prompt_tokens else 0.0
    placed = ", ".join(f"{m.memory_id} ({m.tier})" for m in g.memories) or "none"
    print(f"\n[{g.prefill_tokens_saved} of {g.prompt_tokens} prompt tokens reused "
          f"({share:.0%}); first token after {g.ttft_ms:.0f} ms; {g.num_generated} tokens, "
          f"{g.finish_reason}; memories: {placed}"
          + (f"; remembered as {', '.join(stats.remembered)}" if stats.remembered else "")
          + "]", flush=True)
    return stats.answer
