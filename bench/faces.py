"""Do faces stay faces? Portraits painted with face protection on and off, side by side.

    python -m bench.faces                                   # the portraits below x starry_night, 512 px
    python -m bench.faces --sizes 448,512,576                # each at three sizes (see (c) below)
    python -m bench.faces --sizes 256 --strengths normal,high,low --style PAINTING PORTRAIT ...

Portraits (unless paths are given): the NASA astronaut of ``skimage.data.astronaut()`` (public
domain, in scikit-image's wheel); Grace Hopper from matplotlib's sample data, if matplotlib is
installed; and a synthetic group, the astronaut beside a half-size copy of herself (two faces,
one small). For each portrait and strength, the same render (``RenderSettings(size, strength)``,
otherwise the defaults, one ``StyleTransfer.bundled()``) runs with ``faces="off"`` and
``faces="auto"``, and each picture is measured against the faces MTCNN finds on the photo at the
render's size (the faces the render itself protects):

(a) found again: the detector, run on the picture, finds a face whose box overlaps the photo's
    face by more than 0.5 (intersection over union);
(b) landmark shift: the mean distance between the five landmarks on the photo and on the
    picture's face, divided by the photo's eye distance (n/a where the face is not found);
(c) style loss: the plain sum over the style layers of ``style_loss`` (no style weight,
    strength or layer weights) against the painting's Gram matrices, in the render's feature
    units, of the whole picture; and outside the faces, every position inside a face region
    (where the face style map of ``model.faces.face_weights`` is below 1) weighed 0. Lower is
    better. Their ratios (faces on / off) swing by several per cent with any small change to the
    optimiser's path (30 iterations are far from a minimum), so with several ``--sizes`` they
    are judged on the geometric mean of the ratios over the sizes, each size's shown too.

Targets: with faces on, every face found again with a shift of at most 0.05 at the normal and
high strengths (the issue's), and the whole picture's style loss at most ``MAX_STYLE_RATIO``
times that with faces off. The issue asks for the whole picture's style within 0.03 of faces
off on the team's eval yardstick's score (kept outside the project); on the four renders
of 2026-12-02 (bench/NOTES.md) the yardstick's scores moved by 0.003-0.019 while this ratio was
0.994-1.049. Faces share the picture's palette at the shallow layers, so the rest alone matches
the painting a little less than with faces off: the loss outside the faces is shown, not judged.
Beside the shifts, the detector's floor: the shift it reports on the photo itself under a 1 px
Gaussian blur; on a face whose eyes are 14 px apart a shift of 0.05 is 0.7 px, and the blur
alone shifts its landmarks by about half that. Render seconds include compiling, which happens
on the first render of each picture size and again on the first with faces on. Pictures (photo | faces off | faces on) go to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PAINTINGS = pathlib.Path(__file__).resolve().parents[1] / "bot" / "paintings"  # the gallery's

# The targets.
FOUND_OVERLAP = 0.5  # a face is found again above this box overlap
MAX_SHIFT = 0.05  # landmark shift, in eye distances
MAX_STYLE_RATIO = 1.10  # the whole picture's style loss, faces on / off
TARGET_STRENGTHS = ("normal", "high")  # where found-again and shift must hold


@dataclass(frozen=True)
class Portrait:
    """A photo to paint, its name in the table and files, and how many faces it holds if known."""

    name: str
    photo: np.ndarray  # (H, W, 3) uint8
    faces: int | None = None


@dataclass(frozen=True)
class Match:
    """One of the photo's faces sought on a painted picture."""

    overlap: float  # the best box overlap (IoU) of a face found on the picture, 0 if none
    shift: float | None  # mean landmark shift / eye distance; None if not found or unmeasurable

    @property
    def found(self) -> bool:
        return self.overlap > FOUND_OVERLAP


@dataclass(frozen=True)
class Outcome:
    """One render (one portrait, strength and faces setting) and what it measured."""

    picture: np.ndarray
    seconds: float
    matches: list[Match]
    whole_loss: float  # the style loss of the whole picture
    outside_loss: float  # and outside the faces


