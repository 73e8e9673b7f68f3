"""Temporary staging tables for set-based bulk work: COPY into them on PostgreSQL, executemany on SQLite."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection

# Portable column types of staging tables -> (PostgreSQL, SQLite). SQLite keeps dates as the ISO text
# SQLAlchemy writes for Date columns, so staged values compare equal to stored ones.
_TYPES = {
    "text": ("text", "TEXT"),
    "int": ("bigint", "INTEGER"),
    "date": ("date", "TEXT"),
    "timestamp": ("timestamptz", "TEXT"),
    "bytes": ("bytea", "BLOB"),
}


def create_temp(conn: Connection, name: str, columns: Sequence[tuple[str, str]]) -> None:
    """(Re)create an empty temporary table; it lives with the connection, so drop it when done."""
    pg = conn.dialect.name == "postgresql"
    cols = ", ".join(f"{col} {_TYPES[kind][0 if pg else 1]}" for col, kind in columns)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} ({cols})")


def drop_temp(conn: Connection, *names: str) -> None:
    for name in names:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def load(conn: Connection, name: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Append rows (tuples in column order; None is NULL) to a staging table, as fast as the driver allows."""
    if conn.dialect.name == "postgresql":
        # COPY is several times faster than any INSERT; it needs psycopg's own connection.
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.close()
    else:
        rows = list(rows)
        if not rows:
            return
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", list(rows))


def analyze(conn: Connection, name: str) -> None:
    """Give PostgreSQL's planner the staging table's size, or it plans joins as if it were empty."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {name}")
