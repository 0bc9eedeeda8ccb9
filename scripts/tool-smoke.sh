#!/usr/bin/env bash
# Packs RLFT's NuGet packages, installs the `rlft` tool from them into a temporary tool path, and runs it from
# an empty folder with no repository in sight: `rlft info` and the default job (its preset ships in the tool).
# Used by .ci/run; run it by hand after changing package metadata.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
packages="$work/packages"

dotnet pack RLFT.sln -c Release -o "$packages" -v quiet -nologo
ls "$packages"/*.nupkg | sed 's|.*/|packed: |'
for id in Rlft.Policy Rlft.Reward Rlft.Rollout Rlft.Actors rlft; do
  ls "$packages/$id".*.nupkg >/dev/null
done

version=$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props | head -n 1)
# A private package cache: a package rebuilt under the same version is never shadowed by an older cached copy.
NUGET_PACKAGES="$work/nuget" dotnet tool install rlft --version "$version" --tool-path "$work/tool" --add-source "$packages"

mkdir "$work/empty"
cd "$work/empty"
"$work/tool/rlft" info
"$work/tool/rlft" run quickstart --set output-dir="$work/runs"
test -s "$work/runs/quickstart/summary.json"
grep -q '"succeeded": *true' "$work/runs/quickstart/summary.json"
echo "tool-smoke: rlft $version installed from the packages, ran info and the default job"
