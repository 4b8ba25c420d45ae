#!/usr/bin/env bash
# Download one of the published CycleGAN datasets into ./datasets/NAME/ (trainA, trainB, testA, testB).
#
#   bash ./datasets/download_cyclegan_dataset.sh horse2zebra
#
# Run it from the repository root: the dataset lands under ./datasets of the current folder. A failed
# or interrupted download leaves nothing behind. CYCLEGAN_DOWNLOAD_BASE overrides the host.
set -euo pipefail
source "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/_download.sh"

KNOWN_NAMES=(apple2orange summer2winter_yosemite horse2zebra monet2photo cezanne2photo ukiyoe2photo
    vangogh2photo maps cityscapes facades iphone2dslr_flower ae_photos mini mini_pix2pix
    mini_colorization)
pick_name dataset "$@"

if [[ $NAME == cityscapes ]]; then
    fail "the Cityscapes licence forbids redistributing it, so it cannot be downloaded here; register" \
        "at https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and" \
        "leftImg8bit_trainvaltest.zip, and prepare them as the original tool's" \
        "datasets/prepare_cityscapes_dataset.py describes"
fi

download_folder "$DOWNLOAD_BASE/cyclegan/datasets/$NAME.zip" zip "./datasets/$NAME"
