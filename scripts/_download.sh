# Shared download logic, sourced by the four download scripts (datasets and pretrained models).
#
# A script sets KNOWN_NAMES, calls `pick_name KIND "$@"` (which sets NAME), then
# `download_folder URL FORMAT TARGET_DIR` or `download_file URL TARGET_FILE`.
# Guarantees: names are checked against a fixed list (no user string ever reaches a command line
# through eval), downloads go to a temporary file next to the target, archives are unpacked into a
# temporary folder and moved into place in one rename, and on any failure or interruption everything
# this run created is removed, so a failed download leaves nothing behind.
#
# CYCLEGAN_DOWNLOAD_BASE overrides the host (default http://efrosgans.eecs.berkeley.edu), e.g. for a
# mirror or a local test server. Written for bash 3.2 (macOS) as well as bash 5.

DOWNLOAD_BASE="${CYCLEGAN_DOWNLOAD_BASE:-http://efrosgans.eecs.berkeley.edu}"
DOWNLOAD_BASE="${DOWNLOAD_BASE%/}"

CREATED_DIRS=()       # folders this run made, parents first; removed again if the run fails
TEMP_PATHS=()         # temporary files and folders; always removed at exit
DOWNLOAD_FINISHED=0

fail() {  # fail MESSAGE...: print one `error:` line to stderr and exit 2
    printf 'error: %s\n' "$*" >&2
    exit 2
}

