"""Synthetic dynamic (multi-phase) studies for MTI-Net, written in the layout of
`medmtl.data.dynamic` (issue 14). Deterministic from a seed: the same arguments give the same
bytes.

Each subject is a 2D slice imaged at T co-registered phases t = 0 (before contrast), 1, ...,
T - 1, with one lesion in a textured parenchyma. Its relative enhancement follows a
contrast-kinetics curve (the three curve types of dynamic breast and liver MRI: persistent,
plateau, wash-out; Kuhl et al., Radiology 211:101, 1999) with three parameters, the regression
targets:

- ``wash_in_amplitude`` A in [0.5, 1.5]: the relative enhancement at the end of the wash-in;
- ``wash_in_time`` tau in [1, 2.5] phases: when the wash-in ends; E(t) = A (t / tau)^0.7 before;
- ``delayed_slope`` s: after tau, E(t) = A (1 + s (t - tau)); its family sets the curve type:
  persistent s in [0.05, 0.15], plateau [-0.02, 0.02], wash-out [-0.15, -0.05] (drawn with
  equal probability).

The lesion's shape is regular (an ellipse) or irregular (a lobulated outline, radius modulated
by harmonics 3-6), irregular with probability 0.3, 0.5, 0.7 for persistent, plateau, wash-out.
The class follows the curve and the shape, as a reader's would: malignant for a wash-out curve
or a plateau with an irregular outline, benign otherwise. The parenchyma enhances mildly
(1 + 0.35 (1 - exp(-t / 1.5))); intensities are about 1000 before contrast, with a smooth
texture and per-phase noise, stored as 16-bit PNG. The mask is exactly the lesion's region.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from medmtl.data.dynamic import SUBJECTS, TARGETS_NOTE
from medmtl.errors import UserError

TARGETS = ("wash_in_amplitude", "wash_in_time", "delayed_slope")
NOTE = (
    "enhancement-curve parameters of the lesion: wash-in amplitude (relative enhancement), "
    "wash-in time (phases) and delayed slope (relative change per phase after the wash-in)"
)
SLOPES = {"persistent": (0.05, 0.15), "plateau": (-0.02, 0.02), "washout": (-0.15, -0.05)}
IRREGULAR = {"persistent": 0.3, "plateau": 0.5, "washout": 0.7}
MIN_SIZE, MIN_PHASES = 32, 3


def enhancement(t: np.ndarray, amplitude: float, wash_in: float, slope: float) -> np.ndarray:
    """E(t) of the module docstring."""
    t = np.asarray(t, float)
    rising = amplitude * np.clip(t / wash_in, 0, None) ** 0.7
    return np.where(t <= wash_in, rising, amplitude * (1 + slope * (t - wash_in)))


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random field in [-1, 1]: bicubic upsampling of 6 x 6 noise."""
    coarse = Image.fromarray(rng.uniform(-1, 1, (6, 6)).astype(np.float32), mode="F")
    return np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC)).clip(-1, 1)


def _lesion_mask(rng: np.random.Generator, size: int, irregular: bool) -> np.ndarray:
    """Boolean mask of an ellipse or a lobulated outline, fully inside the image."""
    radius = rng.uniform(0.10, 0.20) * size
    centre = rng.uniform(radius * 1.6, size - radius * 1.6, 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    dy, dx = yy - centre[0], xx - centre[1]
    angle = np.arctan2(dy, dx)
    rotation, stretch = rng.uniform(0, np.pi), rng.uniform(0.75, 1.0)
    along = dx * np.cos(rotation) + dy * np.sin(rotation)
    across = -dx * np.sin(rotation) + dy * np.cos(rotation)
    distance = np.hypot(along, across / stretch)
    outline = np.ones_like(angle)
    if irregular:
        for harmonic in range(3, 7):
            outline += rng.uniform(0.05, 0.12) * np.cos(harmonic * angle + rng.uniform(0, 6.3))
    return distance < radius * outline


def _subject(rng: np.random.Generator, size: int, phases: int) -> tuple[list, np.ndarray, dict]:
    """(phase arrays, mask, row values) of one subject."""
    family = rng.choice(list(SLOPES))
    amplitude, wash_in = rng.uniform(0.5, 1.5), rng.uniform(1.0, 2.5)
    slope = rng.uniform(*SLOPES[family])
    irregular = bool(rng.random() < IRREGULAR[family])
    mask = _lesion_mask(rng, size, irregular)
    times = np.arange(phases, dtype=float)
    lesion_curve = 1 + enhancement(times, amplitude, wash_in, slope)
    background_curve = 1 + 0.35 * (1 - np.exp(-times / 1.5))
    base = 1000 * (1 + 0.08 * _texture(rng, size))
    lesion_base = rng.uniform(0.85, 1.0)
    images = []
    for t in range(phases):
        image = base * np.where(mask, lesion_base * lesion_curve[t], background_curve[t])
        images.append(image + rng.normal(0, 20, (size, size)))
    malignant = family == "washout" or (family == "plateau" and irregular)
    row = {
        "label": "malignant" if malignant else "benign",
        "wash_in_amplitude": f"{amplitude:.6f}",
        "wash_in_time": f"{wash_in:.6f}",
        "delayed_slope": f"{slope:.6f}",
    }
    return images, mask, row


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_dynamic(
    out_dir: Path, *, seed: int, n_train: int, n_val: int, n_test: int, phases: int, size: int
) -> None:
    """Write `n_train + n_val + n_test` subjects (official parts in subjects.csv), `phases`
    16-bit phases of `size` x `size` px each, with exact masks and targets.txt.

    Raises:
        UserError: fewer than `MIN_PHASES` phases, a size under `MIN_SIZE`, or an empty part.
    """
    if phases < MIN_PHASES or size < MIN_SIZE or min(n_train, n_val, n_test) < 1:
        raise UserError(
            f"synthetic dynamic data needs phases >= {MIN_PHASES}, size >= {MIN_SIZE} and at "
            f"least one subject per part; got phases={phases}, size={size}, parts "
            f"{n_train}/{n_val}/{n_test}"
        )
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    rows = []
    for number, subset in enumerate(tqdm(parts, desc="synthesize", unit="subject", disable=None)):
        subject = f"S{number:04d}"
        images, mask, row = _subject(rng, size, phases)
        folder = out_dir / subject
        folder.mkdir(exist_ok=True)
        for t, image in enumerate(images):
            values = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
            (folder / f"phase_{t:02d}.png").write_bytes(_png(values))
        (folder / "mask.png").write_bytes(_png(mask.astype(np.uint8) * 255))
        rows.append({"subject": subject, "subset": subset, **row})
    with (out_dir / SUBJECTS).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["subject", "label", "subset", *TARGETS])
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / TARGETS_NOTE).write_text(NOTE + "\n")
