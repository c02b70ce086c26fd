"""Catalog data files (touchpoints, actions)."""
