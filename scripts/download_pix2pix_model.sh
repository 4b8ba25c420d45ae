#!/usr/bin/env bash
# Download a published pix2pix generator to ./checkpoints/NAME_pretrained/latest_net_G.pth.
#
#   bash ./scripts/download_pix2pix_model.sh facades_label2photo
#   python test.py --dataroot ./datasets/facades --name facades_label2photo_pretrained --model pix2pix --direction BtoA
#
# Run it from the repository root. A failed or interrupted download leaves nothing behind (an older
# copy of the file stays as it was). CYCLEGAN_DOWNLOAD_BASE overrides the host.
set -euo pipefail
source "$(dirname -- "${BASH_SOURCE[0]}")/_download.sh"

KNOWN_NAMES=(edges2shoes sat2map map2sat facades_label2photo day2night)
pick_name model "$@"

download_file "$DOWNLOAD_BASE/pix2pix/models-pytorch/$NAME.pth" \
    "./checkpoints/${NAME}_pretrained/latest_net_G.pth"
