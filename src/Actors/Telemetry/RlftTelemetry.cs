using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Rlft.Actors.Telemetry;

/// <summary>
/// RLFT's OpenTelemetry surface, in the .NET primitives any listener or exporter reads: the <c>Rlft</c>
/// <see cref="ActivitySource"/> traces each step's phases (<c>rlft.generate</c>, <c>rlft.score</c>, <c>rlft.train</c>,
/// <c>rlft.sync</c>) with the batch id, policy version and stage as tags; the <c>Rlft</c> <see cref="Meter"/> has a gauge
/// per training metric (<c>reward/mean</c> becomes <c>rlft.reward.mean</c>, tagged with the stage), a step counter and a
/// phase-duration histogram. Nothing is collected unless something listens (an OTLP exporter with
/// <c>--otlp-endpoint</c>, or a test's listener).
/// </summary>
internal static class RlftTelemetry
{
    public const string Name = "Rlft";
    public const string Generate = "rlft.generate", Score = "rlft.score", Train = "rlft.train", Sync = "rlft.sync";
    public const string BatchTag = "rlft.batch_id", VersionTag = "rlft.policy_version", StageTag = "rlft.stage", KindTag = "rlft.weights";

    static readonly string Version = typeof(RlftTelemetry).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
    public static readonly ActivitySource Source = new(Name, Version);
    public static readonly Meter Meter = new(Name, Version);

    static readonly Counter<long> Steps = Meter.CreateCounter<long>("rlft.steps", unit: "{step}", description: "Training steps recorded, by stage");
    static readonly Histogram<double> PhaseSeconds = Meter.CreateHistogram<double>("rlft.phase.duration", unit: "s",
        description: "Wall time of one step's phase: generate, score, train or sync");
    static readonly ConcurrentDictionary<string, Gauge<double>> Gauges = new();

    /// <summary>A span for one phase of batch <paramref name="batchId"/>, or null when nothing listens; disposing it ends it.</summary>
    public static Activity? StartPhase(string phase, long batchId, long policyVersion, int stage) =>
        Source.StartActivity(phase, ActivityKind.Internal, parentContext: default,
            tags: [new(BatchTag, batchId), new(VersionTag, policyVersion), new(StageTag, stage)]);

    /// <summary>
    /// A phase that already happened (from <paramref name="started"/> until now), recorded as a finished span: for
    /// work that spans several actor messages, such as a weight fetch.
    /// </summary>
    public static void CompletedPhase(string phase, DateTimeOffset started, params KeyValuePair<string, object?>[] tags)
    {
        using var activity = Source.StartActivity(phase, ActivityKind.Internal, parentContext: default, tags: tags, startTime: started);
        PhaseSeconds.Record((DateTimeOffset.UtcNow - started).TotalSeconds, new KeyValuePair<string, object?>("phase", phase));
    }

    /// <summary>Records a finished phase's duration in the phase histogram.</summary>
    public static void PhaseDone(string phase, double seconds) =>
        PhaseSeconds.Record(seconds, new KeyValuePair<string, object?>("phase", phase));

    /// <summary>One training step's metrics: each as its gauge's current value, tagged with the stage; the step counter.</summary>
    public static void RecordStep(string stage, IReadOnlyDictionary<string, double> metrics)
    {
        var tag = new KeyValuePair<string, object?>(StageTag, stage);
        Steps.Add(1, tag);
        foreach (var (key, value) in metrics)
            if (double.IsFinite(value)) Gauges.GetOrAdd(InstrumentName(key), n => Meter.CreateGauge<double>(n)).Record(value, tag);
    }

    /// <summary><c>reward/mean</c> → <c>rlft.reward.mean</c>: OpenTelemetry's instrument-name syntax (letters, digits, '.', '_', '-').</summary>
    public static string InstrumentName(string metric)
    {
        var chars = metric.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '.').ToArray();
        return "rlft." + new string(chars).Trim('.');
    }
}
