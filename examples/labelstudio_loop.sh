#!/usr/bin/env bash
# The Label Studio loop: a project for the pictures, people draw boxes, cgc builds weak labels,
# trains, and pushes its predictions back for the annotators to review.
#
# It needs a running Label Studio server. Start one, in its own venv (`make labelstudio` makes
# .venv-labelstudio):
#     .venv-labelstudio/bin/label-studio start --port 8080
# then create an account, and copy a key from Account & Settings > Personal Access Token:
#     export LABEL_STUDIO_URL=http://localhost:8080 LABEL_STUDIO_API_KEY=...
#
#   examples/labelstudio_loop.sh setup IMAGES TITLE
#       creates the project (five annotators per picture) and uploads the pictures; run it
#       again to add new pictures. Then the annotators draw one box per salient instance.
#   examples/labelstudio_loop.sh train PROJECT IMAGES MASKS OUT
#       once they are done: their boxes -> consensus boxes -> weak labels (pushed back for
#       review) -> a trained model -> its predictions, pushed back as pre-annotations.
#
# Settings: ITERATIONS=250 (training iterations, CPU preset), CGC=cgc (the command to run).
set -euo pipefail

CGC=${CGC:-cgc}
ITERATIONS=${ITERATIONS:-250}
: "${LABEL_STUDIO_URL:?set LABEL_STUDIO_URL (see the top of this file)}"
: "${LABEL_STUDIO_API_KEY:?set LABEL_STUDIO_API_KEY (see the top of this file)}"

case ${1:-} in
setup)
    [[ $# -eq 3 ]] || { echo "usage: $0 setup IMAGES TITLE" >&2; exit 2; }
    $CGC annotate setup --images "$2" --title "$3" --annotators-per-image 5 --mask-tool brush
    echo "Now the annotators draw boxes in Label Studio; then run: $0 train PROJECT IMAGES MASKS OUT"
    ;;
train)
    [[ $# -eq 5 ]] || { echo "usage: $0 train PROJECT IMAGES MASKS OUT" >&2; exit 2; }
    PROJECT=$2 IMAGES=$3 MASKS=$4 OUT=$5
    mkdir -p "$OUT"
    echo "== The annotators' boxes, averaged into consensus boxes =="
    $CGC annotate import --project "$PROJECT" --out "$OUT/boxes.json"
    echo "== Weak labels, pushed back for review =="
    $CGC weaklabels build --images "$IMAGES" --masks "$MASKS" --boxes "$OUT/boxes.json" --out "$OUT/weaklabels"
    $CGC annotate push --project "$PROJECT" --from "$OUT/weaklabels" --model-version cgc-weaklabels
    echo "== Train, predict, and push the predictions as pre-annotations =="
    $CGC train --preset cpu --data "$OUT/weaklabels/annotations.json" --images "$IMAGES" --out "$OUT/run" \
        --iterations "$ITERATIONS" --lr-steps "$((ITERATIONS * 3 / 4))"
    $CGC predict --checkpoint "$OUT/run" --images "$IMAGES" --out "$OUT/predictions"
    $CGC annotate push --project "$PROJECT" --from "$OUT/predictions" --model-version cgcnet
    echo "Done: reviewers see the predictions in project $PROJECT; accepted ones come back with the next import."
    ;;
*)
    echo "usage: $0 setup IMAGES TITLE   or   $0 train PROJECT IMAGES MASKS OUT" >&2
    exit 2
    ;;
esac
