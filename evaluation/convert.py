"""NIfTI <-> challenge npz cases (3D), with the organizers' intensity preprocessing.

Axis orders: nibabel arrays are (x, y, z); challenge arrays are (z, y, x), as SimpleITK's
``GetArrayFromImage`` gives them, and ``spacing`` is stored in SimpleITK's (x, y, z) order.
Both readers return the voxels in file order, so the conversion is a transpose (2, 1, 0).
"""

from pathlib import Path

import nibabel as nib
import numpy as np

from medsam_laptop.io.cases import label_dtype

CT_WINDOW = (40.0, 400.0)  # level, width: soft tissue, the organizers' default
MIN_VOXELS_3D = 30


def preprocess_intensities(image: np.ndarray, modality: str, window: tuple[float, float] = CT_WINDOW) -> np.ndarray:
    """Intensities to uint8 as the organizers' pre_CT_MR.py does.

    Args:
        image: any-shape array of raw intensities (CT in HU).
        modality: "CT": clip to level -/+ width / 2, then min-max to 0..255. Other ("MR", "PET"):
            clip to the 0.5 / 99.5 percentiles of the voxels > 0, min-max to 0..255, and voxels
            that were 0 stay 0.
        window: CT (level, width).

    Returns:
        uint8 array of the same shape; the float values are truncated (np.uint8), not rounded.
        A constant image (max == min after clipping) gives zeros.
    """
    image = np.asarray(image, dtype=np.float64)
    if modality == "CT":
        level, width = window
        clipped = np.clip(image, level - width / 2, level + width / 2)
    else:
        positive = image[image > 0]
        if positive.size == 0:
            return np.zeros(image.shape, np.uint8)
        clipped = np.clip(image, np.percentile(positive, 0.5), np.percentile(positive, 99.5))
    low, high = clipped.min(), clipped.max()
    if high == low:
        return np.zeros(image.shape, np.uint8)
    scaled = (clipped - low) / (high - low) * 255.0
    if modality != "CT":
        scaled[image == 0] = 0
    return scaled.astype(np.uint8)


def clean_labels(labels: np.ndarray, min_voxels: int = MIN_VOXELS_3D) -> tuple[np.ndarray, list[int]]:
    """Drop labels too small for a box prompt and renumber the rest 1..N in label order.

    A label is dropped when it has fewer than ``min_voxels`` voxels or covers a single slice
    along axis 0 (the organizers' 3D inference asserts z_min < z_max); dropped voxels become 0.

    Args:
        labels: (D, H, W) integer label map.

    Returns:
        (gts, kept): gts uint8 (uint16 above 255 labels) with labels 1..N; kept[k-1] is the
        original label of new label k.
    """
    kept = []
    for label in np.unique(labels):
        if label <= 0:
            continue
        z = np.flatnonzero((labels == label).any(axis=(1, 2)))
        if np.count_nonzero(labels == label) >= min_voxels and z[-1] > z[0]:
            kept.append(int(label))
    gts = np.zeros(labels.shape, label_dtype(len(kept)))
    for new, old in enumerate(kept, start=1):
        gts[labels == old] = new
    return gts, kept


def boxes_3d(gts: np.ndarray) -> np.ndarray:
    """Tight box per label 1..gts.max() of a (D, H, W) map.

    Returns:
        (N, 6) int64 ``[x_min, y_min, z_min, x_max, y_max, z_max]``, max inclusive (x = axis 2,
        y = axis 1, z = axis 0).
    """
    boxes = np.zeros((int(gts.max()), 6), np.int64)
    for k in range(1, int(gts.max()) + 1):
        z, y, x = np.nonzero(gts == k)
        boxes[k - 1] = [x.min(), y.min(), z.min(), x.max(), y.max(), z.max()]
    return boxes


def nifti_to_npz(
    image_path: Path,
    label_path: Path,
    out_dir: Path,
    case: str,
    modality: str,
    window: tuple[float, float] = CT_WINDOW,
    min_voxels: int = MIN_VOXELS_3D,
) -> tuple[Path, Path]:
    """Write ``out_dir/imgs/<name>`` (imgs, boxes, spacing) and ``out_dir/gts/<name>`` (gts, spacing).

    ``name`` is ``3DBox_<modality>_<case>.npz``. imgs: (D, H, W) uint8; gts: (D, H, W) labels
    1..N (see clean_labels); spacing: float64 (3,) in (x, y, z) order from the NIfTI zooms.

    Returns:
        The two written paths (imgs, gts).
    """
    image_nii, label_nii = nib.load(str(image_path)), nib.load(str(label_path))
    if image_nii.shape[:3] != label_nii.shape[:3] or len(image_nii.shape) != 3:
        raise ValueError(f"need 3D image and labels of one shape, got {image_nii.shape} and {label_nii.shape}")
    if not np.allclose(image_nii.affine, label_nii.affine, atol=1e-4):
        raise ValueError("image and label affines differ")
    image = image_nii.get_fdata().transpose(2, 1, 0)
    labels = np.rint(label_nii.get_fdata()).astype(np.int64).transpose(2, 1, 0)
    gts, _ = clean_labels(labels, min_voxels)
    if gts.max() == 0:
        raise ValueError("no label is left after dropping small and single-slice objects")
    spacing = np.array(image_nii.header.get_zooms()[:3], dtype=np.float64)

    name = f"3DBox_{modality}_{case}.npz"
    paths = Path(out_dir) / "imgs" / name, Path(out_dir) / "gts" / name
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        paths[0], imgs=preprocess_intensities(image, modality, window), boxes=boxes_3d(gts), spacing=spacing
    )
    np.savez_compressed(paths[1], gts=gts, spacing=spacing)
    return paths


def segs_to_nifti(
    segs_path: Path, out_path: Path, reference: Path | None = None, spacing_from: Path | None = None
) -> Path:
    """Write the (D, H, W) ``segs`` of an npz file as a NIfTI label map.

    Args:
        segs_path: npz with key ``segs``.
        out_path: the .nii or .nii.gz to write.
        reference: the case's source NIfTI; its affine (orientation, origin, spacing) is used, so
            the result overlays the image in 3D Slicer or ITK-SNAP.
        spacing_from: without a reference, an npz holding ``spacing`` ((x, y, z)); the affine is
            then diag(spacing): orientation and origin are unknown.

    Returns:
        out_path.
    """
    with np.load(segs_path, allow_pickle=False) as npz:
        segs = npz["segs"]
    if segs.ndim != 3:
        raise ValueError(f"segs-to-nifti handles 3D cases, got shape {segs.shape}")
    data = np.ascontiguousarray(segs.transpose(2, 1, 0))
    if reference is not None:
        ref = nib.load(str(reference))
        if ref.shape[:3] != data.shape:
            raise ValueError(f"reference shape {ref.shape} (x, y, z) does not match segs {segs.shape} (z, y, x)")
        image = nib.Nifti1Image(data, ref.affine, header=ref.header)
    elif spacing_from is not None:
        with np.load(spacing_from, allow_pickle=False) as npz:
            spacing = np.asarray(npz["spacing"], dtype=np.float64)
        image = nib.Nifti1Image(data, np.diag([*spacing, 1.0]))
    else:
        raise ValueError("give a reference NIfTI or an npz with the spacing")
    image.set_data_dtype(data.dtype)
    image.header.set_slope_inter(1.0, 0.0)  # a CT reference may carry an intercept; labels must not
    nib.save(image, str(out_path))
    return Path(out_path)
