"""A skops file of trusted types with a crafted node array is refused at load (issue 18, item 4).

The attack: dump a real tree with skops, then edit its node array inside the
archive (root children `1 << 40` read far outside the array and kill the
process; a child pointing at itself loops forever). Loading checks every tree
first, so the crafted file is a 503 for that model only.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import skops.io
from sklearn.datasets import load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.tree import DecisionTreeClassifier

from registry import LoaderError, Registry, load_model
from tests.processes import serving
from tests.server_fixtures import LABELS, SETOSA

pytest_plugins = ["tests.server_fixtures"]

X, Y = load_iris(return_X_y=True)
Edit = Callable[[np.ndarray], None]


def crafted(model: Any, field: str, edit: Edit, path: Path) -> Path:
    """`model` dumped with skops, with `edit` applied to each node array that has `field`."""
    skops.io.dump(model, path)
    with zipfile.ZipFile(path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    edited = 0
    for name, data in entries.items():
        if not name.endswith(".npy"):
            continue
        array = np.load(io.BytesIO(data), allow_pickle=False)
        if array.dtype.names and field in array.dtype.names:
            edit(array)
            out = io.BytesIO()
            np.save(out, array, allow_pickle=False)
            entries[name] = out.getvalue()
            edited += 1
    assert edited, f"no node array with {field!r} in the skops file"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def huge_root_children(nodes: np.ndarray) -> None:
    nodes["left_child"][0] = 1 << 40
    nodes["right_child"][0] = 1 << 40


def root_points_at_itself(nodes: np.ndarray) -> None:
    nodes["left_child"][0] = 0
    nodes["right_child"][0] = 0


def child_points_back(nodes: np.ndarray) -> None:
    inner = np.flatnonzero(nodes["left_child"] != -1)
    nodes["left_child"][inner[-1]] = 0


def feature_out_of_range(nodes: np.ndarray) -> None:
    nodes["feature"][0] = 99


def nan_threshold(nodes: np.ndarray) -> None:
    nodes["threshold"][0] = np.nan


def hist_loop(nodes: np.ndarray) -> None:
    nodes["left"][0] = 0


def hist_far(nodes: np.ndarray) -> None:
    nodes["right"][0] = 4_000_000_000


def hist_feature(nodes: np.ndarray) -> None:
    nodes["feature_idx"][0] = 1 << 40


def tree() -> Any:
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, Y)


def forest() -> Any:
    return RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y)


def boosted() -> Any:
    return GradientBoostingClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, Y)


def hist() -> Any:
    return HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, Y)


CASES = [
    (tree, "left_child", huge_root_children),
    (tree, "left_child", root_points_at_itself),
    (tree, "left_child", child_points_back),
    (tree, "left_child", feature_out_of_range),
    (tree, "left_child", nan_threshold),
    (forest, "left_child", huge_root_children),
    (boosted, "left_child", root_points_at_itself),
    (hist, "is_leaf", hist_loop),
    (hist, "is_leaf", hist_far),
    (hist, "is_leaf", hist_feature),
]


@pytest.mark.parametrize(
    ("build", "field", "edit"), CASES, ids=[f"{b.__name__}-{e.__name__}" for b, _, e in CASES]
)
def test_a_crafted_node_array_is_refused_at_load(
    build: Callable[[], Any], field: str, edit: Edit, tmp_path: Path
) -> None:
    path = crafted(build(), field, edit, tmp_path / "crafted.skops")
    with pytest.raises(LoaderError, match="malformed node array"):
        load_model(path, "skops")


@pytest.mark.parametrize(
    "build",
    [
        tree,
        forest,
        boosted,
        hist,
        lambda: ExtraTreesClassifier(n_estimators=3, random_state=0).fit(X, Y),
    ],
)
def test_real_trees_load_and_predict(build: Callable[[], Any], tmp_path: Path) -> None:
    model = build()
    skops.io.dump(model, tmp_path / "m.skops")
    loaded = load_model(tmp_path / "m.skops", "skops")
    assert loaded.predict([SETOSA]) == model.predict([SETOSA]).tolist()


def test_a_crafted_tree_is_a_503_for_that_model_only(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    reg = Registry.init(tmp_path / "reg")
    reg.register("iris", model_files["skops"], output_info={"labels": LABELS}, create=True)
    for name, edit in (("segfault", huge_root_children), ("loop", root_points_at_itself)):
        path = crafted(tree(), "left_child", edit, tmp_path / f"{name}.skops")
        reg.create_model(name, is_public=True)
        reg.register(name, path)
    tokens = tmp_path / "tokens.json"
    secret = hashlib.sha256(b"secret-admin").hexdigest()
    tokens.write_text(json.dumps([{"name": "admin", "sha256": secret, "scopes": ["admin"]}]))
    auth = {"Authorization": "Bearer secret-admin"}
    with serving(reg.root, "--tokens", str(tokens)) as s:
        for name in ("segfault", "loop"):
            r = httpx.post(f"{s.url}/v1/models/{name}/invoke", json={"data": SETOSA}, timeout=60)
            assert r.status_code == 503, r.text
            assert "malformed node array" in r.json()["error"]["message"]
            assert s.get("/healthz").status_code == 200
        r = httpx.post(
            f"{s.url}/v1/models/iris/invoke", json={"data": SETOSA}, headers=auth, timeout=60
        )
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["label"] == "setosa"