cleanup() {  # remove temporaries; after a failure also the (then empty) folders this run made
    local index
    for ((index = 0; index < ${#TEMP_PATHS[@]}; index++)); do
        rm -rf -- "${TEMP_PATHS[index]}"
    done
    if [[ $DOWNLOAD_FINISHED != 1 ]]; then
        for ((index = ${#CREATED_DIRS[@]} - 1; index >= 0; index--)); do
            rmdir -- "${CREATED_DIRS[index]}" 2>/dev/null || true
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # exiting runs the EXIT trap, so an interrupted download is cleaned up too

print_usage() {  # print_usage KIND: the usage line and the accepted names
    printf 'usage: bash %s NAME\n' "$0"
    printf '%s names: %s\n' "$1" "${KNOWN_NAMES[*]}"
}

pick_name() {  # pick_name KIND ARGS...: set NAME to the single argument if it is in KNOWN_NAMES
    local kind=$1 candidate
    shift
    if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then
        print_usage "$kind"
        exit 0
    fi
    if [[ $# -ne 1 ]]; then
        print_usage "$kind" >&2
        exit 2
    fi
    for candidate in "${KNOWN_NAMES[@]}"; do
        if [[ $candidate == "$1" ]]; then
            NAME=$1
            return 0
        fi
    done
    fail "unknown $kind '$1'; choose one of: ${KNOWN_NAMES[*]}"
}

make_dirs() {  # make_dirs DIR: create DIR and its missing parents, remembering the new ones
    local dir=$1 missing=() index
    while [[ ! -d $dir ]]; do
        missing=("$dir" ${missing[@]+"${missing[@]}"})
        dir=$(dirname -- "$dir")
    done
    mkdir -p -- "$1" 2>/dev/null || fail "cannot create the folder $1; check its permissions"
    for ((index = 0; index < ${#missing[@]}; index++)); do
        CREATED_DIRS+=("${missing[index]}")
    done
}

new_temp() {  # new_temp file|dir DIR STEM: set TEMP to a fresh hidden temporary path inside DIR
    local flag=
    if [[ $1 == dir ]]; then flag=-d; fi
    TEMP=$(mktemp $flag "$2/.$3.XXXXXX" 2>/dev/null) || fail "cannot write into $2; check its permissions"
    TEMP_PATHS+=("$TEMP")
}

curl_reason() {  # curl_reason STATUS: why curl failed, in words
    case $1 in
        6) echo "host not found; offline?" ;;
        7) echo "could not connect; offline?" ;;
        22) echo "the server answered with an error such as 404" ;;
        23) echo "could not write the file; disk full?" ;;
        28) echo "timed out; offline?" ;;
        *) echo "curl status $1; offline?" ;;
    esac
}

wget_reason() {  # wget_reason STATUS: why wget failed, in words
    case $1 in
        3) echo "could not write the file; disk full?" ;;
        4) echo "network failure; offline?" ;;
        8) echo "the server answered with an error such as 404" ;;
        *) echo "wget status $1; offline?" ;;
    esac
}

fetch() {  # fetch URL DEST: download URL into DEST with timeouts, failing on HTTP errors
    local url=$1 dest=$2 status=0 reason
    if command -v curl >/dev/null 2>&1; then
        local progress=--silent
        if [[ -t 2 ]]; then progress=--progress-bar; fi
        # abort when fewer than 1 kB/s arrive for a minute instead of a fixed total time limit,
        # so that large datasets on slow links still finish
        curl --fail --location --connect-timeout 30 --speed-limit 1024 --speed-time 60 \
            "$progress" --output "$dest" "$url" || status=$?
        if [[ $status != 0 ]]; then reason=$(curl_reason "$status"); fi
    elif command -v wget >/dev/null 2>&1; then
        local verbosity=--quiet
        if [[ -t 2 ]]; then verbosity=--no-verbose; fi
        wget "$verbosity" --timeout=60 --tries=2 --output-document="$dest" "$url" || status=$?
        if [[ $status != 0 ]]; then reason=$(wget_reason "$status"); fi
    else
        fail "neither curl nor wget is installed; install one of them and run this again"
    fi
    if [[ $status != 0 ]]; then
        fail "could not download $url ($reason); nothing was written"
    fi
}

zip_extractor() {  # zip_extractor: print the command that unpacks zip files here, or fail
    local python
    if python=$(command -v python3 || command -v python); then
        echo "$python"
    elif command -v unzip >/dev/null 2>&1; then
        echo unzip
    else
        fail "cannot unpack zip files: neither python3 nor unzip is installed; install one of them"
    fi
}

unpack() {  # unpack ARCHIVE zip|tar.gz DIR EXTRACTOR: extract ARCHIVE into DIR
    if [[ $2 == tar.gz ]]; then
        tar -xzf "$1" -C "$3"
    elif [[ $4 == unzip ]]; then
        unzip -q "$1" -d "$3"
    else
        "$4" -m zipfile -e "$1" "$3"
    fi
}

# download_folder URL zip|tar.gz TARGET_DIR: fetch an archive whose top folder has TARGET_DIR's name
download_folder() {
    local url=$1 format=$2 target=$3
    local parent base archive unpacked extractor=tar
    parent=$(dirname -- "$target")
    base=$(basename -- "$target")
    if [[ -e $target ]]; then
        fail "$target already exists; delete it to download it again"
    fi
    if [[ $format == zip ]]; then extractor=$(zip_extractor) || exit 2; fi
    make_dirs "$parent"
    new_temp file "$parent" "$base.$format"
    archive=$TEMP
    echo "downloading $url"
    fetch "$url" "$archive"
    new_temp dir "$parent" "$base.unpack"
    unpacked=$TEMP
    if ! unpack "$archive" "$format" "$unpacked" "$extractor" >/dev/null 2>&1; then
        fail "the file downloaded from $url is not a valid $format archive; nothing was written"
    fi
    if [[ ! -d $unpacked/$base ]]; then
        fail "the archive from $url has no top folder '$base/'; nothing was written"
    fi
    mv -- "$unpacked/$base" "$target"
    DOWNLOAD_FINISHED=1
    echo "saved $target"
}

download_file() {  # download_file URL TARGET_FILE: fetch URL and put it at TARGET_FILE (replacing an old copy)
    local url=$1 target=$2
    local parent
    parent=$(dirname -- "$target")
    make_dirs "$parent"
    new_temp file "$parent" "$(basename -- "$target")"
    echo "downloading $url"
    fetch "$url" "$TEMP"
    mv -- "$TEMP" "$target"
    DOWNLOAD_FINISHED=1
    echo "saved $target"
}
