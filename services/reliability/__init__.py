"""Reconciling what clients were told with what the profiles hold, and reporting it."""
