# verify --report: the evidence page over marked, unmarked and corrupt
# stills and a two-recipient video cut. Content, escaping of hostile names,
# no network references, determinism, atomic no-clobber output, and the
# text output of verify unchanged by --report.
. "$(dirname "$0")/common.shlib"

"$CELMARK_GEN" "$T/in.png" 640 360 5 || exit 1
"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
L="$T/l.db"
HOSTILE='Vendor <b>"B"</b> & '"'"'co'"'"
stamp() { # recipient asset in out -> prints the issue id
    "$CELMARK" stamp -q -k "$T/k.key" -l "$L" --recipient "$1" --asset "$2" "$3" "$4" |
        sed -n 's/^issue_id: //p'
}
EVIL="$T/sh<script>alert('x')\"&.png"
IDA=$(stamp vendor-a "ep01 <i>" "$T/in.png" "$T/a.png")
IDB=$(stamp "$HOSTILE" ep01 "$T/in.png" "$EVIL")
head -c 3000 "$T/a.png" >"$T/corrupt.png"
# the files to verify, as the positional parameters (paths may hold spaces)
set -- "$T/a.png" "$T/in.png" "$T/corrupt.png"
if command -v ffmpeg >/dev/null; then
    "$CELMARK_MKCLIP" "$T/clip.mp4" frames=48 || exit 1
    VA=$(stamp vendor-a clip "$T/clip.mp4" "$T/va.mp4")
    VB=$(stamp "$HOSTILE" clip "$T/clip.mp4" "$T/vb.mp4")
    printf "file '%s'\nfile '%s'\n" "$T/va.mp4" "$T/vb.mp4" >"$T/list.txt"
    ffmpeg -v error -f concat -safe 0 -i "$T/list.txt" -c copy "$T/cut.mp4" || exit 1
    set -- "$@" "$T/cut.mp4"
fi
R="$T/r.html"

expect 3 "corrupt.png" -- "$CELMARK" verify -k "$T/k.key" -l "$L" --report "$R" "$@" "$EVIL"
cp "$T/out" "$T/with-report.txt"
check "report written" [ -s "$R" ]
expect 3 "corrupt.png" -- "$CELMARK" verify -k "$T/k.key" -l "$L" "$@" "$EVIL"
check "verify output unchanged by --report" cmp -s "$T/out" "$T/with-report.txt"

# self-contained: CSP, no network references, only data: images, no script
check "doctype" sh -c "head -1 '$R' | grep -qx '<!DOCTYPE html>'"
check "CSP meta" grep -q "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">" "$R"
check "no http:/https: references" sh -c "! grep -qiE 'https?:|//[a-z0-9.-]+\.[a-z]{2,}/' '$R'"
check "no script element" sh -c "! grep -qi '<script' '$R'"
check "no url() or @import" sh -c "! grep -qiE 'url\(|@import' '$R'"
check "every src is a data: URI" sh -c "! grep -oE ' src=\"[^\"]{0,11}' '$R' | grep -v 'src=\"data:image/'"
check "thumbnails inline" [ "$(grep -c 'src="data:image/png;base64,iVBORw0KGgo' "$R")" -ge 2 ]

# hostile strings escaped
check "hostile path escaped" grep -q 'sh&lt;script&gt;alert(&#39;x&#39;)&quot;&amp;.png' "$R"
check "hostile recipient escaped" grep -q 'Vendor &lt;b&gt;&quot;B&quot;&lt;/b&gt; &amp; &#39;co&#39;' "$R"
check "hostile asset escaped" grep -q 'ep01 &lt;i&gt;' "$R"
check "no raw markup from names" sh -c "! grep -qE '<b>|<i>' '$R'"

# content: summary per recipient, hits, unmarked, unreadable
check "summary: vendor-a" grep -q '<tr class="recipient"><th colspan="5">recipient: <span class="name">vendor-a</span>' "$R"
check "summary: other recipient" grep -q '<tr class="recipient"><th colspan="5">recipient: <span class="name">Vendor &lt;b&gt;' "$R"
check "summary: id A" grep -q "<code>$IDA</code></td><td class=\"asset\">ep01 &lt;i&gt;</td>" "$R"
check "summary: id B" grep -q "<code>$IDB</code>" "$R"
check "hit fields" sh -c "grep -q '<th>score (z)</th>' '$R' && grep -q '<th>false-positive probability</th>' '$R' && grep -q '<th>sync found</th><td>scale 1.000' '$R'"
check "ledger signature shown" grep -q '<span class="ok">signature ok</span>' "$R"
check "unmarked row" grep -qF "<tr class=\"unmarked\"><td><code>$T/in.png</code>" "$R"
check "unreadable row with its error" grep -q "<tr class=\"unreadable\"><td><code>$T/corrupt.png</code></td><td>.*truncated" "$R"
check "counts" sh -c "grep -q '<tr><th>unreadable</th><td>1</td></tr>' '$R' && grep -q '<tr><th>no mark found</th><td>1</td></tr>' '$R'"
if [ -e "$T/cut.mp4" ]; then
    check "timeline: two segments" [ "$(grep -o '<div class="seg' "$R" | wc -l)" = 2 ]
    check "timeline: equal halves" [ "$(grep -o 'flex-grow:48;' "$R" | wc -l)" = 2 ]
    check "timeline: A then B" grep -q "<div class=\"timeline\"><div class=\"seg\" [^>]*title=\"00:00:00:00&ndash;00:00:02:00 $VA vendor-a\">.*title=\"00:00:02:00&ndash;00:00:04:00 $VB Vendor &lt;b&gt;" "$R"
    check "mixed said" grep -q 'yes: segments claim several issue ids' "$R"
    check "segment rows" [ "$(grep -c '<tr class="segment">' "$R")" = 2 ]
fi

# deterministic apart from the generated-at line; refuses to overwrite
expect 3 "already exists; use --force" -- "$CELMARK" verify -k "$T/k.key" -l "$L" --report "$R" "$@"
check "refused before the work" [ ! -s "$T/out" ]
cp "$R" "$T/r1.html"
"$CELMARK" verify -k "$T/k.key" -l "$L" --report "$R" --force "$@" "$EVIL" >/dev/null 2>&1
check "same page again" sh -c "diff '$T/r1.html' '$R' | grep '^[<>]' | grep -v 'class=\"generated-at\"' | grep -q . && exit 1 || exit 0"
check "generated-at is UTC" grep -Eq '<dd class="generated-at">[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z</dd>' "$R"
expect 2 "only applies to --report" -- "$CELMARK" verify -k "$T/k.key" --force "$T/a.png"
expect 3 "nodir" -- "$CELMARK" verify -k "$T/k.key" --report "$T/nodir/r.html" "$T/a.png"
check "no temp files left" no_temp_files "$T"

finish
