# The evidence page as a browser shows it: headless Chromium renders a
# report (stills, a hostile name, an unreadable file) to a screenshot with
# the page's console on stderr; the page must render (non-trivial PNG of
# the window size) and log no console message, CSP violation or script
# error. SKIPs (77) without Chromium; CI installs it (scripts/install-deps).
. "$(dirname "$0")/common.shlib"

BROWSER=$(command -v chromium || command -v chromium-browser || true)
[ -n "$BROWSER" ] || { echo "SKIP: no chromium"; rm -rf "$T"; exit 77; }

"$CELMARK_GEN" "$T/in.png" 640 360 5 || exit 1
"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
"$CELMARK" stamp -q -k "$T/k.key" -l "$T/l.db" --recipient 'Vendor <b>"B"</b>' --asset ep01 "$T/in.png" "$T/sh<script>x'\".png" >/dev/null || exit 1
"$CELMARK" stamp -q -k "$T/k.key" -l "$T/l.db" --recipient vendor-a --asset ep01 "$T/in.png" "$T/a.png" >/dev/null || exit 1
printf garbage >"$T/bad.png"
"$CELMARK" verify -q -k "$T/k.key" -l "$T/l.db" --report "$T/r.html" "$T/a.png" "$T/sh<script>x'\".png" "$T/in.png" "$T/bad.png" >/dev/null 2>&1
check "report written" [ -s "$T/r.html" ]

# shot PAGE PNG ERR: render PAGE with its console logged to ERR
shot() {
    timeout 120 "$BROWSER" --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$T/profile" --screenshot="$2" --window-size=1280,2000 \
        --enable-logging=stderr --v=0 "file://$1" >/dev/null 2>"$3"
}
console_errors() { grep -E 'CONSOLE|Uncaught|Refused to' "$1"; }

# the check itself must see a CSP violation: a page that loads a remote image
printf '%s\n' '<!DOCTYPE html><html><head><meta charset="utf-8">' \
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">" \
    '</head><body><img src="https://example.invalid/x.png"></body></html>' >"$T/control.html"
shot "$T/control.html" "$T/control.png" "$T/control.err"
check "a CSP violation is seen in the console log" sh -c "grep -E 'CONSOLE|Refused to' '$T/control.err' | grep -q 'Content Security Policy'"

shot "$T/r.html" "$T/shot.png" "$T/shot.err"
check "screenshot written" [ -s "$T/shot.png" ]
check "screenshot is a PNG" [ "$(od -An -tx1 -N8 "$T/shot.png" | tr -d ' \n')" = 89504e470d0a1a0a ]
check "screenshot has the window size" [ "$(od -An -tu1 -j16 -N8 "$T/shot.png" | tr -s ' ' | sed 's/^ //')" = "0 0 5 0 0 0 7 208" ]
check "screenshot is not blank (> 40 kB)" [ "$(wc -c <"$T/shot.png")" -gt 40000 ]
if console_errors "$T/shot.err" >"$T/console"; then
    echo "FAIL: the page logged to the console:"
    sed 's/^/  /' "$T/console"
    FAILS=$((FAILS + 1))
fi
CHECKS=$((CHECKS + 1))

# the scan's page over a small dump with a video: rendered, no console message
mkdir -p "$T/dump"
cp "$T/a.png" "$T/in.png" "$T/bad.png" "$T/dump/"
if [ -n "${CELMARK_MKCLIP:-}" ]; then
    "$CELMARK_MKCLIP" "$T/clip.mp4" frames=12 || exit 1
    "$CELMARK" stamp -q -k "$T/k.key" -l "$T/l.db" --recipient vendor-c --asset ep02 "$T/clip.mp4" "$T/dump/c.mp4" >/dev/null || exit 1
fi
"$CELMARK" scan -k "$T/k.key" -l "$T/l.db" -j 2 --jsonl "$T/scan.jsonl" --report "$T/s.html" "$T/dump" >/dev/null 2>&1
check "scan report written" [ -s "$T/s.html" ]
check "scan report names the clip's recipient" grep -q 'vendor-c' "$T/s.html"
shot "$T/s.html" "$T/sshot.png" "$T/sshot.err"
check "scan screenshot written" [ "$(wc -c <"$T/sshot.png")" -gt 40000 ]
if console_errors "$T/sshot.err" >"$T/sconsole"; then
    echo "FAIL: the scan page logged to the console:"
    sed 's/^/  /' "$T/sconsole"
    FAILS=$((FAILS + 1))
fi
CHECKS=$((CHECKS + 1))

finish
