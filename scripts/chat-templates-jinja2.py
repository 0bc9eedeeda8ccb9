"""Text reference of scripts/check-chat-templates.sh: renders conversations with Python's Jinja2 in the environment
transformers' apply_chat_template builds (utils/chat_template_utils.py: ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks, loopcontrols and a {% generation %} tag; tojson = json.dumps with ensure_ascii=False;
raise_exception; strftime_now) and the special-token variables of tokenizer_config.json.
    python3 chat-templates-jinja2.py TOKENIZER_DIR IN.jsonl OUT.jsonl [TEMPLATE.jinja]
    python3 chat-templates-jinja2.py --snippets FILE.json
The second form fills in "expected" ({"text"} or {"error", "type"}) for each {"template", "variables"} entry of
FILE.json: the reference the interpreter's unit tests (tests/RLFT.Tests/Chat/jinja-reference.json) compare with.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Generation(Extension):
    """{% generation %}…{% endgeneration %} renders its body (transformers tracks its spans; the text is the same)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def special_tokens(config):
    """transformers' special_tokens_map: the set special tokens as strings, extra lists and named extras."""
    def content(v):
        return v.get("content") if isinstance(v, dict) else v
    variables = {}
    for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]:
        if content(config.get(key)):
            variables[key] = content(config[key])
    if config.get("additional_special_tokens"):
        variables["additional_special_tokens"] = [content(t) for t in config["additional_special_tokens"]]
    for key, value in (config.get("extra_special_tokens") or {}).items():
        variables[key] = content(value)
    return variables


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda format: datetime.now().strftime(format)
    return env


def snippets(path):
    data = json.load(open(path, encoding="utf-8"))
    for case in data["cases"]:
        try:
            case["expected"] = {"text": environment().from_string(case["template"]).render(**case.get("variables", {}))}
        except Exception as e:
            case["expected"] = {"error": str(e), "type": type(e).__name__}
    with open(path, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
        out.write("\n")


def main(directory, input_path, output_path, template_path=None):
    config = json.load(open(f"{directory}/tokenizer_config.json", encoding="utf-8"))
    source = open(template_path, encoding="utf-8").read() if template_path else config["chat_template"]
    template = environment().from_string(source)
    with open(output_path, "w", encoding="utf-8") as out:
        for line in open(input_path, encoding="utf-8"):
            if not line.strip():
                continue
            case = json.loads(line)
            kwargs = {**special_tokens(config), **case.get("chat_template_kwargs", {})}
            try:
                text = template.render(messages=case["messages"], tools=case.get("tools"), documents=case.get("documents"),
                                       add_generation_prompt=case.get("add_generation_prompt", False), **kwargs)
                result = {"text": text}
            except Exception as e:  # the template's own message, as transformers surfaces it
                result = {"error": str(e)}
            out.write(json.dumps(result, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "--snippets":
        snippets(sys.argv[2])
    else:
        main(*sys.argv[1:])
