using System.Text.Json;
using System.Text.Json.Nodes;
using Rlft.Policy.Chat.Jinja;

namespace Rlft.Policy.Chat;

/// <summary>One turn of a conversation: <c>{"role": "user", "content": "…"}</c>.</summary>
public sealed record ChatMessage(string Role, string Content)
{
    public JsonObject ToJson() => new() { ["role"] = Role, ["content"] = Content };
}

/// <summary>A chat template that cannot be found or parsed; the message names the file and, for syntax, the line.</summary>
public sealed class ChatTemplateException(string message) : Exception(message);

/// <summary>
/// A model's chat template, rendered as transformers' <c>apply_chat_template</c> renders it: the variables are
/// <c>messages</c>, <c>add_generation_prompt</c>, <c>tools</c> and <c>documents</c> (None unless given), the special
/// tokens of <c>tokenizer_config.json</c> (<c>bos_token</c>, <c>eos_token</c>, … as strings) and any extra keyword
/// variables. The template comes from <c>chat_template.jinja</c> beside the tokenizer, else from
/// <c>tokenizer_config.json</c>'s <c>chat_template</c> (a string, or a list of named templates where "default" is used).
/// </summary>
public sealed class ChatTemplate
{
    static readonly string[] SpecialTokenKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    internal JinjaTemplate Template { get; }
    /// <summary>Where the template came from, for messages (a file, or a file and key).</summary>
    public string Origin { get; }
    /// <summary>The special-token variables the template sees.</summary>
    public IReadOnlyDictionary<string, object?> SpecialTokens { get; }

    ChatTemplate(JinjaTemplate template, string origin, IReadOnlyDictionary<string, object?> specialTokens) =>
        (Template, Origin, SpecialTokens) = (template, origin, specialTokens);

    /// <summary>Parses <paramref name="source"/>; errors name <paramref name="origin"/> and the template line.</summary>
    public static ChatTemplate FromSource(string source, IReadOnlyDictionary<string, object?>? specialTokens = null, string origin = "chat template")
    {
        try { return new ChatTemplate(JinjaTemplate.Parse(source), origin, specialTokens ?? new Dictionary<string, object?>()); }
        catch (JinjaException e) { throw new ChatTemplateException($"{origin}: {e.Message}"); }
    }

    /// <summary>
    /// The template of a model (tokenizer) directory, or the one in <paramref name="overrideFile"/> when given (a file,
    /// or <c>builtin:NAME</c>; the special tokens still come from the directory). A directory without a template is
    /// refused, saying so.
    /// </summary>
    public static ChatTemplate Load(string modelDir, string? overrideFile = null, string? name = null)
    {
        var config = ReadConfig(modelDir);
        var tokens = SpecialTokenVariables(config);
        if (overrideFile is not null)
        {
            var (source, origin) = BuiltinChatTemplates.Read(overrideFile);
            return FromSource(source, tokens, origin);
        }
        return Find(modelDir, config, tokens, name)
            ?? throw new ChatTemplateException($"{modelDir} has no chat template (no chat_template.jinja, and tokenizer_config.json has no \"chat_template\"); give one with --chat-template FILE");
    }

    /// <summary>
    /// A template from <paramref name="source"/> with the special-token variables of <paramref name="tokenizerConfigJson"/>
    /// (the text of a tokenizer_config.json, or null for none).
    /// </summary>
    internal static ChatTemplate FromTokenizerConfig(string source, string? tokenizerConfigJson, string origin)
    {
        JsonObject? config;
        try { config = tokenizerConfigJson is null ? null : JsonNode.Parse(tokenizerConfigJson) as JsonObject; }
        catch (JsonException e) { throw new ChatTemplateException($"tokenizer_config.json: invalid JSON ({e.Message})"); }
        return FromSource(source, SpecialTokenVariables(config), origin);
    }

    /// <summary>The directory's template, or null when it has none.</summary>
    public static ChatTemplate? TryLoad(string modelDir, string? name = null)
    {
        var config = ReadConfig(modelDir);
        return Find(modelDir, config, SpecialTokenVariables(config), name);
    }

