using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.Dashboard;

/// <summary>A cluster member as the dashboard lists it.</summary>
internal sealed record MemberView(string Address, string[] Roles, string Status);

/// <summary>
/// The live job page (<c>--dashboard URL</c>): Kestrel on the learner's node serving one read-only page and
/// <c>/api/state</c>, which the page polls: the job and its stages, the current stage with step, version and ETA,
/// curves from the run's metrics.jsonl (reward, KL, losses, throughput), the samples of the batch trained last with
/// their reward components, and the cluster's members. Nothing on it is secret (no tokens, no paths beyond the
/// job's name); it stays up after the job ends until the process leaves.
/// </summary>
internal sealed class JobDashboard : IAsyncDisposable
{
    /// <summary>The metrics plotted, by panel: a key, or a prefix ending in '/' for every key under it.</summary>
    public static readonly (string Panel, string[] Keys)[] Panels =
    [
        ("reward", ["reward/mean"]),
        ("kl", ["objective/kl"]),
        ("loss", ["loss/"]),
        ("throughput", ["rollout/tokens_per_second"]),
    ];

    /// <summary>How long the page is still served after the job's end when no page has polled (one may be opening).</summary>
    public static readonly TimeSpan Linger = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long at most the page is still served after the job's end when a page has polled during the job: until a page
    /// has fetched the final state (it then keeps it), so a page slow to poll on a loaded machine does not miss it.
    /// </summary>
    public static readonly TimeSpan MaxLinger = TimeSpan.FromSeconds(15);

    /// <summary>At most this many points per curve (the newest; metrics.jsonl keeps them all).</summary>
    public const int MaxPoints = 2000;

    readonly WebApplication _app;
    readonly JobSpec _job;
    readonly Func<IReadOnlyList<MemberView>> _members;
    readonly DateTime _started = DateTime.UtcNow;
    readonly object _gate = new();
    JobStatus? _status;
    (int Stage, DateTime At, int Step)? _stageStart;
    JobFinished? _finished;
    readonly TaskCompletionSource _finalServed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    int _polls;

    JobDashboard(WebApplication app, JobSpec job, Func<IReadOnlyList<MemberView>> members) => (_app, _job, _members) = (app, job, members);

    /// <summary>The addresses Kestrel bound (a port of 0 becomes the one chosen).</summary>
    public IReadOnlyList<string> Urls => _app.Urls.ToList();

