"""The labelling config of a cgc project: its one writer (`salient_label_config`) and reader (`control_tags`).

`cgc annotate setup` writes the config; push, setup's check of an existing project and the ML
backend read which tags a project has, so that results name the project's own tags.
"""

from __future__ import annotations

from dataclasses import dataclass

from cgc.annotate.labelstudio_client import LabelStudioError

MASK_TOOLS = {"none": None, "brush": "BrushLabels", "polygon": "PolygonLabels"}
_CONTROL_TYPES = {"rectanglelabels": "rectangle", "brushlabels": "brush", "polygonlabels": "polygon"}


def salient_label_config(mask_tool: str = "none") -> str:
    """Label Studio labelling config: one RectangleLabels "salient" (+ a mask tool to review masks).

    Built with the SDK's LabelInterface, so the XML is well-formed and every control names its image.
    """
    from label_studio_sdk.label_interface import LabelInterface

    def salient(colour: str) -> tuple:
        return (("Label", {"value": "salient", "background": colour}, ()),)

    tags: dict[str, tuple] = {
        "image": ("Image", {"zoom": "true", "zoomControl": "true"}, ()),
        "label": ("RectangleLabels", {"strokeWidth": "2"}, salient("#ff3030")),
    }
    if MASK_TOOLS[mask_tool]:
        tags["mask"] = (MASK_TOOLS[mask_tool], {"strokeWidth": "2"}, salient("#00a0ff"))
    return LabelInterface.create(tags, title={"image": "Draw one box per salient instance"})


@dataclass(frozen=True)
class ControlTag:
    """A control tag a result names: its name, the image it labels and its first label."""

    name: str
    to_name: str
    label: str | None


def control_tags(label_config: str) -> dict[str, ControlTag]:
    """The project's first RectangleLabels / BrushLabels / PolygonLabels tag, by kind (SDK's LabelInterface)."""
    from label_studio_sdk.label_interface import LabelInterface

    try:
        interface = LabelInterface(label_config)
    except Exception as exc:  # noqa: BLE001 - the SDK raises its own XML and validation errors
        raise LabelStudioError(f"cannot read the project's labelling config: {' '.join(str(exc).split())}") from None
    found: dict[str, ControlTag] = {}
    for control in interface.controls:
        kind = _CONTROL_TYPES.get(control.tag.lower())
        if kind and kind not in found and control.name and control.to_name:
            labels = list(control.labels or [])
            found[kind] = ControlTag(control.name, control.to_name[0], labels[0] if labels else None)
    return found
