using System.Diagnostics;
using System.Text.Json.Nodes;
using Rlft.Policy.Benchmarks;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Heads;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Trainers;
using static TorchSharp.torch;

namespace Rlft.Host.Bench;

/// <summary>
/// `rlft bench --only behaviour-pass`: what taking log π_old from the first update's own training pass saves. One PPO
/// step (one epoch, one minibatch) and one GRPO step at the GPT-2 124M shape, full fine-tuning, batch 8 of 24 prompt and
/// 32 completion tokens, with a separate eval-mode behaviour pass and with the reused pass, timed alternately in one
/// process (the median of each), so that a noisy machine slows both alike. Quick: a small GPT-2.
/// </summary>
internal sealed class BehaviourPassBenchmark : IBenchmark
{
    public string Name => "behaviour-pass";
    public bool OnlyWhenNamed => true;
    const int Batch = 8, PromptTokens = 24, CompletionTokens = 32;

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        string dir = options.Quick ? BenchCases.ModelDirectory("small", "gpt2") : BenchCases.ModelDirectory("gpt2-124m");
        int repeats = options.Quick ? 2 : 4;
        using var tokenizer = HfTokenizer.Load(dir);
        var policy = new PolicyModel(Checkpoint.Load(dir), tokenizer);
        var reference = new FrozenReference(policy.FrozenCopy());
        var rng = new Random(1);
        int Token() { int t; do t = rng.Next(policy.Model.Config.VocabSize); while (t == tokenizer.EosId || t == tokenizer.PadId); return t; }
        var experience = Enumerable.Range(0, Batch).Select(i => new Experience(
            Enumerable.Range(0, PromptTokens).Select(_ => Token()).ToArray(), Enumerable.Range(0, CompletionTokens).Select(_ => Token()).ToArray(),
            new float[CompletionTokens], (float)rng.NextDouble(), i / 4)).ToList();
        var optimizer = new OptimizerOptions { LearningRate = 1e-6, Schedule = LrSchedule.Constant };

        var value = new ValueHead(policy.Model.Config.HiddenSize, 1);
        var ppo = new PpoOptions { Epochs = 1 };
        using (var separate = new PpoTrainer(policy, value, reference, ppo with { ReuseBehaviourPass = false }, optimizer, seed: 1))
        using (var reused = new PpoTrainer(policy, value, reference, ppo, optimizer, seed: 1))
            yield return Line("train/ppo-behaviour-pass", repeats, () => separate.Step(experience), () => reused.Step(experience));

        var grpo = new GrpoOptions { GroupSize = 4 };
        using (var separate = new GrpoTrainer(policy, reference, grpo with { ReuseBehaviourPass = false }, optimizer))
        using (var reused = new GrpoTrainer(policy, reference, grpo, optimizer))
            yield return Line("train/grpo-behaviour-pass", repeats, () => separate.Step(experience), () => reused.Step(experience));
    }

    JsonObject Line(string name, int repeats, Action separate, Action reused)
    {
        separate();
        reused();   // warm-up: the optimizers' state exists before anything is timed
        var (a, b) = (new List<double>(), new List<double>());
        for (int i = 0; i < repeats; i++)
        {
            a.Add(Seconds(separate));
            b.Add(Seconds(reused));
        }
        double s = Median(a), r = Median(b);
        return new JsonObject
        {
            ["name"] = name, ["batch"] = Batch, ["prompt_tokens"] = PromptTokens, ["completion_tokens"] = CompletionTokens,
            ["separate_pass_s"] = Math.Round(s, 3), ["reused_pass_s"] = Math.Round(r, 3),
            ["separate_runs_s"] = new JsonArray(a.Select(x => (JsonNode)Math.Round(x, 3)).ToArray()),
            ["reused_runs_s"] = new JsonArray(b.Select(x => (JsonNode)Math.Round(x, 3)).ToArray()),
        }.WithRatio(r / s, "train step s with the reused pass / with a separate behaviour pass");
    }

    static double Seconds(Action step)
    {
        using var scope = NewDisposeScope();
        var sw = Stopwatch.StartNew();
        step();
        return sw.Elapsed.TotalSeconds;
    }

    static double Median(List<double> v)
    {
        var o = v.Order().ToList();
        return o.Count % 2 == 1 ? o[o.Count / 2] : (o[o.Count / 2 - 1] + o[o.Count / 2]) / 2;
    }
}
