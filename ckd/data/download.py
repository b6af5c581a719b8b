"""`download`: the data file a params file names, fetched from its public source with a pinned SHA-256.

`data.download: {url, sha256, path (default data.source)}`. Mirror folders are looked in first, by file name:
`$CKD_DATA_MIRROR` (several joined by `:`), then `data.mirror`; a file there or already at `path` is used only
with the pinned SHA-256. Without `data.download` the stage only says so. Every failure is one line naming the
file and how to get it. A file of other bytes is refused, never replaced: a run on another data set would
report numbers for something else. `KNOWN`: the public data sets of bench/ and examples/ (`fetch_known`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from ckd.data.arrays import replacing
from ckd.errors import CkdError
from ckd.schema import Section

MIRROR_ENV = "CKD_DATA_MIRROR"
TIMEOUT_S = 60.0  # per read of the connection, not for the whole file
MAX_BYTES = 2 * 1024**3  # a data file larger than this is not what the params pinned (a wrong URL)
_CHUNK = 1 << 20


class DownloadConfig(Section):
    """`data.download`: a file's public source (http/https), its SHA-256, and where it lands."""

    url: str = Field(min_length=1)
    sha256: str
    path: str | None = Field(None, min_length=1)  # null: data.source

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/]+/\S*$", url):
            raise ValueError("must be an http:// or https:// URL of the file")
        return url

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, digest: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise ValueError("must be the file's SHA-256, 64 hexadecimal digits (sha256sum FILE)")
        return digest.lower()


@dataclass(frozen=True)
class Remote:
    """A public data set: where it comes from and the SHA-256 of the copy the project's numbers were made on."""

    url: str
    sha256: str
    note: str = ""


# The data sets of examples/ and bench/ (../shared/data/README.md). The checksums are of the copies under
# ../shared/data; where a copy was converted from the original, `note` says how: the bytes at `url` differ,
# and `fetch_known` refuses them with the checksum it saw, so nobody benchmarks on a silently different file.
KNOWN: dict[str, Remote] = {
    "ag_news_test.csv": Remote(
        "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv",
        "72b844642f92fb74fe397f0d1dd8a46d4cfd6fff60bc5c1a214fe40c44708fd7",
        "Zhang et al.'s test.csv is headerless and fully quoted; the pinned copy has the header "
        "label,title,description and minimal quoting (same 7600 rows)",
    ),
    "pendigits_train.csv": Remote(
        "https://archive.ics.uci.edu/ml/machine-learning-databases/pendigits/pendigits.tra",
        "33de31b4c423463e6767b4ffe05c4ad97fdc5e315c7303769596307cb55b2c8d",
        "UCI's pendigits.tra has no header; the pinned copy adds f1..f16,label",
    ),
    "pendigits_test.csv": Remote(
        "https://archive.ics.uci.edu/ml/machine-learning-databases/pendigits/pendigits.tes",
        "6eb93c5b51dbb86ec713c318ec110e4fe2f8d0d64f463677c4ac581d8bcb14d5",
        "UCI's pendigits.tes has no header; the pinned copy adds f1..f16,label",
    ),
}


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def mirrors(configured: str | None = None) -> list[Path]:
    """The mirror folders, in the order they are looked in: $CKD_DATA_MIRROR's, then `data.mirror`."""
    return [Path(p) for p in [*os.environ.get(MIRROR_ENV, "").split(os.pathsep), configured or ""] if p]


def _fetch(url: str, target: Path, sha256: str, how: str) -> None:
    """Stream `url` into a temporary file beside `target`, hashing as it comes; kept only when it matches."""
    digest = hashlib.sha256()
    size = 0
    with replacing(target, ".part", readable=True) as (handle, partial):
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 (http/https only)
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        size += len(block)
                        if size > MAX_BYTES:
                            raise CkdError(f"{url}: more than {MAX_BYTES} bytes, not the pinned file; {how}")
                        digest.update(block)
                        out.write(block)
            except (urllib.error.URLError, OSError, ValueError) as error:
                reason = getattr(error, "reason", None) or error
                raise CkdError(f"{target.name}: could not fetch {url} ({reason}); {how}") from None
        if digest.hexdigest() != sha256:
            raise CkdError(
                f"{target.name}: {url} sent {size} bytes with SHA-256 {digest.hexdigest()}, not the pinned "
                f"{sha256} (data.download.sha256); the file at the source changed, or the pin is wrong: check it, "
                f"then {how}"
            )


def fetch(url: str, sha256: str, target: str | Path, mirror: str | None = None) -> dict[str, Any]:
    """Make `target` hold the file whose SHA-256 is `sha256`: already there, copied from a mirror folder
    (looked up by file name), or downloaded from `url`. Returns a record of where it came from."""
    target = Path(target)
    how = f"download {url} to {target} by hand, or set {MIRROR_ENV} (or data.mirror) to a folder holding {target.name}"
    if target.exists():
        found = sha256_of(target)
        if found != sha256:
            raise CkdError(
                f"{target}: exists with SHA-256 {found}, not the pinned {sha256} (data.download.sha256); "
                "it is left as it is: move it away to download the pinned file, or pin this one"
            )
        return {"path": str(target), "sha256": sha256, "from": "present"}
    candidate = next((folder / target.name for folder in mirrors(mirror) if (folder / target.name).is_file()), None)
    if candidate is not None:
        found = sha256_of(candidate)
        if found != sha256:
            raise CkdError(
                f"{candidate}: the mirror's copy has SHA-256 {found}, not the pinned {sha256} "
                f"(data.download.sha256); replace it with the pinned file, or {how}"
            )
        # a checked copy: a mirror on a flaky disk must not half-write
        with replacing(target, ".part", readable=True) as (handle, partial):
            os.close(handle)
            shutil.copyfile(candidate, partial)
            if sha256_of(partial) != sha256:
                raise CkdError(f"{candidate}: the copy to {target} does not match its SHA-256; copy it again")
        return {"path": str(target), "sha256": sha256, "from": f"mirror {candidate.parent}"}
    _fetch(url, target, sha256, how)
    return {"path": str(target), "sha256": sha256, "from": url}


def known_source_hint(path: str | Path) -> str:
    """For a missing file named as a `KNOWN` data set, where it comes from (to append to the one-line error);
    '' for any other name."""
    name = Path(path).name
    remote = KNOWN.get(name)
    if remote is None:
        return ""
    note = f" ({remote.note})" if remote.note else ""
    return (
        f"; {name} is a public data set: {remote.url}{note}; the project's copy has SHA-256 {remote.sha256} "
        f"(fetch_known in ckd.data.download fetches and checks it, {MIRROR_ENV} naming a folder that holds it)"
    )


def fetch_known(name: str, folder: str | Path, mirror: str | None = None) -> Path:
    """One of the `KNOWN` data sets into `folder` (mirror first, then its URL), checked; its path."""
    if name not in KNOWN:
        raise CkdError(f"{name}: not a known data set; known: {', '.join(sorted(KNOWN))}")
    remote = KNOWN[name]
    return Path(fetch(remote.url, remote.sha256, Path(folder) / name, mirror)["path"])
