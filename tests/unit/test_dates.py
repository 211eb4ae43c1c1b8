"""Months named in a query (tiers/plaintext/dates.py)."""
from datetime import datetime, timezone

import pytest

from memos_cluster.tiers.plaintext.dates import MonthRef, boost_in_month, named_month


def ms(year, month, day, hour=0):
    return int(datetime(year, month, day, hour, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize("query, ref", [
    ("When did Melanie go camping in June?", MonthRef(6)),
    ("What did they paint in their latest project in July 2023?", MonthRef(7, 2023)),
    ("What painting did Melanie show on October 13, 2023?", MonthRef(10, 2023)),
    ("What did Gina find on 1 February, 2023?", MonthRef(2, 2023)),
    ("Where was she in March? She moved in 2021.", MonthRef(3)),  # the year is another clause
    ("May I ask what Caroline may have painted?", None),  # leave, and a verb
    ("Did she go in may?", None),
    ("What did Jon do last week?", None),
])
def test_named_month(query, ref):
    assert named_month(query) == ref


def test_month_and_year_hold_in_utc():
    assert MonthRef(6).holds(ms(2022, 6, 30, 23))
    assert not MonthRef(6, 2023).holds(ms(2022, 6, 3))
    assert not MonthRef(7).holds(ms(2023, 6, 30, 23))
    assert not MonthRef(6).holds(None)


def test_memories_of_the_month_rise_and_others_keep_their_order():
    fused = [("may", 0.9), ("june-late", 0.5), ("none", 0.4), ("june", 0.3)]
    times = {"may": ms(2023, 5, 1), "june-late": ms(2023, 6, 29), "june": ms(2023, 6, 1)}
    boosted = boost_in_month(fused, times, MonthRef(6), 0.5)
    assert [key for key, _ in boosted] == ["june-late", "may", "june", "none"]
    assert boosted[0][1] == pytest.approx(1.0)
    assert boost_in_month(fused, times, None, 0.5) == fused
    assert boost_in_month(fused, times, MonthRef(6), 0.0) == fused
