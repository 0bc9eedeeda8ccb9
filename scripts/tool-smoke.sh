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

# The samples against the packed libraries (package references, not the sources), each run to its end.
repo=$(pwd)
for sample in CustomReward:custom-reward DpoFromJsonl:dpo-from-jsonl; do
  project=${sample%%:*} job=${sample##*:}
  NUGET_PACKAGES="$work/nuget" dotnet build "samples/$project" -c Release -p:RlftSamplesFromPackages=true \
    -p:RestoreAdditionalProjectSources="$packages" -o "$work/samples/$project" -v quiet -nologo
  grep -A1 '"Rlft.Actors/' "$repo/samples/$project/obj/from-packages/project.assets.json" | grep -q '"type": "package"'
  (cd "$work" && dotnet "$work/samples/$project/Rlft.Samples.$project.dll" "$work/sample-runs" | tail -n 2)
  grep -q '"succeeded": *true' "$work/sample-runs/$job/summary.json"
done

mkdir "$work/empty"
cd "$work/empty"
"$work/tool/rlft" info
"$work/tool/rlft" run quickstart --set output-dir="$work/runs"
test -s "$work/runs/quickstart/summary.json"
grep -q '"succeeded": *true' "$work/runs/quickstart/summary.json"
echo "tool-smoke: rlft $version installed from the packages, ran info and the default job; the samples built against the packages and ran"
