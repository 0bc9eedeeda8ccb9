using System.Text.Json.Nodes;
using Rlft.Policy.Chat.Jinja;

namespace Rlft.Tests.Chat;

/// <summary>What the interpreter must refuse, where it says so, and the parts the reference file does not reach.</summary>
public class JinjaTests
{
    static string Render(string template, object? vars = null) =>
        JinjaTemplate.Parse(template).Render(vars is null ? new Dictionary<string, object?>() : (Dictionary<string, object?>)vars);

    [Fact]
    public void Runtime_errors_name_the_template_line()
    {
        const string template = "{% for m in messages %}\n{{ m.role }}\n{{ m.content + 1 }}\n{% endfor %}";
        var vars = new Dictionary<string, object?> { ["messages"] = JsonNode.Parse("""[{"role": "user", "content": "hi"}]""") };
        var e = Assert.ThrowsAny<JinjaException>(() => JinjaTemplate.Parse(template).Render(vars));
        Assert.Equal(3, e.Line);
        Assert.Equal("line 3: can only concatenate str (not \"int\") to str", e.Message);
    }

    [Theory]
    [InlineData("a\n{% include 'other.jinja' %}", 2, "the 'include' tag is not supported in chat templates")]
    [InlineData("{% for x in y recursive %}{% endfor %}", 1, "recursive for loops are not supported")]
    [InlineData("{% if false %}\n{{ x | wordwrap }}\n{% endif %}", 2, "the 'wordwrap' filter is not supported by RLFT's template engine")]
    [InlineData("{{ x | no_such_filter }}", 1, "No filter named 'no_such_filter'.")]
    [InlineData("{{ x is no_such_test }}", 1, "No test named 'no_such_test'.")]
    [InlineData("{% do x.append(1) %}", 1, "Encountered unknown tag 'do'.")]
    [InlineData("{% break %}", 1, "'break' outside loop")]
    [InlineData("ok\n\n{{ 'x' ", 3, "unexpected end of template: missing '}}'")]
    public void Unsupported_or_malformed_templates_are_refused_when_parsed(string template, int line, string reason)
    {
        var e = Assert.ThrowsAny<JinjaException>(() => JinjaTemplate.Parse(template));
        Assert.Equal(line, e.Line);
        Assert.Equal(reason, e.Reason);
    }

    [Theory]
    [InlineData("{{ 'x'.zfill(3) }}", "the string method 'zfill' is not supported")]
    [InlineData("{{ 'a {}'.format(1) }}", "the string method 'format' is not supported")]
    [InlineData("{{ cycler('a') }}", "the global 'cycler' is not supported")]
    [InlineData("{{ 2 ** 70 }}", "integer result outside RLFT's 64-bit range")]
    public void Python_methods_that_are_not_implemented_fail_instead_of_rendering_differently(string template, string reason)
    {
        var e = Assert.ThrowsAny<JinjaException>(() => Render(template));
        Assert.Equal(reason, e.Reason);
    }

    [Fact]
    public void Raise_exception_carries_the_templates_message_and_line()
    {
        var e = Assert.Throws<TemplateRaisedException>(() => Render("a\n{{ raise_exception('Roles must alternate') }}"));
        Assert.Equal("Roles must alternate", e.Message);
        Assert.Equal(2, e.RaisedAtLine);
    }

    [Fact]
    public void Generation_blocks_render_their_body_and_report_its_span()
    {
        var t = JinjaTemplate.Parse("{% for m in ['a', 'bc'] %}<{% generation %}{{ m }}!{% endgeneration %}>{% endfor %}");
        Assert.True(t.HasGenerationBlocks);
        var (text, spans) = t.RenderWithGeneration(new Dictionary<string, object?>());
        Assert.Equal("<a!><bc!>", text);
        Assert.Equal([(1, 3), (5, 8)], spans);
        Assert.False(JinjaTemplate.Parse("{{ 1 }}").HasGenerationBlocks);
    }

    [Fact]
    public void Dotnet_values_reach_the_template_as_python_values()
    {
        var vars = new Dictionary<string, object?>
        {
            ["n"] = 3, ["f"] = 0.5, ["s"] = "x", ["flag"] = true, ["none"] = null,
            ["list"] = new List<object?> { 1, "a" }, ["map"] = new Dictionary<string, object?> { ["k"] = "v" },
        };
        Assert.Equal("3|0.5|x|True|None|[1, 'a']|{'k': 'v'}|int", Render("{{ n }}|{{ f }}|{{ s }}|{{ flag }}|{{ none }}|{{ list }}|{{ map }}|{{ 'int' if n is integer }}", vars));
    }

    [Fact]
    public void Json_numbers_keep_pythons_int_and_float()
    {
        var vars = new Dictionary<string, object?> { ["d"] = JsonNode.Parse("""{"i": 3, "f": 3.0, "e": 1e2, "big": 12345678901234}""") };
        Assert.Equal("3 3.0 100.0 12345678901234 True False", Render("{{ d.i }} {{ d.f }} {{ d.e }} {{ d.big }} {{ d.i is integer }} {{ d.f is integer }}", vars));
    }

    [Fact]
    public void Strftime_now_formats_todays_date()
    {
        string expected = DateTime.Now.ToString("dd MMM yyyy", System.Globalization.CultureInfo.InvariantCulture);
        string rendered = Render("{{ strftime_now('%d %b %Y') }}");
        Assert.True(rendered == expected || rendered == DateTime.Now.ToString("dd MMM yyyy", System.Globalization.CultureInfo.InvariantCulture), rendered);
    }
}
