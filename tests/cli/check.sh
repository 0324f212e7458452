# celmark check: the CI gate. Copies stamped for two recipients into a
# ledger; pass, fail and unreadable cases, folders, a video cut of two
# recipients (fails naming both), JUnit XML well-formed and escaped, exit
# codes (3 unreadable > 1 failed > 0), usage errors.
. "$(dirname "$0")/common.shlib"

"$CELMARK_GEN" "$T/in.png" 640 360 5 || exit 1
"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
L="$T/l.db"
HOSTILE='Vendor <b>"B"</b> & '"'"'co'"'"
stamp() { # recipient asset in out -> prints the issue id
    "$CELMARK" stamp -q -k "$T/k.key" -l "$L" --recipient "$1" --asset "$2" "$3" "$4" |
        sed -n 's/^issue_id: //p'
}
IDA=$(stamp vendor-a ep01 "$T/in.png" "$T/a.png")
IDB=$(stamp "$HOSTILE" ep01 "$T/in.png" "$T/b.png")
check "stamped two copies" [ -n "$IDA" ] && [ -n "$IDB" ]

# usage errors
expect 2 "exactly one of" -- "$CELMARK" check -k "$T/k.key" -l "$L" "$T/a.png"
expect 2 "exactly one of" -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-unmarked --expect-issue "$IDA" "$T/a.png"
expect 2 "needs a ledger" -- "$CELMARK" check -k "$T/k.key" --expect-recipient vendor-a "$T/a.png"
expect 2 "16 hex digits" -- "$CELMARK" check -k "$T/k.key" --expect-issue 123 "$T/a.png"
expect 2 "no key given" -- "$CELMARK" check --expect-unmarked "$T/a.png"
expect 2 "no file or folder" -- "$CELMARK" check -k "$T/k.key" --expect-unmarked
expect 0 '' -- "$CELMARK" check --help
check "help names --junit" grep -q -- '--junit OUT.xml' "$T/out"

# pass / fail per expectation
expect 0 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a "$T/a.png"
check "pass line" grep -qx 'result: pass' "$T/out"
check "found line names the recipient" grep -q "^found: issue_id=$IDA recipient=\"vendor-a\" asset=\"ep01\" ledger_row=ok" "$T/out"
check "summary" sh -c "grep -qx 'files: 1' '$T/out' && grep -qx 'passed: 1' '$T/out' && grep -qx 'failed: 0' '$T/out'"
expect 1 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a "$T/b.png"
check "fail names the other recipient" grep -q "^reason: expected recipient \"vendor-a\", found $IDB (recipient \"Vendor <b>" "$T/out"
expect 1 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a "$T/in.png"
check "unmarked file fails a recipient check" grep -q '^reason: expected recipient "vendor-a", found no mark' "$T/out"
expect 0 '' -- "$CELMARK" check -k "$T/k.key" --expect-issue "$IDA" "$T/a.png"
expect 1 '' -- "$CELMARK" check -k "$T/k.key" --expect-issue "$IDA" "$T/b.png"
expect 0 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-unmarked "$T/in.png"
expect 1 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-unmarked "$T/in.png" "$T/a.png"
check "unmarked check names what it found" grep -q "^reason: expected no mark, found $IDA (recipient \"vendor-a\")" "$T/out"
check "overall fail" grep -qx 'result: fail' "$T/out"

# --json: one object per file
expect 1 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --json --expect-recipient vendor-a "$T/a.png" "$T/b.png"
check "two JSON lines" [ "$(grep -c '^{"schema":"celmark.check/1"' "$T/out")" = 2 ]
check "json pass" grep -q "\"result\":\"pass\",\"expected\":{\"recipient\":\"vendor-a\"}.*\"found\":\[{\"issue_id\":\"$IDA\",\"recipient\":\"vendor-a\"" "$T/out"
check "json fail with reason" grep -q '"result":"fail".*"reason":"expected recipient' "$T/out"

# folders: recursive, non-media skipped; unreadable wins over fail (exit 3)
mkdir -p "$T/deliv/sh010" "$T/deliv/sh020"
cp "$T/a.png" "$T/deliv/sh010/a.png"
cp "$T/a.png" "$T/deliv/sh020/a2.png"
echo notes >"$T/deliv/README.txt"
expect 0 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a "$T/deliv"
check "two files checked" grep -qx 'files: 2' "$T/out"
check "text file skipped" grep -qx 'skipped: 1' "$T/out"
check "walk in name order" [ "$(grep '^file: ' "$T/out" | tr '\n' ' ')" = "file: $T/deliv/sh010/a.png file: $T/deliv/sh020/a2.png " ]
cp "$T/b.png" "$T/deliv/sh020/b.png"
expect 1 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a "$T/deliv"
head -c 3000 "$T/a.png" >"$T/deliv/sh020/cut-short.png"
expect 3 "cut-short.png" -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a "$T/deliv"
check "unreadable reported" grep -q '^result: error$' "$T/out"
check "summary counts" sh -c "grep -qx 'passed: 2' '$T/out' && grep -qx 'failed: 1' '$T/out' && grep -qx 'unreadable: 1' '$T/out'"
expect 3 "not a recognised image or video" -- "$CELMARK" check -k "$T/k.key" --expect-unmarked "$T/deliv/README.txt"
mkdir "$T/empty"
expect 3 "no image or video found" -- "$CELMARK" check -k "$T/k.key" --expect-unmarked "$T/empty"
expect 3 "nosuch" -- "$CELMARK" check -k "$T/k.key" --expect-unmarked "$T/nosuch.png"

