"""A small but real registry built through the public API, shared by core, CLI and server tests.

Layout (HEAD of branch main):

- iris (sklearn, public, labels team=ml): v1, v2, v3 trained skops models of
  LogisticRegression on the iris data set, with output labels; pointers
  prod -> v2, staging -> v3, champion -> prod. The git tag `release-1` is the
  commit after v2 and prod were registered (prod -> v2, no v3 yet).
- churn (sklearn, private): v1 a trained DecisionTree (joblib), v2 untrained.
- legacy: one trained version, then archived.

The default DVC remote is the registry's local `.dvc/storage`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

IRIS_LABELS = ["setosa", "versicolor", "virginica"]


@dataclass
class Showcase:
    root: Path
    ids: dict[str, str] = field(default_factory=dict)
    """`model:v<n>` -> version id."""
    release: str = "release-1"

    @property
    def storage(self) -> Path:
        return self.root / ".dvc" / "storage"

    def registry(self):  # type: ignore[no-untyped-def]
        from registry import Registry

        return Registry(self.root)


def build_showcase(root: Path) -> Showcase:
    import joblib
    import skops.io
    from sklearn.datasets import load_iris, make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from registry import Registry

    src = root.parent / f"{root.name}-artifacts"
    src.mkdir(parents=True, exist_ok=True)
    from tests.conftest import ALL_FORMATS

    reg = Registry.init(root, trusted_formats=ALL_FORMATS)
    show = Showcase(root)

    x, y = load_iris(return_X_y=True)
    reg.create_model(
        "iris",
        library="sklearn",
        description="Iris species classifier",
        project="demo",
        task="classification",
        is_public=True,
        labels={"team": "ml"},
    )
    for n, (c, acc) in enumerate([(0.05, 0.9), (1.0, 0.96), (10.0, 0.97)], start=1):
        path = src / f"iris-{n}" / "model.skops"
        path.parent.mkdir(exist_ok=True)
        skops.io.dump(LogisticRegression(C=c, max_iter=500).fit(x, y), path)
        point = {2: ["prod"], 3: ["staging"]}.get(n, [])
        result = reg.register(
            "iris",
            path,
            description=f"logistic regression C={c}",
            metrics={"accuracy": acc},
            params={"C": c},
            input_info={"features": ["sepal_length", "sepal_width", "petal_length", "petal_width"]},
            output_info={"labels": IRIS_LABELS},
            point=point,
        )
        show.ids[f"iris:v{n}"] = result.value.id
        if n == 2:
            subprocess.run(
                ["git", "tag", "-a", "-m", "first release", show.release],
                cwd=root,
                check=True,
                capture_output=True,
            )
    reg.point("iris:champion", "prod", description="alias of prod")

    xc, yc = make_classification(n_samples=200, n_features=4, random_state=0)
    reg.create_model("churn", library="sklearn", description="Customer churn", project="crm")
    path = src / "churn.joblib"
    joblib.dump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(xc, yc), path)
    show.ids["churn:v1"] = reg.register("churn", path, metrics={"f1": 0.8}).value.id
    show.ids["churn:v2"] = reg.register("churn", untrained=True, description="retrain").value.id

    path = src / "legacy.skops"
    skops.io.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    show.ids["legacy:v1"] = reg.register("legacy", path, create=True).value.id
    reg.archive_model("legacy")
    return show


def copy_showcase(template: Showcase, dest: Path) -> Showcase:
    """A private copy of a built showcase (with its own DVC storage), much faster than building."""
    shutil.copytree(template.root, dest, symlinks=True)
    # The committed remote URL names the template's storage: point this copy at its own.
    (dest / ".dvc" / "config.local").write_text(
        f"['remote \"storage\"']\n    url = {dest / '.dvc' / 'storage'}\n"
    )
    return Showcase(dest, dict(template.ids), template.release)


def default_trust(root: Path) -> None:
    """Commit registry.yaml without `trusted_formats`, so the default policy applies (skops, onnx,
    keras, h5: the showcase's joblib and pickle versions become untrusted)."""
    import re

    settings = root / "registry.yaml"
    text = re.sub(r"(?m)^trusted_formats:.*\n(?:[ -].*\n)*", "", settings.read_text())
    settings.write_text(text)
    subprocess.run(
        ["git", "commit", "-qam", "registry: the default trusted formats"], cwd=root, check=True
    )
