"""The floor for this stack: a hand-written Litestar endpoint that calls the model's predict.

No registry, routing by ref, auth, usage recording or metrics: one route,
one loaded model, uvicorn with one worker and no access log.

    python -m bench.minimal_app --model model.skops --port 8101
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from litestar import Litestar, get, post


def load_model(path: Path) -> Any:
    if path.suffix == ".skops":
        import skops.io

        return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    with path.open("rb") as f:
        return pickle.load(f)


def create_app(model: Any) -> Litestar:
    @post("/invoke", status_code=200)
    async def invoke(data: dict[str, Any]) -> dict[str, Any]:
        rows = data["inputs"] if "inputs" in data else [data["data"]]
        return {"outputs": model.predict(np.asarray(rows, dtype=float)).tolist()}

    @get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return Litestar([invoke, readyz], openapi_config=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    app = create_app(load_model(args.model))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
