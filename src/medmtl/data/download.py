"""Fetch released files byte for byte and verify them against recorded sha256 sums.

Sources: an ``http(s)://`` base URL, a ``file://`` URL or a local folder; file ``name`` is
fetched from ``<source>/<name>``. Each file streams in chunks into ``<name>.part`` while its
sha256 is computed, and is renamed to ``<name>`` only once verified, so a file with its final
name is always complete and checked. An interrupted http download keeps its ``.part`` and is
resumed with a ``Range`` request next time (restarted if the server does not answer 206).

Checksums (trust on first use, then fail loudly). Sums live in committed text files in
``sha256sum`` format (``<hex>  <name>``), one file per dataset *and kind of source*, because the
same official name has different bytes in different copies (the offline mirror is downscaled):

- ``checksums/<dataset>.official.sha256``: the official release URL;
- ``checksums/<dataset>.mirror.sha256``: any other source, taken to be the downscaled offline
  mirror described in ``../shared/data/mirror/<dataset>/SOURCE.md``.

A name with no recorded sum is recorded (and a note printed) after its download; a name with
a recorded sum must match it, else the download is deleted and `UserError` raised. To verify
another copy (e.g. a local copy of the official files) pass its sums file explicitly
(``medmtl download --checksums FILE``).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from medmtl.errors import UserError
from medmtl.hashing import file_sha256

CHECKSUM_DIR = Path(__file__).resolve().parent / "checksums"
_CHUNK = 1 << 20
_TIMEOUT_S = 60
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


def source_kind(source: str, official_url: str) -> str:
    """Return ``official`` if `source` is the official base URL, else ``mirror``."""
    return "official" if source.rstrip("/") == official_url.rstrip("/") else "mirror"


def default_checksum_file(dataset: str, kind: str) -> Path:
    """Return the committed sums file for a dataset and source kind (see module docstring)."""
    return CHECKSUM_DIR / f"{dataset}.{kind}.sha256"


def read_checksums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum``-format file into name -> hex digest; a missing file is empty.

    Raises:
        UserError: a malformed line or a name listed twice.
    """
    if not path.exists():
        return {}
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _SUM_LINE.fullmatch(line)
        if match is None:
            raise UserError(f"{path}: line {number} is not '<sha256 hex>  <name>': {line!r}")
        digest, name = match.groups()
        if name in sums:
            raise UserError(f"{path}: line {number}: {name} is listed twice")
        sums[name] = digest
    return sums


def write_checksums(path: Path, sums: dict[str, str]) -> None:
    """Atomically (re)write a ``sha256sum``-format file, sorted by name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{sums[n]}  {n}\n" for n in sorted(sums)), encoding="utf-8")
    os.replace(tmp, path)


def fetch(source: str, out_dir: Path, files: list[str], checksum_file: Path) -> None:
    """Download `files` from `source` into `out_dir`, verifying or recording their sha256.

    A file already in `out_dir` whose sum matches the recorded one is skipped.

    Args:
        source: ``http(s)://`` base URL, ``file://`` URL or local folder path.
        out_dir: destination folder (created if missing).
        files: file names relative to `source`.
        checksum_file: ``sha256sum``-format file of recorded sums; new sums are added to it.

    Raises:
        UserError: unreachable or missing source file, or a sum mismatch (the download is
            deleted; the message names the file, expected and found sums).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    sums = read_checksums(checksum_file)
    for name in files:
        dest = out_dir / name
        expected = sums.get(name)
        if expected is not None and dest.exists():
            if file_sha256(dest) == expected:
                _note(f"{name}: already present, sha256 ok")
                continue
            _note(f"{name}: present but its sha256 differs from the recorded one; fetching again")
            dest.unlink()
        part = dest.with_name(dest.name + ".part")
        found = _fetch_one(source, name, part)
        if expected is None:
            sums[name] = found
            write_checksums(checksum_file, sums)
            _note(f"{name}: no recorded sha256; recorded {found} in {checksum_file}")
        elif found != expected:
            part.unlink()
            raise UserError(
                f"{name} from {source}: sha256 mismatch: expected {expected} (recorded in "
                f"{checksum_file}), found {found}; the download was deleted (a different copy of "
                "the files needs its own checksum file: --checksums FILE)"
            )
        os.replace(part, dest)


def _fetch_one(source: str, name: str, part: Path) -> str:
    """Stream ``<source>/<name>`` into `part`; return the sha256 of the whole file."""
    scheme = urllib.parse.urlparse(source).scheme
    if scheme in ("http", "https"):
        return _fetch_http(f"{source.rstrip('/')}/{urllib.parse.quote(name)}", part)
    if scheme == "file":
        folder = Path(urllib.request.url2pathname(urllib.parse.urlparse(source).path))
    elif "://" in source:
        raise UserError(f"unsupported source {source!r}: use http(s)://, file:// or a folder")
    else:
        folder = Path(source)
    return _copy_local(folder / name, part)


def _copy_local(path: Path, part: Path) -> str:
    try:
        src = open(path, "rb")
    except OSError as err:
        raise UserError(f"{path}: cannot read source file: {err.strerror}") from err
    digest = hashlib.sha256()
    with src, open(part, "wb") as out, _progress(path.name, path.stat().st_size, 0) as bar:
        _stream(src, out, digest, bar)
    return digest.hexdigest()


def _fetch_http(url: str, part: Path) -> str:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the .part is no prefix we can extend: restart
            part.unlink()
            return _fetch_http(url, part)
        raise UserError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise UserError(f"{url}: cannot connect: {err}") from err
    with response:
        digest = hashlib.sha256()
        if offset > 0 and response.status == 206 and _range_start(response) == offset:
            with open(part, "rb") as fh:
                _stream(fh, None, digest, None)
            mode = "ab"
        else:
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        kept = f"{part} is kept and the next run resumes it"
        try:
            with open(part, mode) as out, _progress(part.stem, total, offset) as bar:
                received = offset + _stream(response, out, digest, bar)
        except (HTTPException, OSError) as err:
            raise UserError(f"{url}: download interrupted ({err!r}); {kept}") from err
    if total is not None and received != total:
        raise UserError(f"{url}: download interrupted after {received} of {total} bytes; {kept}")
    return digest.hexdigest()


def _stream(src: BinaryIO, out: BinaryIO | None, digest: hashlib._Hash, bar: tqdm | None) -> int:
    """Copy `src` to `out` (if given) in chunks, updating `digest` and `bar`; return bytes read."""
    count = 0
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
        if bar is not None:
            bar.update(len(chunk))
        count += len(chunk)
    return count


def _range_start(response: HTTPResponse) -> int | None:
    """First byte position of a 206 answer's ``Content-Range: bytes a-b/n``, if parseable."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _progress(name: str, total: int | None, initial: int) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        desc=name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        leave=False,
        disable=None,
        file=sys.stderr,
    )


def _note(message: str) -> None:
    print(message, file=sys.stderr)
