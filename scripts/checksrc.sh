#!/bin/sh
# checksrc.sh - fail if C sources in net/ cache/ fs/ tests/ call a banned
# function (STYLE.md: sprintf strcpy strcat strtok atoi, and gets).
#
# Usage: scripts/checksrc.sh          (from anywhere; checks this checkout)
# Matches whole-word calls ("name(" or "name ("), so vsnprintf, strtok_r or
# my_atoi_helper pass. Lines that are comments ("*", "/*", "//" first) are
# skipped. Exit 0 when clean, 1 listing file:line:text of each hit.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

banned='sprintf|strcpy|strcat|strtok|atoi|gets'
pattern="(^|[^A-Za-z0-9_])($banned)[[:space:]]*\\("

dirs=
for d in net cache fs tests; do
    [ -d "$d" ] && dirs="$dirs $d"
done
[ -n "$dirs" ] || exit 0

# shellcheck disable=SC2086 # $dirs is a list of plain directory names
hits=$(find $dirs -type f \( -name '*.c' -o -name '*.h' \) \
           -exec grep -nHE "$pattern" {} + |
       grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|/\*|//)' || true)

if [ -n "$hits" ]; then
    printf '%s\n' "$hits"
    echo "checksrc: banned function call(s) above; use snprintf, memcpy with" \
         "a length, strtok_r or strtol/strtoull with an end pointer" >&2
    exit 1
fi
exit 0
