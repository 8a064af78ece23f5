#!/usr/bin/env bash
# Style checks that a tool keeps, not memory: banned C calls in core/, and
# luacheck on the plugins and the core's Lua. Exits non-zero on a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

# sprintf/strcpy/strcat/gets overflow; atoi/atol hide errors; bare assert
# vanishes under NDEBUG (use O7_ASSERT or O7_CHECK).
banned='(^|[^_a-z0-9])(sprintf|vsprintf|strcpy|strcat|gets|atoi|atol|atoll|assert)[[:space:]]*\('
if grep -nE "$banned" core/*.c core/*.h | grep -vE '^\S+:[0-9]+:\s*(/\*|\*)'; then
    echo "lint: banned call in core/ (see scripts/lint.sh for why)" >&2
    status=1
fi

if command -v luacheck >/dev/null; then
    luacheck --no-color -q plugins core/lua || status=1
else
    echo "lint: luacheck not installed (Debian package lua-check)" >&2
    status=1
fi
[ $status = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $status
