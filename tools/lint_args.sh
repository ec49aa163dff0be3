#!/bin/sh
# make lint: argument errors are built in one place per language,
# core/errors.c for C and lua/curio/check.lua for Lua (docs/errors.md).
# Fails when a "bad argument #n" message, or lauxlib's luaL_argerror or
# luaL_typeerror, appears in any other source file. luaL_argcheck and
# luaL_check* stay only as guards of curio.core functions that curio's own
# modules call after checking. Specs and documentation may quote messages.
cd "$(dirname "$0")/.." || exit 2
found=$(grep -rn -e "bad argument #" -e "on bad self" -e "luaL_argerror" -e "luaL_typeerror" core lua examples bench tools tests \
          --include='*.c' --include='*.h' --include='*.lua' --include='*.sh' |
        grep -v -e '^core/errors\.c:' -e '^lua/curio/check\.lua:' -e '^tools/lint_args\.sh:')
if [ -n "$found" ]; then
  echo "argument errors built outside core/errors.c and lua/curio/check.lua:" >&2
  echo "$found" >&2
  exit 1
fi
