"""Pure analytics over customer journeys: attribution, journey flows and recommendation lift.

Nothing here talks to Redis, Kafka or the clock; the aggregate layer builds the small frozen
inputs (`Journey`, `CustomerJourney`, `DecisionOutcome`) and passes `now` explicitly.
"""
