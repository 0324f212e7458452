# Every malformed file in tests/bad/ through `celmark info` and `celmark
# verify`, and the whole folder through `celmark scan`: the exit code tests/bad/MANIFEST expects, a one-line error naming
# the file when refused, no crash (134/139), no hang (timeout 20 s per run, more on a slow machine),
# and a small peak memory (bombs are refused before they allocate). Bad key
# files are also tried as keys. The limits (--max-frames,
# --max-decode-seconds) refuse a valid but long video.
. "$(dirname "$0")/common.shlib"

BAD="$CELMARK_SRC/tests/bad"
M="$BAD/MANIFEST"
# Peak resident memory allowed per run (KiB): the good files here need
# ~40 MiB, the bombs asked for 0.3-2.3 GiB before they were refused. Under
# ASan (CELMARK_ASAN=1) the runtime's own shadow and quarantine count too.
MAX_KB=$((${CELMARK_ASAN:-0} ? 600 * 1024 : 300 * 1024))
have_time=0
[ -x /usr/bin/time ] && have_time=1

"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
# The time limit per run (s) scales with this machine: 20 s, or 100 times
# what a verify of an ordinary 640x360 frame takes here if that is more (a
# slow or loaded machine, a debug or sanitizer build). A bad file is
# refused in a fraction of the ordinary time; a hang runs into the limit.
"$CELMARK_GEN" "$T/ok.png" 640 360 3 || exit 1
t0=$(date +%s%N)
"$CELMARK" verify -q -k "$T/k.key" "$T/ok.png" >/dev/null 2>&1
t1=$(date +%s%N)
base=$(((t1 - t0) / 10000000)) # 100 x the run, in s
TIMEOUT=${CELMARK_BAD_TIMEOUT:-$((base > 20 ? base : 20))}

# run_bad FILE WANT ARGS...: run celmark ARGS under timeout (and
# /usr/bin/time), then check the outcome for FILE.
run_bad() {
    file=$1
    want=$2
    shift 2
    CHECKS=$((CHECKS + 1))
    if [ "$have_time" = 1 ]; then
        /usr/bin/time -f '%M' -o "$T/mem" timeout "$TIMEOUT" "$CELMARK" "$@" >"$T/out" 2>"$T/err"
    else
        timeout "$TIMEOUT" "$CELMARK" "$@" >"$T/out" 2>"$T/err"
    fi
    code=$?
    name=$(basename "$file")
    desc="$name: celmark $1"
    if [ "$code" -eq 124 ]; then
        echo "FAIL: $desc: hung (killed after $TIMEOUT s)"
    elif [ "$code" -ge 128 ] || [ "$code" -eq 4 ]; then
        echo "FAIL: $desc: crashed or internal error (exit $code)"
        sed 's/^/  stderr: /' "$T/err" | head -20
    elif [ "$code" -ne "$want" ]; then
        echo "FAIL: $desc: exit $code, MANIFEST says $want"
        sed 's/^/  stderr: /' "$T/err" | head -5
    elif [ "$want" -eq 3 ] && { [ "$(wc -l <"$T/err")" -ne 1 ] ||
        ! grep -q "^celmark: .*$name" "$T/err"; }; then
        echo "FAIL: $desc: refused without one 'celmark: <file>: ...' line on stderr"
        sed 's/^/  stderr: /' "$T/err" | head -5
    elif [ "$want" -eq 3 ] && [ -s "$T/out" ]; then
        echo "FAIL: $desc: refused but printed a result on stdout"
    elif [ "$have_time" = 1 ] && [ "$(tail -n1 "$T/mem")" -gt "$MAX_KB" ]; then
        echo "FAIL: $desc: peak memory $(tail -n1 "$T/mem") KiB, above $MAX_KB KiB"
    else
        return 0
    fi
    FAILS=$((FAILS + 1))
    return 1
}

listed=0
while read -r name info verify rest; do
    case "$name" in '' | '#'*) continue ;; esac
    f="$BAD/$name"
    listed=$((listed + 1))
    check "$name: in tests/bad" [ -f "$f" ]
    run_bad "$f" "$info" info "$f"
    run_bad "$f" "$verify" verify -q -k "$T/k.key" "$f"
    case "$name" in
    key-*)
        cp "$f" "$T/bad.key" && chmod 600 "$T/bad.key"
        run_bad "$T/bad.key" 3 key info "$T/bad.key"
        run_bad "$T/bad.key" 3 verify -k "$T/bad.key" "$BAD/png-zero-width.png"
        ;;
    esac
done <"$M"

