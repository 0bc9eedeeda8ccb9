// Reference side of scripts/check-chat-templates.sh: renders conversations with transformers.js
// (@huggingface/transformers, whose apply_chat_template follows Python transformers) and compares with RLFT.
//   node chat-templates.mjs cases OUT.jsonl
//   node chat-templates.mjs render TOKENIZER_DIR IN.jsonl OUT.jsonl [TEMPLATE.jinja]
//   node chat-templates.mjs encode TOKENIZER_DIR TEXTS.jsonl OUT.jsonl    (adds input_ids to {"text"} lines)
//   node chat-templates.mjs compare REFERENCE.jsonl RLFT.jsonl LABEL
// RLFT_CHAT_CACHE names the folder whose node_modules holds @huggingface/transformers.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [command, ...args] = process.argv.slice(2);

const readLines = (file) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().length > 0).map((l) => JSON.parse(l));
const writeLines = (file, items) => fs.writeFileSync(file, items.map((x) => JSON.stringify(x)).join('\n') + '\n');

function cases() {
  const u = (content) => ({ role: 'user', content });
  const a = (content) => ({ role: 'assistant', content });
  const s = (content) => ({ role: 'system', content });
  const c = (name, messages, add_generation_prompt, extra = {}) => ({ name, messages, add_generation_prompt, ...extra });
  const unicode = 'héllo wörld — 你好 😀 ünïcödé, Ελληνικά, עברית, 𝔘𝔫𝔦';
  return [
    c('single user, generation prompt', [u('What is two plus three?')], true),
    c('single user, no generation prompt', [u('What is two plus three?')], false),
    c('user + assistant', [u('What is two plus three?'), a('Five.')], false),
    c('system + user, generation prompt', [s('You answer in one word.'), u('Capital of France?')], true),
    c('system + user + assistant', [s('You answer in one word.'), u('Capital of France?'), a('Paris.')], false),
    c('two rounds', [u('Hi!'), a('Hello. How can I help?'), u('Tell me a joke.'), a('Why did the chicken cross the road?')], false),
    c('two rounds, generation prompt', [u('Hi!'), a('Hello. How can I help?'), u('Tell me a joke.')], true),
    c('system + three rounds', [s('Be terse.'), u('1+1?'), a('2'), u('2+2?'), a('4'), u('3+3?'), a('6')], false),
    c('unicode', [s(unicode), u(unicode + '\nTabs\there.'), a('Ответ: 42 ✓ — ok')], false),
    c('unicode, generation prompt', [u('Emoji only: 😀😃😄 and CJK 漢字かなカナ')], true),
    c('leading and trailing whitespace', [u('  padded question \n\n'), a('\n  padded answer  \n')], false),
    c('empty contents', [u(''), a('')], false),
    c('newlines inside content', [u('line one\nline two\n\nline four'), a('a\nb\n')], false),
    c('literal special-token text', [u('<|im_start|>assistant\nfake<|im_end|> <|eot_id|> <s>[INST] </s> <start_of_turn>model <end_of_turn> <bos>'), a('<｜end▁of▁sentence｜> <|end|> <|begin_of_text|> ok')], false),
    c('template syntax in content', [u('{{ messages }} {% if true %}x{% endif %} {# note #}'), a('{%- raw %}r{% endraw %}')], false),
    c('quotes and backslashes', [u('He said "hi" and \'bye\' \\n not a newline \\ backslash'), a('C:\\path\\to "file"')], false),
    c('long multi-turn', Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? u(`question ${i}`) : a(`answer ${i}`))), false),
    c('system in the middle', [u('first'), a('one'), s('New rule: be brief.'), u('second')], true),
    c('roles do not alternate (two users)', [u('first'), u('second')], true),
    c('assistant first', [a('I speak first.'), u('ok')], true),
    c('unknown role', [{ role: 'narrator', content: 'Once upon a time' }, u('and then?')], true),
    c('reasoning in content', [u('2+2?'), a('<think>\nadd them\n</think>\n\n4')], false),
    c('reasoning_content field', [u('2+2?'), { role: 'assistant', content: '4', reasoning_content: 'add them' }], false),
    c('reasoning earlier turn', [u('2+2?'), a('<think>add</think>4'), u('and 3+3?'), a('<think>add again</think>6')], false),
    c('thinking disabled', [u('Hi')], true, { chat_template_kwargs: { enable_thinking: false } }),
    c('tool call and result', [
      u('Weather in Paris?'),
      { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius', days: 3 } } }] },
      { role: 'tool', content: '{"temperature": 21, "sky": "clear"}' },
      a('It is 21 °C and clear.'),
    ], false),
    c('tools offered', [u('Weather in Paris?')], true, {
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city — «météo»', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } }, required: ['city'] } } }],
    }),
    c('list content', [{ role: 'user', content: [{ type: 'text', text: 'Describe this.' }] }], true),
  ];
}

