"""`memos-cluster bench lifecycle`: facts that change (docs/lifecycle.md).

A generated workload (people move, change jobs, partners and favourites; one change per person
and slot) goes into a cube beside a LoCoMo conversation, as a user would write it: the old facts
first, dated years before, then the new ones. Measured through a running cluster's client:
- Search: the current fact is the first hit after the change; with `as_of` a date between the
  two, the old one is; the old fact anywhere in the top 5 without as_of (stale, served);
- Generate (the scheduler on): the old facts of a subset were promoted into activation memory
  and trained into an adapter before the change; after it, every prompt memory and adapter that
  served an answer is checked (stale served from a cache or an adapter: must be 0), and whether
  the answer names the current value (SmolLM2-135M, with its interval);
- on the ordinary LoCoMo conversations, every supersession the rule makes, with examples: the
  false ones are among them (a reader judges them; the bench prints them all).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

from memos_cluster.bench.stats import bootstrap_interval, percentiles_ms
from memos_cluster.client import MemosClient
from memos_cluster.core.tier_types import GenerateStats, TokenEvent
from memos_cluster.core.types import NewMemory, SearchFilter

PEOPLE = ["Alice", "Bruno", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hugo", "Irene",
          "Jonas", "Keiko", "Liam", "Maria", "Nadia", "Oscar", "Priya", "Quentin", "Rosa",
          "Samir", "Tessa", "Umar", "Vera", "Walter", "Ximena", "Yusuf", "Zoe", "Aaron",
          "Bianca", "Carlos", "Diana", "Emil", "Fatima", "George", "Hana", "Ivan", "Julia",
          "Kofi", "Laura", "Mateo", "Nora", "Omar", "Paula", "Rafael", "Sofia", "Thomas",
          "Ursula", "Victor", "Wendy", "Yara", "Zack"]
# Partners are never subjects: "George: I'm dating Bruno" is a right answer to "who is Bruno
# dating?", not a stale one, and would blur what the probe measures (with partners drawn from
# PEOPLE, every relationship miss of a first run was such a memory).
PARTNERS = ["Abel", "Beatrix", "Cedric", "Delphine", "Edgar", "Flora", "Gideon", "Helena",
            "Isidore", "Juniper", "Klaus", "Lorena", "Magnus", "Noemi", "Orson", "Pilar",
            "Rupert", "Selma", "Tobias", "Valentina", "Wilbur", "Xavier", "Yvette", "Zoltan"]
CITIES = ["Paris", "Berlin", "Madrid", "Rome", "Lisbon", "Vienna", "Prague", "Warsaw", "Dublin",
          "Amsterdam", "Brussels", "Oslo", "Stockholm", "Helsinki", "Athens", "Budapest",
          "London", "Chicago", "Boston", "Seattle", "Toronto", "Sydney", "Tokyo", "Seoul"]
COMPANIES = ["Google", "Microsoft", "Amazon", "Apple", "IBM", "Intel", "Oracle", "Netflix",
             "Spotify", "Siemens", "Toyota", "Samsung", "Nike", "Adobe", "Tesla", "Airbus"]
FAVOURITES = {"colour": ["blue", "green", "red", "yellow", "purple", "orange"],
              "food": ["sushi", "pizza", "pasta", "tacos", "curry", "ramen"]}
SLOTS = ("residence", "employer", "relationship", "favourite")
MAX_NEW_TOKENS = 12


@dataclass(frozen=True)
class Change:
    """One fact that changed: the old and new memories, when each was said, the question."""

    key: str  # "alice-residence"
    old_text: str
    new_text: str
    old_ms: int
    new_ms: int
    question: str
    new_value: str  # what a right answer names

    @property
    def old_id(self) -> str:
        return f"{self.key}-old"

    @property
    def new_id(self) -> str:
        return f"{self.key}-new"


def _ms(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, 12, tzinfo=timezone.utc).timestamp() * 1000)


def changing_facts(seed: int = 7) -> list[Change]:
    """Every person changes each slot once: 4 x 50 = 200 changes, said in a few wordings."""
    rng = random.Random(seed)
    out = []
    for person in PEOPLE:
        old_ms, new_ms = _ms(2020, rng.randint(1, 12), rng.randint(1, 28)), \
            _ms(2023, rng.randint(1, 12), rng.randint(1, 28))
        a, b = rng.sample(CITIES, 2)
        out.append(Change(f"{person.lower()}-residence", rng.choice(
            [f"{person}: I live in {a}.", f"{person} lives in {a}."]), rng.choice(
            [f"{person}: I moved to {b}.", f"{person} moved to {b}.",
             f"{person}: I live in {b} now."]), old_ms, new_ms, f"Where does {person} live?", b))
        a, b = rng.sample(COMPANIES, 2)
        out.append(Change(f"{person.lower()}-employer", rng.choice(
            [f"{person}: I work at {a}.", f"{person} works for {a}."]), rng.choice(
            [f"{person}: I work at {b} now.", f"{person} started a new job at {b}."]),
            old_ms, new_ms, f"Where does {person} work?", b))
        partner, other = rng.sample(PARTNERS, 2)
        out.append(Change(f"{person.lower()}-relationship", f"{person}: I'm dating {partner}.",
                          rng.choice([f"{person}: I broke up with {partner}.",
                                      f"{person}: I married {other}."]), old_ms, new_ms,
                          f"Who is {person} dating?", ""))
        thing = rng.choice(sorted(FAVOURITES))
        a, b = rng.sample(FAVOURITES[thing], 2)
        out.append(Change(f"{person.lower()}-favourite", f"{person}: My favourite {thing} is {a}.",
                          f"{person}: My favourite {thing} is {b} now.", old_ms, new_ms,
                          f"What is {person}'s favourite {thing}?", b))
    return out


def _first_hits(client: MemosClient, cube: str, changes: Sequence[Change],
                as_of: Optional[int]) -> tuple[list[str], list[list[str]], list[float]]:
    firsts, tops, seconds = [], [], []
    for change in changes:
        started = time.perf_counter()
        hits = client.search(cube, change.question, top_k=5,
                             filter=SearchFilter(as_of_ms=as_of))
        seconds.append(time.perf_counter() - started)
        ids = [h.item.id for h in hits]
        firsts.append(ids[0] if ids else "")
        tops.append(ids)
    return firsts, tops, seconds


def _rate(flags: Sequence[bool]) -> dict[str, Any]:
    values = [1.0 if f else 0.0 for f in flags]
    low, high = bootstrap_interval(values) if values else (0.0, 0.0)
    return {"rate": round(sum(values) / max(len(values), 1), 4), "n": len(values),
            "interval95": [round(low, 4), round(high, 4)]}


def search_probes(client: MemosClient, cube: str, changes: Sequence[Change]) -> dict[str, Any]:
    """After the change: the current fact first; as_of mid-2021: the old one first."""
    as_of = _ms(2021, 6, 1)
    now_first, now_top, seconds = _first_hits(client, cube, changes, None)
    past_first, _, _ = _first_hits(client, cube, changes, as_of)
    return {"current_first": _rate([f == c.new_id for f, c in zip(now_first, changes)]),
            "as_of_old_first": _rate([f == c.old_id for f, c in zip(past_first, changes)]),
            "stale_in_top5": sum(c.old_id in top for top, c in zip(now_top, changes)),
            "search_ms": percentiles_ms(seconds)}


def _ask(client: MemosClient, cube: str, question: str, mode: str) -> tuple[str, GenerateStats]:
    flags = {"tiers": dict(use_activation_memory=True, use_retrieved_memories=True,
                           use_parametric_memory=True),
             "auto": dict(memory_mode="auto")}[mode]
    text, stats = "", None
    for event in client.generate(cube, question, max_new_tokens=MAX_NEW_TOKENS,
                                 retrieval_top_k=5, **flags):
        if isinstance(event, TokenEvent):
            text += event.text
        else:
            stats = event
    return text, stats


def _served(stats: GenerateStats, old_ids: set[str], stale_adapters: set[str]) -> dict[str, int]:
    return {"old_from_activation": sum(m.memory_id in old_ids and m.tier == "activation"
                                       for m in stats.memories),
            "old_from_plaintext": sum(m.memory_id in old_ids and m.tier == "plaintext"
                                      for m in stats.memories),
            "stale_adapter": sum(a in stale_adapters for a in stats.adapters_used)}


def generate_probes(client: MemosClient, cube: str, changes: Sequence[Change],
                    steps: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Promote the old facts (activation block, an adapter), change them, then answer."""
    old_ids = [c.old_id for c in changes]
    client.activate(cube, old_ids, replace=True)
    job = client.train_adapter(cube, old_ids, steps=steps)
    record = client.wait_for_training(job.job_id)
    adapter = f"{cube}@v{record.version}"
    say(f"  promoted {len(old_ids)} old facts to activation memory and adapter {adapter}")
    before = [_served(_ask(client, cube, c.question, "tiers")[1], set(old_ids), {adapter})
              for c in changes[:4]]
    result = client.add(cube, [NewMemory(c.new_text, id=c.new_id, event_time_ms=c.new_ms)
                               for c in changes])
    superseded = {d.old_id for d in result.superseded}
    time.sleep(2.0)  # the gateway drops caches and marks adapters off the request path
    out: dict[str, Any] = {"changes": len(changes), "superseded": len(superseded),
                           "before_change": {k: sum(b[k] for b in before) for k in before[0]}
                           if before else {}}
    for mode in ("tiers", "auto"):
        served, right, examples = [], [], []
        for change in changes:
            text, stats = _ask(client, cube, change.question, mode)
            served.append(_served(stats, set(old_ids), {adapter}))
            if change.new_value:
                right.append(change.new_value.lower() in text.lower())
            if len(examples) < 5:
                examples.append({"question": change.question, "answer": text.strip()})
        out[mode] = {**{k: sum(s[k] for s in served) for k in served[0]},
                     "names_current": _rate(right), "examples": examples}
    return out


