"""Pre- and post-processing follow the organizers' rules exactly."""

import cv2
import numpy as np
import pytest

from conftest import require_torch
from medsam_laptop.inference.transforms import box_to_model, logits_to_mask, model_input, prior_box, resized_shape


@pytest.mark.parametrize(
    "shape, expected",
    [((1070, 1348), (203, 256)), ((512, 512), (256, 256)), ((128, 100), (256, 200)), ((3, 1000), (1, 256))],
)
def test_resized_shape_rounds_half_up(shape, expected):
    assert resized_shape(*shape) == expected


def test_model_input_is_min_max_normalised_and_zero_padded():
    rng = np.random.default_rng(0)
    image = rng.integers(20, 200, size=(300, 150, 3), dtype=np.uint8)
    x = model_input(image)
    assert x.shape == (1, 3, 256, 256) and x.dtype == np.float32
    content = x[0, :, :256, :128]
    assert content.min() == 0.0 and content.max() == 1.0
    assert not x[0, :, :, 128:].any()


def test_grey_slice_input_equals_its_three_channel_copy():
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, size=(173, 226), dtype=np.uint8)
    np.testing.assert_array_equal(model_input(grey), model_input(np.repeat(grey[:, :, None], 3, axis=-1)))


def test_flat_image_does_not_divide_by_zero():
    assert not model_input(np.full((40, 40, 3), 7, dtype=np.uint8)).any()


def test_boxes_scale_by_longest_side_and_truncate():
    boxes = np.array([[195, 285, 912, 1048]])
    np.testing.assert_array_equal(box_to_model(boxes, 1070, 1348), [[37, 54, 173, 199]])


def test_logits_upsample_like_torch_bilinear():
    torch = require_torch()
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(256, 256)).astype(np.float32)
    h, w = 300, 401
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(logits[None, None, :192, :256]), size=(h, w), mode="bilinear", align_corners=False
    )
    expected = (torch.sigmoid(expected)[0, 0] > 0.5).numpy()
    mask = logits_to_mask(logits, h, w)
    assert mask.shape == (h, w)
    assert (mask != expected).sum() <= 2  # float rounding at the zero crossing only


def test_prior_box_widens_by_three_and_clips():
    mask = np.zeros((512, 512), dtype=bool)
    mask[100:201, 0:50] = True  # rows 100..200, cols 0..49 -> 256-space rows 50..100, cols 0..24
    np.testing.assert_array_equal(prior_box(mask, 1), [0, 47, 27, 103])


def test_prior_box_keeps_the_label_value_quirk():
    # A single pixel of a 512 x 512 mask covers a quarter of a 256-space pixel: INTER_AREA rounds
    # label * 0.25 to 0 for label 1 and to 1 for label 3, so only label 3 yields a box.
    mask = np.zeros((512, 512), dtype=bool)
    mask[300, 300] = True
    assert prior_box(mask, 1) is None
    np.testing.assert_array_equal(prior_box(mask, 3), [147, 147, 153, 153])
    small = cv2.resize(mask.astype(np.uint8) * 3, (256, 256), interpolation=cv2.INTER_AREA)
    assert small.max() == 1
