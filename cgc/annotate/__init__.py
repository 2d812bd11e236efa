"""Annotators' boxes -> one consensus box per salient instance (the paper's weak supervision).

`import_parser` reads Label Studio exports (and tasks pulled from a server) into per-image,
per-annotator pixel boxes; `consensus` matches boxes across annotators and averages them;
`boxes_dataset` writes the result as COCO detection JSON with an import report.
"""
