#!/bin/sh
# Runs one browser test file (ctest): exit 77 = skipped, with the reason printed, when node is
# missing; the test itself checks Chromium, playwright-core and the web build (harness.mjs).
if ! command -v node >/dev/null 2>&1; then
  echo "browser test SKIPPED: node not found (scripts/setup installs nodejs)"
  [ "${EVALD_REQUIRE_BROWSER:-0}" = 1 ] && exit 1
  exit 77
fi
exec node "$@"
