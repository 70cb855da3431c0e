"""Reading a dataset folder into a manifest: images, annotations per annotator, spacing
and splits, for the ISBI layout, a CSV or JSON landmark table, and DICOM folders.

Nothing here raises on a bad file: every problem of a single file is a
``LayoutProblem`` (a finding of the validation run); only an unusable folder (no
layout recognised, an unreadable table) raises ``LayoutError``. Pixels are never
read here: a manifest of 10,000 images is a few megabytes.

Landmark schema mapping: a file of 19 ISBI points is mapped to our seven (lines
1, 2, 5, 6, 7, 8, 9); a file of exactly seven points is taken as our order.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mahtqa.cephalometry.landmarks import ABBREVIATIONS, BY_ABBREVIATION, ISBI_NUMBERS, N_LANDMARKS
from mahtqa.datasets.safe_io import iter_files_under

LAYOUTS: tuple[str, ...] = ("isbi", "csv", "json", "dicom")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
ISBI_COUNT = 19
TABLE_NAMES = ("landmarks.csv", "landmarks.json")
SPLITS_FILE = "splits.csv"
DEFAULT_SPLIT_SHARES = (0.70, 0.15, 0.15)  # train, validation, test when none is given

Spacing = tuple[float, float]  # (row_mm, col_mm)


class LayoutError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LayoutProblem:
    code: str
    severity: str  # info | warning | error | critical
    file: str  # relative path (posix)
    message: str
    annotator: str = ""
    landmark: str = ""


@dataclass
class ImageRecord:
    key: str  # case id: the file stem
    file: str  # relative path of the image under the root (posix)
    fmt: str  # "png"... or "dicom"
    annotations: dict[str, np.ndarray] = field(default_factory=dict)  # annotator -> (7, 2)
    spacing_mm: Spacing | None = None
    split: str = ""


@dataclass
class Manifest:
    layout: str
    images: list[ImageRecord]
    annotators: list[str]
    problems: list[LayoutProblem]
    files: list[str]  # every regular file (relative), for the content hash
    schema: str = "isbi19"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def detect_layout(root: Path) -> str:
    """The layout of a folder, from its shape; ``LayoutError`` when none fits."""
    if (root / "landmarks.json").is_file():  # an explicit table wins over the folder shape
        return "json"
    if (root / "landmarks.csv").is_file():
        return "csv"
    if (root / "images").is_dir() and (root / "annotations").is_dir():
        return "isbi"
    if any(p.suffix.lower() in DICOM_SUFFIXES for p in root.rglob("*") if p.is_file()):
        return "dicom"
    raise LayoutError(
        "layout_unknown",
        "No dataset layout recognised: expected images/ + annotations/<annotator>/ (ISBI), "
        "landmarks.csv, landmarks.json or DICOM files.",
    )


def to_seven(points: np.ndarray) -> np.ndarray:
    """Schema mapping: 19 ISBI points -> our seven; seven points stay as they are."""
    if len(points) == N_LANDMARKS:
        return points.astype(float)
    return points[[n - 1 for n in ISBI_NUMBERS]].astype(float)


def parse_points_text(text: str) -> tuple[np.ndarray | None, str]:
    """Lines ``x,y`` -> (7, 2) points (nan where a coordinate is missing) and a problem
    code ("" when fine): annotation_unparseable, annotation_landmark_count."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) not in (ISBI_COUNT, N_LANDMARKS):
        return None, "annotation_landmark_count"
    points = np.empty((len(lines), 2))
    for i, line in enumerate(lines):
        parts = line.split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            points[i] = (float(parts[0]), float(parts[1]))
        except ValueError:
            return None, "annotation_unparseable"
    return to_seven(points), ""


def split_of(key: str, *, shares: tuple[float, float, float] = DEFAULT_SPLIT_SHARES) -> str:
    """A fixed split from the case id alone (stable across machines and re-registrations)."""
    u = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if u < shares[0]:
        return "train"
    return "validation" if u < shares[0] + shares[1] else "test"


def _read_splits(root: Path, problems: list[LayoutProblem]) -> dict[str, str]:
    path = root / SPLITS_FILE
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key, split = (row.get("image") or "").strip(), (row.get("split") or "").strip().lower()
            if split not in SPLITS:
                problems.append(
                    LayoutProblem(
                        "split_invalid",
                        "error",
                        SPLITS_FILE,
                        f"Split {split!r} of {key!r} is not one of {', '.join(SPLITS)}.",
                    )
                )
                continue
            out[Path(key).stem] = split
    return out


def _finish(manifest: Manifest, root: Path, spacing: Spacing | None) -> Manifest:
    splits = _read_splits(root, manifest.problems)
    for rec in manifest.images:
        rec.split = rec.split or splits.get(rec.key) or split_of(rec.key)
        if rec.spacing_mm is None:
            rec.spacing_mm = spacing
    manifest.images.sort(key=lambda r: r.key)
    return manifest


def _walk(root: Path, max_files: int) -> Iterator[Path]:
    yield from iter_files_under(root, max_files=max_files)


