"""Bounds checks for the node arrays of fitted trees, before a loaded model may predict.

scikit-learn's tree code (`sklearn.tree._tree.Tree`, the histogram-boosting
`TreePredictor`) walks its node arrays in C without bounds checks: a child
index of `1 << 40` reads far outside the array (the process dies), a child
that points back at its parent loops forever. skops marks these types
untrusted for that reason; mreg trusts them (registry.skops_trust) because it
checks every tree here first: children are -1 (a leaf) or in range and point
forward (child > parent, so every walk ends), features index an input
column, thresholds are numbers, and the values match the node count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from registry.errors import LoaderError

_MAX_OBJECTS = 1_000_000  # objects visited in one model (a forest of a few thousand trees)


def check_trees(model: Any, what: str) -> Any:
    """`model`, once every tree inside it is sound; a LoaderError naming `what` otherwise."""
    seen: set[int] = set()
    stack: list[tuple[Any, int | None]] = [(model, None)]
    while stack:
        obj, n_features = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        if len(seen) > _MAX_OBJECTS:
            raise LoaderError(f"{what}: the model holds more than {_MAX_OBJECTS} objects")
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if kind == "sklearn.tree._tree.Tree":
            _check_tree(obj, n_features, what)
            continue
        if kind == "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor":
            _check_predictor(obj, n_features, what)
            continue
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend((item, n_features) for item in obj.ravel())
            continue
        if isinstance(obj, dict):
            stack.extend((item, n_features) for item in obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend((item, n_features) for item in obj)
        elif hasattr(obj, "__dict__"):
            own = getattr(obj, "n_features_in_", None)
            inner = int(own) if isinstance(own, int | np.integer) else n_features
            stack.extend((item, inner) for item in vars(obj).values())
    return model


def _refuse(what: str, tree: str, problem: str) -> LoaderError:
    return LoaderError(
        f"{what}: {tree} has a malformed node array ({problem}): refusing to load it",
        detail={"malformed_tree": problem},
    )


def _check_children(left: np.ndarray, right: np.ndarray, leaf: np.ndarray) -> str | None:
    count = len(left)
    index = np.arange(count)
    inner = ~leaf
    if ((left[leaf] != -1) | (right[leaf] != -1)).any():
        return "a leaf with a child"
    for side in (left, right):
        child = side[inner]
        if ((child <= index[inner]) | (child >= count)).any():
            return "a child index out of range or not after its parent"
    return None


def _check_tree(tree: Any, n_features: int | None, what: str) -> None:
    count = int(tree.node_count)
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    feature = np.asarray(tree.feature, dtype=np.int64)
    threshold = np.asarray(tree.threshold, dtype=np.float64)
    if count < 1 or not len(left) == len(right) == len(feature) == len(threshold) == count:
        raise _refuse(what, "a decision tree", "node arrays of another length than node_count")
    problem = _check_children(left, right, left == -1)
    width = min(int(tree.n_features), n_features if n_features is not None else tree.n_features)
    inner = left != -1
    if problem is None and ((feature[inner] < 0) | (feature[inner] >= width)).any():
        problem = f"a feature index outside 0..{width - 1}"
    if problem is None and not np.isfinite(threshold).all():
        problem = "a threshold that is not a finite number"
    expected = (count, int(tree.n_outputs), int(tree.max_n_classes))
    if problem is None and tuple(np.shape(tree.value)) != expected:
        problem = f"values of shape {np.shape(tree.value)}, not {expected}"
    if problem is not None:
        raise _refuse(what, "a decision tree", problem)


def _check_predictor(predictor: Any, n_features: int | None, what: str) -> None:
    nodes = predictor.nodes
    names = nodes.dtype.names or ()
    if not {"left", "right", "is_leaf", "feature_idx", "num_threshold"} <= set(names):
        raise _refuse(what, "a histogram-boosting tree", "unexpected node fields")
    if len(nodes) < 1:
        raise _refuse(what, "a histogram-boosting tree", "no nodes")
    leaf = nodes["is_leaf"].astype(bool)
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    # A leaf's children are unused (0 in scikit-learn's own trees): only inner nodes matter.
    problem = _check_children(np.where(leaf, -1, left), np.where(leaf, -1, right), leaf)
    feature = nodes["feature_idx"][~leaf]
    if (
        problem is None
        and n_features is not None
        and ((feature < 0) | (feature >= n_features)).any()
    ):
        problem = f"a feature index outside 0..{n_features - 1}"
    # +inf is scikit-learn's own threshold of a split that sends only missing values right.
    if problem is None and np.isnan(nodes["num_threshold"][~leaf]).any():
        problem = "a threshold that is not a number"
    if problem is None and "is_categorical" in names:
        categorical = ~leaf & nodes["is_categorical"].astype(bool)
        bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
        if (nodes["bitset_idx"][categorical] >= bitsets).any():
            problem = "a categorical split without its bitset"
    if problem is not None:
        raise _refuse(what, "a histogram-boosting tree", problem)
