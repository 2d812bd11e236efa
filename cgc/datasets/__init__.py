"""Dataset formats: salient-instance datasets (ILSO, SOC, COCO JSON) and the label maps they store.

Salient-region datasets such as DUT-OMRON need no reader of their own: `weaklabels build` takes
their image and mask folders and pairs the files by stem.

Every instance reader returns an `InstanceDataset` of `InstanceImage` records in sorted file
order, so exporters and evaluators need not know where the data came from.
"""

from cgc.datasets.coco_json import find_coco_json, read_coco_json
from cgc.datasets.formats import INSTANCE_FORMATS, open_instance_dataset
from cgc.datasets.ilso import read_ilso
from cgc.datasets.instances import InstanceDataset, InstanceImage
from cgc.datasets.label_maps import IGNORE_INDEX, read_binary_mask, read_instance_label_map
from cgc.datasets.soc import SOC_SPLITS, read_soc
from cgc.datasets.to_coco import instances_to_coco

__all__ = [
    "IGNORE_INDEX",
    "INSTANCE_FORMATS",
    "SOC_SPLITS",
    "InstanceDataset",
    "InstanceImage",
    "find_coco_json",
    "instances_to_coco",
    "open_instance_dataset",
    "read_binary_mask",
    "read_coco_json",
    "read_ilso",
    "read_instance_label_map",
    "read_soc",
]
