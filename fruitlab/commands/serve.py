"""`fruitlab serve MODEL`: serve a recorded model over HTTP.

POST /predict with an image file (multipart field `file`) returns {"label", "probabilities"} with the
probability of every class by name; GET /health describes the model. For example:
  curl -F file=@apple.jpg http://127.0.0.1:8000/predict
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fruitlab.commands.common import add_model_argument, command_parser, run_or_exit

if TYPE_CHECKING:
    from fastapi import FastAPI


def parser() -> argparse.ArgumentParser:
    p = command_parser("serve", __doc__)
    add_model_argument(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024, help="largest accepted upload")
    p.add_argument("--max-side", type=int, default=4096, help="largest accepted image width or height")
    return p


def serving_app(model: str, max_bytes: int, max_side: int, tracking_uri: str | None = None) -> FastAPI:
    from fruitlab.serving.app import create_app
    from fruitlab.serving.models import load_recorded_model
    from fruitlab.tracking.store import use_store

    use_store(tracking_uri)
    return create_app(load_recorded_model(model), max_bytes, max_side)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    app = run_or_exit(lambda: serving_app(args.model, args.max_bytes, args.max_side, args.tracking_uri), args.verbose)
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port)
