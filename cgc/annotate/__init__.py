"""Annotators' boxes -> one consensus box per salient instance (the paper's weak supervision).

`labelstudio_export` reads Label Studio exports into per-image, per-annotator pixel boxes;
`consensus` matches boxes across annotators and averages them; `boxes_dataset` writes the
result as COCO detection JSON with an import report.
"""