    static ChatTemplate? Find(string dir, JsonObject? config, IReadOnlyDictionary<string, object?> tokens, string? name)
    {
        string jinjaFile = Path.Combine(dir, "chat_template.jinja");
        if (File.Exists(jinjaFile)) return FromSource(File.ReadAllText(jinjaFile), tokens, jinjaFile);
        string configFile = Path.Combine(dir, "tokenizer_config.json");
        switch (config?["chat_template"])
        {
            case null: return null;
            case JsonValue v when v.TryGetValue<string>(out var source):
                return FromSource(source, tokens, $"{configFile} chat_template");
            case JsonArray list:
            {
                var named = new Dictionary<string, string>();
                foreach (var item in list)
                    if (item?["name"] is JsonValue n && n.TryGetValue<string>(out var key) && item["template"] is JsonValue t && t.TryGetValue<string>(out var src))
                        named[key] = src;
                    else throw new ChatTemplateException($"{configFile}: chat_template list entries need string \"name\" and \"template\"");
                string chosen = name ?? "default";
                if (!named.TryGetValue(chosen, out var text))
                    throw new ChatTemplateException(name is null
                        ? $"{configFile}: this model has several chat templates and none named \"default\" (names: {string.Join(", ", named.Keys.Order(StringComparer.Ordinal))})"
                        : $"{configFile}: no chat template named \"{name}\" (names: {string.Join(", ", named.Keys.Order(StringComparer.Ordinal))})");
                return FromSource(text, tokens, $"{configFile} chat_template[{chosen}]");
            }
            default: throw new ChatTemplateException($"{configFile}: chat_template must be a string or a list of {{\"name\", \"template\"}}");
        }
    }

    static JsonObject? ReadConfig(string dir)
    {
        string path = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ChatTemplateException($"{path}: expected a JSON object"); }
        catch (JsonException e) { throw new ChatTemplateException($"{path}: invalid JSON ({e.Message})"); }
    }

    /// <summary>
    /// The special-token variables as transformers' <c>special_tokens_map</c> gives them: each of bos/eos/unk/sep/pad/
    /// cls/mask_token that is set (a string, or an AddedToken's content), <c>additional_special_tokens</c> when not
    /// empty, and the names in <c>extra_special_tokens</c>.
    /// </summary>
    internal static IReadOnlyDictionary<string, object?> SpecialTokenVariables(JsonObject? config)
    {
        var vars = new Dictionary<string, object?>();
        if (config is null) return vars;
        static string? Content(JsonNode? n) => n switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var s) => s,
            _ => null,
        };
        foreach (var key in SpecialTokenKeys)
            if (Content(config[key]) is { Length: > 0 } s) vars[key] = s;
        if (config["additional_special_tokens"] is JsonArray extra && extra.Count > 0)
            vars["additional_special_tokens"] = extra.Select(Content).Where(s => s is not null).Cast<object?>().ToList();
        if (config["extra_special_tokens"] is JsonObject named)
            foreach (var (k, v) in named)
                if (Content(v) is { } s) vars[k] = s;
        return vars;
    }

    /// <summary>The rendered text of <paramref name="messages"/>.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null) =>
        RenderJson(new JsonArray(messages.Select(m => (JsonNode)m.ToJson()).ToArray()), addGenerationPrompt, extra);

    /// <summary>Renders messages given as JSON (extra message keys such as <c>tool_calls</c> reach the template as they are).</summary>
    public string RenderJson(JsonArray messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null) =>
        RenderWithGeneration(messages, addGenerationPrompt, extra).Text;

    internal (string Text, IReadOnlyList<(int Start, int End)> Generation) RenderWithGeneration(JsonArray messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null)
    {
        var vars = new Dictionary<string, object?>(SpecialTokens)
        {
            ["messages"] = messages,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["tools"] = null,
            ["documents"] = null,
        };
        if (extra is not null) foreach (var (k, v) in extra) vars[k] = v;
        return Template.RenderWithGeneration(vars);
    }
}
