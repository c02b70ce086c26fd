"""`touchpoint reliability-report`: the fault-injection results table."""

from services.reliability.report import register

__all__ = ["register"]