async function loadTransformers() {
  const cache = process.env.RLFT_CHAT_CACHE;
  if (!cache) throw new Error('set RLFT_CHAT_CACHE to the folder holding node_modules/@huggingface/transformers');
  const require = createRequire(path.join(cache, 'package.json'));
  return await import(require.resolve('@huggingface/transformers'));
}

async function loadTokenizer(dir) {
  const T = await loadTransformers();
  const tokenizerJson = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const name = config.tokenizer_class?.replace(/Fast$/, '') ?? 'PreTrainedTokenizer';
  return new (T[name] ?? T.PreTrainedTokenizer)(tokenizerJson, config);
}

async function encode(dir, input, output) {
  const tokenizer = await loadTokenizer(dir);
  writeLines(output, readLines(input).map((line) => ('text' in line ? { ...line, input_ids: tokenizer.encode(line.text, { add_special_tokens: false }) } : line)));
}

async function render(dir, input, output, templateFile) {
  const tokenizer = await loadTokenizer(dir);
  const chatTemplate = templateFile ? fs.readFileSync(templateFile, 'utf8') : null;
  const results = readLines(input).map((line) => {
    const { messages, add_generation_prompt, tools = null, documents = null, chat_template_kwargs = {} } = line;
    const options = { add_generation_prompt, tools, documents, ...chat_template_kwargs };
    if (chatTemplate) options.chat_template = chatTemplate;
    try {
      const text = tokenizer.apply_chat_template(messages, { ...options, tokenize: false });
      const ids = tokenizer.encode(text, { add_special_tokens: false });
      return { text, input_ids: ids };
    } catch (e) {
      return { error: e.message };
    }
  });
  writeLines(output, results);
}

function compare(referenceFile, oursFile, label) {
  const reference = readLines(referenceFile), ours = readLines(oursFile), names = cases().map((c) => c.name);
  if (reference.length !== ours.length) throw new Error(`${label}: ${reference.length} reference lines but ${ours.length} RLFT lines`);
  const who = label.includes('Jinja2') ? 'Jinja2' : 'transformers.js';
  let same = 0, bothFailed = 0, sameText = 0, sameError = 0;
  const notes = [];
  reference.forEach((r, i) => {
    const o = ours[i];
    if ('error' in r || 'error' in o) {
      if ('error' in r && 'error' in o) {
        bothFailed++;
        // RLFT prefixes errors other than raise_exception with the template's file and line.
        const agree = o.error === r.error || o.error.endsWith(`: ${r.error}`);
        if (agree) sameError++;
        notes.push(`    both refused "${names[i]}" ${agree ? 'with the same message' : 'with different messages'}: ${who}: ${r.error.slice(0, 90)} | RLFT: ${o.error.slice(0, 120)}`);
      } else notes.push(`    DIFFERENT "${names[i]}": ${'error' in r ? `only ${who} failed: ${r.error.slice(0, 120)}` : `only RLFT failed: ${o.error.slice(0, 160)}`}`);
      return;
    }
    const textSame = r.text === o.text, idsSame = JSON.stringify(r.input_ids) === JSON.stringify(o.input_ids);
    if (textSame) sameText++;
    if (textSame && idsSame) { same++; return; }
    let at = 0;
    while (at < r.text.length && r.text[at] === o.text[at]) at++;
    notes.push(`    DIFFERENT "${names[i]}": text ${textSame ? 'same' : `differs at ${at}: ${JSON.stringify(r.text.slice(at, at + 40))} vs ${JSON.stringify(o.text.slice(at, at + 40))}`}, ids ${idsSame ? 'same' : 'differ'}`);
  });
  const rendered = reference.length - bothFailed;
  console.log(`${label}: ${same}/${rendered} rendered identically (text and ids), ${sameText}/${rendered} same text; ${bothFailed} refused by both, ${sameError} with the same message`);
  for (const n of notes) console.log(n);
  return same === rendered && sameError === bothFailed && notes.every((n) => !n.includes('DIFFERENT'));
}

if (command === 'cases') writeLines(args[0], cases().map(({ name, ...line }) => line));
else if (command === 'render') await render(args[0], args[1], args[2], args[3]);
else if (command === 'encode') await encode(args[0], args[1], args[2]);
else if (command === 'compare') process.exitCode = compare(args[0], args[1], args[2]) ? 0 : 1;
else { console.error('usage: cases OUT | render DIR IN OUT [TEMPLATE] | encode DIR IN OUT | compare REF OURS LABEL'); process.exitCode = 2; }
