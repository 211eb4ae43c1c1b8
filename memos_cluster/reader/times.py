"""Time expressions in a memory's text, resolved against the memory's event time. Pure functions
(dateparser is imported inside the one function that uses it).

Two passes over a text:
1. Rules (this module) find and resolve the phrases conversations use most: "yesterday", "last
   night", "two weeks ago", "last/this/next week|weekend|month|year|<weekday>", "on Saturday",
   "in June 2023", "8 May", "May 8, 2023", "the Sunday before 25 May 2023", "the week after 9
   June" (anchored phrases: no library resolves them). Vague ones ("recently", "a few days ago",
   "the week after my birthday") are kept as unresolved mentions.
2. Date entities spaCy found that no rule covered go to dateparser (RELATIVE_BASE = the event
   time, dates preferred from the past); what it cannot parse stays unresolved.

Conventions (the hand-labelled fixture, tests/unit/fixtures/reader_labels.json, uses the same):
weeks start on Monday; a weekend is Saturday to Monday; "last <weekday>" is the latest such day
strictly before the event day, "next <weekday>" the first strictly after; a month or day named
without a year takes the event's year. All dates are UTC days (ingest reads event times as UTC).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Optional

from dateutil.relativedelta import relativedelta

from memos_cluster.core.structure import TimeMention

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(MONTHS)} | {"sept": 9}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
           "a couple of": 2, "couple of": 2, "a couple": 2}
MAX_YEAR_SHIFT = 200  # years; a phrase that moves further is not a date we can place


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive
    granularity: str


def day(d: date) -> Period:
    return Period(d, d + timedelta(days=1), "day")


def week_of(d: date) -> Period:
    monday = d - timedelta(days=d.weekday())
    return Period(monday, monday + timedelta(days=7), "week")


def weekend_from(saturday: date) -> Period:
    return Period(saturday, saturday + timedelta(days=2), "weekend")


def month_of(year: int, month: int) -> Period:
    start = date(year, month, 1)
    return Period(start, start + relativedelta(months=1), "month")


def year_of(year: int) -> Period:
    return Period(date(year, 1, 1), date(year + 1, 1, 1), "year")


# ---- the phrases ---------------------------------------------------------------------------
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
         r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_WEEKDAY = r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|" \
           r"fri(?:day)?|saturday|sunday)"  # not "sat", "sun": words of their own
_NUM = r"(?:\d{1,3}|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|" \
       r"a couple of|couple of|a couple)"
_UNIT = r"(?:day|week|weekend|month|year)s?"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d\d"
# An absolute date: "25 May 2023", "25th of May, 2023", "May 25, 2023", "May 25th", "May 2023".
_ABS = (rf"(?:\d{{1,2}}{_ORD}\s+(?:of\s+)?{_MONTH}\b,?(?:\s+{_YEAR})?"
        rf"|{_MONTH}\s+\d{{1,2}}{_ORD}\b(?:,?\s+{_YEAR})?"
        rf"|{_MONTH}\s+{_YEAR}|{_MONTH}|{_YEAR})")
_PATTERNS = [
    ("anchored", rf"\bthe\s+(?P<what>{_WEEKDAY}|day|week|weekend|month)\s+(?P<dir>before|after)"
                 rf"\s+(?P<anchor>last\s+{_WEEKDAY}|last\s+(?:week|weekend|month)|yesterday|"
                 rf"today|{_ABS})\b"),
    ("anchored_vague", rf"\bthe\s+(?:{_WEEKDAY}|day|week|weekend|month)\s+(?:before|after)\s+"
                       rf"(?:my|his|her|our|their|the)\s+\w+"),
    ("day_before_yesterday", r"\bthe\s+day\s+before\s+yesterday\b"),
    ("day_word", r"\b(?P<w>yesterday|today|tonight|tomorrow|last\s+night|this\s+morning|"
                 r"this\s+afternoon|this\s+evening)\b"),
    ("ago", rf"\b(?P<n>{_NUM})\s+(?P<unit>{_UNIT})\s+ago\b"),
    ("in_n", rf"\bin\s+(?P<n>{_NUM})\s+(?P<unit>{_UNIT})\b"),
    ("rel_unit", rf"\b(?P<rel>last|this\s+past|past|this|next|coming|this\s+coming)\s+"
                 rf"(?P<unit>week|weekend|month|year)\b"),
    ("rel_month", rf"\b(?P<rel>last|this|next|this\s+past)\s+(?P<month>{_MONTH})\b"),
    # A season has no granularity of its own here: kept as a mention, left unresolved.
    ("season", r"\b(?:last|this|next|this\s+past)\s+(?:summer|winter|spring|fall|autumn)\b"),
    ("rel_weekday", rf"\b(?P<rel>last|this|next|this\s+past|on|this\s+coming)\s+"
                    rf"(?P<wd>{_WEEKDAY})\b"),
    ("absolute", rf"\b(?:on\s+|in\s+|since\s+|by\s+)?(?P<abs>{_ABS})\b"),
    ("vague", r"\b(?:recently|lately|the\s+other\s+day|a\s+few\s+(?:days|weeks|months|years)"
              r"\s+ago|some\s+time\s+ago|a\s+while\s+(?:ago|back)|soon|someday|one\s+day)\b"),
]
_COMPILED = [(name, re.compile(p, re.IGNORECASE)) for name, p in _PATTERNS]
_WEEKDAY_INDEX = {w[:3]: i for i, w in enumerate(WEEKDAYS)}


def _number(text: str) -> Optional[int]:
    text = " ".join(text.lower().split())
    if text.isdigit():
        return int(text)
    return NUMBERS.get(text)


def _month_number(text: str) -> Optional[int]:
    key = text.lower().rstrip(".")
    return MONTH_ABBR.get(key[:4] if key.startswith("sept") else key[:3])


def parse_absolute(text: str, base: date) -> Optional[Period]:
    """'25 May 2023', 'May 25th', 'June 2023', 'June', '2022' -> a period; None if not one."""
    words = re.findall(r"[A-Za-z]+|\d+", text)
    month = next((m for w in words if (m := _month_number(w)) and len(w) >= 3), None)
    numbers = [int(w) for w in words if w.isdigit()]
    year = next((n for n in numbers if 1900 <= n <= 2099), None)
    days = [n for n in numbers if 1 <= n <= 31 and n != year]
    if month is None:
        return year_of(year) if year is not None and not days else None
    the_year = year if year is not None else base.year
    if days:
        try:
            return day(date(the_year, month, days[0]))
        except ValueError:  # "31 June": not a day
            return None
    return month_of(the_year, month)


def _weekday_before(base: date, weekday: int) -> date:
    return base - timedelta(days=(base.weekday() - weekday - 1) % 7 + 1)


def _weekday_after(base: date, weekday: int) -> date:
    return base + timedelta(days=(weekday - base.weekday() - 1) % 7 + 1)


def _relative_unit(rel: str, unit: str, base: date) -> Optional[Period]:
    rel = " ".join(rel.lower().split())
    step = -1 if rel in ("last", "this past", "past") else (1 if rel == "next" else 0)
    if unit == "week":
        return week_of(base + timedelta(weeks=step))
    if unit == "weekend":
        if step < 0:
            return weekend_from(_weekday_before(base, 5))
        saturday = base if base.weekday() == 5 else _weekday_after(base, 5)
        if base.weekday() == 6 and step == 0:
            saturday = base - timedelta(days=1)
        return weekend_from(saturday + timedelta(weeks=max(step, 0)))
    if unit == "month":
        first = date(base.year, base.month, 1) + relativedelta(months=step)
        return month_of(first.year, first.month)
    if unit == "year":
        return year_of(base.year + step)
    return None


def _shift(period: Period, what: str, direction: str) -> Optional[Period]:
    """'the <what> before|after' a period: anchored phrases."""
    sign = -1 if direction.lower() == "before" else 1
    what = what.lower()
    if what[:3] in _WEEKDAY_INDEX and what not in ("day", "week", "weekend", "month"):
        index = _WEEKDAY_INDEX[what[:3]]
        pick = _weekday_before(period.start, index) if sign < 0 else \
            _weekday_after(period.end - timedelta(days=1), index)
        return day(pick)
    if what == "day":
        return day(period.start - timedelta(days=1)) if sign < 0 else day(period.end)
    if what == "week":
        return week_of(period.start - timedelta(weeks=1) if sign < 0 else
                       period.end - timedelta(days=1) + timedelta(weeks=1))
    if what == "weekend":
        return weekend_from(_weekday_before(period.start, 5) if sign < 0 else
                            _weekday_after(period.end - timedelta(days=1), 5))
    if what == "month":
        first = date(period.start.year, period.start.month, 1) + relativedelta(months=sign)
        return month_of(first.year, first.month)
    return None


def _ago(n: int, unit: str, base: date, sign: int) -> Optional[Period]:
    unit = unit.lower().rstrip("s")
    if n > 10_000 or (unit == "year" and n > MAX_YEAR_SHIFT):
        return None
    if unit == "day":
        return day(base + sign * timedelta(days=n))
    if unit in ("week", "weekend"):
        return week_of(base + sign * timedelta(weeks=n))
    if unit == "month":
        first = date(base.year, base.month, 1) + relativedelta(months=sign * n)
        return month_of(first.year, first.month)
    return year_of(base.year + sign * n)


def resolve_rule(name: str, match: re.Match, base: date) -> Optional[Period]:
    """The period a rule's match names, relative to `base` (the event day); None: vague."""
    group = match.groupdict()
    if name == "anchored":
        anchor = resolve_phrase(group["anchor"], base)
        return _shift(anchor, group["what"], group["dir"]) if anchor else None
    if name == "day_before_yesterday":
        return day(base - timedelta(days=2))
    if name == "day_word":
        word = " ".join(group["w"].lower().split())
        offset = {"yesterday": -1, "last night": -1, "tomorrow": 1}.get(word, 0)
        return day(base + timedelta(days=offset))
    if name in ("ago", "in_n"):
        n = _number(group["n"])
        return _ago(n, group["unit"], base, -1 if name == "ago" else 1) if n else None
    if name == "rel_unit":
        return _relative_unit(group["rel"], group["unit"].lower(), base)
    if name == "rel_month":
        rel, month = " ".join(group["rel"].lower().split()), _month_number(group["month"])
        if rel == "next":  # the first such month after the event's
            year = base.year + (month <= base.month)
        elif rel == "this":
            year = base.year
        else:  # the latest such month before the event's
            year = base.year - (month >= base.month)
        return month_of(year, month)
    if name == "rel_weekday":
        rel = " ".join(group["rel"].lower().split())
        weekday = _WEEKDAY_INDEX[group["wd"].lower()[:3]]
        if rel == "next" or rel == "this coming":
            return day(_weekday_after(base, weekday))
        if rel == "this":  # the one in the event's week
            return day(base - timedelta(days=base.weekday() - weekday))
        return day(_weekday_before(base, weekday))
    if name == "absolute":
        return parse_absolute(group["abs"], base)
    return None


