"""py3langid's feature counting with the per-byte loop in C: the same counts, in the same order.

py3langid (0.4) finds the byte n-gram features of a text by walking a DFA
over its UTF-8 bytes in a Python loop (`py3langid.langid.visit_counts`):
one interpreted iteration per byte, then a Naive Bayes sum over the visited
features (`_sparse_score`): together ~80 µs of a 200-character Latin or
Cyrillic sample. `DfaWalk` walks the same DFA with
`itertools.accumulate(data, operator.getitem)` over one dict per DFA state
(byte -> next state's dict, filled from the model's table the first time a
transition is taken, by `__missing__`) and counts each visited state's
feature with `Counter(map(attrgetter("key"), …))`: the loop, the lookups
and the counting run in C. ~60 µs for the same sample, with the
contiguous tables of `load_identifier`.

The counts are those of `visit_counts`, with the features in the same order
(first occurrence: Counter keeps first-insertion order, and states that
emit the same feature share its key), so the Naive Bayes sum over them is
bit-identical. tests/unit/test_langid_walk.py compares the two on generated
and hostile byte strings, and the scores and labels of both identifiers.

Memory: a state's dict holds only the bytes seen after it; past
`MAX_STATES` states or `MAX_EDGES` cached transitions, new ones are looked
up in the model's table every time (the same answer, a Python call per such
byte; Counter counts keys, not state objects, so a state made afresh counts
the same), so a long-running process fed hostile text cannot grow it
without bound.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import mmap
import os
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate, islice
from operator import attrgetter, getitem
from pathlib import Path
from typing import Any

from localcache import cache_dir
from localcache import replace_file as _replace

log = logging.getLogger(__name__)

# Bounds of the cache (real text: ~1,400 states and ~3,100 transitions, ~0.5 MB):
MAX_STATES = 20_000  # ~5 MB of state dicts; beyond, a state is made afresh each visit
MAX_EDGES = 200_000  # ~10 MB of dict entries; beyond, a transition is looked up each time


class _State(dict[int, "_State"]):
    """One DFA state: its transitions seen so far; hashed by identity.

    `key` is what Counter counts: the state's feature, or `NO_FEATURE` when it
    emits none (py3langid's -1), so states that emit the same feature are
    counted together, as visit_counts does, and all featureless visits under
    one key that `score` pops."""

    __slots__ = ("key", "number", "walk")
    __hash__ = object.__hash__  # type: ignore[assignment]

    key: int
    number: int
    walk: DfaWalk

    def __missing__(self, byte: int) -> _State:
        return self.walk.step(self, byte)


_key = attrgetter("key")
NO_FEATURE = -1  # the key of every state that emits no feature


class DfaWalk:
    """The feature counts of py3langid's DFA (`nextmove`, `rowbase`, `output`) over bytes."""

    def __init__(
        self, nextmove: Sequence[int], rowbase: Sequence[int], output: Sequence[int]
    ) -> None:
        self._nextmove = nextmove
        self._rowbase = rowbase
        self._output = output
        self._states: dict[int, _State] = {}
        self._edges = 0
        self._lock = threading.Lock()
        self._root = self._state(0)
        self._windows: WindowWalk | None = None

    def _state(self, number: int) -> _State:
        state = self._states.get(number)
        if state is None:
            with self._lock:
                state = self._states.get(number)
                if state is None:
                    state = _State()
                    state.number = number
                    feature = int(self._output[number])
                    state.key = feature if feature >= 0 else NO_FEATURE
                    state.walk = self
                    if len(self._states) < MAX_STATES:  # else a one-off: counted by its key
                        self._states[number] = state
        return state

    def step(self, state: _State, byte: int) -> _State:
        """The state after `byte`, from the model's table; cached within the bounds."""
        nxt = self._state(int(self._nextmove[self._rowbase[state.number] + byte]))
        if self._edges < MAX_EDGES and self._states.get(state.number) is state:
            state[byte] = nxt
            self._edges += 1
        return nxt

    @property
    def edges(self) -> int:
        return self._edges

    def counts(self, data: bytes) -> Counter[int]:
        """Visits per key (a feature, or NO_FEATURE for the states without
        one), in order of first visit."""
        if not data:
            return Counter()
        walked = accumulate(islice(data, 1, None), getitem, initial=self._root[data[0]])
        return Counter(map(_key, walked))

    def visits(self, data: bytes) -> dict[int, int] | None:
        """{feature: count} in order of first occurrence, or None when there is none:
        `py3langid.langid.visit_counts(nextmove, rowbase, output, data)`."""
        found = {key: n for key, n in self.counts(data).items() if key >= 0}
        return found or None

    def arrays(self, data: bytes) -> Counted | None:
        """(features, visits) of `data` as the arrays `_sparse_score` makes of
        `visits(data)` (intp, float32, in order of first occurrence), or None
        when no feature occurs."""
        import numpy as np

        counts = self.counts(data)
        counts.pop(NO_FEATURE, None)  # the rest are the features, in visits' order
        if not counts:
            return None
        keys = np.fromiter(counts, dtype=np.intp, count=len(counts))
        visits = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        return keys, visits

    def score(self, data: bytes, table: Any, prior: Any) -> Any:
        """py3langid's raw Naive Bayes scores of `data` (`_sparse_score` of
        `visits(data)` with `table` and `prior`), or None when no feature occurs."""
        return score_counted(self.arrays(data), table, prior)

    def counts_many(self, datas: Sequence[bytes]) -> list[Counted | None]:
        """`[self.arrays(d) for d in datas]`, the walk done for all of them at
        once in NumPy (`WindowWalk`) when there are enough to pay for it."""
        if len(datas) < MIN_BATCH:
            return [self.arrays(d) for d in datas]
        windows = self._windows
        if windows is None:
            with self._lock:
                if self._windows is None:
                    self._windows = WindowWalk(self)
            windows = self._windows
        return windows.counts_many(datas)


Counted = tuple[Any, Any]  # (features: intp array, visits: float32 array)
MIN_BATCH = 8  # fewer texts: the per-text walk (the batch's fixed cost is ~60 NumPy calls)


def score_counted(counted: Counted | None, table: Any, prior: Any) -> Any:
    """`_sparse_score`: log1p(visits) @ table[features] + prior, or None."""
    import numpy as np

    if counted is None:
        return None
    keys, visits = counted
    return np.log1p(visits) @ table[keys] + prior


# The batched walk (WindowWalk). py3langid's DFA is an Aho-Corasick automaton
# over byte n-grams: the state after a byte is the longest suffix of the text
# so far that is a prefix of a feature, and no state's string is longer than
# WINDOW bytes (the deepest state is 6 moves from the root). So the state at
# each position is the root's walk over the WINDOW bytes that end there, and
# all positions can be walked at once, one move per byte of the window.
# WindowWalk checks that this holds for every position it returns (the state
# at each byte is the move from the state before it): a DFA for which it does
# not hold is walked byte by byte instead.
WINDOW = 6
_PAD = 256  # a "byte" between texts that moves no state: column 256 of the table
_WIDTH = 257
_UNKNOWN = 0  # compact state 0: a move not looked up yet (its row leads only to itself)
MAX_WINDOW_STATES = 8192  # 4.2 MB of table at most; past it the table starts again


class _TableFull(Exception):
    pass


class _NotWindowed(Exception):
    pass


class WindowWalk:
    """The feature counts of many texts at once: `DfaWalk.arrays` of each,
    equal array for array (tests/unit/test_langid_walk.py).

    The states the windows reach are numbered compactly as they are first
    met (~2,700 on the bench's English and Russian text), and their moves
    kept in one uint16 table of 257 columns (`_table[state * 257 + byte]`,
    0 until looked up in the model's DFA): a walk is then WINDOW NumPy
    gathers over all the texts' bytes together. The counting (visits per
    feature, in order of first occurrence, per text) is one sort of
    (text, feature, position) keys. ~4x cheaper than the per-text walk on a
    feed's worth of items, but ~60 NumPy calls whatever the batch's size:
    `DfaWalk.counts_many` uses it from MIN_BATCH texts on."""

    def __init__(self, walk: DfaWalk) -> None:
        self._walk = walk
        self._lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        import numpy as np

        # The table's room for MAX_WINDOW_STATES rows, in an anonymous map: the
        # kernel backs a page only once a row on it is written (~3,000 rows,
        # 1.6 MB, on the bench's text), and the table never moves (no copy
        # when it grows: np.zeros may come from a heap it clears whole).
        room = mmap.mmap(-1, MAX_WINDOW_STATES * _WIDTH * 2, flags=mmap.MAP_PRIVATE)
        self._table = np.frombuffer(room, dtype=np.uint16)
        self._feature = np.zeros(MAX_WINDOW_STATES, dtype=np.int32)  # compact feature, 0: none
        self._features = np.array([NO_FEATURE], dtype=np.intp)  # compact feature -> feature
        self._feature_ids: dict[int, int] = {}
        self._compact: dict[int, int] = {}  # DFA state -> compact state
        self._numbers: list[int] = [-1]  # compact state -> DFA state (0: unknown)
        self._root = self._add(0)

    @property
    def states(self) -> int:
        return len(self._numbers) - 1

    def _add(self, number: int) -> int:
        """The compact number of DFA state `number`, new: its row moves
        nowhere yet (unknown) but on _PAD, which stays."""
        compact = len(self._numbers)
        if compact >= MAX_WINDOW_STATES:
            raise _TableFull
        self._numbers.append(number)
        self._compact[number] = compact
        self._table[compact * _WIDTH + _PAD] = compact
        key = int(self._walk._output[number])
        if key >= 0:
            fid = self._feature_ids.get(key)
            if fid is None:
                fid = self._feature_ids[key] = len(self._feature_ids) + 1
            self._feature[compact] = fid
        return compact

    def _fill(self, moves: Any) -> None:
        """Look up the unknown moves (flat table indexes) in the model's DFA."""

        walk = self._walk
        for index in sorted(set(moves.tolist())):  # not np.unique: it imports numpy.ma
            compact, byte = divmod(index, _WIDTH)
            number = int(walk._nextmove[walk._rowbase[self._numbers[compact]] + byte])
            target = self._compact.get(number)
            self._table[index] = self._add(number) if target is None else target

    def _moves(self, index: Any) -> Any:
        """The table at `index`, unknown moves looked up first."""
        out = self._table.take(index)
        if not out.all():
            self._fill(index[out == _UNKNOWN])
            out = self._table.take(index)
        return out

    def counts_many(self, datas: Sequence[bytes]) -> list[Counted | None]:
        with self._lock:
            for _attempt in range(2):
                try:
                    return self._counts(datas)
                except _TableFull:
                    self._start()  # a table full of other text's states: begin again
                except _NotWindowed:
                    break
        walk = self._walk
        return [walk.arrays(d) for d in datas]

    def _counts(self, datas: Sequence[bytes]) -> list[Counted | None]:
        import numpy as np

        n = len(datas)
        lengths = np.fromiter(map(len, datas), dtype=np.intp, count=n)
        # WINDOW pads before each text: its first windows start at the root
        x = np.frombuffer(bytes(WINDOW).join([b"", *datas]), dtype=np.uint8).astype(np.int32)
        text_of = np.repeat(np.arange(n, dtype=np.intp), lengths)  # per byte of the texts
        real = np.arange(len(text_of), dtype=np.intp)
        real += (text_of + 1) * WINDOW  # where each byte of the texts is in x
        x[_pad_mask(len(x), real)] = _PAD
        states = self._walk_windows(x)
        # each state is the move from the one before it (the windows' assumption)
        at = states.take(real)
        before = np.multiply(states.take(real - 1), _WIDTH, dtype=np.int32)
        before += x.take(real)
        if not np.array_equal(self._moves(before), at):
            raise _NotWindowed
        return self._count(at, text_of, lengths)

    def _walk_windows(self, x: Any) -> Any:
        """The state at every position of x: the root's walk over the WINDOW
        bytes that end there (the first WINDOW - 1 positions: the root)."""
        import numpy as np

        m = len(x) - WINDOW + 1
        state = self._table.take(x[:m] + self._root * _WIDTH)
        for j in range(1, WINDOW):
            index = np.multiply(state, _WIDTH, dtype=np.int32)
            index += x[j : j + m]
            state = self._table.take(index)
        if not state.all():  # a move not looked up yet (0 leads to 0): again, looking up
            state = self._moves(x[:m] + self._root * _WIDTH)
            for j in range(1, WINDOW):
                index = np.multiply(state, _WIDTH, dtype=np.int32)
                index += x[j : j + m]
                state = self._moves(index)
        out = np.empty(len(x), dtype=np.uint16)
        out[: WINDOW - 1] = self._root
        out[WINDOW - 1 :] = state
        return out

    def _count(self, states: Any, text_of: Any, lengths: Any) -> list[Counted | None]:
        """Per text, (features, visits) in order of first occurrence, from the
        state at each byte: one sort of (text, feature, position) keys."""
        import numpy as np

        size = len(states)
        feature = self._feature.take(states)
        shift = max(size, 1).bit_length()
        if (len(lengths) * (len(self._feature_ids) + 1)) >> (62 - shift):
            raise _NotWindowed  # the keys would not fit in 63 bits
        key = text_of * (len(self._feature_ids) + 1)
        key += feature
        key <<= shift
        key |= np.arange(size, dtype=np.intp)
        key.sort()
        group = key >> shift
        starts = np.flatnonzero(group[1:] != group[:-1])
        starts += 1
        starts = np.concatenate(([0], starts)) if size else starts
        visits = np.diff(np.append(starts, size))
        first = key.take(starts) & ((1 << shift) - 1)  # position of each group's first byte
        at_first = np.zeros(size, dtype=np.intp)
        at_first[first] = visits
        at_first[feature == 0] = 0  # states without a feature
        where = np.flatnonzero(at_first)  # first occurrences, in order
        if len(self._features) != len(self._feature_ids) + 1:
            ordered = sorted(self._feature_ids, key=self._feature_ids.__getitem__)
            self._features = np.array([NO_FEATURE, *ordered], dtype=np.intp)
        keys = self._features.take(feature.take(where))
        counts = at_first.take(where).astype(np.float32)
        ends = np.cumsum(lengths)
        bounds = np.searchsorted(where, ends).tolist()
        out: list[Counted | None] = []
        begin = 0
        for end in bounds:
            out.append((keys[begin:end], counts[begin:end]) if end > begin else None)
            begin = end
        return out


def _pad_mask(size: int, real: Any) -> Any:
    import numpy as np

    pad = np.ones(size, dtype=bool)
    pad[real] = False
    return pad


def classify_many(requests: Sequence[tuple[Any, str]]) -> list[str]:
    """`[str(ident.classify(text)[0]) for ident, text in requests]`: the
    texts walked together (`DfaWalk.counts_many`) when every identifier is
    one of `load_identifiers`' (one shared walk, raw scores)."""
    walks = {id(getattr(ident, "_walk", None)) for ident, _ in requests}
    walk = getattr(requests[0][0], "_walk", None) if requests else None
    if (
        len(walks) != 1
        or not isinstance(walk, DfaWalk)
        or any(ident._norm_probs or ident.min_confidence is not None for ident, _ in requests)
    ):
        return [str(ident.classify(text)[0]) for ident, text in requests]
    counted = walk.counts_many([ident._encode(text) for ident, text in requests])
    idents = [ident for ident, _ in requests]
    return [
        ident.label(scores)
        for ident, scores in zip(idents, raw_scores(idents, counted), strict=True)
    ]


def raw_scores(idents: Sequence[Any], counted: Sequence[Counted | None]) -> list[Any]:
    """Each text's `_raw_score` from its counts (`score_counted`, or the
    library's fill without a feature), with each identifier's table rows
    for all its texts gathered and widened to float32 at once: what
    `log1p(visits) @ table[features]` does for each text (float16 to float32
    is exact, and the product is float32 by float32 either way:
    bit-identical, tests/unit/test_langid_batch.py)."""
    import numpy as np

    scores: list[Any] = [None] * len(idents)
    texts_of: dict[int, list[int]] = {}
    for i, (ident, c) in enumerate(zip(idents, counted, strict=True)):
        if c is None:
            scores[i] = ident._raw_score(b"")
        else:
            texts_of.setdefault(id(ident), []).append(i)
    for texts in texts_of.values():
        ident = idents[texts[0]]
        keys = np.concatenate([counted[i][0] for i in texts])  # type: ignore[index]
        rows = ident.nb_ptc.take(keys, axis=0).astype(np.float32)
        start = 0
        for i in texts:
            visits = counted[i][1]  # type: ignore[index]
            end = start + len(visits)
            scores[i] = np.log1p(visits) @ rows[start:end] + ident.nb_pc
            start = end
    return scores


# What this module relies on in py3langid (0.4); without it, the library's own class.
_NEEDED = (
    "_raw_score",
    "_sparse_score",
    "tk_nextmove",
    "tk_output",
    "_rowbase",
    "nb_pc",
    "_full_model",
    "_set_alias_pairs",
    "_alias_pairs",
    "_norm_probs",
    "min_confidence",
    "_encode",
    "_decide",
)
_ARRAY_CODES = {2: "H", 4: "I", 8: "Q"}


def load_identifier() -> Any:
    """py3langid's full model (`norm_probs=False`), counting features with DfaWalk.

    The class is a LanguageIdentifier whose `_raw_score` asks DfaWalk instead
    of `visit_counts`, and whose restricted tables (`set_languages`) are
    C-contiguous (the library leaves a Fortran-ordered copy; gathering the
    visited rows from it costs ~9 µs more per text, with the same values);
    with a py3langid whose internals are not the ones this was written
    against, the library's own class (only the speed differs). Copies
    (`copy.copy`, then `set_languages`) share the walk and its cache.
    """
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    if not all(hasattr(LanguageIdentifier, name) for name in _NEEDED):
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
    return _fast_identifier(*_read_model())


def load_identifiers(groups: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """One identifier per group, restricted to its languages as `set_languages`
    restricts them, all sharing one DfaWalk, and without the full table.

    The full table (100,053 features × 142 languages, float16: 28 MB) is only
    read to copy out the groups' columns (~9 MB for the crawler's two), and
    freed before the DFA is read, so the two are never in memory together.
    Each group's tables are its "full model" (`set_languages(None)` restores
    the group, not every language). The scores are those of the full model
    restricted by `set_languages` (tests/unit/test_langid_walk.py).

    What this reads is kept uncompressed in a cache directory (`_cached`),
    the DFA read from its file as needed (`_FileArray`): a process then
    loads the model in ~0.1 s instead of ~0.7 s
    (the model file is LZMA: ~0.4 s to decompress), and only the DFA rows
    the walk visits are ever read into memory (~1,400 of 104,583 states on
    feed text), not its 39 MB. Without a writable cache directory, the model
    file is read as before."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    if not all(hasattr(LanguageIdentifier, name) for name in _NEEDED):
        base = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
        out: dict[str, Any] = {}
        for name, langs in groups.items():
            out[name] = copy.copy(base)
            out[name].set_languages(list(langs))
        return out
    tables, (nextmove, row, output) = _cached(groups)
    out = {}
    first = None
    for name, (ptc, pc, classes) in tables.items():
        if first is None:
            first = out[name] = _fast_identifier(ptc, pc, classes, nextmove, row, output)
            continue
        ident = copy.copy(first)  # shares the walk and the DFA
        ident.nb_ptc, ident.nb_pc, ident.nb_classes = ptc, pc, classes
        ident._full_model = ptc, pc, classes
        ident._set_alias_pairs()
        out[name] = ident
    return out


Tables = dict[str, tuple[Any, Any, list[str]]]
Dfa = tuple[Any, Any, Any]  # nextmove, row, output


def _model_key() -> str:
    """Names the model file's version: a new py3langid (or model) is a new cache."""
    import importlib.metadata

    from py3langid.langid import MODEL_DIR, MODEL_FILE

    stat = (MODEL_DIR / MODEL_FILE).stat()
    version = importlib.metadata.version("py3langid")
    return f"langid-{version}-{stat.st_size}-{stat.st_mtime_ns}-v1"


def _cached(groups: Mapping[str, Sequence[str]]) -> tuple[Tables, Dfa]:
    """The groups' tables and the DFA: from the cache (the DFA read from its
    file as needed) if it holds them, else from the model file, written to the
    cache for the next process (each file by an atomic rename: processes
    that start together may all write it, never a half of it).
    Any cache problem means reading the model file, as without a cache."""
    spec = json.dumps({name: list(langs) for name, langs in groups.items()}, sort_keys=True)
    root = cache_dir()
    where = None
    if root is not None:
        where = root / _model_key()
        tables_file = where / f"tables-{hashlib.sha256(spec.encode()).hexdigest()[:16]}.npz"
        try:
            return _read_cache(where, tables_file, groups)
        except _UNREADABLE:
            pass  # not there yet, or unreadable: made again below
    tables: Tables = {}

    def restrict(ptc: Any, pc: Any, classes: list[str]) -> None:
        tables.update(_restrict(ptc, pc, classes, groups))

    _, _, _, nextmove, row, output = _read_model(restrict)
    if where is not None:
        try:
            _write_cache(where, tables_file, tables, (nextmove, row, output))
            return _read_cache(where, tables_file, groups)  # the DFA read as needed, not held
        except _UNREADABLE as e:  # read-only home, disk full
            log.info("langid_cache status=unusable dir=%s error=%r", where, str(e))
    return tables, (nextmove, row, output)


def _restrict(ptc: Any, pc: Any, classes: list[str], groups: Mapping[str, Sequence[str]]) -> Tables:
    import numpy as np

    out: Tables = {}
    for name, langs in groups.items():
        wanted = set(langs)
        unknown = wanted - set(classes)
        if unknown:
            raise ValueError(f"Unknown language code(s): {unknown}")
        idx = [i for i, c in enumerate(classes) if c in wanted]  # as set_languages
        out[name] = np.take(ptc, idx, axis=1), pc[idx], [classes[i] for i in idx]
    return out


# A cache file missing, cut short or not ours (np.load's errors on a bad .npy or .npz)
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
_DFA_FILES = ("nextmove.npy", "row.npy", "output.npy")


def _read_cache(
    where: Path, tables_file: Path, groups: Mapping[str, Sequence[str]]
) -> tuple[Tables, Dfa]:
    import numpy as np

    nextmove = _FileArray(where / _DFA_FILES[0])
    row, output = (np.load(where / f, mmap_mode="r") for f in _DFA_FILES[1:])
    if len(nextmove) % 256 or len(row) != len(output) or int(row.max()) * 256 >= len(nextmove):
        raise ValueError("inconsistent DFA in the cache")
    nextmove.check_below(len(row))  # every move leads to a state: never an IndexError later
    top = int(output.max())  # the highest feature number: a row of every table
    tables: Tables = {}
    with np.load(tables_file, allow_pickle=False) as data:
        for name, langs in groups.items():
            ptc, pc = data[f"{name}.ptc"], data[f"{name}.pc"]
            classes = [str(c) for c in data[f"{name}.classes"]]
            shapes = (ptc.ndim, ptc.shape[1], len(pc), ptc.shape[0] > top)
            if set(classes) != set(langs) or shapes != (2, len(classes), len(classes), True):
                raise ValueError("inconsistent tables in the cache")
            tables[name] = ptc, pc, classes
    return tables, (nextmove, _as_array(row), np.array(output))


class _FileArray:
    """A 1-D little-endian uint32 .npy file, indexed like a sequence: each
    item read from the file when asked (`os.pread`), nothing held in memory.

    For the DFA's `nextmove` (39 MB), which DfaWalk reads only on a cache
    miss (a few thousand times per process). A memory map would do the same
    in principle, but the kernel maps the page cache around each fault
    (fault-around, large folios): ~1,400 scattered reads made 35 MB of it
    resident, counted in the worker's RSS."""

    __slots__ = ("_fd", "_len", "_offset")

    def __init__(self, path: Path) -> None:
        import numpy as np

        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"{path}: .npy version {version}")
            offset = f.tell()
            size = os.fstat(f.fileno()).st_size
        if len(shape) != 1 or fortran or dtype != np.dtype("<u4"):
            raise ValueError(f"{path}: not a 1-D uint32 array")
        if size != offset + 4 * shape[0]:
            raise ValueError(f"{path}: {size} bytes, {offset + 4 * shape[0]} expected")
        self._offset, self._len = offset, shape[0]
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def __len__(self) -> int:
        return self._len

    def check_below(self, limit: int) -> None:
        """ValueError unless every item is below `limit`: the file read once,
        a megabyte-sized block at a time (~20 ms for the 39 MB DFA, never
        held or mapped whole)."""
        import numpy as np

        with os.fdopen(os.dup(self._fd), "rb") as f:
            f.seek(self._offset)
            left = self._len
            while left:
                block = np.fromfile(f, dtype="<u4", count=min(left, 1 << 18))
                if not len(block) or int(block.max()) >= limit:
                    raise ValueError("inconsistent DFA in the cache")
                left -= len(block)

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self._len:
            raise IndexError(index)
        return int.from_bytes(os.pread(self._fd, 4, self._offset + 4 * index), "little")

    def __del__(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.close(self._fd)


def _write_cache(where: Path, tables_file: Path, tables: Tables, dfa: Dfa) -> None:
    import numpy as np

    where.mkdir(parents=True, exist_ok=True)
    nextmove, row, output = dfa
    values = (
        np.asarray(nextmove, dtype="<u4"),
        np.asarray(row),
        np.asarray(output, dtype=np.int32),
    )
    for name, value in zip(_DFA_FILES, values, strict=True):  # written again if unreadable
        _replace(where / name, functools.partial(_save_npy, value=value))
    arrays: dict[str, Any] = {}
    for group, (ptc, pc, classes) in tables.items():
        arrays[f"{group}.ptc"], arrays[f"{group}.pc"] = ptc, pc
        arrays[f"{group}.classes"] = np.array(classes)
    _replace(tables_file, lambda f: np.savez(f, **arrays))


def _save_npy(f: Any, *, value: Any) -> None:
    import numpy as np

    np.save(f, value, allow_pickle=False)


def _as_array(values: Any) -> Any:
    """A NumPy unsigned array as the stdlib array py3langid builds its row offsets from."""
    from array import array

    import numpy as np

    contiguous = np.ascontiguousarray(values)
    out = array(_ARRAY_CODES[contiguous.dtype.itemsize])
    out.frombytes(contiguous.tobytes())
    return out


def _read_model(
    restrict: Callable[[Any, Any, list[str]], None] | None = None,
) -> tuple[Any, Any, list[str], Any, Any, list[int]]:
    """py3langid's model file as `py3langid.modelio.load_model` reads it, but for
    the DFA's `nextmove` (9.8 M uint32, 39 MB): kept as NumPy's array where the
    library copies it into an `array.array`, with both copies alive for a
    moment. DfaWalk reads it only on a cache miss. With `restrict`, the table
    is handed to it and not returned (None), before the DFA is read."""
    import lzma
    import shutil

    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    with tempfile.TemporaryFile(suffix=".npz") as tmp:
        with lzma.open(MODEL_DIR / MODEL_FILE) as src:
            shutil.copyfileobj(src, tmp, length=1 << 20)
        tmp.seek(0)
        with np.load(tmp, allow_pickle=False) as data:
            missing = {"nextmove_row", "out_feat"}.difference(data.files)
            if missing:
                raise ValueError(f"unsupported py3langid model layout, missing {sorted(missing)}")
            ptc, pc, classes = data["ptc"], data["pc"], data["classes"].tolist()
            if restrict is not None:
                restrict(ptc, pc, classes)
                ptc = None
            rows = _as_array(data["nextmove_row"])
            nextmove = data["nextmove"].astype(np.uint32, copy=False)
            return ptc, pc, classes, nextmove, rows, data["out_feat"].tolist()


def _fast_identifier(
    ptc: Any, pc: Any, classes: list[str], nextmove: Any, row: Any, output: list[int]
) -> Any:
    import numpy as np
    from py3langid.langid import RAW_FLOOR, LanguageIdentifier

    class FastIdentifier(LanguageIdentifier):  # type: ignore[misc]
        __slots__ = ("_walk",)

        def set_languages(self, langs: list[str] | None = None) -> None:
            super().set_languages(langs)
            self.nb_ptc = np.ascontiguousarray(self.nb_ptc)  # type: ignore[misc,has-type]

        def _raw_score(self, text: bytes) -> Any:
            scores = self._walk.score(text, self.nb_ptc, self.nb_pc)
            if scores is None:
                return super()._raw_score(b"")  # no feature: the library's fill value
            return scores

        def label_of(self, counted: Counted | None) -> str:
            """`classify(text)[0]` from `DfaWalk.arrays(_encode(text))`: the
            steps of `_decide` after the walk (raw scores, no norm_probs)."""
            scores = score_counted(counted, self.nb_ptc, self.nb_pc)
            if scores is None:
                scores = super()._raw_score(b"")
            return self.label(scores)

        def label(self, scores: Any) -> str:
            """`classify`'s label from `_raw_score`'s scores (no norm_probs)."""
            for i, j in self._alias_pairs:
                scores[i] = max(scores[i], scores[j])
                scores[j] = RAW_FLOOR
            return str(self.nb_classes[int(scores.argmax())])

    ident = FastIdentifier(np.asarray(ptc), np.asarray(pc), classes, nextmove, output, tk_row=row)
    ident._walk = DfaWalk(ident.tk_nextmove, ident._rowbase, ident.tk_output)
    return ident
