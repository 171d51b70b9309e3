"""An HTTP endpoint for a recorded model: upload an image (or send pixels as JSON), get class probabilities by
class name.

Bad input is the client's error and is answered 4xx with a message saying what to send: 415 for a file
that is not declared as an image, 400 for one that cannot be decoded or is empty, 413 for one over the
byte or pixel limits, 422 for a request without a `file` field or pixels of the wrong shape or not finite.

Fit for a shared network (`Guard`, around every route, the docs included): with a token set, a request without
`Authorization: Bearer <token>` is answered 401; a request must declare its length, and one longer than the
limit is answered 413 before its body is read (411 without a length); beyond `max_concurrent` requests in
progress, 503. The pixel limit is checked on the image's header, before it is decoded.
"""

import hmac
import io
import math
from dataclasses import dataclass
from typing import Annotated

import torch
from fastapi import Body, FastAPI, File, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from starlette.types import ASGIApp, Receive, Scope, Send

from fruitlab.data.cache import to_rgb_array
from fruitlab.serving.recorded import ServedModel

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 4096
MAX_CONCURRENT = 4
FORM_OVERHEAD = 16 * 1024  # a multipart form's boundaries and headers around the file
MAX_BATCH = 64  # images in one JSON request


@dataclass(frozen=True)
class Limits:
    """What one server accepts: the memory it needs is about `max_concurrent` x (`max_bytes` + a decoded image
    of `max_side`^2 pixels) above the model's."""

    max_bytes: int = MAX_BYTES
    max_side: int = MAX_SIDE
    max_concurrent: int = MAX_CONCURRENT
    token: str | None = None


class Guard:
    """ASGI middleware: the bearer token, the declared body length and the bound on requests in progress."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.in_progress = 0  # changed only on the event loop's thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refusal(dict(scope["headers"]))
        if refusal is not None:
            return await refusal(scope, receive, send)
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1

    def refusal(self, headers: dict[bytes, bytes]) -> JSONResponse | None:
        token = self.limits.token
        if token and not hmac.compare_digest(headers.get(b"authorization", b""), f"Bearer {token}".encode()):
            return JSONResponse(
                {"detail": "send the server's token as Authorization: Bearer <token>"},
                401,
                {"WWW-Authenticate": "Bearer"},
            )
        if self.in_progress >= self.limits.max_concurrent:
            return JSONResponse({"detail": "the server is busy: try again shortly"}, 503, {"Retry-After": "1"})
        if b"transfer-encoding" in headers:
            return JSONResponse({"detail": "send the body with a Content-Length, not chunked"}, 411)
        length = headers.get(b"content-length", b"0")
        if not length.isdigit():
            return JSONResponse({"detail": "the Content-Length is not a number"}, 400)
        if int(length) > self.limits.max_bytes + FORM_OVERHEAD:
            return JSONResponse(
                {"detail": f"the upload is larger than {self.limits.max_bytes} bytes: send a smaller image"}, 413
            )
        return None


def read_image(data: bytes, content_type: str | None, max_bytes: int, max_side: int) -> Image.Image:
    """The uploaded bytes as a decoded PIL image, or an HTTPException saying what is wrong."""
    if content_type and not (content_type.startswith("image/") or content_type == "application/octet-stream"):
        raise HTTPException(415, f"expected an image file (image/jpeg, image/png, ...), got {content_type}")
    if not data:
        raise HTTPException(400, "the uploaded file is empty: send a JPEG or PNG image")
    if len(data) > max_bytes:
        raise HTTPException(413, f"the file is larger than {max_bytes} bytes: send a smaller image")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only: the size is known before decoding
        width, height = image.size
        if max(width, height) > max_side:
            raise HTTPException(413, f"the image is {width}x{height} pixels; at most {max_side} a side")
        image.load()
    except Image.DecompressionBombError as error:
        raise HTTPException(413, f"the image has too many pixels: {error}") from error
    except UnidentifiedImageError as error:
        raise HTTPException(400, "the file is not an image of a known format: send a JPEG or PNG") from error
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for damaged or truncated images
        raise HTTPException(400, f"the image cannot be decoded ({error}): send an intact JPEG or PNG") from error
    return image


def checked_pixels(inputs: object, input_shape: tuple[int, ...]) -> torch.Tensor:
    """JSON pixels as an (N, C, H, W) float tensor, or an HTTPException naming what is wrong with them."""
    try:
        pixels = torch.tensor(inputs, dtype=torch.float32)
    except (TypeError, ValueError) as error:
        raise HTTPException(422, f"inputs must be nested lists of numbers ({error})") from error
    if pixels.dim() == len(input_shape):
        pixels = pixels.unsqueeze(0)
    if tuple(pixels.shape[1:]) != tuple(input_shape) or not 1 <= len(pixels) <= MAX_BATCH:
        raise HTTPException(
            422,
            f"inputs have shape {tuple(pixels.shape)}; send (N, {', '.join(map(str, input_shape))}), N <= {MAX_BATCH}",
        )
    if not torch.isfinite(pixels).all():
        raise HTTPException(422, "inputs contain NaN or infinite values: send pixels in [0, 1]")
    return pixels


def create_app(recorded: ServedModel, limits: Limits | None = None) -> FastAPI:
    limits = limits or Limits()
    app = FastAPI(title="fruitlab", description=f"class probabilities from {recorded.uri}")
    app.add_middleware(Guard, limits=limits)
    _, height, _ = recorded.input_shape

    def answer(pixels: torch.Tensor) -> list[dict]:
        with torch.inference_mode():
            probabilities = recorded.predict(pixels).tolist()
        if not all(math.isfinite(p) for row in probabilities for p in row):
            raise HTTPException(500, "the model gave non-finite probabilities for these inputs")
        ranked = [sorted(zip(recorded.classes, row, strict=True), key=lambda pair: -pair[1]) for row in probabilities]
        return [{"label": pairs[0][0], "probabilities": dict(pairs)} for pairs in ranked]

    @app.get("/health")
    def health() -> dict:
        return {
            "status": "ok",
            "model": recorded.uri,
            "runtime": recorded.runtime,
            "classes": recorded.classes,
            "input_shape": recorded.input_shape,
        }

    @app.post("/predict")
    def predict(file: Annotated[UploadFile, File(description="an image file (JPEG, PNG, ...)")]) -> dict:
        image = read_image(file.file.read(limits.max_bytes + 1), file.content_type, limits.max_bytes, limits.max_side)
        pixels = torch.from_numpy(to_rgb_array(image, height).copy()).permute(2, 0, 1).unsqueeze(0)
        return answer(pixels.float() / 255)[0]

    @app.post("/predict/pixels")
    def predict_pixels(inputs: Annotated[list, Body(embed=True, description="(N, C, H, W) or (C, H, W) in [0, 1]")]):
        return {"predictions": answer(checked_pixels(inputs, recorded.input_shape))}

    return app
