#!/bin/sh
# The documentation keeps up with the command: every option that
# 'celmark help CMD' (and 'celmark --help') prints is in the man page
# celmark.1 and on the command's page in docs/; the man page renders
# without a groff warning; README.md stays a front door (at most 12 KiB,
# the set-up commands verbatim).
. "$(dirname "$0")/common.shlib"
: "${CELMARK_SRC:?}"
MAN="$CELMARK_SRC/celmark.1"
DOCS="$CELMARK_SRC/docs"
README="$CELMARK_SRC/README.md"

check "celmark.1 exists" test -f "$MAN"
check "docs/README.md (the index) exists" test -f "$DOCS/README.md"

# The man page source with its escapes undone (\- is a hyphen-minus, \e a
# backslash), so options can be looked up as the user types them.
sed -e 's/\\-/-/g' -e 's/\\e/\\/g' "$MAN" >"$T/man.txt"

# options: every long (--xxx) and short (-k) option in a help text on stdin,
# one a line. An option starts a line or follows a blank, '[', '(', ',' or
# '|'; "--max-..." (the family the main help points at) is not one.
options() {
    grep -oE '(^|[][[:space:](,|])--?[A-Za-z][A-Za-z0-9-]*' |
        sed 's/^[^-]*//' | grep -v -- '-$' | sort -u
}

# has OPTION FILE...: OPTION appears as a whole (grep -F -w: not as the
# prefix of a longer option, not "-k" inside "--key").
has() {
    opt=$1
    shift
    grep -qFw -e "$opt" -- "$@"
}

# page CMD: the docs page that documents CMD.
page() {
    case $1 in
    key) echo "$DOCS/keygen.md" ;;
    help | main) echo "$DOCS/README.md" ;;
    *) echo "$DOCS/$1.md" ;;
    esac
}

for cmd in main keygen key stamp verify scan check info ledger help; do
    if [ "$cmd" = main ]; then
        "$CELMARK" --help >"$T/help" 2>&1
    else
        "$CELMARK" help "$cmd" >"$T/help" 2>&1
    fi
    check "celmark help $cmd prints its usage" grep -q '^Usage: celmark' "$T/help"
    doc=$(page "$cmd")
    check "$doc exists" test -f "$doc"
    options <"$T/help" >"$T/opts"
    # every command but keygen and help has options; an empty list means
    # the extraction broke, not that there is nothing to check
    case $cmd in
    keygen | help) ;;
    *) check "options found in 'celmark help $cmd'" test -s "$T/opts" ;;
    esac
    while read -r opt; do
        check "celmark.1 has $cmd option $opt" has "$opt" "$T/man.txt"
        check "$(basename "$doc") has $cmd option $opt" has "$opt" "$doc"
    done <"$T/opts"
done

# celmark help's long list of commands: each has a section in the man page.
for cmd in keygen key stamp verify scan check info ledger help; do
    check "celmark.1 has a section for $cmd" grep -q "^\\.SS celmark $cmd" "$MAN"
done

# The man page renders without warnings.
if command -v groff >/dev/null 2>&1; then
    CHECKS=$((CHECKS + 1))
    groff -man -ww -z "$MAN" >"$T/groff" 2>&1
    if [ $? -ne 0 ] || [ -s "$T/groff" ]; then
        echo "FAIL: groff -man -ww -z celmark.1 is not clean:"
        sed 's/^/  groff: /' "$T/groff"
        FAILS=$((FAILS + 1))
    fi
else
    echo "skip: groff not installed, celmark.1 not rendered (scripts/install-deps installs it)"
fi

# README.md is the front door, not the manual.
size=$(wc -c <"$README")
check "README.md is $size bytes, at most 12288" test "$size" -le 12288
check "README.md has the demo set-up command" \
    grep -qxF '    scripts/install-deps && scripts/demo' "$README"
check "README.md has the build-and-test command" \
    grep -qxF '    cmake -S . -B build && cmake --build build -j && ctest --test-dir build --output-on-failure' "$README"

# Every docs/ page README.md and docs/README.md link to exists.
for f in "$README" "$DOCS"/*.md; do
    dir=$(dirname "$f")
    grep -oE '\]\([^)#]+' "$f" | sed 's/^](//' | grep -v '^[a-z]*:' | while read -r link; do
        test -e "$dir/$link" || echo "$(basename "$f"): $link"
    done
done >"$T/badlinks"
check "every relative link in README.md and docs/ resolves" test ! -s "$T/badlinks"
sed 's/^/  broken link: /' "$T/badlinks"

finish