# every file in tests/bad is listed (a new file without expectations fails)
for f in "$BAD"/*; do
    n=$(basename "$f")
    case "$n" in MANIFEST | make-bad) continue ;; esac
    check "$n: listed in MANIFEST" grep -q "^$n " "$M"
done
check "at least 40 bad files ($listed)" [ "$listed" -ge 40 ]

# scan over the whole corpus (as over a dump): exit 3, no crash, no hang,
# small memory; every file verify reads (MANIFEST 1) reported unmarked,
# every file verify refuses (3) reported with an error or skipped as not
# media; nothing claimed; every line a whole JSON object
S="$T/bad.jsonl"
CHECKS=$((CHECKS + 1))
if [ "$have_time" = 1 ]; then
    /usr/bin/time -f '%M' -o "$T/mem" timeout "$((TIMEOUT * 3))" "$CELMARK" scan -k "$T/k.key" \
        -j 2 --max-decode-seconds 10 --jsonl "$S" "$BAD" >"$T/out" 2>"$T/err"
else
    timeout "$((TIMEOUT * 3))" "$CELMARK" scan -k "$T/k.key" -j 2 --max-decode-seconds 10 \
        --jsonl "$S" "$BAD" >"$T/out" 2>"$T/err"
fi
code=$?
if [ "$code" -ne 3 ]; then
    echo "FAIL: scan of tests/bad: exit $code, expected 3 (124 = hung)"
    sed 's/^/  stderr: /' "$T/err" | head -20
    FAILS=$((FAILS + 1))
elif [ "$have_time" = 1 ] && [ "$(tail -n1 "$T/mem")" -gt "$MAX_KB" ]; then
    echo "FAIL: scan of tests/bad: peak memory $(tail -n1 "$T/mem") KiB, above $MAX_KB KiB"
    FAILS=$((FAILS + 1))
fi
check "scan: every line a whole object" sh -c "! grep -qv '^{\"schema\":\"celmark.scan/1\".*}\$' '$S'"
check "scan: nothing claimed" sh -c "! grep -q '\"marked\":true' '$S'"
skipped=$(sed -n 's/^skipped_not_media: //p' "$T/out")
check "scan: every file reported or skipped as not media" \
    [ "$(($(wc -l <"$S") + ${skipped:-0}))" -eq "$(count_names "$BAD")" ]
# error_or_skipped PATH: $T/line (PATH's scan line) is empty, or an error
# naming PATH
error_or_skipped() {
    [ ! -s "$T/line" ] || grep -qF "\"error\":\"$(json_str "$1"): " "$T/line"
}
while read -r name info verify rest; do
    case "$name" in '' | '#'*) continue ;; esac
    grep -F "\"path\":\"$(json_str "$BAD/$name")\"" "$S" >"$T/line"
    if [ "$verify" = 1 ]; then
        check "scan: $name reported unmarked" sh -c "grep -q '\"marked\":false' '$T/line' &&
            ! grep -q '\"error\"' '$T/line'"
    else
        check "scan: $name reported with an error or skipped" error_or_skipped "$BAD/$name"
    fi
done <"$M"

# limits on a valid video: too many frames, too long to decode
Y="$BAD/y4m-2000-tiny-frames.y4m"
run_bad "$Y" 3 verify -q -k "$T/k.key" --max-frames 1000 "$Y"
check "max-frames: names the limit" grep -q "more than 1000 frames" "$T/err"
run_bad "$Y" 3 verify -q -k "$T/k.key" --max-decode-seconds 0.000001 "$Y"
check "max-decode-seconds: names the limit" grep -q "decoding took more than" "$T/err"
expect 3 '' -- "$CELMARK" scan -k "$T/k.key" --max-decode-seconds 0.000001 --jsonl "$T/y.jsonl" "$Y"
check "scan --max-decode-seconds: the file listed with the limit" grep -q '"error":".*decoding took more than' "$T/y.jsonl"
expect 3 'more than 1000 frames' -- "$CELMARK" check -k "$T/k.key" --expect-unmarked --max-frames 1000 "$Y"
check "check --max-frames: names the limit" grep -q "more than 1000 frames" "$T/out"
"$CELMARK_GEN" "$T/g.png" 64 48 3 || exit 1
run_bad "$T/g.png" 3 info --max-pixels 1000 "$T/g.png"
check "max-pixels: names the limit" grep -q "above the limit of 1000 pixels" "$T/err"
run_bad "$T/g.png" 3 info --max-file-size 100 "$T/g.png"
check "max-file-size: names the limit" grep -q "above the limit of 100 bytes" "$T/err"
expect 2 "max-frames must be" -- "$CELMARK" verify -k "$T/k.key" --max-frames -5 "$T/g.png"
expect 2 "max-decode-seconds must be" -- "$CELMARK" stamp -k "$T/k.key" --id 0000000000000001 --max-decode-seconds x "$T/g.png" "$T/o.png"
check "help documents the limits" sh -c "'$CELMARK' help stamp | grep -q -- '--max-decode-seconds S'"

# a bomb stays small even where /usr/bin/time is missing: 1 GiB of address
# space is plenty for a refusal (not under ASan, which reserves terabytes)
if [ "${CELMARK_ASAN:-0}" = 0 ]; then
    for n in png-text-chunk-claims-2gib.png qoi-run-bomb-16000x16000.qoi \
        bmp-claims-16000x16000.bmp pgm-claims-16000x16000.pgm y4m-20000x20000.y4m; do
        expect 3 "$n" -- sh -c "ulimit -v 1048576; exec '$CELMARK' info '$BAD/$n'"
        expect 3 "$n" -- sh -c "ulimit -v 1048576; exec '$CELMARK' verify -k '$T/k.key' '$BAD/$n'"
    done
fi

finish