def resolve_phrase(text: str, base: date) -> Optional[Period]:
    """A whole phrase (an anchor) through the rules."""
    for name, pattern in _COMPILED:
        match = pattern.fullmatch(text.strip())
        if match:
            return resolve_rule(name, match, base)
    return None


def _is_false_absolute(text: str, match: re.Match) -> bool:
    """A bare month word that is a verb or a name ("may", "March" as a verb), or a bare year
    that is a number ("2000 people")."""
    value = match.group("abs")
    if re.fullmatch(r"may|march|june|august", value, re.IGNORECASE):
        return not value[0].isupper() or match.group(0).lower() == value.lower()
    if re.fullmatch(_YEAR, value):
        after = text[match.end():match.end() + 12].lower()
        return bool(re.match(r"\s*(?:people|times|dollars|miles|words|steps|km)", after))
    return False


def find_times(text: str, event_time_ms: Optional[int],
               extra_spans: tuple[tuple[int, int], ...] = (),
               fallback: Optional[Callable[[str, date], Optional[Period]]] = None,
               ) -> list[TimeMention]:
    """Every time expression in `text`, left to right, resolved against the event day (or left
    unresolved without an event time). `extra_spans`: (start, end) of date entities another
    tool found (spaCy); those no rule covers go through `fallback` (dateparser)."""
    base = _utc_day(event_time_ms)
    taken: list[tuple[int, int]] = []
    found: list[TimeMention] = []
    for name, pattern in _COMPILED:
        for match in pattern.finditer(text):
            # An absolute date's span leaves out its preposition ("in June 2023" -> "June 2023").
            start, end = match.span("abs") if name == "absolute" else match.span()
            if any(start < e and s < end for s, e in taken):
                continue
            if name == "absolute" and _is_false_absolute(text, match):
                continue
            period = resolve_rule(name, match, base) if base is not None else None
            taken.append((start, end))
            found.append(_mention(text, start, end, period))
    for start, end in extra_spans:
        if any(start < e and s < end for s, e in taken) or end - start > 80 or \
                _DURATION.fullmatch(text[start:end]):
            continue
        period = fallback(text[start:end], base) if fallback and base is not None else None
        taken.append((start, end))
        found.append(_mention(text, start, end, period))
    return sorted(found, key=lambda t: t.start_char)


