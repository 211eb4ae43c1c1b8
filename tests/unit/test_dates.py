"""Time in hybrid search (tiers/plaintext/dates.py): the times a query names, resolved against
the request's reference time, and the two boosts."""
from datetime import datetime, timezone

import pytest

from memos_cluster.tiers.plaintext.dates import (
    MemoryTimes, QueryTime, boost_times, is_when_question, query_times, time_matches)


def ms(year, month, day, hour=0):
    return int(datetime(year, month, day, hour, tzinfo=timezone.utc).timestamp() * 1000)


REFERENCE = ms(2023, 5, 8, 14)  # a Monday


def period(year, month, day, days=1):
    return (ms(year, month, day), ms(year, month, day) + days * 86_400_000)


@pytest.mark.parametrize("query, expected", [
    ("When did Melanie go camping in June?", [("month", True, (2023, 6, 1))]),
    ("What did they paint in July 2023?", [("month", False, (2023, 7, 1))]),
    ("What painting did Melanie show on October 13, 2023?", [("day", False, (2023, 10, 13))]),
    ("What did Gina find on 1 February?", [("day", True, (2023, 2, 1))]),
    ("What did Jon do last week?", [("week", False, (2023, 5, 1))]),
    ("Where was Caroline yesterday?", [("day", False, (2023, 5, 7))]),
    ("May I ask what Caroline may have painted?", []),  # leave, and a verb
    ("What did she do recently?", []),  # vague: no period
])
def test_query_times(query, expected):
    got = [(q.granularity, q.any_year, datetime.fromtimestamp(q.start_ms / 1000, timezone.utc)
            .timetuple()[:3]) for q in query_times(query, REFERENCE)]
    assert got == [(g, a, d) for g, a, d in expected]


def test_any_year_matches_the_month_of_every_year_and_a_dated_one_only_its_own():
    june = QueryTime(*period(2023, 6, 1, 30), "month", any_year=True)
    assert june.holds(MemoryTimes(ms(2021, 6, 30, 23)))
    assert not june.holds(MemoryTimes(ms(2021, 7, 1)))
    june_2023 = QueryTime(*period(2023, 6, 1, 30), "month", any_year=False)
    assert not june_2023.holds(MemoryTimes(ms(2022, 6, 3)))
    # a memory dated in July that says "last month" holds June 2023
    assert june_2023.holds(MemoryTimes(ms(2023, 7, 2), (period(2023, 6, 1, 30),)))
    assert not june_2023.holds(MemoryTimes())


@pytest.mark.parametrize("query, asks", [
    ("When did Caroline go to the LGBTQ support group?", True),
    ("what date did they meet", True),
    ("How long ago was the trip?", True),
    ("Where did Caroline go when she was sad?", False),
    ("What does Melanie paint?", False),
])
def test_when_questions(query, asks):
    assert is_when_question(query) is asks


def test_boosts_raise_matching_memories_and_keep_the_rest_in_order():
    fused = [("may", 0.9), ("june-said", 0.5), ("none", 0.4), ("june", 0.3)]
    times = {"may": MemoryTimes(ms(2023, 5, 1)),
             "june-said": MemoryTimes(ms(2023, 7, 2), (period(2023, 6, 10),)),
             "june": MemoryTimes(ms(2023, 6, 1))}
    def boosted(query, date_boost, when_boost, month_only=False):
        matches = time_matches(lambda: times, query, REFERENCE, month_only)
        return boost_times(fused, matches, date_boost, when_boost)
    june = boosted("What happened in June 2023?", 0.5, 0.0)
    assert [k for k, _ in june] == ["june-said", "may", "june", "none"]
    assert june[0][1] == pytest.approx(1.0)
    assert [k for k, _ in boosted("When did it happen?", 0.0, 0.6)] == \
        ["june-said", "may", "none", "june"]
    assert boosted("What happened?", 1.5, 0.6) == fused
    assert boosted("What happened in June?", 0.0, 0.0) == fused
    # before the reader: months only, and only session dates
    assert boosted("What happened on 10 June 2023?", 1.5, 0.0, month_only=True) == fused
