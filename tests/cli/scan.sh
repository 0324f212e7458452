# celmark scan over a small dump: attribution per recipient, errors listed
# without stopping, content-based recognition, symlinks, --resume after a
# cut-short output, deterministic --shard.
. "$(dirname "$0")/common.shlib"
: "${CELMARK_MKCLIP:?}"

"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
L="$T/ledger.db"
D="$T/dump"
mkdir -p "$D/batch1/sub" "$D/batch2" "$T/outside"
"$CELMARK_GEN" "$T/f1.png" 640 360 1 || exit 1
"$CELMARK_GEN" "$T/f2.png" 640 360 2 || exit 1
"$CELMARK_MKCLIP" "$T/clip.mp4" frames=12 || exit 1
"$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient "Studio A" --asset ep1 "$T/f1.png" "$D/batch1/a1.png" >/dev/null || exit 1
"$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient "Studio B" --asset ep1 "$T/f2.png" "$D/batch2/b2.png" >/dev/null || exit 1
"$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient "Studio B" --asset ep1 --quiet "$T/clip.mp4" "$D/batch2/clip.mp4" >/dev/null || exit 1
cp "$T/f1.png" "$D/batch1/sub/clean.png"                 # unmarked
cp "$D/batch1/a1.png" "$D/batch1/sub/renamed.txt"        # media by content, not name
head -c 2000 "$D/batch2/b2.png" >"$D/batch2/cut.png"      # corrupt
printf 'vendor instructions\n' >"$D/batch1/README.doc"   # not media
cp "$D/batch1/a1.png" "$T/outside/secret.png"
ln -s "$T/outside/secret.png" "$D/batch1/link-out.png"   # leads out of the tree
ln -s "$D/batch2/b2.png" "$D/batch1/link-in.png"          # stays inside

expect 3 '' -- "$CELMARK" scan -k "$T/k.key" -l "$L" -j 2 --jsonl "$T/out.jsonl" "$D"
J="$T/out.jsonl"
check "one line per media file (6)" [ "$(wc -l <"$J")" -eq 6 ]
# line NAME: the JSON line of $D/NAME; has NAME REGEX: that line matches
line() { grep -F "\"path\":\"$(json_str "$D/$1")\"" "$J"; }
has() { line "$1" | grep -q -- "$2"; }
check "a1 is Studio A" has batch1/a1.png '"recipient":"Studio A"'
check "b2 is Studio B" has batch2/b2.png '"recipient":"Studio B"'
check "the clip is Studio B" has batch2/clip.mp4 '"kind":"video".*"recipient":"Studio B".*"segments"'
check "renamed.txt recognised by content" has batch1/sub/renamed.txt '"recipient":"Studio A"'
check "clean.png not claimed" has batch1/sub/clean.png '"marked":false'
check "cut.png listed with an error" has batch2/cut.png '"error":"'
check "sha256 of a1" has batch1/a1.png "\"sha256\":\"$(sha256sum <"$D/batch1/a1.png" | cut -c1-64)\""
check "links not followed" sh -c "! grep -q 'link-' '$J'"
check "summary: per recipient" grep -q '^recipient: "Studio B" files=2$' "$T/out"
check "summary: not media" grep -q '^skipped_not_media: 1$' "$T/out"
check "summary: symlinks" grep -q '^skipped_symlinks: 2$' "$T/out"
check "summary: unreadable named" grep -q "^unreadable_file: .*cut.png" "$T/out"
check "summary: throughput" grep -Eq '^throughput: [0-9.]+ files/s, [0-9.]+ MB/s' "$T/out"

# the evidence page: every hit with its thumbnail, no network reference
expect 3 '' -- "$CELMARK" scan -k "$T/k.key" -l "$L" --jsonl "$T/p.jsonl" --report "$T/r.html" "$D"
check "report names both recipients" sh -c "grep -q 'Studio A' '$T/r.html' && grep -q 'Studio B' '$T/r.html'"
check "report: a thumbnail per hit (4)" [ "$(grep -o 'data:image/png;base64' "$T/r.html" | wc -l)" -ge 4 ]
check "report lists the unreadable file" grep -q 'cut.png' "$T/r.html"
check "report fetches nothing" sh -c "! grep -Eq 'https?:|url\(' '$T/r.html'"
expect 3 "already exists" -- "$CELMARK" scan -k "$T/k.key" --jsonl "$T/p2.jsonl" --report "$T/r.html" "$D"

# links inside the tree are followed on request, never those leading out
expect 3 '' -- "$CELMARK" scan -k "$T/k.key" --follow-symlinks --jsonl "$T/f.jsonl" "$D"
check "inside link followed" grep -q 'link-in.png' "$T/f.jsonl"
check "outside link not followed" sh -c "! grep -q 'link-out.png' '$T/f.jsonl'"

# an existing output is not overwritten by accident
expect 3 "already exists" -- "$CELMARK" scan -k "$T/k.key" --jsonl "$J" "$D"
expect 2 "needs --jsonl" -- "$CELMARK" scan -k "$T/k.key" --resume "$D"
expect 2 "--shard must be" -- "$CELMARK" scan -k "$T/k.key" --shard 2/2 "$D"

# resume: keep two complete lines and half of a third (a killed scan)
head -n 2 "$J" >"$T/r.jsonl"
sed -n 3p "$J" | head -c 40 >>"$T/r.jsonl"
expect 3 '' -- "$CELMARK" scan -k "$T/k.key" -l "$L" --resume --jsonl "$T/r.jsonl" "$D"
check "resume: every file exactly once" [ "$(grep -o '"path":"[^"]*"' "$T/r.jsonl" | sort | uniq -d | wc -l)" -eq 0 ]
check "resume: all 6 files" [ "$(wc -l <"$T/r.jsonl")" -eq 6 ]
check "resume: the cut line is gone" sh -c "! grep -qv '^{.*}\$' '$T/r.jsonl'"
check "resume: skipped the two done" grep -q '^skipped_already_reported: 2$' "$T/out"

# shards: disjoint, together everything, stable
"$CELMARK" scan -k "$T/k.key" --shard 0/2 -j 1 --jsonl "$T/s0.jsonl" "$D" >/dev/null 2>&1
"$CELMARK" scan -k "$T/k.key" --shard 1/2 -j 1 --jsonl "$T/s1.jsonl" "$D" >/dev/null 2>&1
paths() { grep -o '"path":"[^"]*"' "$@" | sed 's/^[^:]*:"path"/"path"/' | sort; }
check "shards cover every file" [ "$(paths "$T/s0.jsonl" "$T/s1.jsonl")" = "$(paths "$J")" ]
check "shards are disjoint" [ "$(paths "$T/s0.jsonl" "$T/s1.jsonl" | uniq -d | wc -l)" -eq 0 ]
"$CELMARK" scan -k "$T/k.key" --shard 0/2 -j 2 --force --jsonl "$T/s0b.jsonl" "$D" >/dev/null 2>&1
check "shard split is stable" [ "$(paths "$T/s0.jsonl")" = "$(paths "$T/s0b.jsonl")" ]

# a tree with only good files exits 0; stdout gets JSON, stderr the summary
rm "$D/batch2/cut.png"
expect 0 'marked: 4' -- "$CELMARK" scan -k "$T/k.key" -j 1 "$D"
check "json lines on stdout" [ "$(grep -c '^{"schema":"celmark.scan/1"' "$T/out")" -eq 5 ]
expect 2 "no key" -- "$CELMARK" scan "$D"
finish
