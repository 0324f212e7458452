# Outputs that cannot be written: a file size limit (ulimit -f; write()
# fails with EFBIG, as with ENOSPC on a full disk) under stamp (still, video,
# stamp -l), scan --jsonl and verify --report, and stdout on /dev/full. Each
# must exit 3 with one line naming the file and the cause, leave no partial
# output and no temporary file (.NAME.tmp-*, .celmark-*); a scan's OUT keeps
# only whole lines and continues with --resume. celmark ignores SIGXFSZ
# itself (else the kernel kills it mid-write); the runs with `trap '' XFSZ`
# check the same with the signal already ignored by the caller.
. "$(dirname "$0")/common.shlib"
: "${CELMARK_GEN:?}" "${CELMARK_MKCLIP:?}"

"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
K="$T/k.key"
"$CELMARK_GEN" "$T/in.png" 640 360 5 || exit 1
"$CELMARK_MKCLIP" "$T/in.mp4" size=320x240 frames=24 opts=crf=10 || exit 1
O="$T/o"
mkdir -p "$O"

# limited BLOCKS TRAP -- celmark args...: run celmark with a file size
# limit of BLOCKS*512 bytes; TRAP=1 ignores SIGXFSZ in the shell first
limited() {
    blocks=$1
    trap=$2
    shift 3
    if [ "$trap" = 1 ]; then
        sh -c 'trap "" XFSZ; ulimit -f "$0"; exec "$@"' "$blocks" "$CELMARK" "$@"
    else
        sh -c 'ulimit -f "$0"; exec "$@"' "$blocks" "$CELMARK" "$@"
    fi
}

for trap in 0 1; do
    expect 3 "^celmark: $O/a.png: cannot write output: File too large; .*ulimit -f" -- \
        limited 16 $trap -- stamp -k "$K" --id 0123456789abcdef "$T/in.png" "$O/a.png"
    check "stamp png (trap=$trap): one line" one_line_err
    check "stamp png (trap=$trap): no output" [ ! -e "$O/a.png" ]
    check "stamp png (trap=$trap): no temp file" no_temp_files "$O"
    expect 3 "^celmark: $O/v.mp4: cannot write output: File too large; " -- \
        limited 16 $trap -- stamp -k "$K" --id 0123456789abcdef --quiet "$T/in.mp4" "$O/v.mp4"
    check "stamp video (trap=$trap): one line" one_line_err
    check "stamp video (trap=$trap): no output" [ ! -e "$O/v.mp4" ]
    check "stamp video (trap=$trap): no temp file" no_temp_files "$O"
done

# stamp -l: no row, nothing pending, no temp file once the ledger reopens
L="$T/l.db"
"$CELMARK" stamp -k "$K" -l "$L" --recipient first --asset ep1 "$T/in.png" "$O/first.png" >/dev/null ||
    exit 1
# (64 KiB: SQLite's 32 KiB shared-memory file fits, the stamped frame not)
expect 3 "^celmark: $O/b.png: cannot write output: File too large; " -- \
    limited 128 0 -- stamp -k "$K" -l "$L" --recipient x --asset ep1 "$T/in.png" "$O/b.png"
check "stamp -l: one line" one_line_err
check "stamp -l: no output" [ ! -e "$O/b.png" ]
expect 0 '' -- "$CELMARK" ledger verify -l "$L" -k "$K"
check "stamp -l: ledger ok" grep -qx 'status: ok' "$T/out"
expect 0 '' -- "$CELMARK" ledger list -l "$L"
check "stamp -l: no row for the failed copy" [ "$(tail -n +2 "$T/out" | wc -l)" -eq 1 ]
check "stamp -l: no temp file" no_temp_files "$O"

# a ledger that cannot grow: said so, not "not a celmark ledger"
expect 3 "^celmark: $L: cannot open the ledger: File too large; " -- \
    limited 16 0 -- stamp -k "$K" -l "$L" --recipient x --asset ep1 "$T/in.png" "$O/b.png"
check "stamp -l, ledger: no output" [ ! -e "$O/b.png" ]

# a sequence: all frames or none, the output's name in the message
S="$T/seq"
mkdir -p "$S"
for f in 1 2 3; do cp "$T/in.png" "$S/in.000$f.png"; done
expect 3 "^celmark: $S/out.0001.png: cannot write output: File too large; " -- \
    limited 128 0 -- stamp -k "$K" --id 0123456789abcdef "$S/in.####.png" "$S/out.####.png"
check "sequence: one line" one_line_err
check "sequence: no frame written" [ "$(count_names "$S" '*out*')" = 0 ]
check "sequence: no temp folder" no_temp_files "$S"

# verify --report: no page, no temp file
expect 3 "^celmark: $O/r.html: .*File too large; " -- \
    limited 16 0 -- verify -k "$K" --report "$O/r.html" "$T/in.png" "$O/first.png"
check "report: one line" one_line_err
check "report: no page" [ ! -e "$O/r.html" ]
check "report: no temp file" no_temp_files "$O"

# scan --jsonl: stops with one line, OUT cut back to whole lines, --resume
# finishes it with every file exactly once
D="$T/dump"
mkdir -p "$D"
i=1
while [ $i -le 12 ]; do
    cp "$T/in.png" "$D/f$i.png"
    i=$((i + 1))
done
cp "$O/first.png" "$D/"
J="$O/s.jsonl"
expect 3 "^celmark: $J: cannot write the results: File too large; .*--resume" -- \
    limited 4 0 -- scan -k "$K" -j 2 --jsonl "$J" "$D"
check "scan: one line" one_line_err
check "scan: some lines written" [ -s "$J" ]
check "scan: OUT smaller than the limit" [ "$(wc -c <"$J")" -le 2048 ]
check "scan: OUT ends in a whole line" [ "$(tail -c 1 "$J" | od -An -c | tr -d ' ')" = '\n' ]
check "scan: every line complete" sh -c "! grep -qv '^{.*}\$' '$J'"
expect 0 '' -- "$CELMARK" scan -k "$K" -j 2 --resume --jsonl "$J" "$D"
check "scan --resume: 13 files" [ "$(wc -l <"$J")" -eq 13 ]
check "scan --resume: each once" [ "$(grep -o '"path":"[^"]*"' "$J" | sort -u | wc -l)" -eq 13 ]
check "scan: no temp file" no_temp_files "$O"

# results on a full stdout are an error, not a success
if [ -w /dev/full ]; then
    expect 3 "^celmark: stdout: cannot write the results: No space left on device; free some space" -- \
        sh -c "exec '$CELMARK' verify -k '$K' '$O/first.png' >/dev/full"
    expect 3 "^celmark: stdout: cannot write the results: No space left on device" -- \
        sh -c "exec '$CELMARK' scan -k '$K' -j 1 '$D' >/dev/full"
    expect 3 "^celmark: stdout: .*No space left on device" -- \
        sh -c "exec '$CELMARK' ledger export -l '$L' --format jsonl >/dev/full"
fi

finish
