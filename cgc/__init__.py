"""cgc: weakly supervised salient instance segmentation (CGCNet) from boxes and SOD masks.

The pipeline from Python, one function per step (the `cgc` command runs the same code):

    import cgc
    cgc.import_boxes("export.json", "boxes.json")                   # annotators' boxes -> consensus
    cgc.build_weak_labels("imgs", "masks", "boxes.json", "weak")    # -> instance weak labels
    cgc.train("run", data="weak/annotations.json", images="imgs", preset="cpu")
    model = cgc.load_model("run")                                   # -> Predictor
    prediction = model.predict("imgs/0001.jpg")                     # boxes, scores, masks
    metrics = cgc.evaluate("truth.json", checkpoint="run", images="test/imgs")
"""

from cgc.api import Predictor, build_weak_labels, evaluate, import_boxes, load_model, train

__all__ = ["import_boxes", "build_weak_labels", "train", "load_model", "Predictor", "evaluate"]
