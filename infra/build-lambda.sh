#!/usr/bin/env bash
# Builds the three Lambda artifacts (x86_64, release) the way `sam build`
# does — cargo-lambda with zig as the linker, OpenSSL vendored through
# [workspace.metadata.lambda.build] in Cargo.toml — and prints their sizes.
# Not part of .ci/run: a cold release build takes ~20 minutes on a 2-core
# machine. Output: target/lambda/<binary>/bootstrap.zip, ready for Lambda
# (docs/deploy.md records the sizes).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.0
if ! cargo lambda --version 2>/dev/null | grep -q "^cargo-lambda ${CARGO_LAMBDA_VERSION} " \
  || ! python3 -m ziglang version >/dev/null 2>&1; then
  echo "== installing (PyPI): cargo-lambda ${CARGO_LAMBDA_VERSION}, ziglang ${ZIGLANG_VERSION}"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "cargo-lambda==${CARGO_LAMBDA_VERSION}" "ziglang==${ZIGLANG_VERSION}"
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

binaries=(broker-webhook queue-completions price-ticks)
args=()
for bin in "${binaries[@]}"; do args+=(--bin "$bin"); done
cargo lambda build --release --locked --output-format zip "${args[@]}"

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
printf '%-20s %14s %14s\n' binary bootstrap zip
for bin in "${binaries[@]}"; do
  zip_file="$target_dir/lambda/$bin/bootstrap.zip"
  unzipped=$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip_file")
  printf '%-20s %14s %14s\n' "$bin" "$unzipped" "$(stat -c %s "$zip_file")"
done
