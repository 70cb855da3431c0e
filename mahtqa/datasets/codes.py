# ruff: noqa: E501 - a catalogue: one code per line reads best
"""Every finding code a validation run can report, with its usual severity and what it
means. ``docs/datasets.md`` lists the same table (a test keeps them in step)."""

from __future__ import annotations

from mahtqa.cephalometry.plausibility import ORDER_CODES, RANGE_CODES, SHAPE_CODE
from mahtqa.datasets.quality import QUALITY_CODES

FINDING_CODES: dict[str, tuple[str, str]] = {
    # reading the folder (registration)
    "annotation_landmark_count": (
        "error",
        "An annotation file has neither 19 (ISBI) nor 7 lines 'x,y'.",
    ),
    "annotation_unparseable": ("error", "A line or a table cell is not two numbers."),
    "annotation_without_image": (
        "error",
        "An annotation (file or table row) names an image that is not there.",
    ),
    "image_without_annotation": ("warning", "An image has no annotation by one of the annotators."),
    "image_name_clash": ("error", "Two images share one case id (file stem)."),
    "annotations_missing": ("critical", "annotations/ holds no annotator folder with .txt files."),
    "split_invalid": ("error", "A split is not train, validation or test."),
    "landmark_unknown": ("warning", "A table names a landmark outside the schema."),
    # file integrity
    "image_missing": ("critical", "A registered image is no longer on disk."),
    "image_unreadable": ("critical", "The file cannot be read (permissions, I/O error)."),
    "image_zero_byte": ("critical", "The file is empty."),
    "image_corrupted": ("critical", "The bytes do not decode as an image."),
    "image_truncated": ("critical", "The file is cut short (no PNG IEND / JPEG EOI marker)."),
    "file_changed": (
        "critical",
        "The file's sha256 differs from the registered one: the version is not what it was.",
    ),
    # annotation validity
    "annotation_nan": ("error", "A landmark has no coordinates."),
    "annotation_outside_image": ("error", "A landmark lies outside the image."),
    "annotation_duplicate_points": ("error", "Two landmarks of one annotator are the same point."),
    **{
        f"anatomy_{c}": ("error", "Anatomical ordering rule of the clinical checks failed.")
        for c in ORDER_CODES
    },
    **{
        f"anatomy_{c}": ("warning", "A cephalometric measurement is outside its safety range.")
        for c in RANGE_CODES
    },
    f"anatomy_{SHAPE_CODE}": (
        "warning",
        "The landmark configuration is atypical for the shape model.",
    ),
    # annotator consistency
    "annotator_disagreement": (
        "warning",
        "Two annotators place a landmark further apart than the threshold.",
    ),
    "annotators_disagree_all": (
        "error",
        "Two annotators disagree on every landmark: a swapped or misnamed file?",
    ),
    "annotator_least_consistent": ("info", "The two landmarks the annotators agree on least."),
    # balance and leakage
    "duplicate_image": ("warning", "Identical images (same sha256) within one split."),
    "split_leakage_duplicate": ("error", "Identical images in different splits."),
    "split_leakage_near_duplicate": ("error", "Near-identical images (dHash) in different splits."),
    "split_empty": ("warning", "A split has no image."),
    "split_small": ("info", "A split holds under 5 % of the images."),
    "spacing_unknown": ("warning", "Images without pixel spacing: distances are in pixels."),
    "spacing_inconsistent": ("warning", "More than one pixel spacing in the version."),
    "size_inconsistent": ("info", "More than one image size in the version."),
    "split_position_shift": (
        "warning",
        "A split's mean landmark position is far from the dataset's.",
    ),
    # image quality
    **{code: ("warning", text) for code, text in QUALITY_CODES.items()},
}
FINDING_CODES["quality_low_resolution"] = ("error", QUALITY_CODES["quality_low_resolution"])
FINDING_CODES["quality_burned_in_text"] = ("info", QUALITY_CODES["quality_burned_in_text"])
