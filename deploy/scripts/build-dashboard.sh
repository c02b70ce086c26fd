#!/usr/bin/env bash
# Rebuilds the dashboard's vendored chart library from the npm registry, reproducibly:
# `npm ci` installs exactly the versions pinned in package-lock.json, then the minified
# browser build is copied next to the dashboard's own assets and its checksum recorded.
# The built file is committed, so `make test` on a clean clone needs neither npm nor a network.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
web="$here/services/profiles/analytics/web"
vendor="$here/services/profiles/analytics/static/vendor"
command -v npm >/dev/null 2>&1 || { echo "npm is needed to rebuild the chart library" >&2; exit 1; }
(cd "$web" && npm ci --no-audit --no-fund --silent)
mkdir -p "$vendor"
cp "$web/node_modules/echarts/dist/echarts.min.js" "$vendor/echarts.min.js"
cp "$web/node_modules/echarts/LICENSE" "$vendor/echarts.LICENSE.txt"
(cd "$vendor" && sha256sum echarts.min.js > echarts.min.js.sha256)
echo "chart library: $(node -p "require('$web/node_modules/echarts/package.json').version") -> $vendor/echarts.min.js"
