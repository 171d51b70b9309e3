"""`fruitlab serve MODEL`: serve a recorded model over HTTP, run by PyTorch (default) or by ONNX Runtime.

POST /predict with an image file (multipart field `file`) returns {"label", "probabilities"} with the
probability of every class by name; POST /predict/pixels takes {"inputs": [[[...]]]} (pixels in [0, 1]);
GET /health describes the model. For example:
  curl -H "Authorization: Bearer $FRUITLAB_SERVE_TOKEN" -F file=@apple.jpg http://127.0.0.1:8000/predict

--runtime onnxruntime serves an ONNX model (the int8 model of `fruitlab quantize`) as it is, and a PyTorch model
as its ONNX export, made at start-up; the routes, answers, token and limits are the same.

With a token (--token or $FRUITLAB_SERVE_TOKEN) every request needs it, the docs included. Listening on an
address other than loopback needs a token, or --insecure to accept that anyone who reaches the port uses it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from typing import TYPE_CHECKING

from fruitlab.commands.common import add_model_argument, command_parser, run_or_exit
from fruitlab.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fruitlab.serving.app import Limits

TOKEN_ENV = "FRUITLAB_SERVE_TOKEN"


def parser() -> argparse.ArgumentParser:
    p = command_parser("serve", __doc__)
    add_model_argument(p)
    p.add_argument(
        "--runtime",
        default="torch",
        help="torch (default): the logged PyTorch model; onnxruntime: its ONNX form, or a logged ONNX model",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024, help="largest accepted upload")
    p.add_argument("--max-side", type=int, default=4096, help="largest accepted image width or height")
    p.add_argument("--max-concurrent", type=int, default=4, help="requests in progress at once; more get 503")
    p.add_argument(
        "--token", default=os.environ.get(TOKEN_ENV), help=f"bearer token every request needs (${TOKEN_ENV})"
    )
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without a token")
    return p


def check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to serve without a token on an address others can reach, unless the user said so."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not (loopback or token or insecure):
        raise ConfigError(
            f"--host {host} lets other machines use the model without a token; give --token (or set {TOKEN_ENV}), "
            "or pass --insecure if that is intended."
        )


def check_limits(limits: Limits) -> None:
    for name in ("max_bytes", "max_side", "max_concurrent"):
        value = getattr(limits, name)
        if value < 1:
            raise ConfigError(f"--{name.replace('_', '-')}={value} is not allowed: give a whole number >= 1.")


def serving_app(
    model: str,
    limits: Limits,
    tracking_uri: str | None = None,
    allow_pickle: bool | None = None,
    runtime: str = "torch",
) -> FastAPI:
    from fruitlab.serving.app import create_app
    from fruitlab.serving.recorded import load_served_model
    from fruitlab.tracking.store import Store

    check_limits(limits)
    return create_app(load_served_model(Store.open(tracking_uri), model, runtime, allow_pickle), limits)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)

    def app() -> FastAPI:
        from fruitlab.serving.app import Limits

        check_exposure(args.host, args.token, args.insecure)
        limits = Limits(args.max_bytes, args.max_side, args.max_concurrent, args.token or None)
        return serving_app(args.model, limits, args.tracking_uri, args.allow_pickle or None, args.runtime)

    served = run_or_exit(app, args.verbose)
    import uvicorn

    uvicorn.run(served, host=args.host, port=args.port)
