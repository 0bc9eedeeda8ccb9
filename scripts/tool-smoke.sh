#!/usr/bin/env bash
# Packs RLFT's NuGet packages, installs the `rlft` tool from them into a temporary tool path, and runs it from
# an empty folder with no repository in sight: `rlft info` and the default job (its preset ships in the tool).
# The three samples build against the packed packages and run; one of them is also built from a copy outside the
# repository (a project of the user's own: no repository build files, only what the packages bring).
# Used by .ci/run; run it by hand after changing package metadata.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
app_pid=
cleanup() {
  if [ -n "$app_pid" ]; then kill "$app_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
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
  rm -rf "$work/samples/$project"   # ~480 MB of libtorch per output: the next one needs the room
done

# The ASP.NET Core sample against the packages: started on a free loopback port, its own route and the health check
# fetched, then stopped.
NUGET_PACKAGES="$work/nuget" dotnet build samples/FeedbackInAspNet -c Release -p:RlftSamplesFromPackages=true \
  -p:RestoreAdditionalProjectSources="$packages" -o "$work/samples/FeedbackInAspNet" -v quiet -nologo
grep -A1 '"Rlft.Actors/' "$repo/samples/FeedbackInAspNet/obj/from-packages/project.assets.json" | grep -q '"type": "package"'
app_log="$work/feedback-app.log"
(cd "$work" && exec timeout 300 dotnet "$work/samples/FeedbackInAspNet/Rlft.Samples.FeedbackInAspNet.dll" \
  --urls http://127.0.0.1:0 --journal "$work/feedback.db" --token "smoke-$$" >"$app_log" 2>&1) &
app_pid=$!
url=
for _ in $(seq 1 120); do
  url=$(sed -n 's|^listening on \(http://[^ ,]*\).*|\1|p' "$app_log" | head -n 1)
  if [ -n "$url" ] || ! kill -0 "$app_pid" 2>/dev/null; then break; fi
  sleep 0.5
done
if [ -z "$url" ]; then echo "tool-smoke: FeedbackInAspNet did not say where it listens within 60 s:"; cat "$app_log"; exit 1; fi
curl -fsS --max-time 10 "$url/hello" | grep -q 'hello from my app'
# The health check asks the feedback actor, which may still be opening its journal: a few tries.
healthy=
for _ in 1 2 3 4 5; do
  if curl -fsS --max-time 10 "$url/healthz" | grep -q '"status":"ok"'; then healthy=yes; break; fi
  sleep 1
done
if [ -z "$healthy" ]; then echo "tool-smoke: $url/healthz never said ok:"; cat "$app_log"; exit 1; fi
kill "$app_pid"
wait "$app_pid" 2>/dev/null || true
app_pid=
echo "FeedbackInAspNet: $url/hello and $url/healthz answered"
rm -rf "$work/samples/FeedbackInAspNet"

# A project of the user's own, outside the repository: a minimal csproj referencing Rlft.Actors at the packed version,
# with DpoFromJsonl's Program.cs. No repository build file applies there, so TorchSharp's libLibTorchSharp.so loads on
# Debian 12 only through the patch that Rlft.Policy ships (buildTransitive/Rlft.Policy.targets).
outside="$work/outside"
mkdir "$outside"
dir="$outside"
while :; do
  for f in Directory.Build.props Directory.Build.targets Directory.Packages.props; do
    if [ -e "$dir/$f" ]; then echo "tool-smoke: $dir/$f would apply to the outside project"; exit 1; fi
  done
  [ "$dir" = / ] && break
  dir=$(dirname "$dir")
done
cp samples/DpoFromJsonl/Program.cs "$outside/"
printf '%s\n' \
  '<Project Sdk="Microsoft.NET.Sdk">' \
  '  <PropertyGroup>' \
  '    <OutputType>Exe</OutputType>' \
  '    <TargetFramework>net10.0</TargetFramework>' \
  '    <ImplicitUsings>enable</ImplicitUsings>' \
  '    <Nullable>enable</Nullable>' \
  '    <RuntimeIdentifier>linux-x64</RuntimeIdentifier>' \
  '    <SelfContained>false</SelfContained>' \
  "    <RestoreAdditionalProjectSources>$packages</RestoreAdditionalProjectSources>" \
  '  </PropertyGroup>' \
  '  <ItemGroup>' \
  "    <PackageReference Include=\"Rlft.Actors\" Version=\"$version\" />" \
  '  </ItemGroup>' \
  '</Project>' > "$outside/MyDpo.csproj"
NUGET_PACKAGES="$work/nuget" dotnet build "$outside/MyDpo.csproj" -c Release -o "$outside/out" -v quiet -nologo
(cd "$outside" && timeout 300 dotnet out/MyDpo.dll "$outside/runs" > "$outside/run.log")
tail -n 2 "$outside/run.log"
grep -q '"succeeded": *true' "$outside/runs/dpo-from-jsonl/summary.json"
# It ends by loading the trained policy through Rlft.Policy's supported surface (Checkpoint, HfTokenizer, TextGenerator).
grep -q '^completion (' "$outside/run.log"
rm -rf "$outside/out"

mkdir "$work/empty"
cd "$work/empty"
"$work/tool/rlft" info
"$work/tool/rlft" run quickstart --set output-dir="$work/runs"
test -s "$work/runs/quickstart/summary.json"
grep -q '"succeeded": *true' "$work/runs/quickstart/summary.json"
echo "tool-smoke: rlft $version installed from the packages, ran info and the default job; the three samples built against the packages and ran, one also as a project outside the repository"
