"""Surfel areas and contour lengths checked against geometry worked out by hand."""

import math

import numpy as np
import pytest

from evaluation.lookup_tables import contour_length_table, surface_area_table


def code_of(cell: np.ndarray) -> int:
    """Neighbour code of a 2x2x2 cell: voxel [a, b, c] carries bit 7 - (4a + 2b + c)."""
    return sum(1 << (7 - (4 * a + 2 * b + c)) for a, b, c in zip(*np.nonzero(cell)))


def test_single_voxel_is_an_octahedron():
    # Marching cubes turns one voxel into the octahedron with vertices half a voxel from its
    # centre along each axis: edge 0.5 * sqrt(2), area 2 * sqrt(3) * edge^2 = sqrt(3).
    areas = surface_area_table((1.0, 1.0, 1.0))
    corners = [
        code_of(np.pad(np.ones((1, 1, 1), bool), ((1 - a, a), (1 - b, b), (1 - c, c))))
        for a, b, c in np.ndindex(2, 2, 2)
    ]
    assert sorted(corners) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert sum(areas[c] for c in corners) == pytest.approx(math.sqrt(3))


def test_flat_cell_area_scales_with_the_two_in_plane_spacings():
    half = np.zeros((2, 2, 2), bool)
    half[1] = True  # a face perpendicular to axis 0 crosses the cell
    assert surface_area_table((2.0, 3.0, 5.0))[code_of(half)] == pytest.approx(3.0 * 5.0)
    half = np.zeros((2, 2, 2), bool)
    half[:, :, 0] = True  # perpendicular to axis 2
    assert surface_area_table((2.0, 3.0, 5.0))[code_of(half)] == pytest.approx(2.0 * 3.0)


def test_edge_cell_is_a_bevel():
    # Voxels [1, 1, *] inside: the cut joins the midpoints (0.5, 1) and (1, 0.5) of the (a, b)
    # square and runs the whole cell along axis 2: sqrt(0.5^2 s0^2 + 0.5^2 s1^2) * s2.
    edge = np.zeros((2, 2, 2), bool)
    edge[1, 1, :] = True
    s0, s1, s2 = 1.5, 0.5, 2.0
    assert surface_area_table((s0, s1, s2))[code_of(edge)] == pytest.approx(math.hypot(0.5 * s0, 0.5 * s1) * s2)


def test_inside_and_outside_swap_gives_the_same_area():
    areas = surface_area_table((0.7, 1.3, 3.27))
    assert areas[0] == areas[255] == 0
    np.testing.assert_allclose(areas, areas[::-1], rtol=1e-12)
    assert (areas[1:255] > 0).all()


def test_contour_lengths_by_hand():
    s0, s1 = 2.0, 3.0
    lengths = contour_length_table((s0, s1))
    half_diagonal = 0.5 * math.hypot(s0, s1)
    assert lengths[0] == lengths[15] == 0
    for code in (1, 2, 4, 8, 7, 11, 13, 14):  # one corner in or one corner out
        assert lengths[code] == pytest.approx(half_diagonal)
    assert lengths[0b0011] == lengths[0b1100] == pytest.approx(s1)  # bottom / top row: cut along axis 1
    assert lengths[0b0101] == lengths[0b1010] == pytest.approx(s0)  # right / left column
    assert lengths[0b0110] == lengths[0b1001] == pytest.approx(2 * half_diagonal)  # saddle
