#!/usr/bin/env bash
# Your own data to a trained model, its scores and its predictions.
#
#   examples/own_data.sh DATA EXPORT OUT
#       DATA    a DUT-OMRON-style folder: DUT-OMRON-image/*.jpg and pixelwiseGT-new-PNG/*.png
#               (one binary salient-region mask per picture, same file stem)
#       EXPORT  a Label Studio export (JSON) of several annotators' boxes on those pictures
#       OUT     a new folder for everything this writes
#   examples/own_data.sh --stand-in OUT
#       the same on a small stand-in dataset that `cgc sample` makes first, so it runs anywhere.
#
# Settings, from the environment:
#   ITERATIONS=250     training iterations (CPU preset; on a GPU, leave the preset out for the paper's network and schedule)
#   TRUTH=truth.json   true instance masks (COCO JSON) of TEST_IMAGES, to score the model on them
#   TEST_IMAGES=dir    pictures to predict [DATA's pictures]
#   CGC=cgc            the command to run (e.g. "python -m cgc.cli")
#   STAND_IN_IMAGES=24 pictures in the stand-in dataset (and a quarter as many held out)
set -euo pipefail

CGC=${CGC:-cgc}
ITERATIONS=${ITERATIONS:-250}

if [[ ${1:-} == "--stand-in" ]]; then
    [[ $# -eq 2 ]] || { echo "usage: $0 --stand-in OUT" >&2; exit 2; }
    OUT=$2
    STAND_IN_IMAGES=${STAND_IN_IMAGES:-24}
    echo "== A stand-in dataset in the DUT-OMRON layout, with five simulated annotators' boxes =="
    $CGC sample --out "$OUT/stand-in" --images "$STAND_IN_IMAGES" --seed 0
    DATA=$OUT/dut-omron-style
    mkdir -p "$DATA"
    ln -sfn "$(cd "$OUT/stand-in" && pwd)/imgs" "$DATA/DUT-OMRON-image"
    ln -sfn "$(cd "$OUT/stand-in" && pwd)/masks" "$DATA/pixelwiseGT-new-PNG"
    EXPORT=$OUT/stand-in/labelstudio_export.json
    echo "== Held-out stand-in pictures with their true instances, to score the model =="
    $CGC sample --out "$OUT/held-out" --images $(( (STAND_IN_IMAGES + 3) / 4 )) --seed 1000
    $CGC export coco --format ilso --root "$OUT/held-out" --out "$OUT/held-out-truth.json"
    TRUTH=$OUT/held-out-truth.json
    TEST_IMAGES=$OUT/held-out/imgs
else
    [[ $# -eq 3 ]] || { echo "usage: $0 DATA EXPORT OUT   or   $0 --stand-in OUT" >&2; exit 2; }
    DATA=$1 EXPORT=$2 OUT=$3
fi

IMAGES=$DATA/DUT-OMRON-image
MASKS=$DATA/pixelwiseGT-new-PNG
for folder in "$IMAGES" "$MASKS"; do
    [[ -d $folder ]] || { echo "$folder: not found (expected the DUT-OMRON layout)" >&2; exit 1; }
done
mkdir -p "$OUT"

echo "== 1. Consensus boxes from the annotators' boxes =="
$CGC annotate import --from-export "$EXPORT" --out "$OUT/boxes.json" --images "$IMAGES"

echo "== 2. Instance weak labels from the boxes and the salient-region masks =="
$CGC weaklabels build --images "$IMAGES" --masks "$MASKS" --boxes "$OUT/boxes.json" --out "$OUT/weaklabels"

echo "== 3. Train CGCNet on the weak labels =="
$CGC train --preset cpu --data "$OUT/weaklabels/annotations.json" --images "$IMAGES" --out "$OUT/run" \
    --iterations "$ITERATIONS" --lr-steps "$((ITERATIONS * 3 / 4))"

echo "== 4. A score threshold picked on the weak labels (your true masks, if you have some, are better) =="
$CGC calibrate --checkpoint "$OUT/run" --images "$IMAGES" --data "$OUT/weaklabels/annotations.json"

if [[ -n ${TRUTH:-} ]]; then
    echo "== 5. Scores on pictures with true instance masks =="
    $CGC eval --checkpoint "$OUT/run" --images "${TEST_IMAGES:-$IMAGES}" --data "$TRUTH" --out "$OUT/metrics.json"
else
    echo "== 5. No TRUTH given: scoring skipped (set TRUTH and TEST_IMAGES to score) =="
fi

echo "== 6. Predictions: indexed masks, overlays and COCO results =="
$CGC predict --checkpoint "$OUT/run" --images "${TEST_IMAGES:-$IMAGES}" --out "$OUT/predictions"
echo "Done: model $OUT/run, predictions $OUT/predictions (overlays in $OUT/predictions/overlays)"
