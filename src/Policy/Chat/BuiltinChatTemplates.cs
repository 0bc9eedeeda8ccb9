namespace Rlft.Policy.Chat;

/// <summary>
/// The chat templates RLFT ships, for the models it makes itself (<c>rlft init-model --chat-template chatml</c>) and
/// for jobs that name one instead of a file (<c>chat-template = "builtin:chatml"</c>).
/// </summary>
internal static class BuiltinChatTemplates
{
    public const string Prefix = "builtin:";
    public static readonly string[] Names = ["chatml"];

    /// <summary>The template's Jinja source.</summary>
    public static string Source(string name)
    {
        if (!Names.Contains(name)) throw new ChatTemplateException($"unknown built-in chat template '{name}' (known: {string.Join(", ", Names)})");
        using var stream = typeof(BuiltinChatTemplates).Assembly.GetManifestResourceStream($"Rlft.Policy.Chat.Templates.{name}.jinja")
                           ?? throw new InvalidOperationException($"built-in chat template {name} is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The special tokens a tokenizer needs for the template to mean what it says (added by init-model).</summary>
    public static IReadOnlyList<string> SpecialTokens(string name) => name switch
    {
        "chatml" => ["<|im_start|>", "<|im_end|>"],
        _ => throw new ChatTemplateException($"unknown built-in chat template '{name}' (known: {string.Join(", ", Names)})"),
    };

    /// <summary>The token that closes each turn (what generation stops on).</summary>
    public static string EndOfTurn(string name) => SpecialTokens(name)[^1];

    /// <summary>
    /// The source of a template given as a file or as <c>builtin:NAME</c>, and where it came from (for messages);
    /// a missing file or an unknown name is a <see cref="ChatTemplateException"/>.
    /// </summary>
    public static (string Source, string Origin) Read(string fileOrBuiltin)
    {
        if (fileOrBuiltin.StartsWith(Prefix, StringComparison.Ordinal)) return (Source(fileOrBuiltin[Prefix.Length..]), fileOrBuiltin);
        if (Directory.Exists(fileOrBuiltin)) throw new ChatTemplateException($"chat template {fileOrBuiltin} is a directory, not a Jinja file");
        if (!File.Exists(fileOrBuiltin)) throw new ChatTemplateException($"chat template file not found: {fileOrBuiltin}");
        return (File.ReadAllText(fileOrBuiltin), fileOrBuiltin);
    }
}