    /// <summary>Starts serving on <paramref name="url"/> (http only; loopback unless the URL names another address).</summary>
    public static async Task<JobDashboard> StartAsync(string url, JobSpec job, Func<IReadOnlyList<MemberView>> members, CancellationToken ct)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.AbsolutePath != "/")
            throw new ArgumentException($"--dashboard: '{url}' is not an address like http://127.0.0.1:8090");
        var builder = WebApplication.CreateSlimBuilder(Runtime.OwnHosts.Web());
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(url);
        var app = builder.Build();
        var dashboard = new JobDashboard(app, job, members);
        app.MapGet("/", () => Results.Content(Page.Value, "text/html; charset=utf-8"));
        app.MapGet("/api/state", () => Results.Text(dashboard.Serve(), "application/json"));
        await app.StartAsync(ct);
        return dashboard;
    }

    static readonly Lazy<string> Page = new(() =>
    {
        using var stream = typeof(JobDashboard).Assembly.GetManifestResourceStream("Rlft.Actors.Dashboard.dashboard.html")
            ?? throw new InvalidOperationException("dashboard.html is not embedded");
        return new StreamReader(stream).ReadToEnd();
    });

    /// <summary>The coordinator's latest status (the node's OnStatus callback).</summary>
    public void Update(JobStatus status)
    {
        lock (_gate)
        {
            if (_stageStart is not { } s || s.Stage != status.Stage) _stageStart = (status.Stage, DateTime.UtcNow, status.Step);
            _status = status;
        }
    }

    /// <summary>
    /// The job's end: the page says so (and why) and keeps its curves. Completes once a page has fetched that final
    /// state, or after <see cref="MaxLinger"/> when a page polled during the job, or after <see cref="Linger"/> when none did;
    /// the caller stops serving then.
    /// </summary>
    public Task FinishAsync(JobFinished finished)
    {
        lock (_gate) _finished = finished;
        return Task.WhenAny(_finalServed.Task, Task.Delay(Volatile.Read(ref _polls) > 0 ? MaxLinger : Linger));
    }

    /// <summary>One answer of /api/state, counted; an answer that says the job finished is the final state.</summary>
    string Serve()
    {
        var state = State();
        Interlocked.Increment(ref _polls);
        if (state["finished"]!.GetValue<bool>()) _finalServed.TrySetResult();
        return state.ToJsonString();
    }

    /// <summary>What /api/state answers.</summary>
    public JsonObject State()
    {
        JobStatus? status;
        (int Stage, DateTime At, int Step)? start;
        JobFinished? finished;
        lock (_gate) (status, start, finished) = (_status, _stageStart, _finished);
        var state = new JsonObject
        {
            ["job"] = _job.Name,
            ["stages"] = new JsonArray(_job.Stages.Select(s => (JsonNode)JsonValue.Create(s.Name)!).ToArray()),
            ["elapsedSeconds"] = (DateTime.UtcNow - _started).TotalSeconds,
            ["finished"] = finished is not null,
        };
        if (finished is not null)
        {
            state["succeeded"] = finished.Succeeded;
            state["message"] = finished.Message;
        }
        if (status is not null)
        {
            state["stage"] = status.Stage;
            state["stageName"] = status.Stage >= 0 && status.Stage < _job.Stages.Count ? _job.Stages[status.Stage].Name : "";
            state["stageKind"] = status.StageKind;
            state["step"] = status.Step;
            state["totalSteps"] = status.TotalSteps;
            state["policyVersion"] = status.PolicyVersion;
            state["batchesTrained"] = status.BatchesTrained;
            if (Eta(status, start) is { } eta) state["etaSeconds"] = eta;
            state["samples"] = new JsonArray((status.RecentSamples ?? []).Select(s => (JsonNode)new JsonObject
            {
                ["batchId"] = s.BatchId,
                ["policyVersion"] = s.PolicyVersion,
                ["prompt"] = s.Prompt,
                ["completion"] = s.Completion,
                ["reward"] = Finite(s.Reward),
                ["components"] = new JsonObject(s.Components.Select(c => KeyValuePair.Create(c.Key, (JsonNode?)Finite(c.Value)))),
            }).ToArray());
        }
        state["curves"] = Curves(Path.Combine(_job.RunDirectory, "metrics.jsonl"));
        IReadOnlyList<MemberView> members;
        try { members = _members(); }
        catch (Exception) { members = []; }   // the actor system is shutting down
        state["members"] = new JsonArray(members.Select(m => (JsonNode)new JsonObject
        {
            ["address"] = m.Address,
            ["roles"] = new JsonArray(m.Roles.Select(r => (JsonNode)JsonValue.Create(r)!).ToArray()),
            ["status"] = m.Status,
        }).ToArray());
        return state;
    }

    static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    /// <summary>The current stage's remaining steps at its pace so far; null before two steps of it.</summary>
    static double? Eta(JobStatus status, (int Stage, DateTime At, int Step)? start)
    {
        if (status.Finished || start is not { } s || s.Stage != status.Stage || status.Step - s.Step < 1 || status.TotalSteps <= 0) return null;
        double perStep = (DateTime.UtcNow - s.At).TotalSeconds / (status.Step - s.Step);
        return perStep * Math.Max(0, status.TotalSteps - status.Step);
    }

    /// <summary>Per panel, per metric key: [global step, value] pairs of the training steps (held-out lines left out).</summary>
    public static JsonObject Curves(string metricsFile)
    {
        var curves = Panels.ToDictionary(p => p.Panel, _ => new SortedDictionary<string, List<(int, double)>>(StringComparer.Ordinal));
        if (File.Exists(metricsFile))
        {
            using var stream = new FileStream(metricsFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is { } line)
            {
                JsonObject? o;
                try { o = JsonNode.Parse(line) as JsonObject; }
                catch (JsonException) { continue; }   // the line being written
                if (o is null || o.ContainsKey("eval") || o["step"]?.GetValue<int>() is not int step) continue;
                foreach (var (key, value) in o)
                {
                    if (value is not JsonValue v || !v.TryGetValue(out double d) || !double.IsFinite(d)) continue;
                    foreach (var (panel, keys) in Panels)
                        if (keys.Any(k => k.EndsWith('/') ? key.StartsWith(k, StringComparison.Ordinal) : key == k))
                        {
                            if (!curves[panel].TryGetValue(key, out var points)) curves[panel][key] = points = [];
                            points.Add((step, d));
                        }
                }
            }
        }
        return new JsonObject(curves.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)new JsonObject(p.Value.Select(c =>
            KeyValuePair.Create(c.Key, (JsonNode?)new JsonArray(c.Value.Skip(Math.Max(0, c.Value.Count - MaxPoints))
                .Select(pt => (JsonNode)new JsonArray(pt.Item1, pt.Item2)).ToArray())))))));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
