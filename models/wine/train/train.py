"""Train the wine classifier: the training stage of the example model `wine`.

`mreg train wine` runs it with DVC (`models/wine/train/dvc.yaml`), in the
directory that holds it: it reads `params.yaml` and `data/wine.csv` (13
chemical measurements and the cultivar, 0-2, in the last column) and writes
`out/model.skops` and `out/metrics.json`. `mreg train init` copied it there
from `examples/wine/train.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import skops.io as sio
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

params = yaml.safe_load(Path("params.yaml").read_text())
table = np.loadtxt("data/wine.csv", delimiter=",", skiprows=1)
x, y = table[:, :-1], table[:, -1].astype(int)
x_train, x_test, y_train, y_test = train_test_split(
    x, y, test_size=params["test_size"], random_state=params["seed"], stratify=y
)
model = make_pipeline(
    StandardScaler(),
    LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=params["seed"]),
)
model.fit(x_train, y_train)
out = Path("out")
out.mkdir(exist_ok=True)
sio.dump(model, out / "model.skops")
metrics = {"accuracy": round(float(model.score(x_test, y_test)), 4), "rows": len(y)}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics))
