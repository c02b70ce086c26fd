"""Feature building shared by training and serving.

A context is a flat dict ``name -> number | string | bool``. ``ContextFeaturizer`` turns it
into a fixed-width vector: numbers are standardised and also one-hot encoded into quantile
bins (so the linear reward model can bend), booleans become 0/1, strings are one-hot
encoded over the categories seen often enough in training. Unknown names and categories
are ignored, missing numbers count as the training mean.

``ActionFeaturizer`` does the same for the numeric features of actions (channel one-hot,
incentive, cost, ...), standardised over the known actions.

``interaction_design`` builds the training matrix of the reward model:

    [ x | e_a | f_a | x (x) e_a | x (x) f_a ]

with ``x`` the context vector, ``e_a`` the one-hot action id and ``f_a`` the action features.
The ``x (x) e_a`` block gives each known action its own context effects; ``x (x) f_a`` shares
them between similar actions, which is what lets a new action be scored.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

Context = Mapping[str, Any]


def _check_fitted(estimator: BaseEstimator, attribute: str) -> None:
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"{type(estimator).__name__} is not fitted yet; call fit first")


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


class ContextFeaturizer(BaseEstimator):
    """Context dict -> dense float vector, learned from training contexts."""

    def __init__(self, n_bins: int = 4, max_categories: int = 30, min_frequency: int = 5):
        self.n_bins = n_bins
        self.max_categories = max_categories
        self.min_frequency = min_frequency

    def fit(self, contexts: Sequence[Context], y: Any = None) -> ContextFeaturizer:
        values: dict[str, list[Any]] = {}
        for context in contexts:
            for name, value in context.items():
                values.setdefault(str(name), []).append(value)
        numeric: dict[str, tuple[float, float, list[float]]] = {}
        categorical: dict[str, list[str]] = {}
        for name in sorted(values):
            seen = [v for v in values[name] if v is not None]
            if seen and all(_is_number(v) or isinstance(v, bool) for v in seen):
                numbers = np.asarray([float(v) for v in seen])
                std = float(numbers.std()) or 1.0
                edges: list[float] = []
                if self.n_bins > 1 and len(np.unique(numbers)) > self.n_bins:
                    quantiles = np.quantile(numbers, np.linspace(0, 1, self.n_bins + 1)[1:-1])
                    edges = sorted({float(q) for q in quantiles})
                numeric[name] = (float(numbers.mean()), std, edges)
            else:
                counts = Counter(str(v) for v in seen)
                kept = [c for c, n in counts.most_common(self.max_categories)
                        if n >= self.min_frequency]
                if kept:
                    categorical[name] = sorted(kept)
        self.numeric_ = numeric
        self.categorical_ = categorical
        names: list[str] = []
        for name, (_mean, _std, edges) in numeric.items():
            names.append(name)
            names.extend(f"{name}:bin{i}" for i in range(len(edges) + 1) if edges)
        for name, categories in categorical.items():
            names.extend(f"{name}={c}" for c in categories)
        self.feature_names_ = names
        self._index_ = {n: i for i, n in enumerate(names)}
        return self

    def transform(self, contexts: Sequence[Context]) -> np.ndarray:
        _check_fitted(self, "feature_names_")
        out = np.zeros((len(contexts), len(self.feature_names_)))
        index = self._index_
        rows = np.arange(len(contexts))
        for name, (mean, std, edges) in self.numeric_.items():
            raw = [context.get(name) for context in contexts]
            present = np.asarray([_is_number(v) or isinstance(v, bool) for v in raw], dtype=bool)
            if not present.any():
                continue
            numbers = np.asarray([float(v) for v, ok in zip(raw, present, strict=True) if ok])
            out[present, index[name]] = (numbers - mean) / std
            if edges:
                first = index[f"{name}:bin0"]
                out[rows[present], first + np.searchsorted(edges, numbers)] = 1.0
        for name in self.categorical_:
            for row, context in enumerate(contexts):
                value = context.get(name)
                if value is None:
                    continue
                column = index.get(f"{name}={value}")
                if column is not None:
                    out[row, column] = 1.0
        return out

    def fit_transform(self, contexts: Sequence[Context], y: Any = None) -> np.ndarray:
        return self.fit(contexts).transform(contexts)


class ActionFeaturizer(BaseEstimator):
    """Action id -> standardised numeric action features; knows the logged action ids."""

    def fit(
        self,
        action_ids: Sequence[str],
        feature_table: Mapping[str, Mapping[str, float]] | None = None,
    ) -> ActionFeaturizer:
        table = feature_table or {}
        self.action_ids_ = list(dict.fromkeys(action_ids))
        names = sorted({n for a in self.action_ids_ for n in table.get(a, {})})
        raw = np.asarray(
            [[float(table.get(a, {}).get(n, 0.0)) for n in names] for a in self.action_ids_]
        ).reshape(len(self.action_ids_), len(names))
        mean = raw.mean(axis=0) if len(raw) else np.zeros(len(names))
        std = raw.std(axis=0) if len(raw) else np.ones(len(names))
        keep = std > 0  # a feature equal for every known action carries no information
        self.feature_names_ = [n for n, k in zip(names, keep, strict=True) if k]
        self.mean_ = mean[keep]
        self.std_ = std[keep]
        self.known_features_ = {a: dict(table.get(a, {})) for a in self.action_ids_}
        self._id_index_ = {a: i for i, a in enumerate(self.action_ids_)}
        return self

    @property
    def n_features(self) -> int:
        _check_fitted(self, "feature_names_")
        return len(self.feature_names_)

    def id_index(self, action_id: str) -> int | None:
        _check_fitted(self, "action_ids_")
        return self._id_index_.get(action_id)

    def transform(
        self,
        action_ids: Sequence[str],
        features: Mapping[str, Mapping[str, float]] | None = None,
    ) -> np.ndarray:
        """Standardised feature rows; ``features`` overrides what was known at fit time."""
        _check_fitted(self, "feature_names_")
        extra = features or {}
        rows = np.zeros((len(action_ids), len(self.feature_names_)))
        for r, action_id in enumerate(action_ids):
            values = extra.get(action_id) or self.known_features_.get(action_id, {})
            for c, name in enumerate(self.feature_names_):
                rows[r, c] = float(values.get(name, 0.0))
        return (rows - self.mean_) / self.std_


def interaction_design(
    context_matrix: np.ndarray,
    action_index: np.ndarray,
    n_actions: int,
    action_matrix: np.ndarray,
) -> sp.csr_matrix:
    """Sparse design ``[x | e_a | f_a | x (x) e_a | x (x) f_a]`` for logged (context, action).

    ``action_index`` holds the column of the logged action id (``-1`` for an id unknown at
    fit time), ``action_matrix`` its standardised feature row (one row per sample).
    """
    n = context_matrix.shape[0]
    x = sp.csr_matrix(context_matrix)
    known = action_index >= 0
    ids = sp.csr_matrix(
        (np.ones(int(known.sum())), (np.flatnonzero(known), action_index[known])),
        shape=(n, n_actions),
    )
    blocks = [x, ids, sp.csr_matrix(action_matrix)]
    blocks.extend(x.multiply(ids[:, [k]].toarray()) for k in range(n_actions))
    blocks.extend(x.multiply(action_matrix[:, [m]]) for m in range(action_matrix.shape[1]))
    return sp.hstack(blocks, format="csr")
