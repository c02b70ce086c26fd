"""When to try a failed delivery again: exponential backoff with jitter (pure).

Attempt n (1-based, the attempt that just failed) waits `min(cap, base * 2**(n-1))`, scaled by
a random factor in [0.5, 1] ("equal jitter"): delays still grow, and subscribers that failed
together do not all come back at the same instant.
"""

from __future__ import annotations


def retry_delay(failed_attempt: int, base_s: float, cap_s: float, unit_random: float) -> float:
    """`unit_random` in [0, 1) comes from the caller, so this stays deterministic."""
    if failed_attempt < 1:
        raise ValueError("failed_attempt starts at 1")
    ceiling = min(cap_s, base_s * 2 ** (failed_attempt - 1))
    return ceiling * (0.5 + 0.5 * unit_random)
