"""ui.plots.overlay_picture: the Analyze pictures whose opacity slider and switches run in the
browser (issue 18). Checks the figure the browser receives: what each control changes, where
the overlays sit in the scan's pixel coordinates, and that an empty overlay gets no switch."""
from __future__ import annotations

import numpy as np
import pytest

from ui.plots import OPACITY_STEP, jet_colours, outline_xy, overlay_picture


def _scan(n: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    return ((((xx - n / 2) ** 2 + (yy - n / 2) ** 2) < (n / 3) ** 2) * 150).astype(np.uint8)


def test_heat_map_slider_and_box_switch():
    heat = np.zeros((32, 32), np.float32)
    heat[8:16, 8:16] = 1.0
    fig = overlay_picture(_scan(), heat=heat, opacity=0.4,
                          boxes=[dict(name="cam", box=(10, 20, 30, 40), colour=(255, 0, 255),
                                      group="box")],
                          toggles=[dict(group="box", label="Box", on=False)])
    assert len(fig.data) == 2 and fig.data[1].opacity == 0.4
    (slider,) = fig.layout.sliders
    assert len(slider.steps) == round(1 / OPACITY_STEP) + 1 and slider.active == 8
    assert all(list(s.args[1]) == [1] for s in slider.steps)          # trace 1 only
    (shape,) = fig.layout.shapes
    # half-open pixel box -> the edges between pixels
    assert (shape.x0, shape.y0, shape.x1, shape.y1) == (9.5, 19.5, 29.5, 39.5)
    assert shape.visible is False
    (menu,) = fig.layout.updatemenus
    (button,) = menu.buttons
    assert menu.active == -1          # so the first click runs args (on), the next args2 (off)
    assert button.args == ({"shapes[0].visible": True},)
    assert button.args2 == ({"shapes[0].visible": False},)


def test_outline_and_two_switches_and_an_empty_mask():
    mask = np.zeros((64, 64), bool)
    mask[20:30, 25:40] = True
    fig = overlay_picture(_scan(), outlines=[dict(name="outline", mask=mask, colour=(255, 215, 0),
                                                  group="o")],
                          boxes=[dict(name="det", box=(25, 20, 40, 30), colour=(0, 255, 0),
                                      group="o"),
                                 dict(name="cam", box=None, colour=(255, 0, 255), group="c")],
                          toggles=[dict(group="o", label="Outline", on=True),
                                   dict(group="c", label="CAM", on=False)])
    assert not fig.layout.sliders                     # no heat map, no slider
    line = fig.data[1]
    assert line.visible is True and line.mode == "lines"
    xs = [x for x in line.x if x is not None]
    assert min(xs) == 25 and max(xs) == 39           # pixel centres of the mask's edge
    # the Grad-CAM box is None (an all-zero map): its switch is left out, the outline's stays
    (menu,) = fig.layout.updatemenus
    (button,) = menu.buttons
    assert button.label == "Outline on/off" and button.method == "update"
    assert button.args[0] == {"visible": False} and list(button.args[2]) == [1]
    assert outline_xy(np.zeros((8, 8), bool)) == ([], [])
    with pytest.raises(ValueError, match="two switches"):
        overlay_picture(_scan(), boxes=[dict(name=str(i), box=(1, 1, 5, 5), colour=(0, 0, 0),
                                             group=str(i)) for i in range(3)],
                        toggles=[dict(group=str(i), label=str(i)) for i in range(3)])


def test_jet_colours_are_the_blend_colours():
    from core.classifier.gradcam import overlay_heatmap

    heat = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    black = np.zeros((64, 64), np.uint8)
    # blending over black at opacity 1 leaves exactly the heat map's colours
    np.testing.assert_array_equal(overlay_heatmap(black, heat, 1.0), jet_colours(heat, (64, 64)))
