using System.Text.Json.Nodes;
using Rlft.Policy.Benchmarks;
using Rlft.Policy.Chat;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Lora;
using Rlft.Policy.Models;
using Rlft.Policy.Tokenization;
using Rlft.Policy.Training;
using Rlft.Policy.Training.Regularization;
using Rlft.Policy.Training.Trainers;
using Rlft.Rollout.Tasks;
using static TorchSharp.torch;

namespace Rlft.Host.Bench;

/// <summary>
/// Federated SFT against centralized SFT on the same data, in one process (the outer loop without the cluster): a tiny
/// GPT-2 with a tokenizer trained on the built-in task, four clients on non-IID shards of it (each reviews its own
/// quarter of the items; the first also holds the sums), FedAvg with every client in every round. Centralized SFT sees
/// the same number of examples (rounds × clients × local steps × batch) drawn from the union, with the same learning-rate
/// schedule spanning the run (the clients' spans the rounds). Reported: both held-out
/// loss curves, the federated run's share of the centralized improvement, bytes per round with all weights and with
/// LoRA adapters, and DP-FedAvg's utility at a noise multiplier that keeps ε ≤ 8 at δ = 1e-5 over the run.
/// </summary>
internal sealed class FederatedBenchmark : IBenchmark
{
    public string Name => "federated";
    public bool OnlyWhenNamed => true;

    const int Clients = 4, Batch = 8;

    public IEnumerable<JsonObject> Run(BenchOptions options)
    {
        int rounds = options.Quick ? 4 : 20, localSteps = options.Quick ? 2 : 3;
        string dir = Path.Combine(Path.GetTempPath(), "rlft-bench-models", "federated-tiny");
        if (!File.Exists(Path.Combine(dir, "config.json")))
            ModelPresets.InitModel("gpt2", "tiny", dir, seed: 1, corpus: ReviewTask.TokenizerCorpus()).Dispose();
        PolicyModel Load() { manual_seed(1); return new PolicyModel(Checkpoint.Load(dir), HfTokenizer.Load(dir)); }

        var corpus = ReviewTask.SftCorpus(2000, seed: 5);
        var encoder = Load().Encoder;
        var shards = Enumerable.Range(0, Clients).Select(i => corpus.Where(e => ShardOf(e.Prompt) == i).Select(e => encoder.PromptCompletion(e.Prompt, e.Completion)).ToList()).ToList();
        var heldOut = ReviewTask.SftCorpus(128, seed: 77).Select(e => encoder.PromptCompletion(e.Prompt, e.Completion)).ToList();
        var optimizer = new OptimizerOptions { LearningRate = 2e-3, TotalSteps = localSteps, WarmupSteps = 0 };

        // Centralized: one model, the union in a seeded shuffle, as many examples as the federation sees.
        var central = Load();
        double before = SftTrainer.Loss(central, heldOut);
        var union = shards.SelectMany(s => s).OrderBy(_ => new Random(3).Next()).ToList();
        var centralCurve = new List<double> { before };
        using (var sft = new SftTrainer(central, optimizer with { TotalSteps = rounds * Clients * localSteps }))
            for (int r = 0, k = 0; r < rounds; r++)
            {
                for (int s = 0; s < Clients * localSteps; s++, k++)
                    sft.Step(Enumerable.Range(0, Batch).Select(i => union[(k * Batch + i) % union.Count]).ToList());
                centralCurve.Add(SftTrainer.Loss(central, heldOut));
            }

        // FedAvg moves the global weights by the clients' mean update; a server learning rate of 2 (FedOpt's η_g) moves
        // them further along it, closer to the centralized run's sequential steps. The clients' learning rate follows
        // the same linear schedule as the centralized run's, spanning all rounds (ScheduleRounds).
        List<double> fedCurve = [];
        long bytesPerRound = 0;
        var curves = new List<(string Label, List<double> Curve)> { ("centralized", centralCurve) };
        foreach (double serverLr in new[] { 1.0, 2.0 })
        {
            (fedCurve, bytesPerRound) = Federate(Load, shards, heldOut, optimizer, rounds, localSteps, privacy: null, serverLr);
            double share = (before - fedCurve[^1]) / (before - centralCurve[^1]);
            curves.Add(($"FedAvg, server lr {serverLr} ({share:P0} of the centralized improvement)", fedCurve));
            var line = new JsonObject
            {
                ["name"] = $"federated/fedavg-server-lr-{serverLr}-vs-central", ["clients"] = Clients, ["rounds"] = rounds, ["local_steps"] = localSteps, ["batch"] = Batch,
                ["server_lr"] = serverLr, ["examples_seen"] = rounds * Clients * localSteps * Batch, ["held_out_before"] = Round(before, 4),
                ["central_curve"] = Curve(centralCurve), ["federated_curve"] = Curve(fedCurve),
                ["federated_share_of_central_improvement"] = Round(share, 3),
            }.WithRatio(share, "federated held-out improvement / centralized");
            if (serverLr == 2) line["plot"] = PlotCurves(curves, rounds * Clients * localSteps * Batch / rounds);
            yield return line;
        }
        (fedCurve, _) = Federate(Load, shards, heldOut, optimizer, rounds, localSteps, privacy: null);

        // Bytes per round: the global weights to each client and its update back, all weights vs LoRA (rank 8 on c_attn, c_proj).
        var lora = Load();
        LoraAdapters.Apply(lora.Model, new LoraConfig { Rank = 8, Alpha = 16, TargetModules = ["c_attn", "c_proj"] });
        long loraBytes = TrainableParameters.Of(lora.Model).Sum(p => p.Parameter.NumberOfElements * 4);
        yield return new JsonObject
        {
            ["name"] = "federated/bytes-per-round", ["full_weights_bytes"] = bytesPerRound, ["lora_rank8_bytes"] = 2 * Clients * loraBytes,
            ["full_over_lora"] = Round(bytesPerRound / (2.0 * Clients * loraBytes), 1),
        }.WithRatio(bytesPerRound / (2.0 * Clients * loraBytes), "bytes per round, all weights / LoRA adapters");

        // DP-FedAvg: every client every round (q = 1); the smallest noise multiplier with ε ≤ 8 at δ = 1e-5 after all rounds.
        double sigma = NoiseFor(epsilon: 8, delta: 1e-5, q: 1, rounds);
        var accountant = new RdpAccountant();
        accountant.Step(1, sigma, rounds);
        var clip = new[] { 0.01, 0.1 };
        foreach (var c in clip)
        {
            var (dpCurve, _) = Federate(Load, shards, heldOut, optimizer, rounds, localSteps, new ClientPrivacy(c, sigma, 1e-5));
            double dpShare = (before - dpCurve[^1]) / (before - fedCurve[^1]);
            yield return new JsonObject
            {
                ["name"] = $"federated/dp-clip-{c}", ["noise_multiplier"] = Round(sigma, 3), ["epsilon"] = Round(accountant.Epsilon(1e-5), 3), ["delta"] = 1e-5,
                ["clip_norm"] = c, ["dp_curve"] = Curve(dpCurve), ["dp_share_of_fedavg_improvement"] = Round(dpShare, 3),
            }.WithRatio(dpShare, "DP-FedAvg held-out improvement / FedAvg");
        }
    }

