"""LoCoMo conversations as memories: each dialogue turn becomes one memory (speaker, text, image
caption, the session's date as event time), with metadata {speaker, session, dia_id}, and the
preceding turns of its session as context (helps find short replies: see core/types.py). Only
what a deployment would have is used: no observations, summaries or questions.

Who calls it: `memos-cluster ingest` and `up` (the sample), and the benchmarks.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Optional

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.types import NewMemory
from memos_cluster.data.files import read_bytes

# Preceding turns kept as a turn's context. LoCoMo dev hybrid recall@5/@10: 1 turn 64.4/73.1,
# 2 turns 66.3/76.0 (with extended stop words); the next turn as well added nothing.
LOCOMO_CONTEXT_TURNS = 2
SAMPLE_CONVERSATION = "conv-26"  # the LoCoMo conversation `up` and `bench gateway` load
LOCOMO_DATE_FORMAT = "%I:%M %p on %d %B, %Y"  # e.g. "1:56 pm on 8 May, 2023"
_SESSION_KEY = re.compile(r"^session_(\d+)$")


def locomo_session_time_ms(text: str) -> int:
    """'1:56 pm on 8 May, 2023' -> epoch ms (the dataset gives no zone; UTC is assumed)."""
    moment = datetime.strptime(text.strip(), LOCOMO_DATE_FORMAT).replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def locomo_turn_id(dia_id: str) -> str:
    """'D1:3' -> 'D1-3' (':' is not allowed in memory ids)."""
    return dia_id.replace(":", "-")


def locomo_memories(sample: dict[str, Any],
                    context_turns: int = LOCOMO_CONTEXT_TURNS) -> list[NewMemory]:
    """One memory per dialogue turn. Only what a deployment would have: text, speaker, the
    session's date and image captions (no observations, summaries or questions). Each turn's
    context is the `context_turns` turns before it in the same session."""
    conversation = sample["conversation"]
    sample_id = sample.get("sample_id", "locomo")
    out: list[NewMemory] = []
    sessions = sorted((int(m.group(1)), key) for key in conversation
                      if (m := _SESSION_KEY.match(key)))
    for number, key in sessions:
        when = locomo_session_time_ms(conversation[f"{key}_date_time"])
        session_texts: list[str] = []
        for turn in conversation[key]:
            text = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares a photo of {turn['blip_caption'].removeprefix('a photo of ')}]"
            context = "\n".join(session_texts[-context_turns:]) if context_turns > 0 else ""
            session_texts.append(text)
            out.append(NewMemory(
                text=text, id=locomo_turn_id(turn["dia_id"]), memory_type="dialogue",
                metadata={"speaker": turn["speaker"], "session": number,
                          "dia_id": turn["dia_id"]},
                event_time_ms=when, source=f"locomo:{sample_id}", context=context))
    return out


def is_locomo(data: Any) -> bool:
    return (isinstance(data, list) and bool(data) and isinstance(data[0], dict)
            and "conversation" in data[0])


def load_locomo(path: str) -> list[dict[str, Any]]:
    data = json.loads(read_bytes(path))
    if not is_locomo(data):
        raise InvalidArgument(f"{path} is not a LoCoMo file", "path")
    return data


def locomo_texts(path: str, first: Optional[int] = None) -> list[str]:
    """The texts of a LoCoMo file's turns as ingest stores them, conversation after
    conversation (`first`: only that many conversations). Who calls it: the benchmarks."""
    samples = load_locomo(path)
    return [m.text for sample in samples[:first] for m in locomo_memories(sample)]