def read_isbi(root: Path, *, spacing: Spacing | None, max_files: int) -> Manifest:
    files: list[str] = []
    images: dict[str, ImageRecord] = {}
    ann_files: dict[str, dict[str, Path]] = {}
    problems: list[LayoutProblem] = []
    ann_root = root / "annotations"
    for path in _walk(root, max_files):
        rel = _rel(path, root)
        files.append(rel)
        parts = Path(rel).parts
        if parts[0] == "images" and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in images:
                problems.append(
                    LayoutProblem(
                        "image_name_clash",
                        "error",
                        rel,
                        f"Two images share the case id {path.stem!r}.",
                    )
                )
                continue
            images[path.stem] = ImageRecord(key=path.stem, file=rel, fmt=path.suffix.lower()[1:])
        elif parts[0] == "annotations" and len(parts) == 3 and path.suffix.lower() == ".txt":
            ann_files.setdefault(parts[1], {})[path.stem] = path
    annotators = sorted(ann_files)
    if not annotators and ann_root.is_dir():
        problems.append(
            LayoutProblem(
                "annotations_missing",
                "critical",
                "annotations",
                "No annotator folder with .txt files under annotations/.",
            )
        )
    for annotator in annotators:
        for key, path in sorted(ann_files[annotator].items()):
            rel = _rel(path, root)
            if key not in images:
                problems.append(
                    LayoutProblem(
                        "annotation_without_image",
                        "error",
                        rel,
                        f"Annotation of {annotator} has no image {key}.",
                        annotator=annotator,
                    )
                )
                continue
            points, code = parse_points_text(path.read_text(encoding="utf-8", errors="replace"))
            if points is None:
                problems.append(_annotation_problem(code, rel, annotator))
                continue
            images[key].annotations[annotator] = points
    for rec in images.values():
        for annotator in annotators:
            if annotator not in rec.annotations and rec.key not in ann_files[annotator]:
                problems.append(
                    LayoutProblem(
                        "image_without_annotation",
                        "warning",
                        rec.file,
                        f"Image {rec.key} has no annotation by {annotator}.",
                        annotator=annotator,
                    )
                )
    manifest = Manifest("isbi", list(images.values()), annotators, problems, files)
    return _finish(manifest, root, spacing)


def _annotation_problem(code: str, rel: str, annotator: str) -> LayoutProblem:
    message = {
        "annotation_landmark_count": f"Expected {ISBI_COUNT} (ISBI) or {N_LANDMARKS} lines 'x,y'.",
        "annotation_unparseable": "A line is not 'x,y' with two numbers.",
    }.get(code, code)
    return LayoutProblem(code, "error", rel, message, annotator=annotator)


def _landmark_index(name: str) -> int | None:
    name = name.strip()
    if name in BY_ABBREVIATION:
        return BY_ABBREVIATION[name].index
    if name.isdigit() and int(name) in ISBI_NUMBERS:
        return ISBI_NUMBERS.index(int(name))
    return None


def _fmt(file: str) -> str:
    suffix = Path(file).suffix.lower()
    return "dicom" if suffix in DICOM_SUFFIXES else suffix[1:]


def _add_point(rec: ImageRecord, annotator: str, index: int, xy: tuple[float, float]) -> None:
    pts = rec.annotations.setdefault(annotator, np.full((N_LANDMARKS, 2), np.nan))
    pts[index] = xy