def false_supersessions(client: MemosClient, samples: Sequence[dict],
                        memories_of: Callable[[dict], list]) -> dict[str, Any]:
    """Every supersession the rule makes on ordinary conversations (none of which were
    written to change facts), with the two memories' texts."""
    total, found = 0, []
    for sample in samples:
        cube = f"locomo-{sample['sample_id']}"
        client.create_cube(cube)
        memories = memories_of(sample)
        texts = {m.id: m.text for m in memories}
        total += len(memories)
        for start in range(0, len(memories), 128):
            result = client.add(cube, memories[start:start + 128])
            found += [{"cube": cube, "old": texts[d.old_id], "new": texts[d.new_id],
                       "reason": d.reason} for d in result.superseded]
    return {"memories": total, "supersessions": len(found),
            "share": round(len(found) / max(total, 1), 4), "all": found}


def run_lifecycle_bench(client: MemosClient, distractors: Sequence[NewMemory],
                        samples: Sequence[dict], memories_of: Callable[[dict], list],
                        generate_changes: int, steps: int,
                        say: Callable[[str], None] = print) -> dict[str, Any]:
    changes = changing_facts()
    cube = "changing-facts"
    client.create_cube(cube)
    client.add_many(cube, list(distractors))
    client.add_many(cube, [NewMemory(c.old_text, id=c.old_id, event_time_ms=c.old_ms)
                           for c in changes])
    say(f"changing facts: {len(changes)} changes beside {len(distractors)} LoCoMo turns")
    subset = changes[:generate_changes]
    generated = generate_probes(client, cube, subset, steps, say) if subset else {}
    rest = client.add_many(cube, [NewMemory(c.new_text, id=c.new_id, event_time_ms=c.new_ms)
                                  for c in changes[len(subset):]])
    probes = search_probes(client, cube, changes)
    caught = len(client.get(cube, [c.old_id for c in changes], ("superseded",)).items)
    result = {"changes": len(changes), "rule_caught": caught, "search": probes,
              "generate": generated, "unchanged": rest.num_unchanged,
              "locomo": false_supersessions(client, samples, memories_of)}
    say_lifecycle(result, say)
    return result


def say_lifecycle(result: dict[str, Any], say: Callable[[str], None]) -> None:
    s = result["search"]
    say(f"  rule caught {result['rule_caught']} of {result['changes']} changes")
    say(f"  Search: current fact first {s['current_first']['rate']:.1%} "
        f"{s['current_first']['interval95']}; as_of before the change, old first "
        f"{s['as_of_old_first']['rate']:.1%}; old fact in a top 5 without as_of: "
        f"{s['stale_in_top5']}; p95 {s['search_ms']['p95']} ms")
    for mode in ("tiers", "auto"):
        g = result["generate"].get(mode)
        if g:
            say(f"  Generate ({mode}): names the current value "
                f"{g['names_current']['rate']:.1%} {g['names_current']['interval95']}; stale "
                f"served from activation {g['old_from_activation']}, from an adapter "
                f"{g['stale_adapter']}, from plaintext {g['old_from_plaintext']}")
    loco = result["locomo"]
    say(f"  LoCoMo: {loco['supersessions']} supersessions in {loco['memories']} memories "
        f"({loco['share']:.2%})")
    for example in loco["all"][:10]:
        say(f"    {example['reason']}: {example['old'][:70]!r} -> {example['new'][:70]!r}")
