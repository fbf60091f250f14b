"""The modality token of a data-aware decoder (litemedsam-modality): which learned token a case gets.

The challenge's file names carry the modality group (`case_files.modality_group`: `2DBox_<Modality>_...`,
`3DBox_<CT|MR|PET>_...`). A modality-aware decoder adds one learned 256-vector per known group to its
prompt tokens; index 0 is the generic token, all zeros, which every name of no known group gets, so that
such a case runs the general decoder. The token is chosen by a one-hot vector: the decoder graph takes it
as an input and multiplies it with its token table.
"""

import numpy as np

from .io.case_files import modality_group

# The groups of the training data, in token order (token k + 1 is group k; 0 is the generic token).
MODALITY_GROUPS = (
    "2DBox_CT",
    "2DBox_Dermoscopy",
    "2DBox_Endoscopy",
    "2DBox_MR",
    "2DBox_Mammography",
    "2DBox_Microscopy",
    "2DBox_OCT",
    "2DBox_US",
    "2DBox_XRay",
    "3DBox_CT",
    "3DBox_MR",
    "3DBox_PET",
)


def modality_index(case: str, groups: tuple[str, ...] = MODALITY_GROUPS) -> int:
    """The token of a case name: 1 + its group's position in `groups`, or 0 (generic) for another name."""
    group = modality_group(case)
    return groups.index(group) + 1 if group in groups else 0


def modality_one_hot(case: str, groups: tuple[str, ...] = MODALITY_GROUPS) -> np.ndarray:
    """(1, len(groups) + 1) float32: 1 at `modality_index(case)`, 0 elsewhere."""
    one_hot = np.zeros((1, len(groups) + 1), dtype=np.float32)
    one_hot[0, modality_index(case, groups)] = 1.0
    return one_hot