def default_portraits() -> list[Portrait]:
    """The astronaut, Grace Hopper if matplotlib is there to give her, and the synthetic group."""
    from skimage import data

    astronaut = data.astronaut()
    portraits = [Portrait("astronaut", astronaut, 1)]
    try:
        from matplotlib import cbook
    except ImportError:
        print("note: matplotlib is not installed, so Grace Hopper (its sample photo) is skipped")
    else:
        from model import load_image

        portraits.append(Portrait("grace_hopper", load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), 1))
    portraits.append(Portrait("group_synthetic", group_portrait(astronaut), 2))
    return portraits


def group_portrait(photo: np.ndarray) -> np.ndarray:
    """``photo`` with a half-size copy of itself to its right, bottom-aligned, on grey: two faces."""
    from model import resize_to_longest

    height, width = photo.shape[:2]
    half = resize_to_longest(photo, max(1, max(height, width) // 2))
    canvas = np.full((height, width + half.shape[1], 3), 128, np.uint8)
    canvas[:, :width] = photo
    canvas[height - half.shape[0] :, width:] = half
    return canvas


def landmark_shift(reference: Any, found: Any) -> float | None:
    """Mean distance between the landmarks two ``Face``s share, in the reference's eye distance."""
    eyes = [reference.landmarks.get(eye) for eye in ("left_eye", "right_eye")]
    shared = [name for name in reference.landmarks if name in found.landmarks]
    if None in eyes or not shared:
        return None
    eye_distance = math.dist(eyes[0], eyes[1])
    if eye_distance == 0:
        return None
    shifts = [math.dist(reference.landmarks[name], found.landmarks[name]) for name in shared]
    return sum(shifts) / len(shifts) / eye_distance


def match_faces(reference: Sequence[Any], found: Sequence[Any]) -> list[Match]:
    """Each reference face against the found face whose box overlaps it most."""
    from model.faces import box_overlap

    matches = []
    for face in reference:
        best = max(found, key=lambda other: box_overlap(face.box, other.box), default=None)
        overlap = box_overlap(face.box, best.box) if best is not None else 0.0
        shift = landmark_shift(face, best) if best is not None and overlap > FOUND_OVERLAP else None
        matches.append(Match(overlap, shift))
    return matches


def blurred(photo: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """``photo`` under a Gaussian blur of ``radius`` pixels: the detector's landmark shift on it
    is the floor below which a shift cannot be told from the detector's own jitter."""
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(radius)))


def outside_faces(shape: tuple[int, int], faces: Sequence[Any]) -> np.ndarray:
    """(H, W) float32: 1 away from the faces, 0 wherever face protection lowers the style."""
    from model.faces import face_weights

    weights = face_weights(shape, faces)
    if weights is None:
        return np.ones(shape, np.float32)
    return (weights.style == 1.0).astype(np.float32)


class MaskedStyleLoss:
    """The style loss of pictures of one render size, each position weighed by a mask (all
    ones: the whole picture; 0 on faces: the rest).

    Measured as the renderer measures it: its own network, feature units and Gram targets (the
    renderer's private ``_inputs``, ``_objective`` and ``_Objective._units_and_targets``, so
    that the numbers stay in the render's units if those change), and the weight map brought
    down to each layer by the renderer's ``_at_layer``.
    """

    def __init__(self, painter: Any, painting: np.ndarray, settings: Any) -> None:
        self.settings = settings
        # The photo only sets the size; units and style targets come from the painting alone.
        blank = np.zeros((settings.size, settings.size, 3), np.uint8)
        inputs = painter._inputs(blank, painting, settings)
        photo, paintings = inputs.at(settings.size, settings.style_scale)
        self.objective = painter._objective(settings)
        self.units, (_, self.targets, _) = self.objective._units_and_targets(
            photo, paintings, inputs.blend, settings
        )

    def __call__(self, picture: np.ndarray, mask: np.ndarray) -> float:
        """The loss of ``picture`` (H, W, 3) uint8 with positions weighed by ``mask`` (H, W)."""
        from keras import ops

        from model.faces import FaceWeights
        from model.losses import style_loss
        from model.network import preprocess
        from model.render import _at_layer

        features = self.objective.features(preprocess(picture)[np.newaxis])
        total = 0.0
        for layer, target in zip(self.settings.style_layers, self.targets):
            weights = _at_layer(FaceWeights(mask, mask), layer).style  # (h, w) at the layer
            if weights.sum() == 0:  # faces cover the whole layer: nothing outside to measure
                continue
            loss = style_loss(features[layer] / self.units[layer], target, weights[None, ..., None])
            total += float(ops.convert_to_numpy(loss))
        return total


def side_by_side(images: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Images of one height in a row, with white gaps between."""
    height = images[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    row: list[np.ndarray] = []
    for image in images:
        row += [spacer, image] if row else [image]
    return np.concatenate(row, axis=1)


def _ratio(on: float, off: float) -> float:
    """on / off; NaN (judged a failure) where off is 0, as nothing can be told from it."""
    return on / off if off > 0 else math.nan


def _geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean of ratios: 0 if one is 0, NaN if one is NaN."""
    if any(math.isnan(value) for value in values):
        return math.nan
    if min(values) <= 0:
        return 0.0
    return math.exp(sum(math.log(value) for value in values) / len(values))


def _shifts(matches: Sequence[Match]) -> str:
    return ", ".join("n/a" if m.shift is None else f"{m.shift:.3f}" for m in matches) or "-"


def _found(matches: Sequence[Match]) -> str:
    """Faces found again as "k/n (IoU x)", x the lowest best overlap: how near the worst one came."""
    lowest = f" (IoU {min(m.overlap for m in matches):.2f})" if matches else ""
    return f"{sum(m.found for m in matches)}/{len(matches)}{lowest}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portraits", nargs="*", help="portrait photos (default: the built-in ones)")
    parser.add_argument("--style", default=str(PAINTINGS / "starry_night.jpg"),
                        help="the painting (default: the gallery's The Starry Night)")
    parser.add_argument("--sizes", default="512", help="comma-separated longest sides of the pictures")
    parser.add_argument("--strengths", default=",".join(TARGET_STRENGTHS), help="comma-separated: low, normal, high or numbers")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-output/faces"))
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model import RenderSettings, load_image, resize_for_render, save_image
    from model.render import StyleTransfer
    from model.settings import parse_strength

    strengths = [(label.strip(), parse_strength(label)) for label in args.strengths.split(",") if label.strip()]
    portraits = (
        [Portrait(pathlib.Path(path).stem, load_image(path)) for path in args.portraits]
        if args.portraits
        else default_portraits()
    )
    painting = load_image(args.style)
    args.out.mkdir(parents=True, exist_ok=True)
    painter = StyleTransfer.bundled()
    try:
        sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    except ValueError:
        parser.error(f"--sizes takes whole numbers separated by commas, such as 448,512,576, got: {args.sizes}")

    rows = []  # (portrait, size, strength label, reference faces, {faces: Outcome}, detector floor)
    saved = []
    for size in sizes:
        style_loss = MaskedStyleLoss(painter, painting, RenderSettings(size=size))
        for portrait in portraits:
            photo = resize_for_render(portrait.photo, size)  # the shape the render paints
            reference = painter.find_faces(photo)  # what the render with faces on protects
            floor = match_faces(reference, painter.find_faces(blurred(photo)))
            mask = outside_faces(photo.shape[:2], reference)
            for label, strength in strengths:
                outcomes: dict[str, Outcome] = {}
                for faces in ("off", "auto"):
                    settings = RenderSettings(size=size, strength=strength, faces=faces)
                    started = time.perf_counter()
                    picture = painter.render(portrait.photo, painting, settings)
                    seconds = time.perf_counter() - started
                    matches = match_faces(reference, painter.find_faces(picture))
                    outcomes[faces] = Outcome(picture, seconds, matches, style_loss(picture, np.ones_like(mask)),
                                              style_loss(picture, mask))
                    print(f"{portrait.name} {size} px {label} faces={faces}: {seconds:.1f} s", flush=True)
                path = args.out / f"{portrait.name}_{label}_{size}.png"
                save_image(side_by_side([photo, outcomes["off"].picture, outcomes["auto"].picture]), path)
                saved.append(path)
                rows.append((portrait, size, label, reference, outcomes, floor))

    print(f"\n{len(portraits)} portraits x {pathlib.Path(args.style).name} at {args.sizes} px, "
          f"{os.cpu_count()} CPUs, Keras backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}")
    print("| portrait | size | strength | faces on photo | found again, lowest IoU (off / on) | landmark shift / eye distance "
          "(off / on) | detector's floor: shift on the photo blurred 1 px | style loss, whole picture (off / on, on/off) "
          "| outside the faces, on/off | render s (off / on) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for portrait, size, label, reference, outcomes, floor in rows:
        off, on = outcomes["off"], outcomes["auto"]
        seen = f"{len(reference)}" + (f" of {portrait.faces}" if portrait.faces is not None else "")
        ratio = _ratio(on.whole_loss, off.whole_loss)
        print(f"| {portrait.name} | {size} | {label} | {seen} | {_found(off.matches)} / {_found(on.matches)} "
              f"| {_shifts(off.matches)} / {_shifts(on.matches)} | {_shifts(floor)} "
              f"| {off.whole_loss:.4g} / {on.whole_loss:.4g} ({ratio:.3f}) "
              f"| {_ratio(on.outside_loss, off.outside_loss):.3f} | {off.seconds:.1f} / {on.seconds:.1f} |")
    if any(p.name == "group_synthetic" for p in portraits):
        print("\ngroup_synthetic is made up: the astronaut beside a half-size copy of herself.")

    print()
    judged = any(label in TARGET_STRENGTHS for _, _, label, _, _, _ in rows)
    missing = [s for s in TARGET_STRENGTHS if s not in {label for label, _ in strengths}]
    note = f" ({', '.join(missing)} not run)" if missing else ""
    failures: dict[str, list[str]] = {"found": [], "shift": [], "loss": []}
    ratios: dict[tuple[str, str], list[float]] = {}  # (portrait, strength) -> on/off per size
    for portrait, size, label, reference, outcomes, _ in rows:
        on, off = outcomes["auto"], outcomes["off"]
        where = f"{portrait.name} {size} px {label}"
        if label in TARGET_STRENGTHS:
            if not reference or (portrait.faces is not None and len(reference) < portrait.faces):
                failures["found"].append(f"{where}: {len(reference)} faces found on the photo")
            elif not all(m.found for m in on.matches):
                failures["found"].append(f"{where}: {_found(on.matches)}")
            bad = [m.shift for m in on.matches if m.shift is None or m.shift > MAX_SHIFT]
            if bad or not reference:
                failures["shift"].append(f"{where}: {_shifts(on.matches)}")
        ratios.setdefault((portrait.name, label), []).append(_ratio(on.whole_loss, off.whole_loss))
    if len(sizes) > 1:
        print("| portrait | strength | the whole picture's style loss, on/off: geometric mean over the sizes |")
        print("|---|---|---|")
    for (name, label), each in ratios.items():
        mean = _geometric_mean(each)
        if len(sizes) > 1:
            print(f"| {name} | {label} | {mean:.3f} ({', '.join(f'{ratio:.3f}' for ratio in each)}) |")
        if not mean <= MAX_STYLE_RATIO:
            failures["loss"].append(f"{name} {label}: on/off {mean:.3f}")
    if len(sizes) > 1:
        print()
    targets = {
        "found": f"faces on: every face found again (overlap > {FOUND_OVERLAP}) at {' and '.join(TARGET_STRENGTHS)}{note}",
        "shift": f"faces on: landmark shift <= {MAX_SHIFT} eye distances at {' and '.join(TARGET_STRENGTHS)}{note}",
        "loss": f"the whole picture's style loss with faces on at most {MAX_STYLE_RATIO} times off, at every strength run"
        + (" (geometric mean over the sizes)" if len(sizes) > 1 else ""),
    }
    for key, target in targets.items():
        verdict = "FAIL" if failures[key] or (key != "loss" and not judged) else "PASS"
        reasons = "; ".join(failures[key]) or ("nothing judged" if key != "loss" and not judged else "")
        print(f"{verdict}: {target}" + (f" - {reasons}" if reasons else ""))

    print("\nPictures (photo | faces off | faces on):")
    for path in saved:
        print(f"  {path}")


if __name__ == "__main__":
    main()
