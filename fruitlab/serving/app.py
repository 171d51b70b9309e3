"""An HTTP endpoint for a recorded model: upload an image, get class probabilities by class name.

Bad input is the client's error and is answered 4xx with a message saying what to send: 415 for a file
that is not declared as an image, 400 for one that cannot be decoded or is empty, 413 for one over the
byte or pixel limits, 422 (FastAPI) for a request without a `file` field.
"""

import io
from typing import Annotated

import torch
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image, UnidentifiedImageError

from fruitlab.data.cache import to_rgb_array
from fruitlab.serving.models import RecordedModel

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 4096


def read_image(data: bytes, content_type: str | None, max_bytes: int, max_side: int) -> Image.Image:
    """The uploaded bytes as a decoded PIL image, or an HTTPException saying what is wrong."""
    if content_type and not (content_type.startswith("image/") or content_type == "application/octet-stream"):
        raise HTTPException(415, f"expected an image file (image/jpeg, image/png, ...), got {content_type}")
    if not data:
        raise HTTPException(400, "the uploaded file is empty: send a JPEG or PNG image")
    if len(data) > max_bytes:
        raise HTTPException(413, f"the file is larger than {max_bytes} bytes: send a smaller image")
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if max(width, height) > max_side:
            raise HTTPException(413, f"the image is {width}x{height} pixels; at most {max_side} a side")
        image.load()
    except Image.DecompressionBombError as error:
        raise HTTPException(413, f"the image has too many pixels: {error}") from error
    except UnidentifiedImageError as error:
        raise HTTPException(400, "the file is not an image of a known format: send a JPEG or PNG") from error
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for damaged or truncated images
        raise HTTPException(
            400, f"the image cannot be decoded ({error}): send an intact JPEG or PNG"
        ) from error
    return image


def create_app(recorded: RecordedModel, max_bytes: int = MAX_BYTES, max_side: int = MAX_SIDE) -> FastAPI:
    app = FastAPI(title="fruitlab", description=f"class probabilities from {recorded.uri}")
    _, height, _ = recorded.input_shape

    @app.get("/health")
    def health() -> dict:
        return {
            "status": "ok",
            "model": recorded.uri,
            "classes": recorded.classes,
            "input_shape": recorded.input_shape,
        }

    @app.post("/predict")
    def predict(file: Annotated[UploadFile, File(description="an image file (JPEG, PNG, ...)")]) -> dict:
        image = read_image(file.file.read(max_bytes + 1), file.content_type, max_bytes, max_side)
        pixels = torch.from_numpy(to_rgb_array(image, height).copy()).permute(2, 0, 1).unsqueeze(0)
        with torch.inference_mode():
            probabilities = recorded.module(pixels.float() / 255)[0].tolist()
        ranked = sorted(zip(recorded.classes, probabilities, strict=True), key=lambda pair: -pair[1])
        return {"label": ranked[0][0], "probabilities": dict(ranked)}

    return app
