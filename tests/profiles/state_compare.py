"""Comparing profile states whose decayed sums may differ by their rounding: each merge
rounds them to 1/1024, so folds in different orders can differ by that much per event."""

from __future__ import annotations

import math
from typing import Any

from services.profiles.fold import DECAY_QUANTUM, FoldedProfile


def assert_close(left: Any, right: Any, path: str = "state", decayed_tolerance: float = 0.0
                 ) -> None:
    """Equal, except numbers only need to agree to 1e-9 relative, and decayed sums (under
    `dc`) to `decayed_tolerance` absolute."""
    if isinstance(left, dict) and isinstance(right, dict):
        assert sorted(left) == sorted(right), f"{path}: keys {sorted(left)} != {sorted(right)}"
        for key in left:
            assert_close(left[key], right[key], f"{path}.{key}", decayed_tolerance)
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        assert len(left) == len(right), f"{path}: {left!r} != {right!r}"
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_close(a, b, f"{path}[{index}]", decayed_tolerance)
    elif isinstance(left, int | float) and isinstance(right, int | float):
        tolerance = decayed_tolerance if path.startswith("state.dc.") else 0.0
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=max(1e-9, tolerance)), (
            f"{path}: {left} != {right}")
    else:
        assert left == right, f"{path}: {left!r} != {right!r}"


def assert_same_profile(left: FoldedProfile | None, right: FoldedProfile | None,
                        any_order: bool = False) -> None:
    """Same state, timeline and remembered ids. The ring keeps arrival order, so it is
    compared as a set. `any_order`: the two folds met one subject's events in different
    orders, so their decayed sums may differ by the rounding of each merge."""
    assert (left is None) == (right is None), f"{left!r} vs {right!r}"
    if left is None or right is None:
        return
    merges = max(len(left.seen), len(right.seen)) if any_order else 0
    assert_close(left.state, right.state, decayed_tolerance=merges / DECAY_QUANTUM)
    assert left.timeline == right.timeline
    assert sorted(left.seen) == sorted(right.seen)
