"""The shared-embedding, all-boxes-per-call 3D propagation equals the organizers' per-box algorithm; the
embedding cache's bound changes the work, never the masks; a box's z range is clipped to the volume, and
z_min == z_max segments that one slice."""

import numpy as np

from helpers import object_dscs
from medsam_laptop.inference import segment
from medsam_laptop.inference.segment import segment_2d, segment_3d, segment_3d_per_box
from medsam_laptop.inference.timer import StageTimer
from medsam_laptop.inference.transforms import model_input
from medsam_laptop.io.cases import read_case

PET = "3DBox_PET_ibsi-sts_STS002.npz"  # 48 x 27 x 30, one box [10, 10, 16, 19, 16, 31]


class MemoEncoder:
    """Wraps an engine so that re-encoding an identical slice costs nothing (the per-box algorithm
    re-encodes every slice for every box); counts the real encoder calls."""

    def __init__(self, engine):
        self.engine, self.cache, self.calls = engine, {}, 0

    def encode(self, image):
        key = image.tobytes()
        if key not in self.cache:
            self.calls += 1
            self.cache[key] = self.engine.encode(image)
        return self.cache[key]

    def decode(self, embedding, boxes):
        return self.engine.decode(embedding, boxes)


def test_multi_box_volume_equals_per_box_algorithm(cases_dir, ov_engine):
    case = read_case(cases_dir / "imgs" / "3DBox_CT_totalseg-modelgt_example-ct-sm.npz")
    assert len(case.boxes) == 40
    fast_timer, slow_timer = StageTimer(), StageTimer()
    fast = segment_3d(ov_engine, case.image, case.boxes, fast_timer)
    slow = segment_3d_per_box(MemoEncoder(ov_engine), case.image, case.boxes, slow_timer)

    assert fast.shape == case.image.shape and fast.dtype == np.uint8
    assert set(np.unique(fast)) == set(np.unique(slow))
    # Batched decoder calls may differ from single-box calls in the last float bits only.
    assert (fast != slow).mean() < 1e-4
    assert min(object_dscs(fast, slow, 40)) >= 0.999
    # Every slice encoded once, however many boxes cross it; the per-box manner encodes per box and slice.
    occupied = {z for b in case.boxes for z in range(int(b[2]), int(b[5]) + 1)}
    assert fast_timer.counts["slices_encoded"] == len(occupied)
    assert slow_timer.counts["slices_encoded"] == sum(int(b[5]) - int(b[2]) + 1 for b in case.boxes)


def _run(engine, volume, boxes):
    timer = StageTimer()
    return segment_3d(engine, volume, np.asarray(boxes, dtype=np.float64), timer), timer.counts["slices_encoded"]


def test_evicting_cached_embeddings_gives_the_same_masks(cases_dir, ov_engine, monkeypatch):
    case = read_case(cases_dir / "imgs" / PET)
    x0, y0, _, x1, y1, _ = case.boxes[0]
    # Box 1: z 16..21, middle 18; box 2: z 17..23, middle 20. The upward sweep encodes 18..23 and the
    # downward sweep needs 19 and 18 again (box 2's range below its middle), so those two are cached.
    boxes = [[x0, y0, 16, x1, y1, 21], [x0, y0, 17, x1, y1, 23]]
    full, full_encoded = _run(ov_engine, case.image, boxes)
    assert full_encoded == 23 - 16 + 1  # every slice once
    assert (full == 2).any()

    one_embedding = ov_engine.encode(model_input(case.image[0])).nbytes
    monkeypatch.setattr(segment, "EMBEDDING_CACHE_BYTES", one_embedding)
    shrunk, shrunk_encoded = _run(ov_engine, case.image, boxes)
    assert shrunk_encoded > full_encoded  # evicted slices were encoded again
    assert np.array_equal(shrunk, full)


def test_z_range_is_clipped_to_the_volume(cases_dir, ov_engine, tmp_path):
    pet = read_case(cases_dir / "imgs" / PET)
    x0, y0, _, x1, y1, _ = pet.boxes[0]
    volume = pet.image[19:25]  # the object's 6 largest slices
    np.savez(tmp_path / "3DBox_beyond.npz", imgs=volume, boxes=np.array([[x0, y0, -4, x1, y1, 9]]))
    beyond = read_case(tmp_path / "3DBox_beyond.npz")  # accepted: the box overlaps the volume

    segs, encoded = _run(ov_engine, beyond.image, beyond.boxes)
    clipped, _ = _run(ov_engine, volume, [[x0, y0, 0, x1, y1, len(volume) - 1]])
    assert encoded == len(volume)
    assert segs.any() and np.array_equal(segs, clipped)


def test_one_slice_box_segments_that_slice_only(cases_dir, ov_engine):
    pet = read_case(cases_dir / "imgs" / PET)
    x0, y0, _, x1, y1, _ = pet.boxes[0]
    z = 22
    segs, encoded = _run(ov_engine, pet.image, [[x0, y0, z, x1, y1, z]])
    assert encoded == 1
    assert not np.delete(segs, z, axis=0).any()
    rgb = np.repeat(pet.image[z][:, :, None], 3, axis=-1)
    flat = segment_2d(ov_engine, rgb, np.array([[x0, y0, x1, y1]]), StageTimer())
    assert segs[z].any() and np.array_equal(segs[z], flat)
