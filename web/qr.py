"""QR rendering: PNG and SVG of a logbook's scan URL (and of a citizen's personal code)."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M


def _make(url: str) -> qrcode.QRCode:
    # M (15 % recovery) survives a creased or partly dirty poster at an entrance.
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    return qr


def qr_png(url: str) -> bytes:
    out = io.BytesIO()
    _make(url).make_image().save(out, format="PNG")
    return out.getvalue()


def qr_svg(url: str) -> bytes:
    image = _make(url).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode").encode()


def qr_svg_data_url(text: str) -> str:
    """The SVG as a data: URL (an <img> of a code that changes every half minute)."""
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(text)).decode()
