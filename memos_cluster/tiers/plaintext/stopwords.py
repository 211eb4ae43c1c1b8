"""Stop-word lists for the BM25 analyzer (`storage.bm25_stop_words`). Applied when a shard's
collection is created, to documents and queries alike; changing it needs a new collection."""
from __future__ import annotations

from memos_cluster.core.errors import ConfigError

# Lucene's / Elasticsearch's `_english_` list.
LUCENE_ENGLISH = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with").split()

# Lucene's list plus question scaffolding and pronouns, which carry no topic in a memory query
# ("When did she ...", "What does he ...").
EXTENDED_ENGLISH = LUCENE_ENGLISH + (
    "what when where which who whom whose why how do does did done doing have has had having "
    "i me my we our you your he him his she her its them am were been being would could should "
    "can may might about from up out so than too very just also any some all").split()

LISTS = {"none": (), "lucene": tuple(LUCENE_ENGLISH), "extended": tuple(EXTENDED_ENGLISH)}


def stop_words(name: str) -> list[str]:
    """The named list, or a comma-separated list of words."""
    if name in LISTS:
        return list(LISTS[name])
    words = [w.strip().lower() for w in name.split(",") if w.strip()]
    if not words:
        raise ConfigError(f"storage.bm25_stop_words {name!r}: name a list ({sorted(LISTS)}) "
                          "or give comma-separated words", "storage.bm25_stop_words")
    return words
