using System.Text.Json.Nodes;
using Rlft.Policy.Chat.Jinja;

namespace Rlft.Tests.Chat;

/// <summary>
/// The interpreter against Python's Jinja2: every case of jinja-reference.json carries the text (or the error)
/// Jinja2 3.1 produced in transformers' chat-template environment (trim_blocks, lstrip_blocks, sandbox, tojson…);
/// scripts/chat-templates-jinja2.py --snippets regenerates it.
/// </summary>
public class JinjaReferenceTests
{
    static readonly Lazy<JsonArray> Cases = new(() =>
        (JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Chat", "jinja-reference.json")))!["cases"]!);

    public static TheoryData<int> Indices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Cases.Value.Count; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Indices))]
    public void Renders_as_jinja2_does(int index)
    {
        var c = Cases.Value[index]!;
        string template = c["template"]!.GetValue<string>();
        var variables = ((JsonObject)c["variables"]!).ToDictionary(kv => kv.Key, kv => (object?)kv.Value?.DeepClone());
        var expected = c["expected"]!;
        if (expected["text"] is { } text)
        {
            Assert.Equal(text.GetValue<string>(), JinjaTemplate.Parse(template).Render(variables));
            return;
        }
        string type = expected["type"]!.GetValue<string>(), message = expected["error"]!.GetValue<string>();
        var e = Assert.ThrowsAny<JinjaException>(() => JinjaTemplate.Parse(template).Render(variables));
        if (type == "TemplateError") Assert.Equal(message, Assert.IsType<TemplateRaisedException>(e).Message);
        else if (type is "TemplateSyntaxError") Assert.Equal(1, e.Line);
        else Assert.Equal(message, e.Reason);
    }
}