def _spacing_pair(values: object) -> Spacing | None:
    try:
        row, col = (float(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (row, col) if row > 0 and col > 0 else None


def read_table(
    root: Path,
    *,
    layout: str,
    spacing: Spacing | None,
    max_files: int,
    suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
) -> Manifest:
    """``landmarks.csv`` (columns image, annotator, landmark, x, y; optional split,
    spacing_row_mm, spacing_col_mm) or ``landmarks.json`` ({"images": [{"file", "split",
    "spacing_mm": [row, col], "annotations": {annotator: {landmark: [x, y]}}}]})."""
    files = [_rel(p, root) for p in _walk(root, max_files)]
    by_stem = {Path(f).stem: f for f in files if Path(f).suffix.lower() in suffixes}
    problems: list[LayoutProblem] = []
    records: dict[str, ImageRecord] = {}
    table = root / f"landmarks.{layout}"
    rows = _csv_rows(table) if layout == "csv" else _json_rows(table)
    for n, row in enumerate(rows, start=2 if layout == "csv" else 1):
        where = f"{table.name}:{n}"
        key = Path(str(row.get("image", ""))).stem
        if key not in by_stem:
            problems.append(
                LayoutProblem(
                    "annotation_without_image",
                    "error",
                    where,
                    f"Row names image {row.get('image')!r}, which is not in the folder.",
                )
            )
            continue
        rec = records.setdefault(
            key, ImageRecord(key=key, file=by_stem[key], fmt=_fmt(by_stem[key]))
        )
        split = str(row.get("split") or "").lower()
        if split and split not in SPLITS:
            problems.append(
                LayoutProblem(
                    "split_invalid",
                    "error",
                    where,
                    f"Split {split!r} is not one of {', '.join(SPLITS)}.",
                )
            )
        elif split:
            rec.split = split
        rec.spacing_mm = rec.spacing_mm or _spacing_pair(row.get("spacing_mm") or ())
        annotator = str(row.get("annotator") or "annotator")
        for landmark, xy in row["points"]:
            index = _landmark_index(landmark)
            if index is None:
                problems.append(
                    LayoutProblem(
                        "landmark_unknown",
                        "warning",
                        where,
                        f"Landmark {landmark!r} is not in the schema ({', '.join(ABBREVIATIONS)}).",
                        annotator=annotator,
                    )
                )
                continue
            try:
                _add_point(rec, annotator, index, (float(xy[0]), float(xy[1])))
            except (TypeError, ValueError, IndexError):
                problems.append(
                    LayoutProblem(
                        "annotation_unparseable",
                        "error",
                        where,
                        f"Coordinates of {landmark} are not two numbers.",
                        annotator=annotator,
                        landmark=landmark,
                    )
                )
    annotators = sorted({a for r in records.values() for a in r.annotations})
    for key, file in by_stem.items():
        if key not in records:
            problems.append(
                LayoutProblem(
                    "image_without_annotation",
                    "warning",
                    file,
                    f"Image {key} has no row in the table.",
                )
            )
            records[key] = ImageRecord(key=key, file=file, fmt=_fmt(file))
    manifest = Manifest(layout, list(records.values()), annotators, problems, files, schema="seven")
    return _finish(manifest, root, spacing)


def _csv_rows(path: Path) -> Iterator[dict]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"image", "landmark", "x", "y"} - set(reader.fieldnames or ())
            if missing:
                raise LayoutError(
                    "table_invalid",
                    f"{path.name} lacks the column(s) {', '.join(sorted(missing))}.",
                )
            for row in reader:
                spacing = (row.get("spacing_row_mm"), row.get("spacing_col_mm"))
                yield {
                    **row,
                    "spacing_mm": spacing if all(spacing) else (),
                    "points": [(row["landmark"], (row["x"], row["y"]))],
                }
    except UnicodeDecodeError:
        raise LayoutError("table_invalid", f"{path.name} is not UTF-8 text.") from None


def _json_rows(path: Path) -> Iterator[dict]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError("table_invalid", f"{path.name} is not valid JSON: {exc}") from None
    items = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise LayoutError("table_invalid", f'{path.name} must hold {{"images": [...]}}.')
    for item in items:
        if not isinstance(item, dict):
            continue
        anns = item.get("annotations") or {}
        for annotator, points in anns.items() if isinstance(anns, dict) else ():
            if isinstance(points, list):  # a list of 7 or 19 [x, y]
                arr = np.asarray(points, dtype=float) if points else np.empty((0, 2))
                points = (
                    dict(zip(ABBREVIATIONS, to_seven(arr).tolist(), strict=False))
                    if len(arr) in (7, 19)
                    else {}
                )
            yield {
                "image": item.get("file", ""),
                "split": item.get("split"),
                "annotator": annotator,
                "spacing_mm": item.get("spacing_mm") or (),
                "points": list(points.items()) if isinstance(points, dict) else [],
            }
        if not anns:
            yield {
                "image": item.get("file", ""),
                "split": item.get("split"),
                "points": [],
                "spacing_mm": item.get("spacing_mm") or (),
            }


def read_dicom_folder(root: Path, *, spacing: Spacing | None, max_files: int) -> Manifest:
    """DICOM files (spacing from each header at import); landmarks from an optional
    landmarks.csv / landmarks.json beside them, keyed by file stem."""
    table = next((n for n in TABLE_NAMES if (root / n).is_file()), None)
    if table is not None:
        layout = table.split(".")[1]
        manifest = read_table(
            root, layout=layout, spacing=spacing, max_files=max_files, suffixes=DICOM_SUFFIXES
        )
        manifest.layout = "dicom"
        return manifest
    files = [_rel(p, root) for p in _walk(root, max_files)]
    images = [
        ImageRecord(key=Path(f).stem, file=f, fmt="dicom")
        for f in files
        if Path(f).suffix.lower() in DICOM_SUFFIXES
    ]
    return _finish(Manifest("dicom", images, [], [], files, schema="seven"), root, spacing)


def read_manifest(
    root: Path, *, layout: str = "", spacing: Spacing | None = None, max_files: int = 200_000
) -> Manifest:
    """The manifest of a folder (``layout`` detected when empty)."""
    layout = layout or detect_layout(root)
    if layout == "isbi":
        return read_isbi(root, spacing=spacing, max_files=max_files)
    if layout in ("csv", "json"):
        if not (root / f"landmarks.{layout}").is_file():
            raise LayoutError("table_missing", f"The folder has no landmarks.{layout}.")
        return read_table(root, layout=layout, spacing=spacing, max_files=max_files)
    if layout == "dicom":
        return read_dicom_folder(root, spacing=spacing, max_files=max_files)
    raise LayoutError("layout_unknown", f"Unknown layout {layout!r}: one of {', '.join(LAYOUTS)}.")
