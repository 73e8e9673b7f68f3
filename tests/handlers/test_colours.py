"""The colour rule at every edge: effective day, end of publication, repair, suspension, and the stored window."""
from datetime import date, datetime, timedelta, timezone

import pytest

from handlers import colours, timeutil
from handlers.colours import RecordDates, compute
from handlers.models import Colour

from ..conftest import add_record, create_subject

D = date(2026, 3, 10)


def at(day: date, hour: int = 12) -> datetime:
    """Noon (local) on a day, as a UTC instant."""
    return timeutil.start_of(day) + timedelta(hours=hour)


def bad(**kw):
    return RecordDates("bad", kw.pop("effective_on", D), **kw)


def honour(**kw):
    return RecordDates("honour", kw.pop("effective_on", D), **kw)


def test_no_records_is_blue_forever():
    s = compute([], at(D))
    assert s == colours.ColourState(Colour.blue, None, None)


def test_honour_is_green_bad_is_red_and_bad_beats_honour():
    assert compute([honour()], at(D)).colour == Colour.green
    assert compute([bad()], at(D)).colour == Colour.red
    assert compute([honour(), bad()], at(D)).colour == Colour.red


def test_record_counts_from_local_midnight_of_its_effective_day():
    r = [bad(effective_on=D)]
    midnight = timeutil.start_of(D)
    assert compute(r, midnight - timedelta(microseconds=1)).colour == Colour.blue
    assert compute(r, midnight).colour == Colour.red
    # Local midnight is 16:00 UTC the day before: the UTC date must not be used.
    assert midnight == datetime(2026, 3, 9, 16, 0, tzinfo=timezone.utc)


def test_publication_end_is_the_last_day_that_counts():
    r = [bad(published_until=D + timedelta(days=2))]
    end = timeutil.start_of(D + timedelta(days=3))
    assert compute(r, end - timedelta(microseconds=1)).colour == Colour.red
    assert compute(r, end).colour == Colour.blue


def test_repair_stops_a_bad_record_from_its_day():
    r = [bad(repaired_on=D + timedelta(days=5)), honour()]
    day5 = timeutil.start_of(D + timedelta(days=5))
    assert compute(r, day5 - timedelta(microseconds=1)).colour == Colour.red
    assert compute(r, day5).colour == Colour.green


def test_suspension_window_is_inclusive_and_ends():
    r = [bad(suspended_on=D + timedelta(days=1), suspended_until=D + timedelta(days=3))]
    assert compute(r, at(D)).colour == Colour.red
    assert compute(r, at(D + timedelta(days=1))).colour == Colour.blue
    assert compute(r, at(D + timedelta(days=3))).colour == Colour.blue
    assert compute(r, timeutil.start_of(D + timedelta(days=4))).colour == Colour.red


def test_open_suspension_lasts_until_lifted():
    r = [bad(suspended_on=D)]
    assert compute(r, at(D + timedelta(days=4000))).colour == Colour.blue


def test_repair_and_suspension_do_not_apply_to_honours():
    r = [honour(repaired_on=D, suspended_on=D)]
    assert compute(r, at(D + timedelta(days=1))).colour == Colour.green


def test_future_record_is_not_yet_in_force():
    assert compute([bad(effective_on=D + timedelta(days=1))], at(D)).colour == Colour.blue


def test_window_spans_exactly_between_the_neighbouring_changes():
    r = [honour(effective_on=D - timedelta(days=10)),
         bad(effective_on=D - timedelta(days=3), repaired_on=D + timedelta(days=4)),
         bad(effective_on=D + timedelta(days=9), published_until=D + timedelta(days=20))]
    s = compute(r, at(D))
    assert s.colour == Colour.red
    assert s.valid_from == timeutil.start_of(D - timedelta(days=3))
    assert s.valid_until == timeutil.start_of(D + timedelta(days=4))


@pytest.mark.parametrize("offset", range(-12, 25))
def test_window_agrees_with_recomputation_everywhere(offset):
    """Inside the window the colour never differs from a fresh computation; at its ends it may."""
    r = [honour(effective_on=D - timedelta(days=10), published_until=D + timedelta(days=15)),
         bad(effective_on=D - timedelta(days=3), suspended_on=D, suspended_until=D + timedelta(days=2)),
         bad(effective_on=D + timedelta(days=9), repaired_on=D + timedelta(days=12))]
    s = compute(r, at(D + timedelta(days=offset)))
    probe = s.valid_from or timeutil.start_of(D - timedelta(days=30))
    end = s.valid_until or timeutil.start_of(D + timedelta(days=60))
    while probe < end:
        assert compute(r, probe).colour == s.colour
        probe += timedelta(hours=6)


# --- materialised colour, against the database --------------------------------------------------

def test_new_subject_is_blue(db):
    assert colours.colour(db, create_subject(db)) == Colour.blue


def test_refresh_keeps_the_stored_colour_in_step_with_records(db):
    s = create_subject(db)
    r = add_record(db, s, kind="bad", effective_on=date(2020, 1, 1))
    assert s.colour == Colour.red
    r.repaired_on = date(2021, 1, 1)
    colours.refresh(db, s)
    assert s.colour == Colour.blue
    assert s.colour_valid_from == timeutil.start_of(date(2021, 1, 1))


def test_stored_colour_is_recomputed_when_its_window_has_passed(db):
    s = create_subject(db)
    tomorrow = timeutil.local_date(timeutil.now()) + timedelta(days=1)
    add_record(db, s, kind="bad", effective_on=date(2020, 1, 1), published_until=tomorrow)
    assert colours.colour(db, s) == Colour.red
    assert s.colour_valid_until == timeutil.start_of(tomorrow + timedelta(days=1))
    later = timeutil.start_of(tomorrow + timedelta(days=1))
    assert colours.colour(db, s, at=later) == Colour.blue
    assert s.colour == Colour.red  # a look at another time does not overwrite the present


def test_colour_in_the_past_is_answered_from_records(db):
    s = create_subject(db)
    add_record(db, s, kind="honour", effective_on=date(2024, 6, 1))
    assert colours.colour(db, s) == Colour.green
    assert colours.colour(db, s, at=at(date(2024, 5, 31))) == Colour.blue


def test_refresh_all_matches_one_by_one(db):
    subjects = [create_subject(db) for _ in range(7)]
    add_record(db, subjects[0], kind="bad")
    add_record(db, subjects[1], kind="honour")
    add_record(db, subjects[2], kind="honour")
    add_record(db, subjects[2], kind="bad", repaired_on=date(2021, 1, 1))
    for s in subjects:
        s.colour = None
    db.flush()
    assert colours.refresh_all(db, [s.id for s in subjects]) == 7
    db.expire_all()
    assert [s.colour for s in subjects][:4] == [Colour.red, Colour.green, Colour.green, Colour.blue]
