using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;

namespace Rlft.Host.Commands;

/// <summary>
/// `rlft frontier`: the reward–KL frontier of PPO and DPO on the built-in task (the comparison of Rafailov et al.,
/// 2023, Fig. 2). One SFT run gives the common start; from it, PPO with several KL coefficients and DPO with several
/// β each train on the same number of samples (PPO: prompts × completions generated; DPO: preference pairs), and
/// each run's held-out task reward is plotted against its KL to the SFT policy on the same held-out samples.
/// Writes frontier.png, frontier.csv and frontier.json; every run is an ordinary job in the output folder.
/// </summary>
internal static class FrontierCommand
{
    /// <summary>One point: a method at one strength of its KL control.</summary>
    public sealed record Point(string Method, double Beta, double Reward, double Kl, double WinRate, double Seconds);

    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Folder for the runs and the results", DefaultValueFactory = _ => "runs/frontier" };
        var ppoBetas = new Option<double[]>("--ppo-kl") { Description = "PPO KL coefficients (one run each)", DefaultValueFactory = _ => [0.01, 0.05, 0.2, 0.5], AllowMultipleArgumentsPerToken = true };
        var dpoBetas = new Option<double[]>("--dpo-beta") { Description = "DPO β values (one run each)", DefaultValueFactory = _ => [0.05, 0.1, 0.3, 1.0], AllowMultipleArgumentsPerToken = true };
        var steps = new Option<int>("--steps") { Description = "Steps of each PPO and DPO run (32 samples or pairs each)", DefaultValueFactory = _ => 40 };
        var seed = new Option<int>("--seed") { Description = "Seed of every run", DefaultValueFactory = _ => 1 };
        var command = new Command("frontier", "PPO and DPO on the built-in task at several KL strengths: held-out reward against KL, one point per run.")
            { output, ppoBetas, dpoBetas, steps, seed };
        command.SetAction((r, ct) => RunAsync(r.GetValue(output)!, r.GetValue(ppoBetas)!, r.GetValue(dpoBetas)!, r.GetValue(steps), r.GetValue(seed), r.InvocationConfiguration.Output, ct));
        return command;
    }

    const int BatchSize = 32;

    static string Job(string name, string dir, int seed, string model, string stage) => $$"""
        rlft.job {
          name = {{name}}
          seed = {{seed}}
          output-dir = "{{dir}}"
          {{model}}
          eval-prompts = 64
          stages = [
            {{stage}}
          ]
        }
        """;

    static async Task<int> RunAsync(string outDir, double[] ppoBetas, double[] dpoBetas, int steps, int seed, TextWriter output, CancellationToken ct)
    {
        if (steps < 1) throw new CliException($"--steps: must be at least 1, got {steps}");
        if (ppoBetas.Length + dpoBetas.Length == 0) throw new CliException("--ppo-kl, --dpo-beta: give at least one value");
        foreach (var b in ppoBetas.Concat(dpoBetas))
            if (!(b > 0) || double.IsInfinity(b)) throw new CliException($"--ppo-kl/--dpo-beta: {b.ToString(CultureInfo.InvariantCulture)} is not a positive number");
        string dir = Path.GetFullPath(outDir).Replace('\\', '/');

        // The common start: SFT on the task, as in hocon/ppo.conf and hocon/dpo.conf.
        output.WriteLine($"rlft frontier: SFT start → {dir}/sft");
        var sft = await Run(Job("sft", dir, seed, "model { arch = gpt2, preset = tiny }",
            """{ kind = sft, data = "builtin:sft", steps = 300, batch-size = 32, optimizer { lr = 2e-3, warmup-steps = 20, schedule = cosine, min-lr-ratio = 0.1 } }"""), ct);
        string start = Path.Combine(Newest(Path.Combine(dir, "sft", "checkpoints")), "policy").Replace('\\', '/');
        string model = $"model {{ path = \"{start}\" }}";

        var points = new List<Point>();
        foreach (var beta in ppoBetas)
        {
            string b = beta.ToString(CultureInfo.InvariantCulture);
            points.Add(await Measure("ppo", beta, Job($"ppo-kl-{b}", dir, seed, model,
                $$"""
                { kind = ppo, data = "builtin:prompts", eval-data = "builtin:eval-prompts", steps = {{steps}}, batch-size = {{BatchSize}}
                  sampling { max-new-tokens = 12 }
                  optimizer { lr = 5e-4, schedule = constant }
                  ppo { kl-coef = {{b}}, epochs = 4, mini-batches = 2 }
                  rewards { sources = [ { type = task } ] }
                }
                """), output, ct));
        }
        foreach (var beta in dpoBetas)
        {
            string b = beta.ToString(CultureInfo.InvariantCulture);
            points.Add(await Measure("dpo", beta, Job($"dpo-beta-{b}", dir, seed, model,
                $$"""
                { kind = dpo, data = "builtin:preferences", steps = {{steps}}, batch-size = {{BatchSize}}
                  sampling { max-new-tokens = 12 }
                  optimizer { lr = 5e-4, schedule = constant }
                  dpo { beta = {{b}} }
                }
                """), output, ct));
        }
        Write(dir, points, sft.Summary.GetValueOrDefault("0-sft/after/eval/loss"));
        output.WriteLine($"rlft frontier: {dir}/frontier.png, frontier.csv");
        foreach (var p in points)
            output.WriteLine(FormattableString.Invariant($"  {p.Method,-4} β={p.Beta,-5} reward {p.Reward:F3}  kl {p.Kl,8:F3}  win rate {p.WinRate:F3}"));
        return 0;
    }

    static async Task<Point> Measure(string method, double beta, string jobText, TextWriter output, CancellationToken ct)
    {
        output.WriteLine(FormattableString.Invariant($"rlft frontier: {method} β={beta}"));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var finished = await Run(jobText, ct);
        string stage = finished.Summary.Keys.First(k => k.Contains("/after/eval/", StringComparison.Ordinal)).Split('/')[0];
        double Get(string key) => finished.Summary.GetValueOrDefault($"{stage}/after/eval/{key}", double.NaN);
        return new Point(method, beta, Get("reward"), Get("kl"), Get("win_rate"), clock.Elapsed.TotalSeconds);
    }

    /// <summary>Runs one job through the actor runtime, as `rlft run` does; a failed job stops the frontier.</summary>
    static async Task<Rlft.Actors.Protocol.JobFinished> Run(string jobText, CancellationToken ct)
    {
        var spec = JobSpec.LoadTextChecked(jobText, "frontier.conf");
        await using var node = RunCommand.SingleNode(spec);
        await node.StartAsync(ct);
        var finished = await node.Finished.WaitAsync(ct);
        if (!finished.Succeeded) throw new CliException($"frontier: job {spec.Name} failed: {finished.Message}", 1);
        return finished;
    }

    static string Newest(string checkpoints) =>
        Directory.GetDirectories(checkpoints, "step-*").OrderByDescending(d => int.Parse(Path.GetFileName(d)["step-".Length..], CultureInfo.InvariantCulture)).First();

    static void Write(string dir, IReadOnlyList<Point> points, double sftLoss)
    {
        var csv = new StringBuilder("method,beta,heldout_reward,kl_to_sft,win_rate_vs_sft,seconds\n");
        foreach (var p in points) csv.AppendLine(FormattableString.Invariant($"{p.Method},{p.Beta},{p.Reward:F4},{p.Kl:F4},{p.WinRate:F4},{p.Seconds:F1}"));
        File.WriteAllText(Path.Combine(dir, "frontier.csv"), csv.ToString());
        File.WriteAllText(Path.Combine(dir, "frontier.json"), JsonSerializer.Serialize(new { sft_heldout_loss = sftLoss, points }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));

        var plot = new ScottPlot.Plot();
        plot.Title("Reward–KL frontier on the built-in task (held-out)");
        plot.XLabel("KL(π ‖ π_SFT), nats per completion");
        plot.YLabel("held-out task reward");
        foreach (var group in points.GroupBy(p => p.Method))
        {
            var ordered = group.OrderBy(p => p.Kl).ToList();
            var scatter = plot.Add.Scatter(ordered.Select(p => p.Kl).ToArray(), ordered.Select(p => p.Reward).ToArray());
            scatter.LegendText = group.Key.ToUpperInvariant();
            scatter.MarkerSize = 9;
            scatter.LineWidth = 0;   // one point per run: a frontier is read from the points, not from lines between them
            foreach (var p in ordered)
            {
                var label = plot.Add.Text(FormattableString.Invariant($"β={p.Beta}"), p.Kl, p.Reward);
                label.LabelFontSize = 11;
            }
        }
        plot.ShowLegend();
        plot.SavePng(Path.Combine(dir, "frontier.png"), 900, 560);
    }
}
