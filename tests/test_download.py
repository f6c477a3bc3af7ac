"""`medmtl.data.download`: sources, streaming, resume, recorded checksums, atomic results."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from medmtl.data import download, isic2017
from medmtl.data.download import fetch, read_checksums, write_checksums
from medmtl.errors import UserError

NAMES = ["a.zip", "b.csv"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    src = tmp_path / "source"
    src.mkdir()
    (src / "a.zip").write_bytes(bytes(range(256)) * 5000)  # 1.28 MB: more than one chunk
    (src / "b.csv").write_bytes(b"image_id,melanoma\nISIC_0000000,0.0\n")
    return src


class _RangeServer(ThreadingHTTPServer):
    """Serves `root`; honours ``Range: bytes=N-`` and sends ``Content-Length`` unless told not
    to; can cut one answer short."""

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _RangeHandler)
        self.root = root
        self.support_range = True
        self.send_length = True
        self.cut_next_after: int | None = None
        self.ranges: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/files"


class _RangeHandler(BaseHTTPRequestHandler):
    server: _RangeServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.server.root / self.path.removeprefix("/files/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        requested = self.headers.get("Range")
        self.server.ranges.append(requested)
        start = 0
        if requested and self.server.support_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        if self.server.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut, self.server.cut_next_after = self.server.cut_next_after, None
        self.wfile.write(body if cut is None else body[:cut])
        self.close_connection = cut is not None or not self.server.send_length

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server(source_dir: Path) -> Iterator[_RangeServer]:
    server = _RangeServer(source_dir)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _assert_fetched(out: Path, src: Path, sums_file: Path) -> None:
    for name in NAMES:
        assert (out / name).read_bytes() == (src / name).read_bytes()
        assert not (out / f"{name}.part").exists()
    assert read_checksums(sums_file) == {n: _sha((src / n).read_bytes()) for n in NAMES}


def test_local_folder_records_sums_sorted(source_dir, tmp_path, capsys):
    sums_file = tmp_path / "sums" / "x.sha256"
    fetch(str(source_dir), tmp_path / "out", list(reversed(NAMES)), sums_file)
    _assert_fetched(tmp_path / "out", source_dir, sums_file)
    lines = sums_file.read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == sorted(NAMES)
    assert "recorded" in capsys.readouterr().err


def test_file_url(source_dir, tmp_path):
    sums_file = tmp_path / "x.sha256"
    fetch(source_dir.as_uri(), tmp_path / "out", NAMES, sums_file)
    _assert_fetched(tmp_path / "out", source_dir, sums_file)


def test_http(http_server, source_dir, tmp_path):
    sums_file = tmp_path / "x.sha256"
    fetch(http_server.url, tmp_path / "out", NAMES, sums_file)
    _assert_fetched(tmp_path / "out", source_dir, sums_file)
    assert http_server.ranges == [None, None]


def test_http_resumes_partial_download_with_range(http_server, source_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    data = (source_dir / "a.zip").read_bytes()
    (out / "a.zip.part").write_bytes(data[:300_000])
    fetch(http_server.url, out, ["a.zip"], tmp_path / "x.sha256")
    assert http_server.ranges == ["bytes=300000-"]
    assert (out / "a.zip").read_bytes() == data
    assert read_checksums(tmp_path / "x.sha256") == {"a.zip": _sha(data)}


@pytest.mark.parametrize("kept", ["prefix", "stale"])
def test_http_restarts_when_server_ignores_range(http_server, source_dir, tmp_path, kept):
    http_server.support_range = False  # answers 200 with the whole file
    data = (source_dir / "a.zip").read_bytes()
    out, sums_file = tmp_path / "out", tmp_path / "x.sha256"
    out.mkdir()
    part = data[:300_000] if kept == "prefix" else b"stale bytes from another file"
    (out / "a.zip.part").write_bytes(part)
    write_checksums(sums_file, {"a.zip": _sha(data)})  # fetch raises on a mismatch
    fetch(http_server.url, out, ["a.zip"], sums_file)
    assert http_server.ranges == [f"bytes={len(part)}-"]
    assert (out / "a.zip").read_bytes() == data
    assert read_checksums(sums_file) == {"a.zip": _sha(data)}


@pytest.mark.parametrize("resumed_from", [0, 300_000])
def test_http_without_content_length_completes_and_verifies(
    http_server, source_dir, tmp_path, resumed_from
):
    http_server.send_length = False  # the body ends when the server closes the connection
    data = (source_dir / "a.zip").read_bytes()
    out, sums_file = tmp_path / "out", tmp_path / "x.sha256"
    out.mkdir()
    if resumed_from:
        (out / "a.zip.part").write_bytes(data[:resumed_from])
    write_checksums(sums_file, {"a.zip": _sha(data)})
    fetch(http_server.url, out, ["a.zip"], sums_file)
    assert http_server.ranges == [f"bytes={resumed_from}-" if resumed_from else None]
    assert (out / "a.zip").read_bytes() == data
    assert not (out / "a.zip.part").exists()


def test_interrupted_http_download_keeps_part_then_resumes(http_server, source_dir, tmp_path):
    out, sums_file = tmp_path / "out", tmp_path / "x.sha256"
    http_server.cut_next_after = 100_000
    with pytest.raises(UserError, match="interrupted after 100000 of 1280000 bytes"):
        fetch(http_server.url, out, ["a.zip"], sums_file)
    assert not (out / "a.zip").exists()
    assert (out / "a.zip.part").stat().st_size == 100_000
    assert not sums_file.exists()  # nothing recorded from a partial file

    fetch(http_server.url, out, ["a.zip"], sums_file)
    assert http_server.ranges[-1] == "bytes=100000-"
    assert (out / "a.zip").read_bytes() == (source_dir / "a.zip").read_bytes()


def test_http_missing_file(http_server, tmp_path):
    with pytest.raises(UserError, match="HTTP 404"):
        fetch(http_server.url, tmp_path / "out", ["nope.zip"], tmp_path / "x.sha256")


def test_missing_local_file_names_it(source_dir, tmp_path):
    with pytest.raises(UserError, match=r"nope\.zip: cannot read source file"):
        fetch(str(source_dir), tmp_path / "out", ["nope.zip"], tmp_path / "x.sha256")
    assert not (tmp_path / "out" / "nope.zip").exists()


def test_present_file_with_recorded_sum_is_skipped(source_dir, tmp_path, capsys):
    out, sums_file = tmp_path / "out", tmp_path / "x.sha256"
    fetch(str(source_dir), out, NAMES, sums_file)
    shutil.rmtree(source_dir)  # a re-download would fail now
    fetch(str(source_dir), out, NAMES, sums_file)
    assert capsys.readouterr().err.count("already present, sha256 ok") == 2


def test_tampered_source_fails_and_leaves_no_file(source_dir, tmp_path):
    sums_file = tmp_path / "x.sha256"
    fetch(str(source_dir), tmp_path / "first", NAMES, sums_file)
    recorded = sums_file.read_text()
    tampered = b"image_id,melanoma\nISIC_0000000,1.0\n"
    (source_dir / "b.csv").write_bytes(tampered)
    out = tmp_path / "second"
    with pytest.raises(UserError) as err:
        fetch(str(source_dir), out, NAMES, sums_file)
    message = str(err.value)
    assert "b.csv" in message and "mismatch" in message
    assert read_checksums(sums_file)["b.csv"] in message and _sha(tampered) in message
    assert not (out / "b.csv").exists() and not (out / "b.csv.part").exists()
    assert sums_file.read_text() == recorded  # a mismatch never rewrites the record


def test_corrupted_local_copy_is_fetched_again(source_dir, tmp_path):
    out, sums_file = tmp_path / "out", tmp_path / "x.sha256"
    fetch(str(source_dir), out, NAMES, sums_file)
    (out / "a.zip").write_bytes(b"bit rot")
    fetch(str(source_dir), out, NAMES, sums_file)
    assert (out / "a.zip").read_bytes() == (source_dir / "a.zip").read_bytes()


def test_malformed_checksum_file(source_dir, tmp_path):
    sums_file = tmp_path / "x.sha256"
    sums_file.write_text("not a checksum line\n")
    with pytest.raises(UserError, match=r"x\.sha256: line 1"):
        fetch(str(source_dir), tmp_path / "out", NAMES, sums_file)


def test_unsupported_scheme(tmp_path):
    with pytest.raises(UserError, match="unsupported source"):
        fetch("ftp://example.org/x", tmp_path / "out", NAMES, tmp_path / "x.sha256")


def test_checksum_file_depends_on_the_kind_of_source(isic2017_mirror_dir):
    assert download.source_kind(isic2017.OFFICIAL_URL.rstrip("/"), isic2017.OFFICIAL_URL) == (
        "official"
    )
    assert download.source_kind(str(isic2017_mirror_dir), isic2017.OFFICIAL_URL) == "mirror"
    assert download.default_checksum_file("isic2017", "mirror").name == "isic2017.mirror.sha256"


def test_mirror_download_verifies_against_committed_sums(isic2017_mirror_dir, tmp_path):
    committed = download.default_checksum_file("isic2017", "mirror")
    names = isic2017.archive_names(["training", "validation"])
    assert sorted(read_checksums(committed)) == sorted(names)
    sums_file = tmp_path / "isic2017.mirror.sha256"
    shutil.copy(committed, sums_file)
    fetch(isic2017_mirror_dir.as_uri(), tmp_path / "raw", names, sums_file)
    assert sums_file.read_bytes() == committed.read_bytes()  # verified, nothing recorded
    for name in names:
        assert (tmp_path / "raw" / name).stat().st_size == (
            isic2017_mirror_dir / name
        ).stat().st_size
