using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;

namespace Rlft.Actors.Jobs;

/// <summary>
/// Writes a run directory: <c>metrics.jsonl</c> (one object per step, slash-named keys), TensorBoard
/// event files, <c>samples.jsonl</c>, <c>summary.json</c> and a reward/KL curve PNG. Every line is
/// flushed as it is written, so a killed run keeps what it logged.
/// </summary>
internal sealed class RunRecorder : IDisposable
{
    static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    readonly StreamWriter _metrics;
    readonly StreamWriter _samples;
    readonly TorchSharp.Modules.SummaryWriter _tensorboard;
    readonly List<(int Step, Dictionary<string, double> Metrics)> _history = new();

    public string Directory { get; }
    public IReadOnlyList<(int Step, Dictionary<string, double> Metrics)> History => _history;

    public RunRecorder(string directory, bool append = false)
    {
        Directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory);
        // A fresh run replaces the logs of any run before it in this directory, so that run's checkpoints stop
        // being resume points (their weights stay): --resume never mixes two runs.
        string checkpoints = Path.Combine(Directory, "checkpoints");
        if (!append && System.IO.Directory.Exists(checkpoints))
            foreach (var marker in System.IO.Directory.GetFiles(checkpoints, ResumeState.FileName, SearchOption.AllDirectories)) File.Delete(marker);
        // Nor may an earlier run's results stand for this one's if this one fails: they go before it starts.
        if (!append)
            foreach (var result in new[] { SummaryFile, CurveFile }) File.Delete(Path.Combine(Directory, result));
        _metrics = new StreamWriter(Path.Combine(Directory, "metrics.jsonl"), append, new UTF8Encoding(false)) { AutoFlush = true };
        _samples = new StreamWriter(Path.Combine(Directory, "samples.jsonl"), append, new UTF8Encoding(false)) { AutoFlush = true };
        _tensorboard = torch.utils.tensorboard.SummaryWriter(Path.Combine(Directory, "tensorboard"), createRunName: false);
    }

    /// <summary>
    /// Continues a run from a checkpoint: metrics.jsonl and samples.jsonl are cut back to their lengths at the
    /// checkpoint (dropping what a killed run logged after it), the history is read back for the final plot,
    /// and new lines are appended. TensorBoard gets a new event file; steps logged after the checkpoint by the
    /// killed run stay in the old one.
    /// </summary>
    public static RunRecorder Resume(string directory, ResumeState state)
    {
        state.CheckLogs(directory, "the checkpoint");
        foreach (var (name, length) in state.Logs)
        {
            using var f = new FileStream(Path.Combine(directory, name), FileMode.OpenOrCreate, FileAccess.Write);
            f.SetLength(length);
        }
        var recorder = new RunRecorder(directory, append: true);
        foreach (var line in File.ReadLines(Path.Combine(directory, "metrics.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.TryGetProperty("eval", out _)) continue;   // held-out figures, not a training step
            int step = doc.RootElement.GetProperty("step").GetInt32();
            var metrics = new Dictionary<string, double>();
            foreach (var p in doc.RootElement.EnumerateObject())
                if (p.Name is not ("step" or "stage")) metrics[p.Name] = p.Value.ValueKind == JsonValueKind.Number ? p.Value.GetDouble() : double.Parse(p.Value.GetString()!, CultureInfo.InvariantCulture);
            recorder._history.Add((step, metrics));
        }
        return recorder;
    }

    /// <summary>Bytes written to metrics.jsonl so far (recorded in checkpoints).</summary>
    public long MetricsBytes => _metrics.BaseStream.Length;
    public long SamplesBytes => _samples.BaseStream.Length;

    /// <summary>Appends one step's metrics (global step across stages) to every sink.</summary>
    public void Record(int globalStep, string stage, IReadOnlyDictionary<string, double> metrics)
    {
        var copy = new Dictionary<string, double>(metrics);
        _history.Add((globalStep, copy));
        var line = new Dictionary<string, object> { ["step"] = globalStep, ["stage"] = stage };
        foreach (var (k, v) in copy) line[k] = v;
        _metrics.WriteLine(JsonSerializer.Serialize(line, Json));
        foreach (var (k, v) in copy)
            if (double.IsFinite(v)) _tensorboard.add_scalar(k, (float)v, globalStep);
    }

    /// <summary>
    /// Appends a stage's held-out figures (<paramref name="label"/> before or after it) at <paramref name="globalStep"/>:
    /// a metrics.jsonl line with <c>"eval": label</c>, and TensorBoard scalars (<c>eval/reward</c> at the stage's first
    /// and last step). They are not training steps: the reward/KL curve leaves them out.
    /// </summary>
    public void RecordEvaluation(int globalStep, string stage, string label, IReadOnlyDictionary<string, double> metrics)
    {
        if (metrics.Count == 0) return;
        var line = new Dictionary<string, object> { ["step"] = globalStep, ["stage"] = stage, ["eval"] = label };
        foreach (var (k, v) in metrics) line[k] = v;
        _metrics.WriteLine(JsonSerializer.Serialize(line, Json));
        foreach (var (k, v) in metrics)
            if (double.IsFinite(v)) _tensorboard.add_scalar(k, (float)v, globalStep);
    }

    /// <summary>Appends completions (e.g. before/after a stage) to samples.jsonl.</summary>
    public void Samples(string label, IReadOnlyList<string> prompts, IReadOnlyList<string> completions, IReadOnlyList<double>? rewards = null)
    {
        for (int i = 0; i < prompts.Count; i++)
        {
            var line = new Dictionary<string, object?> { ["label"] = label, ["prompt"] = prompts[i], ["completion"] = completions[i] };
            if (rewards is not null) line["reward"] = rewards[i];
            _samples.WriteLine(JsonSerializer.Serialize(line, Json));
        }
    }

    public const string SummaryFile = "summary.json", CurveFile = "reward_kl.png", AdaptationFile = "adaptation.png";

    /// <summary>
    /// Writes summary.json atomically (with the zero-/few-shot table as <c>adaptation</c> when the job has adapt stages),
    /// the reward/KL curve (when some step reported either) and the adaptation curves.
    /// </summary>
    public void Finish(IReadOnlyDictionary<string, object> summary, string rewardKey = "reward/mean", string klKey = "objective/kl")
    {
        var adaptation = AdaptationTable.From(summary);
        if (adaptation.Count > 0) summary = new Dictionary<string, object>(summary) { ["adaptation"] = AdaptationTable.ToJson(adaptation) };
        string path = Path.Combine(Directory, SummaryFile);
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(summary, new JsonSerializerOptions(Json) { WriteIndented = true }));
        File.Move(path + ".tmp", path, overwrite: true);
        PlotCurves(Path.Combine(Directory, CurveFile), rewardKey, klKey);
        PlotAdaptation(Path.Combine(Directory, AdaptationFile), summary);
    }

    /// <summary>
    /// Held-out loss against adaptation steps, one line per adapt stage (<c>STAGE/after/adapt/loss@K</c> in the summary):
    /// k-shot adaptation from each starting point the job measured. No file when the job has no adapt stage.
    /// </summary>
    public static void PlotAdaptation(string path, IReadOnlyDictionary<string, object> summary)
    {
        var curves = AdaptationTable.Curves(AdaptationTable.Numeric(summary));
        if (curves.Count == 0) return;
        var plot = new ScottPlot.Plot();
        plot.Title("RLFT: k-shot adaptation to held-out tasks");
        plot.XLabel("adaptation steps");
        plot.YLabel("held-out loss");
        foreach (var (stage, points) in curves)
        {
            var line = plot.Add.Scatter(points.Select(x => (double)x.Step).ToArray(), points.Select(x => x.Loss).ToArray());
            line.LegendText = stage;
        }
        plot.ShowLegend();
        plot.SavePng(path, 900, 500);
    }

    /// <summary>Reward (left axis) and KL (right axis) per step, for the steps that report them; no file when none does.</summary>
    public void PlotCurves(string path, string rewardKey, string klKey)
    {
        if (!_history.Any(h => h.Metrics.ContainsKey(rewardKey) || h.Metrics.ContainsKey(klKey))) return;
        var plot = new ScottPlot.Plot();
        plot.Title("RLFT: reward and KL per step");
        plot.XLabel("step");
        var rewards = _history.Where(h => h.Metrics.ContainsKey(rewardKey)).ToList();
        var kls = _history.Where(h => h.Metrics.ContainsKey(klKey)).ToList();
        if (rewards.Count > 0)
        {
            var s = plot.Add.Scatter(rewards.Select(h => (double)h.Step).ToArray(), rewards.Select(h => h.Metrics[rewardKey]).ToArray());
            s.LegendText = rewardKey;
            plot.Axes.Left.Label.Text = rewardKey;
        }
        if (kls.Count > 0)
        {
            var s = plot.Add.Scatter(kls.Select(h => (double)h.Step).ToArray(), kls.Select(h => h.Metrics[klKey]).ToArray());
            s.LegendText = klKey;
            s.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = klKey;
        }
        plot.ShowLegend();
        plot.SavePng(path, 900, 500);
    }

    public static string Format(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        _metrics.Dispose();
        _samples.Dispose();
    }
}
