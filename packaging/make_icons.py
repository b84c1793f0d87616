"""Draw the app icon and write it into ``resources/icons/hicolor`` (PNG at every XDG size, plus a scalable SVG).

The icon is drawn with QPainter from one description, so the PNGs and the SVG always show the same picture:
a rounded square in an indigo-to-teal gradient holding a white speech bubble with three "thinking" dots.
Small sizes (≤ 24 px) use a simpler, bolder layout so the dots stay visible.

    python packaging/make_icons.py          # rewrite the committed icons
    python packaging/make_icons.py --check  # exit 1 if the committed PNGs differ from a fresh drawing

Run it with ``QT_QPA_PLATFORM=offscreen`` where there is no display.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QImage, QLinearGradient, QPainter, QPainterPath
from PySide6.QtSvg import QSvgGenerator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpt_oss_desktop.app.desktop.desktop_entry import APP_ID, ICON_SIZES, bundled_icon_dir  # noqa: E402


@dataclass(frozen=True, slots=True)
class Layout:
    """Proportions of the drawing, as fractions of the icon's side."""

    margin: float  # empty border around the rounded square
    corner: float  # corner radius of the square
    bubble: tuple[float, float, float, float]  # left, top, right, bottom of the speech bubble
    bubble_corner: float
    dot_radius: float
    dot_gap: float  # centre-to-centre distance of the dots


# Freedesktop icons leave a small border at large sizes; tiny ones use every pixel.
LARGE = Layout(0.06, 0.2, (0.2, 0.22, 0.8, 0.66), 0.1, 0.05, 0.15)
SMALL = Layout(0.0, 0.18, (0.12, 0.16, 0.88, 0.7), 0.12, 0.085, 0.24)


def draw(painter: QPainter, side: float, layout: Layout) -> None:
    """Paint the icon into the square ``(0, 0, side, side)``."""
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    m = layout.margin * side
    square = QRectF(m, m, side - 2 * m, side - 2 * m)
    gradient = QLinearGradient(square.topLeft(), square.bottomRight())
    gradient.setColorAt(0.0, QColor("#33418f"))
    gradient.setColorAt(1.0, QColor("#0f8a83"))
    painter.setBrush(QBrush(gradient))
    radius = layout.corner * side
    painter.drawRoundedRect(square, radius, radius)

    left, top, right, bottom = (v * side for v in layout.bubble)
    bubble = QPainterPath()
    corner = layout.bubble_corner * side
    bubble.addRoundedRect(QRectF(left, top, right - left, bottom - top), corner, corner)
    # The tail: a triangle under the bubble's lower-left part, pointing down-left like a speaker's mark.
    tail = QPainterPath()
    width = right - left
    tail.moveTo(left + 0.18 * width, bottom - corner)
    tail.lineTo(left + 0.1 * width, bottom + 0.16 * side)
    tail.lineTo(left + 0.42 * width, bottom - corner)
    tail.closeSubpath()
    painter.setBrush(QColor("#ffffff"))
    painter.drawPath(bubble.united(tail))

    painter.setBrush(QColor("#2a3570"))
    centre = QPointF((left + right) / 2, (top + bottom) / 2)
    r = layout.dot_radius * side
    for step in (-1, 0, 1):
        painter.drawEllipse(QPointF(centre.x() + step * layout.dot_gap * side, centre.y()), r, r)


def render_png(size: int) -> bytes:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    draw(painter, float(size), SMALL if size <= 24 else LARGE)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"could not encode the {size} px icon")
    buffer.close()
    return bytes(data.data())


def render_svg(path: Path) -> None:
    side = 512
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(side, side))
    generator.setViewBox(QRectF(0, 0, side, side))
    generator.setTitle("gpt-oss desktop")
    generator.setDescription("Application icon of gpt-oss desktop (drawn by packaging/make_icons.py)")
    painter = QPainter(generator)
    draw(painter, float(side), LARGE)
    painter.end()


def png_path(size: int) -> Path:
    return bundled_icon_dir() / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def svg_path() -> Path:
    return bundled_icon_dir() / "scalable" / "apps" / f"{APP_ID}.svg"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed PNGs instead of writing")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    stale = []
    for size in ICON_SIZES:
        png = render_png(size)
        target = png_path(size)
        if args.check:
            if not target.is_file() or target.read_bytes() != png:
                stale.append(str(target))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
    if args.check:
        if stale:
            sys.stderr.write("out of date: " + ", ".join(stale) + "\n")
            return 1
        return 0
    svg_path().parent.mkdir(parents=True, exist_ok=True)
    render_svg(svg_path())
    sys.stdout.write(f"wrote {len(ICON_SIZES)} PNGs and {svg_path()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
