"""A folder of images (Pillow: PNG, JPEG, BMP, GIF, TIFF, WebP), one sub-folder per class; the class names
are the sorted sub-folder names. A folder holding images and no sub-folders is an unlabelled pool, whose
classes `data.class_names` names.

    data:
      source: data/my_images        # data/my_images/<class>/<image>.png
      image_size: [28, 28]          # optional: resize every image (height, width); else all must match

Grey images become [n, 1, H, W]; if any image has colour, all become RGB [n, 3, H, W]. Values stay raw
(0..255): the student normalises inside its graph, so the ONNX model takes what the folder holds.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ckd.data.sources import FOLDER, SOURCES, Dataset
from ckd.errors import CkdError, ClassNamesNeeded

if TYPE_CHECKING:
    from ckd.config import DataConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_BYTES = 8 << 30  # the float32 array of every image is held in memory
# One image's pixels, refused from its header before it is decoded: a 20000x20000 PNG of a few KB would take
# 1.6 GB as float32 (and Pillow's own guard only warns below 2 x 89 Mpx). data.image_size is at most 4096 a side.
MAX_PIXELS = 8192 * 8192
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _pixels(error: Exception) -> str:
    """'W x H pixels' from our refusal, or 'N pixels' from Pillow's own (raised on opening, above 178 Mpx)."""
    found = re.search(r"\d+x\d+ pixels|\d+ pixels", str(error))
    return found.group(0) if found else str(error)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@SOURCES.register(FOLDER)
def load_image_folder(source: str, options: DataConfig) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    root = Path(source)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes:
        loose = _images(root)
        if loose:
            raise CkdError(
                f"{root}: {len(loose)} image(s) ({loose[0].name}, ...) lie beside the class folders; move each "
                "into its class folder (an image outside one has no label)"
            )
        files = [(path, k) for k, name in enumerate(classes) for path in _images(root / name)]
        empty = [name for name in classes if not _images(root / name)]
        if empty:
            raise CkdError(
                f"{root}: class folder(s) {', '.join(empty[:5])} hold no image ({', '.join(IMAGE_SUFFIXES)})"
            )
        class_names: tuple[str, ...] | None = tuple(classes)
    else:
        files = [(path, -1) for path in _images(root)]
        class_names = options.class_names
        if class_names is None and files:
            raise ClassNamesNeeded(
                f"{root}: images without class sub-folders are an unlabelled pool; data.class_names must name "
                "the classes the teacher answers"
            )
    if len(files) < 2:
        raise CkdError(f"{root}: needs at least 2 images ({', '.join(IMAGE_SUFFIXES)}), found {len(files)}")
    pictures = []
    for path, _ in files:
        try:
            with warnings.catch_warnings():  # Pillow's warning above 89 Mpx: the size is checked here instead
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(path)  # reads the header only: the size is known before decoding
            with image:
                if image.width * image.height > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{image.width}x{image.height} pixels")
                image.load()
                picture = image.copy()
        except Image.DecompressionBombError as error:  # ours, or Pillow's own above 2 x its limit
            raise CkdError(
                f"{path}: an image of {_pixels(error)} is over the limit of {MAX_PIXELS} pixels (a decompression "
                "bomb?); shrink it before training a small student on it"
            ) from None
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise CkdError(f"{path}: not a readable image ({str(error).splitlines()[0][:120]})") from None
        pictures.append(picture)
    colour = any(p.mode not in GREY_MODES for p in pictures)
    arrays = []
    first = None
    for (path, _), picture in zip(files, pictures, strict=True):
        picture = picture.convert("RGB" if colour else "F")
        if options.image_size is not None:  # (height, width)
            picture = picture.resize(options.image_size[::-1], Image.Resampling.BILINEAR)
        array = np.asarray(picture, dtype=np.float32)
        if first is None:
            first = (path, array.shape)
            if len(files) * array.size * 4 > MAX_BYTES:
                raise CkdError(
                    f"{root}: {len(files)} images of {array.shape} need over {MAX_BYTES >> 30} GiB; "
                    "set data.image_size smaller"
                )
        elif array.shape != first[1]:
            raise CkdError(
                f"{path}: size {array.shape[1]}x{array.shape[0]} differs from {first[0].name}'s "
                f"{first[1][1]}x{first[1][0]}; set data.image_size: [height, width] to resize them all"
            )
        arrays.append(array.transpose(2, 0, 1) if colour else array[None])
    x = np.stack(arrays)
    y = np.asarray([k for _, k in files], dtype=np.int64) if classes else None
    assert class_names is not None
    return Dataset(x, y, class_names, is_image=True)
