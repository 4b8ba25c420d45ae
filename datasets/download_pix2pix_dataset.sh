#!/usr/bin/env bash
# Download one of the published pix2pix datasets into ./datasets/NAME/ (train/, val/, test/ of A|B pairs).
#
#   bash ./datasets/download_pix2pix_dataset.sh facades
#
# Run it from the repository root: the dataset lands under ./datasets of the current folder. A failed
# or interrupted download leaves nothing behind. CYCLEGAN_DOWNLOAD_BASE overrides the host.
set -euo pipefail
source "$(dirname -- "${BASH_SOURCE[0]}")/../scripts/_download.sh"

KNOWN_NAMES=(night2day edges2handbags edges2shoes facades maps)
pick_name dataset "$@"

download_folder "$DOWNLOAD_BASE/pix2pix/datasets/$NAME.tar.gz" tar.gz "./datasets/$NAME"
