"""Dataset readers on tiny datasets built in tmp_path, and the COCO round trip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from cgc.datasets import (
    InstanceImage,
    instances_to_coco,
    open_instance_dataset,
    read_binary_mask,
    read_coco_json,
    read_ilso,
    read_instance_label_map,
    read_soc,
)
from cgc.errors import InputError
from cgc.fileio import atomic_write_json

H, W = 12, 16


def index_map() -> np.ndarray:
    """0 background, instance 1 (top-left), instance 2 (bottom-right), a 255 boundary row."""
    label = np.zeros((H, W), np.uint8)
    label[1:5, 2:7] = 1
    label[7:11, 9:15] = 2
    label[6, :] = 255
    return label


def save_image(path: Path, width: int = W, height: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 120, np.uint8)).save(path)
    return path


def save_palette_map(path: Path, label: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    palette_image = Image.new("P", (label.shape[1], label.shape[0]))
    palette_image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
    palette_image.putdata(label.ravel().tolist())
    palette_image.save(path)
    return path


def save_colour_map(path: Path, masks_and_colours: list[tuple[np.ndarray, tuple[int, int, int]]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.zeros((H, W, 3), np.uint8)
    for mask, colour in masks_and_colours:
        rgb[mask] = colour
    Image.fromarray(rgb, mode="RGB").save(path)
    return path


# ---- binary masks -------------------------------------------------------------------------


@pytest.fixture
def region() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[3:9, 4:12] = True
    return mask


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda m: (m * 255).astype(np.uint8), id="0-255"),
        pytest.param(lambda m: m.astype(np.uint8), id="0-1"),
        pytest.param(lambda m: (m * 65535).astype(np.uint16), id="16-bit"),
        pytest.param(lambda m: (m.astype(np.uint16)), id="16-bit-0-1"),
        pytest.param(lambda m: (m * 255).astype(np.uint16), id="16-bit-0-255"),
        pytest.param(lambda m: np.dstack([m * 255, m * 0, m * 0]).astype(np.uint8), id="rgb"),
        pytest.param(lambda m: np.dstack([m * 200] * 3 + [np.full(m.shape, 255)]).astype(np.uint8), id="rgba"),
    ],
)
def test_read_binary_mask_accepts_every_common_encoding(tmp_path: Path, region: np.ndarray, encode) -> None:
    path = tmp_path / "mask.png"
    assert cv2.imwrite(str(path), encode(region))
    mask = read_binary_mask(path)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, region)


def test_read_binary_mask_thresholds_at_half_range(tmp_path: Path) -> None:
    values = np.array([[0, 100, 127, 128, 200, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), values)
    assert read_binary_mask(tmp_path / "grey.png").tolist() == [[False, False, False, True, True, True]]
    cv2.imwrite(str(tmp_path / "zero.png"), np.zeros((3, 3), np.uint8))
    assert not read_binary_mask(tmp_path / "zero.png").any()


@pytest.mark.parametrize("dtype, value", [(np.uint8, 100), (np.uint8, 2), (np.uint16, 1000), (np.uint8, 128),
                                          (np.float32, 0.3), (np.float32, 7.0)])
def test_read_binary_mask_reads_any_two_values(tmp_path: Path, region: np.ndarray, dtype, value) -> None:
    """A mask saved as 0/100 or 0/2 is the region, not an empty mask."""
    path = tmp_path / ("mask.tiff" if dtype is np.float32 else "mask.png")
    assert cv2.imwrite(str(path), region.astype(dtype) * dtype(value))
    np.testing.assert_array_equal(read_binary_mask(path), region)


def exif_jpeg(path: Path, picture: np.ndarray, orientation_entry: bytes) -> None:
    """A JPEG of `picture` (BGR) whose EXIF holds one orientation entry, as given (possibly malformed)."""
    import struct

    jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + orientation_entry + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    path.write_bytes(jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:])


@pytest.mark.parametrize("count", [0, 1000])
def test_a_malformed_orientation_is_read_one_way_for_size_and_pixels(tmp_path: Path, count: int) -> None:
    """Pillow ignores an orientation entry with a bogus count, OpenCV applied it: the size and the pixels disagreed."""
    import struct

    from cgc.datasets.pictures import image_size, read_rgb

    exif_jpeg(tmp_path / "a.jpg", np.zeros((20, 40, 3), np.uint8), struct.pack("<HHIHH", 0x0112, 3, count, 6, 0))
    width, height = image_size(tmp_path / "a.jpg")
    assert read_rgb(tmp_path / "a.jpg").shape == (height, width, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_pixels_as_pillow_does(tmp_path: Path, orientation: int) -> None:
    from PIL import ImageOps

    from cgc.datasets.pictures import image_size, read_rgb

    rgb = np.random.default_rng(orientation).integers(0, 255, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(tmp_path / "a.webp", exif=exif, lossless=True)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "a.webp")).convert("RGB"))
    assert image_size(tmp_path / "a.webp") == (shown.shape[1], shown.shape[0])
    np.testing.assert_array_equal(read_rgb(tmp_path / "a.webp"), shown)


def test_a_picture_whose_header_pillow_cannot_read_is_refused_before_decoding(tmp_path: Path) -> None:
    """OpenCV decodes Radiance HDR, Pillow cannot read its header: its size could not be checked, so it is refused."""
    from cgc.datasets.pictures import read_rgb

    assert cv2.imwrite(str(tmp_path / "a.hdr"), np.ones((8, 8, 3), np.float32))
    assert cv2.imread(str(tmp_path / "a.hdr")) is not None
    with pytest.raises(InputError, match="a.hdr: cannot read the picture's header"):
        read_rgb(tmp_path / "a.hdr")


def test_read_binary_mask_palette_png(tmp_path: Path, region: np.ndarray) -> None:
    save_palette_map(tmp_path / "p.png", region.astype(np.uint8))
    np.testing.assert_array_equal(read_binary_mask(tmp_path / "p.png"), region)


def test_read_binary_mask_reads_a_palette_by_index_not_colour(tmp_path: Path, region: np.ndarray) -> None:
    """Index 1 painted nearly black (as some tools save masks) is still the salient region."""
    image = Image.fromarray(region.astype(np.uint8), mode="P")
    image.putpalette([255, 255, 255, 8, 8, 8] + [0] * 762)  # background white, region dark
    image.save(tmp_path / "dark.png")
    np.testing.assert_array_equal(read_binary_mask(tmp_path / "dark.png"), region)


def test_read_binary_mask_corrupt_or_missing_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="broken.png"):
        read_binary_mask(bad)
    with pytest.raises(InputError, match="absent.png"):
        read_binary_mask(tmp_path / "absent.png")


# ---- label maps -------------------------------------------------------------------------


def test_palette_map_gives_instances_in_index_order_and_ignores_255(tmp_path: Path) -> None:
    label = index_map()
    path = save_palette_map(tmp_path / "gt.png", label)
    assert Image.open(path).mode == "P"
    masks, size = read_instance_label_map(path)
    assert size == (H, W)
    assert len(masks) == 2
    np.testing.assert_array_equal(masks[0], label == 1)
    np.testing.assert_array_equal(masks[1], label == 2)
    assert not any(mask[6].any() for mask in masks)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grayscale_index_map(tmp_path: Path, dtype) -> None:
    label = index_map().astype(dtype)
    label[label == 2] = 3  # indices need not be contiguous
    Image.fromarray(label).save(tmp_path / "gt.png")
    masks, _ = read_instance_label_map(tmp_path / "gt.png")
    assert [int(m.sum()) for m in masks] == [int((label == 1).sum()), int((label == 3).sum())]
    np.testing.assert_array_equal(masks[1], label == 3)


def test_rgb_map_orders_colours_by_first_appearance(tmp_path: Path) -> None:
    first = np.zeros((H, W), bool)
    first[0:3, 10:14] = True  # top of the image: seen first although its colour sorts last
    second = np.zeros((H, W), bool)
    second[5:10, 1:6] = True
    path = save_colour_map(tmp_path / "gt.png", [(first, (250, 250, 250)), (second, (10, 0, 0))])
    masks, size = read_instance_label_map(path)
    assert size == (H, W)
    assert len(masks) == 2
    np.testing.assert_array_equal(masks[0], first)
    np.testing.assert_array_equal(masks[1], second)


def test_rgba_transparent_pixels_are_background(tmp_path: Path) -> None:
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[2:4, 2:4] = (0, 200, 0, 255)
    rgba[8:10, 8:10] = (0, 0, 200, 0)  # transparent: background
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "gt.png")
    masks, _ = read_instance_label_map(tmp_path / "gt.png")
    assert len(masks) == 1 and masks[0].sum() == 4


def test_corrupt_label_map_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "gt.png").write_text("nope")
    with pytest.raises(InputError, match="gt.png"):
        read_instance_label_map(tmp_path / "gt.png")


# ---- ILSO ---------------------------------------------------------------------------------


def make_ilso(root: Path) -> np.ndarray:
    label = index_map()
    save_image(root / "imgs" / "2.jpg")
    save_palette_map(root / "gt" / "2.png", label)
    save_image(root / "imgs" / "1.jpg")
    Image.fromarray(label).save(root / "gt" / "1.png")  # grayscale copy
    save_image(root / "imgs" / "3.jpg")  # no gt map
    save_palette_map(root / "gt" / "4.png", label)  # no image
    return label


def test_ilso_reads_pairs_in_sorted_order_with_warnings(tmp_path: Path) -> None:
    label = make_ilso(tmp_path)
    dataset = read_ilso(tmp_path)
    assert len(dataset) == 2
    images = list(dataset)
    assert [image.file_name for image in images] == ["1.jpg", "2.jpg"]
    assert images[0].image_path == tmp_path / "imgs" / "1.jpg"
    assert (images[0].height, images[0].width) == (H, W)
    for image in images:
        assert len(image.masks) == 2
        np.testing.assert_array_equal(image.masks[1], label == 2)
    assert len(dataset.warnings) == 2
    assert any("3.jpg" in w and "no instance map" in w for w in dataset.warnings)
    assert any("4.png" in w and "no image" in w for w in dataset.warnings)


def test_ilso_subdir_overrides(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "x.png")
    save_palette_map(tmp_path / "masks" / "x.png", index_map())
    dataset = read_ilso(tmp_path, images_subdir="images", gt_subdir="masks")
    assert [image.file_name for image in dataset] == ["x.png"]


def test_size_mismatch_names_image_and_map(tmp_path: Path) -> None:
    save_image(tmp_path / "imgs" / "a.jpg", width=W + 1)
    save_palette_map(tmp_path / "gt" / "a.png", index_map())
    with pytest.raises(InputError) as info:
        list(read_ilso(tmp_path))
    assert "a.jpg" in str(info.value) and "a.png" in str(info.value)


def test_ilso_missing_root_and_empty_images(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere"):
        read_ilso(tmp_path / "nowhere")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "gt").mkdir()
    with pytest.raises(InputError, match="no images"):
        read_ilso(tmp_path)


# ---- SOC ----------------------------------------------------------------------------------


def make_soc(root: Path) -> tuple[np.ndarray, np.ndarray]:
    split = root / "TestSet"
    a = np.zeros((H, W), bool)
    a[1:4, 1:4] = True
    b = np.zeros((H, W), bool)
    b[6:11, 5:15] = True
    save_image(split / "Imgs" / "sal_1.jpg")
    save_colour_map(split / "Instance gt" / "gt" / "sal_1.png", [(a, (128, 0, 0)), (b, (0, 128, 0))])
    save_image(split / "Imgs" / "non_black.jpg")
    save_colour_map(split / "Instance gt" / "gt" / "non_black.png", [])  # all black: no salient object
    save_image(split / "Imgs" / "non_missing.jpg")  # no map at all: no salient object
    (split / "gt").mkdir()  # binary maps folder, not used
    return a, b


def test_soc_reads_colour_instances_and_keeps_images_without_objects(tmp_path: Path) -> None:
    a, b = make_soc(tmp_path)
    for dataset in (read_soc(tmp_path / "TestSet"), read_soc(tmp_path, split="TestSet")):
        images = {image.file_name: image for image in dataset}
        assert sorted(images) == ["non_black.jpg", "non_missing.jpg", "sal_1.jpg"]
        assert images["non_black.jpg"].masks == []
        assert images["non_missing.jpg"].masks == []
        assert (images["non_missing.jpg"].height, images["non_missing.jpg"].width) == (H, W)
        np.testing.assert_array_equal(images["sal_1.jpg"].masks[0], a)
        np.testing.assert_array_equal(images["sal_1.jpg"].masks[1], b)
        assert len(dataset.warnings) == 1 and "non_missing.jpg" in dataset.warnings[0]


def test_soc_root_without_split_asks_for_one(tmp_path: Path) -> None:
    make_soc(tmp_path)
    with pytest.raises(InputError, match="--split"):
        read_soc(tmp_path)


# ---- COCO ---------------------------------------------------------------------------------


def test_coco_round_trip_through_pycocotools(tmp_path: Path) -> None:
    label = make_ilso(tmp_path)
    dataset = read_ilso(tmp_path)
    originals = [[m.copy() for m in image.masks] for image in read_ilso(tmp_path)]
    coco = instances_to_coco(dataset, "test")
    out = tmp_path / "out.json"
    atomic_write_json(out, coco)

    api = COCO(str(out))
    assert sorted(api.getImgIds()) == [1, 2]
    assert [api.imgs[i]["file_name"] for i in (1, 2)] == ["1.jpg", "2.jpg"]
    assert [c["id"] for c in api.loadCats(api.getCatIds())] == [1]
    assert sorted(api.anns) == [1, 2, 3, 4]
    for image_id, masks in zip((1, 2), originals):
        anns = api.loadAnns(api.getAnnIds(imgIds=[image_id]))
        assert len(anns) == len(masks) == 2
        for ann, mask in zip(anns, masks):
            np.testing.assert_array_equal(api.annToMask(ann).astype(bool), mask)
            assert ann["area"] == int(mask.sum())
            assert ann["iscrowd"] == 0 and ann["category_id"] == 1
    ann = api.anns[2]
    ys, xs = np.nonzero(label == 2)
    assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]

    # and read back as a dataset
    back = list(read_coco_json(out, images_dir=tmp_path / "imgs"))
    assert [image.file_name for image in back] == ["1.jpg", "2.jpg"]
    for image, masks in zip(back, originals):
        assert len(image.masks) == 2
        for got, want in zip(image.masks, masks):
            np.testing.assert_array_equal(got, want)


def test_instances_to_coco_skips_empty_masks() -> None:
    full = np.ones((4, 5), bool)
    coco = instances_to_coco([InstanceImage("a.jpg", None, 4, 5, [np.zeros((4, 5), bool), full])], "d")
    assert len(coco["annotations"]) == 1
    assert coco["annotations"][0]["area"] == 20 and coco["annotations"][0]["bbox"] == [0.0, 0.0, 5.0, 4.0]


def test_coco_json_polygons_crowds_and_size_check(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "p.jpg")
    data = {
        "images": [{"id": 7, "file_name": "p.jpg", "height": H, "width": W},
                   {"id": 8, "file_name": "gone.jpg", "height": H, "width": W}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
             "segmentation": [[2, 2, 8, 2, 8, 6, 2, 6]], "bbox": [2, 2, 6, 4], "area": 24},
            {"id": 2, "image_id": 7, "category_id": 3, "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": [0, H * W]}, "area": 0},
        ],
        "categories": [{"id": 3, "name": "thing"}],
    }
    atomic_write_json(tmp_path / "ann.json", data)
    dataset = open_instance_dataset("coco", tmp_path, images_subdir="images")
    images = list(dataset)
    assert [image.file_name for image in images] == ["gone.jpg", "p.jpg"]
    assert images[0].image_path is None and images[0].masks == []
    assert len(images[1].masks) == 1 and images[1].masks[0][3, 4] and not images[1].masks[0][9, 12]
    assert len(dataset.warnings) == 2  # crowd, missing image file

    stray = {**data, "annotations": data["annotations"] + [
        {"id": 3, "image_id": 99, "category_id": 1, "segmentation": [[0, 0, 1, 0, 1, 1]]}]}
    atomic_write_json(tmp_path / "ann.json", stray)
    with pytest.raises(InputError, match="image id 99, which is not in 'images'"):
        read_coco_json(tmp_path / "ann.json")

    data["images"][0]["width"] = W + 3  # the polygon fits either size; the file on disk does not
    data["annotations"] = data["annotations"][:1]
    atomic_write_json(tmp_path / "ann.json", data)
    with pytest.raises(InputError, match="p.jpg"):
        list(read_coco_json(tmp_path / "ann.json", images_dir=tmp_path / "images"))


def test_open_instance_dataset_rejects_split_for_other_formats(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--split"):
        open_instance_dataset("ilso", tmp_path, split="TestSet")


def test_image_size_is_the_size_as_shown_with_exif_orientation(tmp_path: Path) -> None:
    """A phone photo stored 40x30 with 'rotate 90' in EXIF is shown (and read by OpenCV) as 30x40."""
    from PIL import Image

    from cgc.datasets.pictures import EXIF_ORIENTATION, image_size

    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    Image.new("RGB", (40, 30), (200, 10, 10)).save(path, exif=exif)
    height, width = cv2.imread(str(path)).shape[:2]
    assert image_size(path) == (width, height) == (30, 40)


def test_write_picture_says_when_the_disk_refuses(tmp_path: Path) -> None:
    """OpenCV's imwrite only returns False (no exception) when it cannot write."""
    from cgc.datasets.pictures import write_picture

    write_picture(tmp_path / "ok.jpg", np.zeros((4, 4, 3), np.uint8), jpeg_quality=90)
    assert (tmp_path / "ok.jpg").stat().st_size > 0
    with pytest.raises(InputError, match="cannot write picture"):
        write_picture(tmp_path / "missing-folder" / "x.png", np.zeros((4, 4), np.uint8))
