# celmark --help/--version/help/info on good files.
. "$(dirname "$0")/common.shlib"

expect 0 '' -- "$CELMARK" --help
check "--help lists info" grep -q '^  info ' "$T/out"
expect 0 '' -- "$CELMARK" --version
check "--version prints version" grep -Eq '^celmark [0-9]+\.[0-9]+\.[0-9]+$' "$T/out"
expect 0 '' -- "$CELMARK" help info
check "help info shows usage" grep -q '^Usage: celmark info' "$T/out"
expect 0 '' -- "$CELMARK" info --help
expect 2 "unknown command 'frobnicate'" -- "$CELMARK" frobnicate
expect 2 "Try 'celmark help info'" -- "$CELMARK" info
expect 2 "unknown option '--bogus'" -- "$CELMARK" info --bogus x.png
expect 2 "^Usage: celmark" -- "$CELMARK"
expect 2 "unknown command" -- "$CELMARK" help nope

"$CELMARK_GEN" "$T/rgb.png" 320 180 3 3 8 || exit 1
"$CELMARK_GEN" "$T/rgba16.png" 64 48 4 4 16 || exit 1

expect 0 '' -- "$CELMARK" info "$T/rgb.png"
check "text: format" grep -qx 'format: png' "$T/out"
check "text: size" grep -qx 'size: 320x180' "$T/out"
check "text: depth" grep -qx 'bit_depth: 8' "$T/out"
check "text: channels" grep -qx 'channels: 3' "$T/out"
check "text: alpha" grep -qx 'alpha: no' "$T/out"

expect 0 '' -- "$CELMARK" info --json "$T/rgb.png" "$T/rgba16.png"
check "json: two lines" [ "$(wc -l <"$T/out")" -eq 2 ]
check "json: schema" grep -q '"schema":"celmark.info/1"' "$T/out"
check "json: 16-bit rgba" grep -q '"width":64,"height":48,"bit_depth":16,"color_type":"rgba","channels":4,"alpha":true' "$T/out"

finish
