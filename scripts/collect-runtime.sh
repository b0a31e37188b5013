#!/bin/sh
# collect-runtime.sh <dir>: copy what the built apps need at run time, at their workspace paths,
# into <dir> (the Dockerfile's build stage runs it after `pnpm run build`; the runtime stage adds the
# production node_modules beside it). For every workspace package: its package.json, its dist/ and
# any data files at its root (the spec files of packages/specs, READMEs), but none of its TypeScript
# sources, tests, tsconfig files or node_modules. Plus the committed migrations, which
# @longhaul/db finds at the repository root (../../../migrations from its dist/, as from its src/).
set -eu
out=$1
cd "$(dirname "$0")/.."
test -d "$out" || mkdir -p "$out"
for pkg in apps/* packages/*; do
  test -f "$pkg/package.json" || continue
  test -d "$pkg/dist" || { echo "collect-runtime: $pkg has no dist/ (run the build first)" >&2; exit 1; }
  mkdir -p "$out/$pkg"
  find "$pkg" -mindepth 1 -maxdepth 1 \
    ! -name src ! -name test ! -name node_modules ! -name .turbo \
    ! -name 'tsconfig*.json' ! -name '*.ts' ! -name '*.tsbuildinfo' \
    -exec cp -R {} "$out/$pkg/" \;
done
cp -R migrations "$out/migrations"
