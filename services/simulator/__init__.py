"""Realistic multi-channel customer journeys for demos, tests and benchmarks."""

from services.simulator.journeys import PERSONAS, CustomerHistory, JourneySimulator

__all__ = ["PERSONAS", "CustomerHistory", "JourneySimulator"]
