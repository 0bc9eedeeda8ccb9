using System.Text.Json.Nodes;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Policy.Encoders;
using Rlft.Tests.Cluster;

namespace Rlft.Tests.Encoders;

/// <summary>Encoder stages as a job runs them: their keys, their refusals before anything runs, and what they write.</summary>
public class EncoderJobTests
{
    static JobSpec Parse(string stages) => JobSpec.Parse(RlftConfig.ParseText($"rlft.job {{ name = t\n stages = [\n{stages}\n] }}", "job.conf"));

    [Fact]
    public void Encoder_stages_read_their_sections_with_defaults()
    {
        var job = Parse("""
            { kind = classify, data = "builtin:sentiment", steps = 5
              encoder { arch = distilbert, preset = small, vocab-size = 300, max-length = 64 }
              classify { labels = [a, b, c], problem-type = multi-label }
              lora { rank = 4, alpha = 8 }
            }
            { kind = qa, data = "builtin:qa", steps = 5
              qa { doc-stride = 32, max-answer-length = 5 }
            }
            { kind = reward-model, data = "builtin:preferences", steps = 5
              encoder { path = "models/bert" }
              reward-model { text = completion, margin = 0.5 }
            }
            { kind = reward-model, data = "builtin:preferences", steps = 5 }
            """);
        var classify = job.Stages[0].Encoder!;
        Assert.Equal((StageKind.Classify, "distilbert", "small", 300, 64), (job.Stages[0].Kind, classify.Arch, classify.Preset, classify.VocabSize, classify.MaxLength));
        Assert.Equal(["a", "b", "c"], classify.Labels);
        Assert.Equal(ProblemType.MultiLabel, classify.Problem);
        Assert.Equal((4, 8.0), (classify.Lora!.Rank, classify.Lora.Alpha));
        Assert.Equal(EncoderStageSpec.DefaultLoraTargets, classify.Lora.TargetModules);
        var qa = job.Stages[1].Encoder!;
        Assert.Equal(("bert", "tiny", 512, (IReadOnlyList<string>?)null), (qa.Arch, qa.Preset, qa.MaxLength, qa.Labels));
        Assert.Equal((512, 32, 64, 5), (qa.Qa.MaxLength, qa.Qa.Stride, qa.Qa.MaxQueryLength, qa.Qa.MaxAnswerLength));
        var rm = job.Stages[2];
        Assert.Equal(("models/bert", false, 0.5), (rm.Encoder!.Path, rm.Encoder.WithPrompt, rm.RewardModel.Margin));
        Assert.True(rm.TrainsEncoder);
        Assert.False(job.Stages[3].TrainsEncoder);                             // the policy's reward model
    }

