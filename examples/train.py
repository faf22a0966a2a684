"""Train the example models on data that ships with scikit-learn (no download).

Each function trains one model deterministically (fixed seeds) and writes its
artifact into `out_dir`; it returns what `Registry.register` needs besides the
file. `build_registry.py` registers them through mreg.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_diabetes, load_digits, load_iris, load_wine
from sklearn.model_selection import train_test_split

SEED = 0
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_LABELS = ["setosa", "versicolor", "virginica"]


def _split(x: Any, y: Any) -> tuple[Any, Any, Any, Any]:
    return train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)  # type: ignore[no-any-return]


def iris(out_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """A scikit-learn classifier on iris, saved with skops."""
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = _split(x, y)
    if params["estimator"] == "random_forest":
        model: Any = RandomForestClassifier(
            n_estimators=params["n_estimators"], max_depth=params["max_depth"], random_state=SEED
        )
    else:
        model = LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=SEED)
    model.fit(x_train, y_train)
    path = out_dir / "model.skops"
    sio.dump(model, path)
    return {
        "path": path,
        "metrics": {"accuracy": round(float(model.score(x_test, y_test)), 4)},
        "input_info": {
            "feature_names": IRIS_FEATURES,
            "schema": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        },
        "output_info": {"labels": IRIS_LABELS},
    }


def diabetes(out_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """A scikit-learn ridge regression on the diabetes data, saved with joblib."""
    import joblib
    from sklearn.linear_model import Ridge

    data = load_diabetes()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=SEED
    )
    model = Ridge(alpha=params["alpha"]).fit(x_train, y_train)
    path = out_dir / "model.joblib"
    joblib.dump(model, path)
    return {
        "path": path,
        "metrics": {"r2": round(float(model.score(x_test, y_test)), 4)},
        "input_info": {
            "feature_names": list(data.feature_names),
            "schema": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 10,
                "maxItems": 10,
            },
        },
        "output_info": {"target": "disease progression one year after baseline"},
    }


def digits_onnx(out_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """A logistic regression on the 8x8 digits, converted to ONNX with skl2onnx."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    x_train, x_test, y_train, y_test = _split(x, y)
    model = LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=SEED)
    model.fit(x_train, y_train)
    onx = to_onnx(model, x_train[:1], options={id(model): {"zipmap": False}})
    path = out_dir / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    return {
        "path": path,
        "metrics": {"accuracy": round(float(model.score(x_test, y_test)), 4)},
        "input_info": {
            "schema": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 64,
                "maxItems": 64,
            },
            "description": "8x8 grey levels 0-16, row by row",
        },
        "output_info": {"labels": [str(d) for d in range(10)]},
    }


def digits_torch(out_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """A small PyTorch MLP on the digits, saved as TorchScript."""
    import torch

    torch.manual_seed(SEED)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = _split(x, y)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, params["hidden"]),
        torch.nn.ReLU(),
        torch.nn.Linear(params["hidden"], 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=params["lr"])
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for _ in range(params["epochs"]):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
    path = out_dir / "model.pt"
    torch.jit.save(torch.jit.trace(net, xt[:1]), str(path))
    return {
        "path": path,
        "metrics": {"accuracy": round(float(acc), 4)},
        "input_info": {
            "schema": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 64,
                "maxItems": 64,
            },
            "description": "8x8 grey levels scaled to 0-1, row by row",
        },
        "output_info": {"labels": [str(d) for d in range(10)], "output": "logits"},
    }


def wine_csv(path: Path, rows: slice = slice(None)) -> Path:
    """scikit-learn's wine data as the CSV the `wine` model trains on (features, then cultivar)."""
    data = load_wine()
    table = np.column_stack([data.data, data.target])[rows]
    header = ",".join([*data.feature_names, "cultivar"])
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%g")
    return path


TRAINERS = {
    "iris": iris,
    "diabetes": diabetes,
    "digits-onnx": digits_onnx,
    "digits-torch": digits_torch,
}


def main(argv: list[str] | None = None) -> None:
    """Train one example model into a directory: the artifact plus its input/output info files.

    python examples/train.py iris --out /tmp/iris-v4 --param estimator=logistic_regression \\
        --param C=10 --param max_iter=500
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model", choices=sorted(TRAINERS))
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    parser.add_argument("--param", action="append", default=[], help="KEY=VALUE (JSON value)")
    args = parser.parse_args(argv)
    params: dict[str, Any] = {}
    for pair in args.param:
        key, _, value = pair.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    args.out.mkdir(parents=True, exist_ok=True)
    out = TRAINERS[args.model](args.out, params)
    (args.out / "input_info.json").write_text(json.dumps(out["input_info"], indent=2))
    (args.out / "output_info.json").write_text(json.dumps(out["output_info"], indent=2))
    print(json.dumps({"artifact": str(out["path"]), "metrics": out["metrics"]}))


if __name__ == "__main__":
    main()
