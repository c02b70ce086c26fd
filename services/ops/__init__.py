"""Operator tooling: dead-letter inspection and replay, container health checks."""
