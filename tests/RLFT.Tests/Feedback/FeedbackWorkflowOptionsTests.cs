using Rlft.Actors.Configuration;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>The rater-workflow keys of rlft.feedback: read with their defaults, and refused naming the key.</summary>
public class FeedbackWorkflowOptionsTests
{
    [Fact]
    public void Defaults_offer_ties_strength_and_an_optional_rationale_with_a_minute_to_undo()
    {
        var o = FeedbackOptions.FromConfig(RlftConfig.ParseText("rlft.feedback { }"));
        Assert.Equal(["tie", "both-bad"], o.Verdicts);
        Assert.Equal((true, RationalePolicy.Optional, 0, 60.0, 0), (o.AskStrength, o.Rationale, o.Criteria.Count, o.UndoWindow.TotalSeconds, o.CloseAfterFlags));
        Assert.Empty(o.Guidelines);
    }

    [Fact]
    public void Every_workflow_key_is_read_and_guideline_files_are_found_beside_the_config()
    {
        string dir = FeedbackTestNode.TempDirectory();
        File.WriteAllText(Path.Combine(dir, "code.md"), "# Code\nRun it in your head.");
        string file = Path.Combine(dir, "f.conf");
        File.WriteAllText(file, """
            rlft.feedback {
              verdicts = ["tie"]
              ask-strength = false
              rationale = required
              criteria = ["helpfulness", "harmlessness"]
              undo-seconds = 0
              close-after-flags = 2
              guidelines { default = "Be *fair*." }
              guideline-files { code = "code.md" }
            }
            """);
        var o = FeedbackOptions.FromConfig(RlftConfig.LoadFile(file));
        Assert.Equal(["tie"], o.Verdicts);
        Assert.Equal((false, RationalePolicy.Required, 0.0, 2), (o.AskStrength, o.Rationale, o.UndoWindow.TotalSeconds, o.CloseAfterFlags));
        Assert.Equal(["helpfulness", "harmlessness"], o.Criteria);
        Assert.Equal("Be *fair*.", o.Guidelines["default"]);
        Assert.Equal("# Code\nRun it in your head.", o.Guidelines["code"]);
    }

    [Theory]
    [InlineData("verdicts = [\"draw\"]", "rlft.feedback.verdicts[0]: expected each of tie, both-bad at most once")]
    [InlineData("verdicts = [\"tie\", \"tie\"]", "rlft.feedback.verdicts[1]: expected each of tie, both-bad at most once")]
    [InlineData("ask-strength = maybe", "rlft.feedback.ask-strength: expected true or false")]
    [InlineData("rationale = always", "rlft.feedback.rationale: 'always' is not one of off, optional, required")]
    [InlineData("criteria = [\"is it good?\"]", "rlft.feedback.criteria[0]: expected a distinct name")]
    [InlineData("undo-seconds = -1", "rlft.feedback.undo-seconds: -1 is outside")]
    [InlineData("close-after-flags = 1000", "rlft.feedback.close-after-flags: 1000 is outside")]
    [InlineData("guidelines = \"be nice\"", "rlft.feedback.guidelines: expected an object")]
    [InlineData("guidelines { \"a b\" = \"x\" }", "rlft.feedback.guidelines.a b: a guideline name needs")]
    [InlineData("guideline-files { code = \"/nonexistent/code.md\" }", "rlft.feedback.guideline-files.code: cannot read '/nonexistent/code.md'")]
    [InlineData("guidelines { code = \"x\" }\nguideline-files { code = \"y.md\" }", "rlft.feedback.guideline-files.code: guideline 'code' is also given")]
    public void A_bad_workflow_key_is_refused_naming_it(string body, string message)
    {
        var e = Assert.Throws<ConfigException>(() => FeedbackOptions.FromConfig(RlftConfig.ParseText($"rlft.feedback {{\n{body}\n}}")));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
