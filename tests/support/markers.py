"""Skip markers shared by test modules, each an environment condition."""

from __future__ import annotations

import pytest

from alerts.matching.backends import HYPERSCAN_AVAILABLE

# hyperscan's wheel installs only on x86-64 Linux (the pyproject marker says
# so); elsewhere the aho backend runs alone, with no matching screen.
needs_hyperscan = pytest.mark.skipif(
    not HYPERSCAN_AVAILABLE,
    reason="hyperscan installs only on x86-64 Linux (pyproject marker); "
    "the aho backend, without a screen, runs here",
)
