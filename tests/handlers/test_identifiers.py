import random

import pytest

from handlers import identifiers
from handlers.errors import DomainError

# Published examples with valid check digits.
VALID_IDS = ["11010519491231002X", "440524188001010014"]
VALID_CODES = ["91350100M000100Y43", "91440300708461136T"]


@pytest.mark.parametrize("value", VALID_IDS)
def test_valid_resident_ids(value):
    assert identifiers.normalise_resident_id(value.lower()) == value


@pytest.mark.parametrize("value", VALID_CODES)
def test_valid_credit_codes(value):
    assert identifiers.normalise_credit_code(f" {value.lower()} ") == value


@pytest.mark.parametrize("value,code", [
    ("110105194912310021", "bad_check_digit"),
    ("11010519491231002", "bad_identifier"),
    ("11010519491331002X", "bad_identifier"),      # month 13
    ("01010519491231002X", "bad_identifier"),      # leading zero
    ("1101051949123100ZX", "bad_identifier"),
    ("", "bad_identifier"),
])
def test_bad_resident_ids(value, code):
    with pytest.raises(DomainError) as e:
        identifiers.normalise_resident_id(value)
    assert e.value.code == code


@pytest.mark.parametrize("value,code", [
    ("91350100M000100Y44", "bad_check_digit"),
    ("91350100M000100Y4", "bad_identifier"),
    ("9135010OM000100Y43", "bad_identifier"),      # O is not in the alphabet
    ("91350100M000100I43", "bad_identifier"),
])
def test_bad_credit_codes(value, code):
    with pytest.raises(DomainError) as e:
        identifiers.normalise_credit_code(value)
    assert e.value.code == code


def test_every_single_character_change_is_caught():
    rng = random.Random(1)
    for _ in range(50):
        good = identifiers.make_resident_id(rng)
        for pos in (0, 5, 16, 17):
            for ch in "0123456789X":
                bad = good[:pos] + ch + good[pos + 1:]
                if bad == good:
                    continue
                with pytest.raises(DomainError):
                    identifiers.normalise_resident_id(bad)


def test_generators_make_valid_identifiers():
    rng = random.Random(2)
    for _ in range(200):
        identifiers.normalise_resident_id(identifiers.make_resident_id(rng))
        identifiers.normalise_credit_code(identifiers.make_credit_code(rng))


def test_mask():
    assert identifiers.mask("44130219800101123X") == "4413**********123X"
