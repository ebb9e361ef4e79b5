"""Draw the hand-made subject masks of the photos in tests/resources/photos.

    python tests/resources/masks/make_masks.py      rewrites astronaut.png and coffee.png here

Each mask is 8-bit greyscale at its photo's size: 255 on the subject, 0 on the background.
The outlines were traced by eye on the photos enlarged twice with a 20 px grid, so they
are good to a few pixels; the tests that use them allow for that.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent

# Eileen Collins in her suit, holding her helmet (512 x 512). The flag and the shuttle
# model behind her are background.
ASTRONAUT = [
    # hair, from the left temple over the top to the right
    (159, 50), (165, 40), (180, 27), (200, 19), (225, 15), (256, 15), (275, 18), (288, 25),
    (297, 45), (301, 65), (301, 85), (298, 102), (290, 118), (280, 130), (268, 137),
    (260, 144),
    # the right cheek, then the outer edge of the neck ring
    (251, 148), (250, 160), (252, 172), (258, 175), (265, 179), (275, 186), (282, 195),
    (289, 205), (294, 215), (299, 225), (301, 235),
    # the right shoulder down to the helmet
    (310, 235), (322, 241), (332, 250), (339, 257), (346, 276), (356, 296), (361, 321),
    (363, 341),
    # the helmet's white band and its right side, the bracket, down to the bottom edge
    (365, 350), (386, 345), (406, 343), (436, 348), (461, 361), (476, 381), (486, 406),
    (493, 431), (498, 456), (505, 460), (510, 470), (510, 511),
    # the bottom edge, then up the left arm
    (27, 511), (25, 496), (22, 466), (22, 436), (22, 406), (25, 376), (27, 346), (32, 316),
    (40, 286), (50, 266), (60, 256), (67, 240), (80, 228), (100, 215), (110, 210),
    # the neck ring's left edge and its bracket, up to the face
    (112, 205), (111, 195), (114, 192), (119, 186), (124, 177), (130, 167), (140, 159),
    (157, 151), (175, 148), (183, 147), (182, 138), (175, 128), (166, 118), (159, 103),
    (155, 85), (155, 65),
]

# The cup, its saucer and the spoon (600 x 400) on a wooden table; the saucer's shadow
# on the table is background.
COFFEE = [
    # the saucer's outer rim from behind the cup's left side, down and round to the right
    (178, 82), (165, 83), (150, 86), (138, 92), (129, 100), (115, 111), (102, 125),
    (93, 138), (88, 150), (83, 165), (81, 180), (79, 200), (80, 230), (82, 250), (89, 275),
    (95, 300), (111, 325), (135, 350), (165, 370), (200, 385), (235, 393), (270, 396),
    (310, 396), (350, 390), (400, 370), (425, 350), (447, 325), (462, 300), (474, 270),
    (480, 240), (481, 215), (479, 205), (472, 185), (465, 160), (455, 140), (440, 125),
    (422, 110),
    # the spoon's handle above the rim
    (420, 90), (425, 77), (424, 72), (412, 66), (401, 70),
    # the cup's rim, right to left
    (396, 60), (389, 50), (377, 40), (362, 30), (350, 27), (325, 21), (300, 19), (275, 19),
    (250, 21), (225, 28), (210, 36), (200, 43), (192, 50), (187, 60), (182, 70),
]

MASKS = {"astronaut.png": ((512, 512), ASTRONAUT), "coffee.png": ((600, 400), COFFEE)}


def draw(size: tuple[int, int], outline: list[tuple[int, int]]) -> Image.Image:
    """The subject inside ``outline`` filled white on black."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)
    return mask


def main() -> None:
    for name, (size, outline) in MASKS.items():
        draw(size, outline).save(HERE / name, optimize=True)


if __name__ == "__main__":
    main()