# JUnit XML: one testcase per file, failure/error, hostile names escaped,
# invalid UTF-8 in a name still well-formed
EVIL="$T/deliv/sh030<script>alert('x')\"&.png"
mkdir -p "$T/deliv/sh030"
cp "$T/b.png" "$EVIL"
cp "$T/a.png" "$(printf '%s/deliv/sh030/bad\377utf8.png' "$T")"
expect 3 "cut-short.png" -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a --junit "$T/j.xml" "$T/deliv"
check "junit written" [ -s "$T/j.xml" ]
if command -v xmllint >/dev/null; then
    check "junit is well-formed XML" xmllint --noout "$T/j.xml"
else
    echo "note: no xmllint; checking the JUnit structure with grep only"
fi
check "xml declaration" sh -c "head -1 '$T/j.xml' | grep -q '^<?xml version=\"1.0\" encoding=\"UTF-8\"?>$'"
check "one testcase per file" [ "$(grep -c '<testcase classname="celmark.check" name=' "$T/j.xml")" = 6 ]
check "suite counts" grep -q '<testsuite name="celmark.check" tests="6" failures="2" errors="1"' "$T/j.xml"
check "one error element" [ "$(grep -c '<error message=' "$T/j.xml")" = 1 ]
check "two failure elements" [ "$(grep -c '<failure message=' "$T/j.xml")" = 2 ]
check "balanced testcases" [ "$(grep -c '<testcase .*[^/]>$' "$T/j.xml")" = "$(grep -c '</testcase>' "$T/j.xml")" ]
check "hostile path escaped" grep -q 'name="[^"]*sh030&lt;script&gt;alert(&#39;x&#39;)&quot;&amp;.png"' "$T/j.xml"
check "hostile recipient escaped" grep -q 'Vendor &lt;b&gt;&quot;B&quot;&lt;/b&gt; &amp; &#39;co&#39;' "$T/j.xml"
check "no raw markup from names" sh -c "! grep -q '<script\|<b>' '$T/j.xml'"
check "invalid UTF-8 replaced" grep -q "bad$(printf '\357\277\275')utf8.png" "$T/j.xml"
expect 3 "already exists; use --force" -- "$CELMARK" check -k "$T/k.key" --expect-unmarked --junit "$T/j.xml" "$T/in.png"
check "refused before the work" [ ! -s "$T/out" ]
expect 0 '' -- "$CELMARK" check -k "$T/k.key" --expect-unmarked --junit "$T/j.xml" --force "$T/in.png"
check "replaced with --force" grep -q 'tests="1" failures="0" errors="0"' "$T/j.xml"
check "passing testcase is empty" grep -q "<testcase classname=\"celmark.check\" name=\"$T/in.png\" time=\"[0-9.]*\"/>" "$T/j.xml"
check "no temp files left" no_temp_files "$T"

# video: one recipient's copy passes; a cut of two recipients fails naming both
if command -v ffmpeg >/dev/null; then
    "$CELMARK_MKCLIP" "$T/clip.mp4" frames=48 || exit 1
    VA=$(stamp vendor-a clip "$T/clip.mp4" "$T/va.mp4")
    VB=$(stamp "$HOSTILE" clip "$T/clip.mp4" "$T/vb.mp4")
    expect 0 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a "$T/va.mp4"
    check "video: not mixed" grep -qx 'mixed: no' "$T/out"
    printf "file '%s'\nfile '%s'\n" "$T/va.mp4" "$T/vb.mp4" >"$T/list.txt"
    ffmpeg -v error -f concat -safe 0 -i "$T/list.txt" -c copy "$T/cut.mp4" || exit 1
    expect 1 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a --junit "$T/v.xml" "$T/cut.mp4"
    check "cut: mixed" grep -qx 'mixed: yes' "$T/out"
    check "cut: names vendor-a's id" grep -q "^reason: .*$VA (recipient \"vendor-a\") at 00:00:00:00-00:00:02:00" "$T/out"
    check "cut: names the other recipient" grep -q "^reason: .*$VB (recipient \"Vendor <b>\"B\"</b> & 'co'\") at 00:00:02:00-" "$T/out"
    check "cut: both found lines" [ "$(grep -c '^found: issue_id=.* frames=48$' "$T/out")" = 2 ]
    check "cut: junit failure names both" grep -q "<failure message=\"[^\"]*$VA[^\"]*$VB" "$T/v.xml"
    expect 1 '' -- "$CELMARK" check -k "$T/k.key" --expect-issue "$VA" "$T/cut.mp4"
    expect 0 '' -- "$CELMARK" check -k "$T/k.key" --expect-unmarked "$T/clip.mp4"
fi

finish
