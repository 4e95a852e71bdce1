"""course.datasets.dates: human-written dates made by code, byte-identical for a seed,
every string with exactly one reading, no TensorFlow needed."""
import hashlib
import os
import re
import subprocess
import sys
from datetime import date, timedelta

import pytest

from course.datasets import dates

# sha256 of "human\tiso" lines, joined by "\n", of human_dates(1000, seed=2021), with the pinned
# Faker 40.54.0 and Babel 2.18.0. A change here changes every unit-05 figure: bump it on purpose only.
PINNED_SEED, PINNED_N = 2021, 1000
PINNED_SHA256 = "5d97160ee44b3c6336cb8e5b83cdf4e5852a8510b0358e80ed8c505503546ade"


def _digest(pairs):
    return hashlib.sha256("\n".join(f"{h}\t{i}" for h, i in pairs).encode("utf-8")).hexdigest()


def test_the_same_seed_gives_the_same_bytes():
    first = dates.human_dates(PINNED_N, seed=PINNED_SEED)
    assert _digest(first) == PINNED_SHA256
    assert dates.human_dates(PINNED_N, seed=PINNED_SEED) == first


def test_the_local_time_zone_plays_no_part(root):
    code = ("import hashlib; from course.datasets import dates; p = dates.human_dates(300, seed=5); "
            "print(hashlib.sha256(repr(p).encode()).hexdigest())")
    outputs = set()
    for zone in ("UTC", "America/Los_Angeles", "Pacific/Kiritimati"):
        env = dict(os.environ, TZ=zone, PYTHONPATH=str(root))
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True,
                                   capture_output=True, text=True).stdout)
    assert len(outputs) == 1


def test_different_seeds_differ_and_a_prefix_is_stable():
    a, b = dates.human_dates(200, seed=0), dates.human_dates(200, seed=1)
    assert a != b and len(set(a) & set(b)) < 20
    assert dates.human_dates(50, seed=0) == a[:50]


def test_iso_dates_parse_and_stay_in_the_century():
    for human, iso in dates.human_dates(3000, seed=3):
        day = date.fromisoformat(iso)
        assert day.isoformat() == iso and dates.FIRST <= day <= dates.LAST
        assert human == human.strip() and "  " not in human and human


def test_every_format_appears_and_the_vocabulary_is_small():
    sample = dates.examples(3000, seed=4)
    assert {e.format for e in sample} == set(dates.FORMATS)
    chars = set("".join(e.human for e in sample))
    assert len(chars) < 70 and not [c for c in chars if c.isspace() and c != " "]
    assert max(len(e.human) for e in sample) <= 65


def test_each_format_writes_the_right_day_month_and_year():
    samples = [date(2021, 3, 4), date(1999, 12, 31), date(1950, 1, 1), date(2049, 11, 22), date(2000, 2, 29)]
    expected = {
        "en_US short": ["3/4/21", "12/31/99", "1/1/50", "11/22/49", "2/29/00"],
        "en_GB short": ["04/03/2021", "31/12/1999", "01/01/1950", "22/11/2049", "29/02/2000"],
        "de_DE short": ["04.03.21", "31.12.99", "01.01.50", "22.11.49", "29.02.00"],
        "yyyy/MM/dd": ["2021/03/04", "1999/12/31", "1950/01/01", "2049/11/22", "2000/02/29"],
        "4th of March 2021": ["4th of March 2021", "31st of December 1999", "1st of January 1950",
                              "22nd of November 2049", "29th of February 2000"],
        "the fourth of March, twenty twenty-one": [
            "the fourth of March, twenty twenty-one", "the thirty-first of December, nineteen ninety-nine",
            "the first of January, nineteen fifty", "the twenty-second of November, twenty forty-nine",
            "the twenty-ninth of February, two thousand"],
    }
    for name, strings in expected.items():
        assert [dates.FORMATS[name](d) for d in samples] == strings, name
    assert dates.FORMATS["Thursday, the fourth of March twenty twenty-one"](date(2005, 7, 12)) == \
        "Tuesday, the twelfth of July two thousand and five"
    assert dates.FORMATS["en_US full"](date(2021, 3, 4)) == "Thursday, March 4, 2021"
    assert dates.FORMATS["es_ES long"](date(2021, 3, 4)) == "4 de marzo de 2021"


def test_the_calendar_year_not_the_week_year_around_new_year():
    # 'YYYY' in a Babel pattern is the ISO week's year: 2008-12-29 would be written as 2009.
    from babel.dates import format_date

    assert format_date(date(2008, 12, 29), "YYYY", locale="en_US") == "2009"
    for year in (1950, 1975, 1998, 2008, 2014, 2020, 2025, 2048):
        for day in [date(year, 12, d) for d in (28, 29, 30, 31)] + [date(year, 1, d) for d in (1, 2, 3)]:
            for name, write in dates.FORMATS.items():
                text = write(day)
                numbers = re.findall(r"\d+", text)
                in_words = dates._year_words(day.year) in text
                assert in_words or str(day.year) in numbers or numbers[-1] == f"{day.year % 100:02d}", \
                    (name, day, text)


def test_every_string_has_one_reading():
    # Day and month numbers up to 12 are where day-first and month-first forms could collide.
    days = [date(year, month, d) for year in (1950, 1999, 2000, 2021, 2049)
            for month in range(1, 13) for d in range(1, 13)]
    days += [dates.FIRST + timedelta(days=k) for k in range(0, 36_525, 97)]
    reading = {}
    for day in days:
        for name, write in dates.FORMATS.items():
            text = write(day)
            assert reading.setdefault(text, day) == day, (text, name, reading[text], day)


def test_held_out_strings_never_occur_in_training():
    train, test = dates.train_test(2000, 500, seed=7)
    assert len(train) == 2000 and len(test) == 500
    assert not {e.human for e in train} & {e.human for e in test}
    assert len({e.human for e in test}) == 500
    assert dates.train_test(2000, 500, seed=7) == (train, test)
    assert train == dates.examples(2000, seed=7)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        dates.examples(-1)


def test_importing_the_generator_needs_no_tensorflow(root):
    code = ("import sys; from course.datasets import dates; dates.human_dates(3); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(root)), cwd=root,
                         check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