# Date entities spaCy finds that are not dates: durations ("a few days", "two weeks", "a wild
# week"), ages and bare numbers ("when I was 10").
_DURATION = re.compile(
    rf"(?:(?:for\s+)?(?:a|an|the|few|several|some|many|a\s+few|the\s+past|the\s+last|"
    rf"\d+|{_NUM})\s+)*(?:\w+\s+)?(?:few\s+)?(?:days?|weeks?|months?|years?|hours?|minutes?|"
    rf"nights?|decades?)(?:\s+old)?|\d{{1,3}}|the\s+\d{{1,2}}(?:st|nd|rd|th)?\s+time",
    re.IGNORECASE)


def _mention(text: str, start: int, end: int, period: Optional[Period]) -> TimeMention:
    if period is None:
        return TimeMention(text[start:end], start, end)
    return TimeMention(text[start:end], start, end, _ms(period.start), _ms(period.end),
                       period.granularity)


def _utc_day(event_time_ms: Optional[int]) -> Optional[date]:
    if event_time_ms is None:
        return None
    try:
        return datetime.fromtimestamp(event_time_ms / 1000, timezone.utc).date()
    except (OverflowError, OSError, ValueError):  # outside what datetime can hold
        return None


def _ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000)


def dateparser_period(text: str, base: date) -> Optional[Period]:
    """A date entity no rule covers, through dateparser (RELATIVE_BASE the event day, dates
    preferred from the past; the period from its granularity). Who calls it: find_times, for
    the spaCy reader's DATE entities."""
    from dateparser.date import DateDataParser

    parser = DateDataParser(languages=["en"], settings={
        "RELATIVE_BASE": datetime(base.year, base.month, base.day, 12),
        "PREFER_DATES_FROM": "past"})
    try:
        data = parser.get_date_data(text)
    except (ValueError, OverflowError, TypeError, KeyError):
        # dateparser raises on some malformed inputs; the text simply holds no date it can
        # place.
        return None
    if data is None or data["date_obj"] is None:
        return None
    found = data["date_obj"].date()
    if abs(found.year - base.year) > MAX_YEAR_SHIFT:
        return None
    period = data["period"] or "day"
    if period == "year":
        return year_of(found.year)
    if period == "month":
        return month_of(found.year, found.month)
    if period == "week":
        return week_of(found)
    return day(found)
