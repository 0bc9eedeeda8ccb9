using Rlft.Policy.Checkpoints;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;

namespace Rlft.Tests.Training;

/// <summary>A tiny GPT-2 with a tokenizer trained on the built-in task's text, made once per test run.</summary>
internal static class TinyTask
{
    static readonly Lazy<string> Dir = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"rlft-tiny-{Environment.ProcessId}");
        if (!File.Exists(Path.Combine(dir, "config.json")))
            ModelPresets.InitModel("gpt2", "tiny", dir, seed: 1, corpus: ReviewTask.TokenizerCorpus());
        return dir;
    });

    public static string ModelDirectory => Dir.Value;

    static List<(string, string)> SftData => ReviewTask.SftCorpus(4000, 1).Select(e => (e.Prompt, e.Completion)).ToList();

    // The SFT policy most RL tests start from: trained once per test run, then loaded fresh by each test.
    static readonly Lazy<string> SftDir = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"rlft-tiny-sft-{Environment.ProcessId}");
        var policy = Load();
        var data = SftData;
        using (var sft = new SftTrainer(policy, new Rlft.Policy.Training.OptimizerOptions { LearningRate = 2e-3, TotalSteps = 150, WarmupSteps = 10 }))
            foreach (var b in Enumerable.Range(0, 150).Select(s => Enumerable.Range(0, 32).Select(i => data[(s * 32 + i) % data.Count]).ToList()))
                sft.Step(b);
        Checkpoint.Save(policy.Model, dir, ModelDirectory);
        return dir;
    });

    /// <summary>A fresh copy of the tiny policy after 150 SFT steps on the built-in task.</summary>
    public static PolicyModel LoadSft()
    {
        string dir = SftDir.Value;
        lock (SftDir) return new PolicyModel(Checkpoint.Load(dir), HfTokenizer.Load(dir));
    }

    /// <summary>A fresh copy of the initial tiny model (seeded, so every call starts identical).</summary>
    public static PolicyModel Load()
    {
        TorchSharp.torch.manual_seed(1);
        return new PolicyModel(Checkpoint.Load(ModelDirectory), HfTokenizer.Load(ModelDirectory));
    }

    public static List<(string, string)> Sft(int n, int seed) => ReviewTask.SftCorpus(n, seed).Select(e => (e.Prompt, e.Completion)).ToList();
    public static List<(string, string, string)> Prefs(int n, int seed) => ReviewTask.Preferences(n, seed).Select(e => (e.Prompt, e.Chosen, e.Rejected)).ToList();
}
