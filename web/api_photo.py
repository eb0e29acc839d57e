"""The photo on a citizen's status card: upload (a retake from the camera or a file) and view.

An upload is checked by decoding it (JPEG, PNG or WebP; a size and pixel cap), turned upright,
shrunk and re-encoded as JPEG — which also drops its EXIF data (location, device). It is kept
under <data dir>/photos/ under a new name each time, so its URL changes with it.
"""

from __future__ import annotations

import io
import os
import secrets
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from models.errors import DomainError, NotFound, ValidationFailed
from models.tables import Citizen
from web.auth import Unauthenticated, require
from web.common import in_session
from web.responses import JSON

MAX_BYTES = 8 * 1024 * 1024  # a phone camera's photo is 2–6 MB
MAX_PIXELS = 40_000_000
FORMATS = {"JPEG", "PNG", "WEBP"}
STORED_SIZE = (720, 960)  # the card shows it at a few hundred pixels
DIR = "photos"
TOO_LARGE = "照片过大（最大 8 MB） / the photo is too large (8 MB at most)"


def photo_url(citizen: Citizen) -> str | None:
    """Where the card's photo is (its stored name in the URL: a new photo, a new URL)."""
    if not citizen.photo_path:
        return None
    return f"/api/me/photo?v={Path(citizen.photo_path).stem}"


def _normalize(data: bytes) -> bytes:
    """The upload as an upright JPEG of at most STORED_SIZE, or ValidationFailed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise ValidationFailed("仅支持 JPEG、PNG、WebP 照片 / a JPEG, PNG or WebP photo")
            if image.width * image.height > MAX_PIXELS:
                raise ValidationFailed("照片像素过多 / the photo has too many pixels")
            image = ImageOps.exif_transpose(image)
            image.thumbnail(STORED_SIZE)
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=85, optimize=True)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationFailed("无法识别的图片 / not a readable image") from None
    return out.getvalue()


def _photos_dir(request: Request) -> Path:
    return request.app.state.settings.data_dir / DIR


async def _read_upload(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BYTES + 64 * 1024:
        raise DomainError(TOO_LARGE, code="payload_too_large")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ValidationFailed("请以 multipart/form-data 上传 photo 字段 / upload the `photo` "
                               "field as multipart/form-data")
    try:
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("photo")
            if not isinstance(upload, UploadFile):
                raise ValidationFailed("缺少照片 / the `photo` file field is required")
            data = await upload.read(MAX_BYTES + 1)
    except (HTTPException, MultiPartException) as exc:  # malformed, too many parts
        raise ValidationFailed(f"表单格式错误 / malformed form: {exc}") from None
    if len(data) > MAX_BYTES:
        raise DomainError(TOO_LARGE, code="payload_too_large")
    if not data:
        raise ValidationFailed("照片为空 / the photo is empty")
    return data


async def upload_photo(request: Request) -> Response:
    """POST /api/me/photo (multipart, field `photo`): a new photo for my card."""
    principal = await require(request, "citizen")
    jpeg = await run_in_threadpool(_normalize, await _read_upload(request))
    folder = _photos_dir(request)
    name = f"{principal.citizen_id}-{secrets.token_hex(6)}.jpg"

    def save(session) -> Citizen:
        citizen = session.get(Citizen, principal.citizen_id)
        if citizen is None:
            raise Unauthenticated("账户不存在 / account not found")
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(jpeg)
        os.replace(temporary, folder / name)
        old = citizen.photo_path
        citizen.photo_path = f"{DIR}/{name}"
        session.add(citizen)
        session.commit()
        if old and Path(old).name != name:
            (folder / Path(old).name).unlink(missing_ok=True)
        return citizen

    citizen = await in_session(request, save)
    return JSON({"photo_url": photo_url(citizen), "bytes": len(jpeg)}, status_code=201)


async def get_photo(request: Request) -> Response:
    """GET /api/me/photo: my card's photo (JPEG); 404 when there is none."""
    principal = await require(request, "citizen")

    def load(session) -> str | None:
        citizen = session.get(Citizen, principal.citizen_id)
        return citizen.photo_path if citizen else None

    stored = await in_session(request, load)
    path = _photos_dir(request) / Path(stored).name if stored else None
    if path is None or not path.is_file():
        raise NotFound("尚未上传照片 / no photo yet")
    # The face on the card, unmasked: kept by no cache (a shared phone or a kiosk would
    # show it to the next person), like every unmasked answer.
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


routes = [
    Route("/api/me/photo", upload_photo, methods=["POST"]),
    Route("/api/me/photo", get_photo, methods=["GET"]),
]
