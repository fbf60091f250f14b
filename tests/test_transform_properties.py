"""Property-based checks of the pre- and post-processing over image sizes and box coordinates."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from medsam_laptop.inference.transforms import (
    MODEL_SIZE,
    box_to_model,
    logits_to_mask,
    model_input,
    prior_box,
    resized_shape,
)

sizes = st.integers(min_value=1, max_value=1500)


@given(sizes, sizes)
def test_resized_image_fits_the_model_input(h, w):
    rh, rw = resized_shape(h, w)
    assert max(rh, rw) == MODEL_SIZE and 1 <= min(rh, rw) <= MODEL_SIZE


@given(sizes, sizes, st.data())
def test_boxes_map_inside_the_model_input(h, w, data):
    x0 = data.draw(st.integers(0, w - 1))
    x1 = data.draw(st.integers(x0, w - 1))
    y0 = data.draw(st.integers(0, h - 1))
    y1 = data.draw(st.integers(y0, h - 1))
    ((bx0, by0, bx1, by1),) = box_to_model(np.array([[x0, y0, x1, y1]]), h, w)
    rh, rw = resized_shape(h, w)
    assert 0 <= bx0 <= bx1 <= rw and 0 <= by0 <= by1 <= rh


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 700), st.integers(1, 700), st.integers(0, 2**32 - 1))
def test_masks_keep_the_input_shape_and_map_back(h, w, seed):
    logits = np.random.default_rng(seed).normal(size=(MODEL_SIZE, MODEL_SIZE)).astype(np.float32)
    mask = logits_to_mask(logits, h, w)
    assert mask.shape == (h, w) and mask.dtype == bool
    # Only the resized image's region (rh x rw, top left) maps back; the padding never leaks in. Logits
    # of one sign there and of the other, far larger, in the padding tell a missing or a wrong crop.
    rh, rw = resized_shape(h, w)
    valid = np.zeros((MODEL_SIZE, MODEL_SIZE), dtype=bool)
    valid[:rh, :rw] = True
    inside = np.where(valid, 1.0, -1000.0).astype(np.float32)
    assert logits_to_mask(inside, h, w).all()
    assert not logits_to_mask(-inside, h, w).any()


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 600), st.integers(2, 600), st.integers(1, 300), st.data())
def test_prior_box_stays_in_the_model_input(h, w, label, data):
    y, x = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    mask = np.zeros((h, w), dtype=bool)
    mask[y : y + 40, x : x + 40] = True
    box = prior_box(mask, label)
    if box is not None:
        assert 0 <= box[0] <= box[2] <= MODEL_SIZE and 0 <= box[1] <= box[3] <= MODEL_SIZE


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 400), st.integers(1, 400), st.booleans())
def test_model_input_is_normalised_and_padded(h, w, grey):
    image = np.random.default_rng(h * 1000 + w).integers(0, 256, size=(h, w) if grey else (h, w, 3), dtype=np.uint8)
    x = model_input(image)
    rh, rw = resized_shape(h, w)
    assert x.shape == (1, 3, MODEL_SIZE, MODEL_SIZE) and 0 <= x.min() and x.max() <= 1
    assert not x[..., rh:, :].any() and not x[..., :, rw:].any()
