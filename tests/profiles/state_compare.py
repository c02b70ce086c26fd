"""Comparing profile states whose decayed sums may differ in the last float bits."""

from __future__ import annotations

import math
from typing import Any

from services.profiles.fold import FoldedProfile


def assert_close(left: Any, right: Any, path: str = "state") -> None:
    """Equal, except floats (and int/float pairs) only need to agree to 1e-9 relative."""
    if isinstance(left, dict) and isinstance(right, dict):
        assert sorted(left) == sorted(right), f"{path}: keys {sorted(left)} != {sorted(right)}"
        for key in left:
            assert_close(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        assert len(left) == len(right), f"{path}: {left!r} != {right!r}"
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_close(a, b, f"{path}[{index}]")
    elif isinstance(left, int | float) and isinstance(right, int | float):
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {left} != {right}"
    else:
        assert left == right, f"{path}: {left!r} != {right!r}"


def assert_same_profile(left: FoldedProfile | None, right: FoldedProfile | None) -> None:
    """Same state, timeline and remembered ids. The ring keeps arrival order, so it is
    compared as a set."""
    assert (left is None) == (right is None), f"{left!r} vs {right!r}"
    if left is None or right is None:
        return
    assert_close(left.state, right.state)
    assert left.timeline == right.timeline
    assert sorted(left.seen) == sorted(right.seen)
