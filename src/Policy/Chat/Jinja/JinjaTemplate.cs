using System.Collections;
using System.Text.Json.Nodes;

namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// A Jinja template rendered the way transformers renders chat templates: <c>ImmutableSandboxedEnvironment(
/// trim_blocks=True, lstrip_blocks=True)</c> with the loopcontrols extension, the <c>{% generation %}</c> tag,
/// <c>raise_exception</c>, <c>strftime_now</c> and a <c>tojson</c> that does not escape HTML. Values follow Python
/// (str, int, float, list, dict, None) and Jinja's default <c>Undefined</c>. Parse errors, unsupported constructs
/// and runtime errors are <see cref="JinjaException"/>s naming the template line; <c>raise_exception</c> is a
/// <see cref="TemplateRaisedException"/> carrying the template's message.
/// </summary>
internal sealed class JinjaTemplate
{
    readonly List<Stmt> _body;

    public string Source { get; }

    /// <summary>True when the template marks assistant output with <c>{% generation %}</c> blocks.</summary>
    public bool HasGenerationBlocks { get; }

    JinjaTemplate(string source, List<Stmt> body)
    {
        Source = source;
        _body = body;
        HasGenerationBlocks = ContainsGeneration(body);
    }

    /// <summary>Parses <paramref name="source"/>; a syntax error or an unknown filter/test is a <see cref="JinjaException"/>.</summary>
    public static JinjaTemplate Parse(string source) => new(source, Parser.Parse(source));

    /// <summary>
    /// Renders with the given variables. Values may be JSON nodes, strings, numbers, bools, null, dictionaries
    /// with string keys and sequences of those.
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables) => RenderWithGeneration(variables).Text;

    /// <summary>Renders and also returns the character spans of the output written inside <c>{% generation %}</c> blocks.</summary>
    public (string Text, IReadOnlyList<(int Start, int End)> Generation) RenderWithGeneration(IReadOnlyDictionary<string, object?> variables)
    {
        var converted = variables.ToDictionary(kv => kv.Key, kv => ToValue(kv.Value));
        var (text, generation) = Evaluator.Render(_body, converted);
        return (text, generation);
    }

    /// <summary>A .NET or JSON value as a template value.</summary>
    static object? ToValue(object? v) => v switch
    {
        null or string or bool or long or double => v,
        int i => (long)i,
        float f => (double)f,
        JsonNode n => PyJson.FromJson(n),
        IDictionary<string, object?> d => d.Aggregate(new PyDict(), (acc, kv) => { acc.Set(kv.Key, ToValue(kv.Value)); return acc; }),
        IEnumerable e => new PyList(e.Cast<object?>().Select(ToValue).ToList()),
        _ => throw new ArgumentException($"a {v.GetType().Name} cannot be passed to a template"),
    };

    static bool ContainsGeneration(IEnumerable<Stmt> body) => body.Any(s => s switch
    {
        GenerationStmt => true,
        IfStmt i => i.Branches.Any(b => ContainsGeneration(b.Body)) || (i.Else is not null && ContainsGeneration(i.Else)),
        ForStmt f => ContainsGeneration(f.Body) || (f.Else is not null && ContainsGeneration(f.Else)),
        MacroStmt m => ContainsGeneration(m.Body),
        SetBlockStmt sb => ContainsGeneration(sb.Body),
        FilterBlockStmt fb => ContainsGeneration(fb.Body),
        WithStmt w => ContainsGeneration(w.Body),
        _ => false,
    });
}