    [Theory]
    [InlineData("{ kind = sft, data = x, steps = 5\n lora { rank = 4 }\n}", "rlft.job.stages[0].lora: a stage's lora section adapts the encoder")]
    [InlineData("{ kind = sft, data = x, steps = 5\n encoder { arch = bert }\n}", "rlft.job.stages[0].encoder: applies to encoder stages")]
    [InlineData("{ kind = qa, data = x, steps = 5\n classify { labels = [a, b] }\n}", "rlft.job.stages[0].classify: applies to classify stages, not to a qa stage")]
    [InlineData("{ kind = classify, data = x, steps = 5\n qa { doc-stride = 4 }\n}", "rlft.job.stages[0].qa: applies to qa stages")]
    [InlineData("{ kind = classify, data = x, steps = 5\n encoder { path = m, arch = bert }\n}", "rlft.job.stages[0].encoder.arch: describes a fresh encoder, and encoder.path names a checkpoint")]
    [InlineData("{ kind = classify, data = x, steps = 5\n encoder { arch = gpt2 }\n}", "rlft.job.stages[0].encoder.arch: 'gpt2' is not one of bert, roberta, distilbert")]
    [InlineData("{ kind = classify, data = x, steps = 5\n encoder { archh = bert }\n}", "rlft.job.stages[0].encoder.archh: unknown key")]
    [InlineData("{ kind = classify, data = x, steps = 5\n classify { labels = [a, b], problem-type = regression }\n}", "rlft.job.stages[0].classify.labels: a regression head has one output")]
    [InlineData("{ kind = classify, data = x, steps = 5\n classify { labels = [a] }\n}", "rlft.job.stages[0].classify.labels: a single-label head needs at least two labels")]
    [InlineData("{ kind = classify, data = x, steps = 5\n classify { labels = [a, a] }\n}", "rlft.job.stages[0].classify.labels: a label is named twice")]
    [InlineData("{ kind = reward-model, data = x, steps = 5\n reward-model { text = completion }\n}", "rlft.job.stages[0].reward-model.text: applies to an encoder reward model")]
    public void Bad_encoder_keys_are_refused_naming_the_key(string stages, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Parse(stages));
        Assert.Contains(e.Errors, m => m.StartsWith(expected, StringComparison.Ordinal));
    }

    static IReadOnlyList<string> Problems(string stages)
    {
        string path = JobHarness.JobFile(stages);
        var e = Assert.Throws<ConfigException>(() => JobSpec.LoadChecked(path));
        return e.Errors;
    }

    [Fact]
    public void Data_that_does_not_fit_an_encoder_stage_is_refused_before_anything_runs()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-encoder-data").FullName;
        string labelled = Path.Combine(dir, "labelled.jsonl");
        File.WriteAllLines(labelled, ["""{"text": "good", "label": "pos"}""", """{"text": "bad", "label": "meh"}""", """{"label": "pos"}""", """{"text": "x", "label": ["pos", "neg"]}"""]);
        string squad = Path.Combine(dir, "squad.jsonl");
        File.WriteAllLines(squad, ["""{"question": "Where?", "context": "In Paris.", "answers": {"text": ["Paris"], "answer_start": [3]}}""",
                                   """{"question": "Where?", "context": "In Paris.", "answers": {"text": ["Rome"], "answer_start": [3]}}"""]);
        var problems = Problems($$"""
            { kind = classify, data = "{{labelled}}", steps = 2
              classify { labels = [pos, neg] }
            }
            { kind = qa, data = "{{squad}}", steps = 2 }
            { kind = classify, data = "builtin:qa", steps = 2 }
            { kind = sft, data = "builtin:sentiment", steps = 2 }
            """);
        Assert.Contains($"rlft.job.stages[0].data: {labelled}:2: label: 'meh' is not one of classify.labels (pos, neg)", problems);
        Assert.Contains($"rlft.job.stages[0].data: {labelled}:3: text: missing", problems);
        Assert.Contains($"rlft.job.stages[0].data: {labelled}:4: label: a list of labels needs classify.problem-type = multi-label", problems);
        Assert.Contains($"rlft.job.stages[1].data: {squad}:2: answers.answer_start[0]: the context at 3 does not read \"Rome\"", problems);
        Assert.Contains(problems, p => p.StartsWith("rlft.job.stages[2].data: builtin:qa is not data for a 2-classify stage", StringComparison.Ordinal));
        Assert.Contains("rlft.job.stages[3].data: builtin:sentiment is data for encoder stages (classify, qa), not for the policy's stages", problems);
    }

    [Fact]
    public void A_classifier_source_names_an_earlier_encoder_stage()
    {
        string Ppo(string model, string label = "POSITIVE") =>
            $"{{ kind = ppo, data = \"builtin:prompts\", steps = 2\n rewards {{ components = [ {{ source = classifier, model = \"{model}\", label = {label} }} ] }}\n}}";
        const string Classify = "{ kind = classify, name = sentiment, data = \"builtin:sentiment\", steps = 2 }";
        var problems = Problems(string.Join("\n", Ppo("stage:sentiment"), Classify, Ppo("stage:nothing"), Ppo("stage:sentiment", "GLAD"), Ppo("stage:sentiment")));
        Assert.Contains("rlft.job.stages[0].rewards.components[0].model: 'stage:sentiment' is stage 1, which runs after stage 0; the classifier must be trained first", problems);
        Assert.Contains(problems, p => p.StartsWith("rlft.job.stages[2].rewards.components[0].model: 'stage:nothing' names no stage of this job", StringComparison.Ordinal));
        Assert.Contains("rlft.job.stages[3].rewards.components[0].label: 'GLAD' is not a label of stage sentiment (labels: NEGATIVE, POSITIVE)", problems);
        Assert.DoesNotContain(problems, p => p.StartsWith("rlft.job.stages[4]", StringComparison.Ordinal));
    }

    /// <summary>
    /// One job with every encoder stage, a few steps each: classify from a fresh BERT with LoRA, qa from a fresh
    /// DistilBERT, and an encoder reward model from a RoBERTa checkpoint with another head. Each reports held-out figures
    /// before and after and leaves a model in HF layout in encoders/NAME that loads with the head its task needs.
    /// </summary>
    [Fact]
    public void Encoder_stages_run_in_a_job_and_write_their_models()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-encoder-job").FullName;
        string pairs = Path.Combine(dir, "pairs.jsonl");
        File.WriteAllLines(pairs, Enumerable.Range(0, 24).Select(i => $$"""{"prompt": "review {{i}}:", "chosen": "the movie was great.", "rejected": "the movie was bad."}"""));
        string start = TinyEncoders.Directory("roberta", labels: 2);
        var job = JobHarness.Job($$"""
            { kind = classify, name = sentiment, data = "builtin:eval-sentiment", steps = 3, batch-size = 8
              encoder { vocab-size = 200, max-length = 32 }
              lora { rank = 2, target-modules = [query, value] }
            }
            { kind = qa, name = reader, data = "builtin:eval-qa", steps = 3, batch-size = 8
              encoder { arch = distilbert, vocab-size = 200, max-length = 48 }
              qa { doc-stride = 16 }
            }
            { kind = reward-model, name = scorer, data = "{{pairs}}", steps = 3, batch-size = 4
              encoder { path = "{{start}}" }
            }
            """);
        var result = PlainLoop.Run(job, new Rlft.Actors.Compute.TorchEngineFactory());
        string[] figures = ["sentiment/{0}/eval/accuracy", "sentiment/{0}/eval/f1", "reader/{0}/eval/exact_match", "reader/{0}/eval/f1", "scorer/{0}/eval/accuracy", "scorer/{0}/eval/margin"];
        foreach (var label in new[] { "before", "after" })
            foreach (var key in figures.Select(f => string.Format(System.Globalization.CultureInfo.InvariantCulture, f, label)))
                Assert.True(result.Summary.ContainsKey(key) && double.IsFinite(result.Summary[key]), $"{key} missing or not finite");
        // LoRA: the adapters and the head train, a small share of the model.
        Assert.True(result.Summary["sentiment/after/encoder/trainable_parameters"] < 0.2 * result.Summary["sentiment/after/encoder/parameters"]);
        Assert.True(result.Summary["reader/after/qa/windows"] > result.Summary["reader/after/qa/examples"], "no context spanned two windows");

        string Output(string name) => Path.Combine(job.RunDirectory, "encoders", name);
        using (var classifier = EncoderTextModel.Load(Output("sentiment")))
        {
            Assert.Equal(["NEGATIVE", "POSITIVE"], classifier.Model.Config.Labels);
            Assert.Equal(2, classifier.Logits([("The movie was great!", null)])[0].Length);
        }
        Assert.False(Directory.Exists(Output("sentiment") + ".init"));
        using (var reader = EncoderTextModel.Load(Output("reader")))
            Assert.Equal((EncoderTask.QuestionAnswering, "distilbert"), (reader.Model.Config.Task, reader.Model.Config.ModelType));
        using (var scorer = EncoderTextModel.Load(Output("scorer")))
            Assert.Equal((EncoderTask.SequenceClassification, 1, "roberta"), (scorer.Model.Config.Task, scorer.Model.Config.NumLabels, scorer.Model.Config.ModelType));
        // A model from a checkpoint keeps its adapters beside it only with LoRA; the scorer had none.
        Assert.False(Directory.Exists(Path.Combine(Output("scorer"), "adapter")));
    }
}
