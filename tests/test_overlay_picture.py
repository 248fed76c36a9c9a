"""ui.plots.overlay_picture: the Analyze pictures whose opacity slider and switches run in the
browser (issue 18). Checks the figure the browser receives: what each control changes, where
the overlays sit in the scan's pixel coordinates, and that an empty overlay gets no switch."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from ui.images import png_bytes
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


def test_heat_choices_menu_and_their_boxes():
    """Several maps, one shown at a time from a menu in the figure; each map's box is shown
    with it (menu: "visible") and switched by the box toggle (its opacity), so the two
    controls never undo each other."""
    maps = []
    for k in range(3):
        h = np.zeros((32, 32), np.float32)
        h[4 * k:4 * k + 8, 8:16] = 1.0
        maps.append(h)
    choices = [dict(label=f"class {k}", heat=h, box=(k, k, 10 + k, 10 + k)) for k, h in
               enumerate(maps)]
    choices[2]["box"] = None                           # an empty map has no box
    fig = overlay_picture(_scan(), heat_choices=choices, chosen=1, choice_box_group="box",
                          toggles=[dict(group="box", label="Box", on=False)])
    heats, boxes = fig.data[1:4], fig.data[4:]
    assert [h.type for h in heats] == ["image"] * 3 and len(boxes) == 2
    assert [h.visible for h in heats] == [False, True, False]
    assert [b.visible for b in boxes] == [False, True] and {b.opacity for b in boxes} == {0.0}
    assert list(boxes[1].x) == [0.5, 10.5, 10.5, 0.5, 0.5]       # pixel edges of (1, 1, 11, 11)
    # the slider restyles every map's opacity
    (slider,) = fig.layout.sliders
    assert {tuple(s.args[1]) for s in slider.steps} == {(1, 2, 3)}
    switch, menu = fig.layout.updatemenus
    assert switch.buttons[0].args == ({"opacity": 1.0}, (4, 5))
    assert switch.buttons[0].args2 == ({"opacity": 0.0}, (4, 5))
    assert menu.type == "dropdown" and menu.active == 1
    assert [b.label for b in menu.buttons] == ["class 0", "class 1", "class 2"]
    args = [list(a.values())[0] if isinstance(a, dict) else a for a in menu.buttons[0].args]
    assert [list(a) for a in args] == [[True, False, False, True, False], [1, 2, 3, 4, 5]]
    assert list(menu.buttons[2].args[0]["visible"]) == [False, False, True, False, False]
    # a box switched on at the start is drawn (opacity 1), still only with its map
    on = overlay_picture(_scan(), heat_choices=choices, choice_box_group="box",
                         toggles=[dict(group="box", label="Box", on=True)])
    assert [(b.visible, b.opacity) for b in on.data[4:]] == [(True, 1.0), (False, 1.0)]
    with pytest.raises(ValueError, match="not both"):
        overlay_picture(_scan(), heat=maps[0], heat_choices=choices)
    with pytest.raises(ValueError, match="chosen 3"):
        overlay_picture(_scan(), heat_choices=choices, chosen=3)
    with pytest.raises(ValueError, match="one switch and the heat-map menu"):
        overlay_picture(_scan(), heat_choices=choices, choice_box_group="box",
                        boxes=[dict(name="o", box=(1, 1, 5, 5), colour=(0, 0, 0), group="o")],
                        toggles=[dict(group="box", label="Box"), dict(group="o", label="O")])


def _decode(source: str) -> tuple[str, np.ndarray]:
    head, data = source.split(",", 1)
    img = Image.open(io.BytesIO(base64.b64decode(data)))
    return head, np.asarray(img)


def test_scan_is_sent_lossless_and_heat_maps_as_small_webp():
    """The scan goes to the browser as PNG, pixel for pixel; the heat maps (smooth colours
    under an opacity) as WebP, close to their jet colours and several times smaller."""
    n = 256
    yy, xx = np.mgrid[:n, :n]
    heat = np.exp(-((xx - 150) ** 2 + (yy - 120) ** 2) / (2 * 40.0 ** 2)).astype(np.float32)
    scan = _scan(n)
    fig = overlay_picture(scan, heat_choices=[dict(label="a", heat=heat),
                                              dict(label="b", heat=heat[::-1].copy())])
    head, pixels = _decode(fig.data[0].source)
    assert head == "data:image/png;base64"
    np.testing.assert_array_equal(pixels, scan)
    for trace, h in zip(fig.data[1:3], (heat, heat[::-1])):
        head, pixels = _decode(trace.source)
        assert head == "data:image/webp;base64"
        jet = jet_colours(h, (n, n)).astype(int)
        assert pixels.shape == jet.shape
        assert np.abs(pixels.astype(int) - jet).mean() < 2.0
        assert np.percentile(np.abs(pixels.astype(int) - jet), 99) <= 12
    # a single heat map too; a third of its PNG or less
    webp = overlay_picture(scan, heat=heat).data[1].source
    assert webp.startswith("data:image/webp")
    assert len(base64.b64decode(webp.split(",", 1)[1])) < len(
        png_bytes(jet_colours(heat, (n, n)))) / 3
