import pytest
from cryptography.exceptions import InvalidTag

from handlers.privacy import Keys, mask_name

from ..conftest import KEYS, create_subject


def test_hash_is_keyed_and_stable():
    other = Keys.from_secret("another secret")
    assert KEYS.identifier_hash("11010519491231002X") == KEYS.identifier_hash("11010519491231002X")
    assert KEYS.identifier_hash("11010519491231002X") != other.identifier_hash("11010519491231002X")
    assert KEYS.hasher()("11010519491231002X") == KEYS.identifier_hash("11010519491231002X")


def test_names_round_trip_and_are_bound_to_their_row():
    blob = KEYS.encrypt_name("张三明", bound_to="row-a")
    assert "张三明".encode() not in blob
    assert KEYS.decrypt_name(blob, bound_to="row-a") == "张三明"
    with pytest.raises(InvalidTag):
        KEYS.decrypt_name(blob, bound_to="row-b")


@pytest.mark.parametrize("name,person,masked", [
    ("张三明", True, "张*明"), ("李四", True, "李*"), ("欧阳娜娜", True, "欧**娜"),
    ("惠州市示例科技有限公司", False, "惠州**有限公司"), ("某公司", False, "某**"),
])
def test_masks(name, person, masked):
    assert mask_name(name, person=person) == masked


def test_database_row_holds_no_clear_identifier_or_name(db):
    from sqlalchemy import text
    s = create_subject(db, name="王五福", identifier="11010519491231002X")
    row = db.execute(text("SELECT * FROM subject WHERE id = :id"), {"id": s.id}).one()
    dump = repr(tuple(row)).encode() + b"".join(v for v in row if isinstance(v, bytes | memoryview))
    assert b"11010519491231002X" not in dump
    assert "王五福".encode() not in dump
    assert s.id_masked == "1101**********002X"
