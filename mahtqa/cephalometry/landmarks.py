"""The landmark schema: the seven cephalometric landmarks MAHT-Net finds.

Order matters: it is the channel order of the model's heatmaps and the order of
every landmark array (shape ``(7, 2)``, columns ``x, y`` in pixels) in the project.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Landmark:
    index: int  # position in every (7, 2) array
    abbreviation: str
    name: str
    isbi_number: int  # 1-based line number in the ISBI 2015 annotation files


LANDMARKS: tuple[Landmark, ...] = (
    Landmark(0, "S", "Sella", 1),
    Landmark(1, "N", "Nasion", 2),
    Landmark(2, "A", "Subspinale (A-point)", 5),
    Landmark(3, "B", "Supramentale (B-point)", 6),
    Landmark(4, "Pog", "Pogonion", 7),
    Landmark(5, "Me", "Menton", 8),
    Landmark(6, "Gn", "Gnathion", 9),
)

ABBREVIATIONS: tuple[str, ...] = tuple(lm.abbreviation for lm in LANDMARKS)
ISBI_NUMBERS: tuple[int, ...] = tuple(lm.isbi_number for lm in LANDMARKS)
N_LANDMARKS = len(LANDMARKS)
BY_ABBREVIATION = {lm.abbreviation: lm for lm in LANDMARKS}


def landmark_index(abbreviation: str) -> int:
    """Index of a landmark by its abbreviation (``KeyError`` if unknown)."""
    return BY_ABBREVIATION[abbreviation].index
