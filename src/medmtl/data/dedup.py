"""Duplicate images within a dataset: found by content, grouped, and removed before splitting.

Some releases repeat images under several names: BUSI does, about 19% of it by Pawlowska et
al. (Data in Brief 2023), some copies re-cropped or with other caliper marks and some filed
under two classes. Split such a dataset image by image and copies of test images train the
model, which inflates every test number. Here:

- each case's decoded image gets two fingerprints: the sha256 of its RGB pixels and shape
  (so a file re-encoded without changing a pixel is an *exact* duplicate, whatever its bytes),
  and a 64-bit difference hash (dHash: the grey image box-averaged down to 9x8 pixels, one bit
  per horizontally adjacent pair, set where the right pixel is brighter), which survives
  re-encoding, rescaling, a brightness shift and small re-crops;
- two cases are linked when their pixels are equal or their dHashes differ in at most
  `max_distance` bits (*near* duplicates); groups are the connected components of the links;
- `apply_policy` keeps one case of each group (its smallest case id, which is the group's id)
  and drops the whole group when its cases carry different labels (the true label of such an
  image is unknown).

The default threshold, `MAX_DISTANCE` = 6 of 64 bits, was set on the BUSI mirror by looking at
the pairs at each distance: every pair at distance <= 6 (all 11 at exactly 6) was the same
scan (re-cropped, other calipers or text), the first different scan appeared at 7 (1 of 7
pairs), 2 of 4 pairs at 8 were different scans, and at 10 most were. Unrelated BUSI images lie
around 16. Copies re-cropped more than a few percent are beyond reach of the hash.

Pairwise distances are one N x N matrix: fine for thousands of images (BUSI: 780, ~1 s to
decode and hash).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from medmtl.data.common import RawCase

MAX_DISTANCE = 6
REPORT_COLUMNS = (
    "group_id",
    "n_cases",
    "case_ids",
    "labels",
    "kind",
    "max_hamming",
    "conflicting_labels",
)


@dataclass(frozen=True)
class Fingerprint:
    """Content fingerprints of one decoded image.

    Attributes:
        pixel_sha256: sha256 of the image's shape and RGB pixel bytes.
        dhash: 64-bit difference hash of the grey image.
    """

    pixel_sha256: str
    dhash: int


@dataclass(frozen=True)
class Duplicates:
    """Duplicate groups of a dataset.

    Attributes:
        group_of: every case id -> its group id, the smallest case id of its group (a case
            with no duplicate is its own group).
        report: one row per group of two or more cases, sorted by group id, columns
            `REPORT_COLUMNS`: ``case_ids`` and ``labels`` joined with ``;`` in case id order,
            ``kind`` ``exact`` (all pixels equal) or ``near``, ``max_hamming`` the largest dHash
            distance between two of its cases, ``conflicting_labels`` whether they differ.
    """

    group_of: dict[str, str]
    report: pd.DataFrame


def fingerprint(image: np.ndarray) -> Fingerprint:
    """Fingerprint an RGB uint8 image (H, W, 3)."""
    pixels = hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()
    grey = Image.fromarray(image).convert("L").resize((9, 8), Image.Resampling.BOX)
    values = np.asarray(grey, dtype=np.int16)
    bits = np.packbits(values[:, 1:] > values[:, :-1])
    return Fingerprint(pixel_sha256=pixels, dhash=int.from_bytes(bits.tobytes(), "big"))


def find_duplicates(cases: Sequence[RawCase], *, max_distance: int = MAX_DISTANCE) -> Duplicates:
    """Decode every case's image and group exact and near duplicates.

    Args:
        cases: the dataset's cases (unique case ids).
        max_distance: largest dHash Hamming distance (bits of 64) that links two cases; a
            negative value links exact duplicates only.

    Raises:
        UserError: an image cannot be read or decoded.
    """
    fingerprints = [fingerprint(case.load_image()) for case in cases]
    ids = np.array([case.case_id for case in cases], dtype=object)
    hashes = np.array([f.dhash for f in fingerprints], dtype=np.uint64)
    distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :]).astype(np.int64)
    _, pixel_key = np.unique([f.pixel_sha256 for f in fingerprints], return_inverse=True)
    linked = (distance <= max_distance) | (pixel_key[:, None] == pixel_key[None, :])
    rows, cols = np.nonzero(np.triu(linked, k=1))
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(cases), len(cases)))
    _, component = connected_components(graph, directed=False)

    group_of: dict[str, str] = {}
    report = []
    for members in pd.Series(range(len(cases))).groupby(component).agg(list):
        members = sorted(members, key=lambda i: ids[i])
        group_of |= {ids[i]: ids[members[0]] for i in members}
        if len(members) > 1:
            labels = [cases[i].label_name for i in members]
            report.append(
                {
                    "group_id": ids[members[0]],
                    "n_cases": len(members),
                    "case_ids": ";".join(ids[members]),
                    "labels": ";".join(labels),
                    "kind": "exact" if len(set(pixel_key[members])) == 1 else "near",
                    "max_hamming": int(distance[np.ix_(members, members)].max()),
                    "conflicting_labels": len(set(labels)) > 1,
                }
            )
    frame = pd.DataFrame(report, columns=list(REPORT_COLUMNS))
    return Duplicates(group_of, frame.sort_values("group_id", ignore_index=True))


def apply_policy(
    cases: Sequence[RawCase], duplicates: Duplicates
) -> tuple[list[RawCase], pd.DataFrame]:
    """Keep one case per duplicate group, or none when the group's labels conflict.

    The kept case is the group's smallest case id (its group id), so the choice does not
    depend on file order.

    Args:
        cases: the cases `duplicates` was found on.
        duplicates: from `find_duplicates`.

    Returns:
        the kept cases in input order, and the report with one more column ``kept``: the
        kept case id, or ``""`` when the group was dropped.
    """
    conflicting = set(duplicates.report.loc[duplicates.report["conflicting_labels"], "group_id"])
    kept = [
        case
        for case in cases
        if duplicates.group_of[case.case_id] == case.case_id and case.case_id not in conflicting
    ]
    report = duplicates.report.assign(
        kept=["" if group in conflicting else group for group in duplicates.report["group_id"]]
    )
    return kept, report
