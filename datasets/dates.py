"""Human-written dates and their ISO 8601 form, made by code (unit 05).

    from course.datasets import dates
    pairs = dates.human_dates(10_000, seed=0)
    # [('Thursday, March 4, 2021', '2021-03-04'), ('04.03.21', '2021-03-04'), ...]

Nothing is downloaded. A ``faker.Faker()`` instance seeded with ``seed`` draws
each date (uniformly between 1950-01-01 and 2049-12-31, in UTC, so the local
time zone plays no part) and then one of the formats in :data:`FORMATS`;
``babel.dates.format_date`` writes the date in that format, or a few lines of
Python do for the forms Babel has no pattern for (ordinals, capitals, dates
in words such as ``the fourth of March, twenty twenty-one``). With
the pinned Faker and Babel (pyproject.toml), the same seed gives the same
bytes on every machine (tests/test_dates.py pins a sha256).

The formats are chosen so that every string has exactly one reading:

* two-digit years stand for 1950-2049 (50-99 are 19xx, 00-49 are 20xx), which
  is why the dates stay in that century;
* month-first numbers (US: ``3/4/21``) never carry leading zeros and always
  a two-digit year, day-first numbers with slashes (UK: ``04/03/2021``) always
  carry both, and dots are always day-first (German: ``04.03.21``);
* every Babel pattern uses ``yyyy``/``yy``, the calendar year. ``YYYY`` is
  the *week-based* year of ISO weeks: ``format_date(date(2008, 12, 29),
  "YYYY-MM-dd")`` gives ``2009-12-29``. A dataset built with ``YYYY`` labels a
  few days around each New Year with the wrong year.

Importing this module needs Faker and Babel only (no TensorFlow).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import NamedTuple

FIRST = date(1950, 1, 1)
LAST = date(2049, 12, 31)


class DateExample(NamedTuple):
    human: str    # as a person might write it: 'Thursday, 4 March 2021'
    iso: str      # ISO 8601: '2021-03-04'
    format: str   # the name of the format in FORMATS


def _babel(pattern: str, locale: str) -> Callable[[date], str]:
    """A Babel format: a CLDR width ('short', 'medium', 'long', 'full') or a pattern."""
    def write(day: date) -> str:
        from babel.dates import format_date

        return format_date(day, pattern, locale=locale)
    return write


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _month(day: date) -> str:
    return _babel("MMMM", "en_US")(day)


def _day_of_month(day: date) -> str:                     # 4th of March 2021
    return f"{_ordinal(day.day)} of {_month(day)} {day.year}"


def _month_ordinal(day: date) -> str:                    # March 4th, 2021
    return f"{_month(day)} {_ordinal(day.day)}, {day.year}"


def _capitals(day: date) -> str:                         # MARCH 4, 2021
    return _babel("long", "en_US")(day).upper()


# Dates in words, the longest forms (up to 65 characters): what makes long inputs long.
_ONES = ("", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
              "nine": "ninth", "twelve": "twelfth"}


def _words(n: int) -> str:          # 0 < n < 100
    tens, ones = divmod(n, 10)
    return _ONES[n] if n < 20 else _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _ordinal_words(n: int) -> str:  # 1 -> first, 22 -> twenty-second, 30 -> thirtieth
    head, dash, last = _words(n).rpartition("-")
    last = _IRREGULAR.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return head + dash + last


def _year_words(year: int) -> str:  # nineteen ninety-nine, two thousand and five, twenty twenty-one
    if year < 2000:
        return f"nineteen {_words(year - 1900)}"
    if year < 2010:
        return "two thousand" + (f" and {_words(year - 2000)}" if year > 2000 else "")
    return f"twenty {_words(year - 2000)}"


def _in_words(day: date) -> str:                         # the fourth of March, twenty twenty-one
    return f"the {_ordinal_words(day.day)} of {_month(day)}, {_year_words(day.year)}"


def _weekday_in_words(day: date) -> str:                 # Thursday, the fourth of March twenty twenty-one
    weekday = _babel("EEEE", "en_US")(day)
    return f"{weekday}, the {_ordinal_words(day.day)} of {_month(day)} {_year_words(day.year)}"


# name -> writer. The name says the Babel locale and CLDR width, the Babel
# pattern, or (for the hand-written ones) an example.
FORMATS: dict[str, Callable[[date], str]] = {
    "en_US short": _babel("short", "en_US"),          # 3/4/21
    "en_US medium": _babel("medium", "en_US"),        # Mar 4, 2021
    "en_US long": _babel("long", "en_US"),            # March 4, 2021
    "en_US full": _babel("full", "en_US"),            # Thursday, March 4, 2021
    "en_GB short": _babel("short", "en_GB"),          # 04/03/2021
    "en_GB medium": _babel("medium", "en_GB"),        # 4 Mar 2021
    "en_GB full": _babel("full", "en_GB"),            # Thursday, 4 March 2021
    "de_DE short": _babel("short", "de_DE"),          # 04.03.21
    "de_DE long": _babel("long", "de_DE"),            # 4. März 2021
    "fr_FR long": _babel("long", "fr_FR"),            # 4 mars 2021
    "fr_FR full": _babel("full", "fr_FR"),            # jeudi 4 mars 2021
    "es_ES long": _babel("long", "es_ES"),            # 4 de marzo de 2021
    "d MMMM, yyyy": _babel("d MMMM, yyyy", "en_US"),  # 4 March, 2021
    "MMM d yy": _babel("MMM d yy", "en_US"),          # Mar 4 21
    "EEE d MMM yy": _babel("EEE d MMM yy", "en_US"),  # Thu 4 Mar 21
    "yyyy/MM/dd": _babel("yyyy/MM/dd", "en_US"),      # 2021/03/04
    "4th of March 2021": _day_of_month,
    "March 4th, 2021": _month_ordinal,
    "MARCH 4, 2021": _capitals,
    "the fourth of March, twenty twenty-one": _in_words,
    "Thursday, the fourth of March twenty twenty-one": _weekday_in_words,
}


def _plain_spaces(text: str) -> str:
    # CLDR data may use no-break spaces; one kind of space keeps the vocabulary small.
    return "".join(" " if unicodedata.category(c) == "Zs" else c for c in text)


def examples(n: int, seed: int = 0) -> list[DateExample]:
    """``n`` (human, iso, format) triples drawn with a Faker instance seeded with ``seed``."""
    from faker import Faker

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    fake = Faker()
    fake.seed_instance(seed)
    start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=timezone.utc)
    end = datetime(LAST.year, LAST.month, LAST.day, 23, 59, 59, tzinfo=timezone.utc)
    names = tuple(FORMATS)
    out = []
    for _ in range(n):
        day = fake.date_time_between_dates(start, end, tzinfo=timezone.utc).date()
        name = fake.random_element(names)
        out.append(DateExample(_plain_spaces(FORMATS[name](day)), day.isoformat(), name))
    return out


def human_dates(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` pairs (human-written date, ISO date); the same seed gives the same pairs."""
    return [(e.human, e.iso) for e in examples(n, seed)]


def train_test(n_train: int, n_test: int, seed: int = 0) -> tuple[list[DateExample], list[DateExample]]:
    """A training set and a held-out set whose human strings never occur in training.

    Both come from one seeded stream: the first ``n_train`` examples train; the
    held-out ones follow, skipping any string already seen (in training or
    earlier in the held-out set).
    """
    total = n_train + n_test + 100
    while True:  # examples(m, seed) begins with examples(n, seed) for m > n: draw more until enough
        stream = examples(total, seed)
        train, seen, test = stream[:n_train], {e.human for e in stream[:n_train]}, []
        for example in stream[n_train:]:
            if len(test) == n_test:
                return train, test
            if example.human not in seen:
                seen.add(example.human)
                test.append(example)
        if len(test) == n_test:
            return train, test
        total *= 2
