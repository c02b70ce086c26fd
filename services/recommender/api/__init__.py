"""The recommender's HTTP API: routes, request/response models, dependencies."""
