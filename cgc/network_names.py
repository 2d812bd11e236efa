"""The names of the network's interchangeable parts, in one torch-free place.

The command line offers them as choices without loading torch; the model package builds from them.
"""

BACKBONES = ("resnet50", "resnet101", "resnext101_32x8d", "vgg16", "mobilenet_v2")
MASK_HEADS = ("gfr", "lfr", "roialign", "roimasking")
MASK_SUPPRESSION_METHODS = ("greedy", "matrix", "overlap", "none")

MASK_OTHERS = ("proposals", "labelled")
"""What GFR suppresses as "other proposals" in training: the sampled mask proposals only (as in
the paper), or also every labelled instance's box. With proposals only, an instance none of whose
proposals was sampled keeps its features while its pixels are targets 0: the same salient look is
taught as foreground in one batch and background in another. At inference the others are all
detections, which cover every found instance."""
