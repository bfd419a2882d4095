#!/usr/bin/env bash
# Starts one node of the Socket.IO peer: `start.sh server` or `start.sh publisher`.
# Installs the pinned dependencies first when node_modules is missing or older
# than package-lock.json. Only the node's `READY <port>` line goes to stdout.
set -euo pipefail

case "${1:-}" in
  server | publisher) node_script="$1.js" ;;
  *)
    echo "usage: $0 server|publisher" >&2
    exit 2
    ;;
esac

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$tool was not found on PATH; install Node.js 20 or later with npm" \
      "(Debian/Ubuntu: apt-get install -y nodejs npm; macOS: brew install node)" >&2
    exit 1
  fi
done

cd "$(dirname "$0")"

# npm writes node_modules/.package-lock.json on every install: it is the stamp.
# The lock (util-linux flock, where there is one) keeps a server and a
# publisher started together from installing at once.
if command -v flock >/dev/null 2>&1; then
  exec 9>.install.lock
  flock 9
fi
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund >&2
fi
exec 9>&-

exec node "$node_script"
