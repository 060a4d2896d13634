"""The listing's fast time conversions equal the slow ones they replace:
`iso_seconds` is `isoformat(timespec="seconds")`, and `utc_text` reads a
SQLite timestamp as `UTCDateTime` does, for any datetime and text shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from storage.stories import iso_seconds, utc_text
from storage.tables import UTCDateTime

OFFSETS = st.one_of(
    st.none(),
    st.just(UTC),
    st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
        lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1)))
    ),
)


@given(st.datetimes(timezones=OFFSETS))
def test_iso_seconds_is_isoformat(moment: datetime) -> None:
    assert iso_seconds(moment) == moment.isoformat(timespec="seconds")


DIALECT = sqlite.dialect()
TYPE = UTCDateTime().dialect_impl(DIALECT)


def _reference(text: str) -> datetime | None:
    """What SQLAlchemy reads from SQLite for a UTCDateTime column."""
    read = TYPE.result_processor(DIALECT, None)
    assert read is not None
    return read(text)  # type: ignore[no-any-return]


@given(st.datetimes(timezones=st.just(UTC)))
def test_utc_text_reads_what_storage_writes(moment: datetime) -> None:
    write = TYPE.bind_processor(DIALECT)
    assert write is not None
    stored = write(moment)  # the text SQLite holds
    assert isinstance(stored, str)
    assert utc_text(stored) == _reference(stored) == moment
    assert utc_text(stored).tzinfo is UTC


@given(st.datetimes(timezones=OFFSETS), st.sampled_from(["date", "T", "offset", "seconds"]))
def test_utc_text_reads_other_shapes_as_storage_does(moment: datetime, shape: str) -> None:
    text = {
        "date": moment.date().isoformat(),
        "T": moment.replace(tzinfo=None).isoformat(),
        "offset": moment.isoformat(),
        "seconds": moment.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds"),
    }[shape]
    assert utc_text(text) == _reference(text)
    assert utc_text(text).utcoffset() == timedelta(0)
