#!/usr/bin/env bash
# Download a published CycleGAN generator to ./checkpoints/NAME_pretrained/latest_net_G.pth.
#
#   bash ./scripts/download_cyclegan_model.sh horse2zebra
#   python test.py --dataroot datasets/horse2zebra/testA --name horse2zebra_pretrained --model test --no_dropout
#
# Run it from the repository root. A failed or interrupted download leaves nothing behind (an older
# copy of the file stays as it was). CYCLEGAN_DOWNLOAD_BASE overrides the host.
set -euo pipefail
source "$(dirname -- "${BASH_SOURCE[0]}")/_download.sh"

KNOWN_NAMES=(apple2orange orange2apple summer2winter_yosemite winter2summer_yosemite horse2zebra
    zebra2horse monet2photo style_monet style_cezanne style_ukiyoe style_vangogh sat2map map2sat
    cityscapes_photo2label cityscapes_label2photo facades_photo2label facades_label2photo
    iphone2dslr_flower)
pick_name model "$@"

download_file "$DOWNLOAD_BASE/cyclegan/pretrained_models/$NAME.pth" \
    "./checkpoints/${NAME}_pretrained/latest_net_G.pth"