    static (List<double> Curve, long BytesPerRound) Federate(Func<PolicyModel> load, List<List<EncodedExample>> shards, List<EncodedExample> heldOut,
        OptimizerOptions optimizer, int rounds, int localSteps, ClientPrivacy? privacy, double serverLr = 1)
    {
        var server = load();
        var participants = shards.Select((s, i) => (IParticipant)new SftParticipant($"client-{i}", load(), s, optimizer, localSteps, Batch) { ScheduleRounds = rounds }).ToList();
        var trainable = TrainableParameters.Of(server.Model);
        using var global = WeightSet.Snapshot(trainable);
        using var loop = new OuterLoop(Aggregation.WeightedMean, new ServerSgd(serverLr), privacy, noiseSeed: 7);
        var curve = new List<double> { SftTrainer.Loss(server, heldOut) };
        for (int r = 0; r < rounds; r++)
        {
            loop.Round(global, participants, r);
            global.CopyTo(trainable);
            curve.Add(SftTrainer.Loss(server, heldOut));
        }
        return (curve, 2 * shards.Count * global.Bytes);
    }

    /// <summary>The smallest noise multiplier (to 1e-3) with ε ≤ <paramref name="epsilon"/> after <paramref name="rounds"/> rounds.</summary>
    static double NoiseFor(double epsilon, double delta, double q, int rounds)
    {
        double lo = 0.1, hi = 100;
        while (hi - lo > 1e-3)
        {
            double mid = (lo + hi) / 2;
            var a = new RdpAccountant();
            a.Step(q, mid, rounds);
            if (a.Epsilon(delta) <= epsilon) hi = mid; else lo = mid;
        }
        return hi;
    }

    static int ShardOf(string prompt)
    {
        int item = Array.FindIndex(ReviewTask.Items, it => prompt.Contains(it, StringComparison.Ordinal));
        return item < 0 ? 0 : item % Clients;
    }

    static JsonArray Curve(IEnumerable<double> values) => new(values.Select(v => (JsonNode)JsonValue.Create(Round(v, 4))!).ToArray());
    static double Round(double v, int digits) => Math.Round(v, digits);

    /// <summary>
    /// The held-out loss of the centralized and the federated runs against examples seen, in one PNG
    /// ($TMPDIR/rlft-bench/federated-vs-central.png); returns its path.
    /// </summary>
    static string PlotCurves(IReadOnlyList<(string Label, List<double> Curve)> curves, int examplesPerRound)
    {
        string path = Path.Combine(Path.GetTempPath(), "rlft-bench", "federated-vs-central.png");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var plot = new ScottPlot.Plot();
        plot.Title($"RLFT: federated SFT on non-IID shards ({Clients} clients) against centralized SFT on their union");
        plot.XLabel("examples seen");
        plot.YLabel("held-out loss");
        foreach (var (label, curve) in curves)
        {
            var line = plot.Add.Scatter(curve.Select((_, r) => (double)r * examplesPerRound).ToArray(), curve.ToArray());
            line.LegendText = label;
        }
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 1000, 550);
        return path;
    }
}
