"""`python -m fruitlab.serve MODEL`: serve a recorded model over HTTP.

POST /predict with an image file (multipart field `file`) returns {"label", "probabilities"} with the
probability of every class by name; GET /health describes the model. For example:
  curl -F file=@apple.jpg http://127.0.0.1:8000/predict
"""

import argparse
import sys

from fruitlab.cli import report_error
from fruitlab.errors import FruitlabError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fruitlab.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", help="run id, runs:/<run_id>/model or models:/<name>@<alias> (or /<version>)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024, help="largest accepted upload")
    parser.add_argument("--max-side", type=int, default=4096, help="largest accepted image width or height")
    parser.add_argument(
        "--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)"
    )
    parser.add_argument("--verbose", action="store_true", help="full tracebacks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvicorn

        from fruitlab.serving.app import create_app
        from fruitlab.serving.models import load_recorded_model, use_store

        use_store(args.tracking_uri)
        app = create_app(load_recorded_model(args.model), args.max_bytes, args.max_side)
    except FruitlabError as error:
        report_error(error, args.verbose)
        sys.exit(2)
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
