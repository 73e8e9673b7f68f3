#!/usr/bin/env bash
# Refresh the vendored front-end libraries from the npm registry with `npm pack` (a tarball, no
# node_modules, no build step), copy the one file each that the app loads plus its licence, and
# write MANIFEST (versions, npm integrity, sha256 of each copied file; tests/static checks it).
#
#   static/vendor/refresh.sh                       # the pinned versions below
#   WEUI=2.6.27 static/vendor/refresh.sh           # another version of one library
set -euo pipefail

WEUI="${WEUI:-2.6.26}"                  # WeChat's official styles (MIT)
QRCODE_GENERATOR="${QRCODE_GENERATOR:-2.0.4}"  # QR encoder, draws the code from the token (MIT)
JSQR="${JSQR:-1.4.0}"                   # QR decoder, reads camera frames in the clerk scanner (Apache-2.0)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

pack() {  # pack NAME VERSION -> unpacks into $work/NAME, prints the tarball's integrity
    local name=$1 version=$2
    (cd "$work" && npm pack --silent --json "${name}@${version}" > "${name}.json")
    mkdir -p "$work/$name"
    tar -xzf "$work/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["filename"])' \
        "$work/${name}.json")" -C "$work/$name" --strip-components=1
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$work/${name}.json"
}

weui_integrity=$(pack weui "$WEUI")
qr_integrity=$(pack qrcode-generator "$QRCODE_GENERATOR")
jsqr_integrity=$(pack jsqr "$JSQR")

rm -rf "$here/weui" "$here/qrcode-generator" "$here/jsqr"
mkdir -p "$here/weui" "$here/qrcode-generator" "$here/jsqr"

cp "$work/weui/dist/style/weui.min.css" "$here/weui/weui.min.css"
cp "$work/weui/LICENSE.txt" "$here/weui/LICENSE.txt"

cp "$work/qrcode-generator/dist/qrcode.js" "$here/qrcode-generator/qrcode.js"
# The package ships no licence file; its package.json says MIT and qrcode.js's header names the holder.
license=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["license"])' \
    "$work/qrcode-generator/package.json")
[[ "$license" == "MIT" ]] || { echo "qrcode-generator's licence changed to $license: check it" >&2; exit 1; }
holder=$(grep -m1 -o 'Copyright (c) [0-9]* .*' "$work/qrcode-generator/dist/qrcode.js")
cat > "$here/qrcode-generator/LICENSE.txt" <<LICENSE
qrcode-generator ${QRCODE_GENERATOR} (https://github.com/kazuhikoarase/qrcode-generator)
The package ships no licence file: its package.json declares "MIT" and dist/qrcode.js's header reads
"${holder}, Licensed under the MIT license". The MIT licence's text:

MIT License

${holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.

The word "QR Code" is a registered trademark of DENSO WAVE INCORPORATED.
LICENSE

cp "$work/jsqr/dist/jsQR.js" "$here/jsqr/jsQR.js"
cp "$work/jsqr/LICENSE" "$here/jsqr/LICENSE"

cd "$here"
{
    echo "# Written by refresh.sh; tests/static checks the files against it. package version integrity"
    echo "package weui $WEUI $weui_integrity"
    echo "package qrcode-generator $QRCODE_GENERATOR $qr_integrity"
    echo "package jsqr $JSQR $jsqr_integrity"
    echo "# sha256  file"
    sha256sum weui/weui.min.css weui/LICENSE.txt qrcode-generator/qrcode.js qrcode-generator/LICENSE.txt \
        jsqr/jsQR.js jsqr/LICENSE
} > MANIFEST
echo "vendored: weui $WEUI, qrcode-generator $QRCODE_GENERATOR, jsqr $JSQR (see $here/MANIFEST)"
