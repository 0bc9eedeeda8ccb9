using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using Rlft.Actors.Compute;
using Rlft.Actors.Runtime;
using Rlft.Actors.Telemetry;

namespace Rlft.Tests.Cluster;

/// <summary>
/// OpenTelemetry: a job's phases as spans and its metrics as instruments, seen by in-process listeners, and the same
/// data leaving `rlft run --otlp-endpoint` as OTLP/HTTP requests to a collector on loopback.
/// </summary>
public sealed class TelemetryTests
{
    [Fact]
    public async Task A_job_traces_generate_score_train_and_sync_and_publishes_its_metrics()
    {
        var ct = TestContext.Current.CancellationToken;
        var spans = new ConcurrentQueue<Activity>();
        using var activities = new ActivityListener
        {
            ShouldListenTo = s => s.Name == RlftTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(activities);
        var measurements = new ConcurrentQueue<(string Name, double Value, Dictionary<string, object?> Tags)>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == RlftTelemetry.Name) listener.EnableMeasurementEvents(instrument);
            },
        };
        meters.SetMeasurementEventCallback<double>((i, v, tags, _) => measurements.Enqueue((i.Name, v, Tags(tags))));
        meters.SetMeasurementEventCallback<long>((i, v, tags, _) => measurements.Enqueue((i.Name, v, Tags(tags))));
        meters.Start();

        // A stage name no other test's job has: the listeners are process-wide.
        string stage = "otel-" + Guid.NewGuid().ToString("N")[..8];
        var job = JobHarness.Job(JobHarness.Ppo(3).Replace("kind = ppo,", $"kind = ppo, name = {stage},"));
        await using var node = RlftNode.Create(new NodeOptions { Job = job, Roles = ["learner", "rollout", "reward"], ExtraHocon = JobHarness.TestHocon }, new TorchEngineFactory());
        await node.StartAsync(ct);
        var finished = await node.Finished.WaitAsync(TimeSpan.FromMinutes(3), ct);
        Assert.True(finished.Succeeded, finished.Message);

        // Every trained batch was generated, scored and trained under its own batch id and the version it was made with.
        var mine = spans.Where(s => s.GetTagItem(RlftTelemetry.StageTag) is int i && i == 0 && s.OperationName != RlftTelemetry.Sync).ToList();
        var trained = spans.Where(s => s.OperationName == RlftTelemetry.Train).ToList();
        foreach (var phase in new[] { RlftTelemetry.Generate, RlftTelemetry.Score, RlftTelemetry.Train })
            Assert.Contains(mine, s => s.OperationName == phase && s.GetTagItem(RlftTelemetry.BatchTag) is long && s.GetTagItem(RlftTelemetry.VersionTag) is long);
        Assert.All(trained, s => Assert.True(s.Duration > TimeSpan.Zero));
        Assert.Contains(trained, s => s.GetTagItem("rlft.updated_version") is long updated && updated > (long)s.GetTagItem(RlftTelemetry.VersionTag)!);
        // The rollout replica fetched the versions PPO made: a sync span per fetch, with the version and kind.
        Assert.Contains(spans, s => s.OperationName == RlftTelemetry.Sync && s.GetTagItem(RlftTelemetry.VersionTag) is long v && v >= 1
            && (string?)s.GetTagItem(RlftTelemetry.KindTag) == "Policy");

        // The step metrics, as gauges tagged with this job's stage, and the step counter.
        var ofStage = measurements.Where(m => Equals(m.Tags.GetValueOrDefault(RlftTelemetry.StageTag), stage)).ToList();
        Assert.Equal(3, ofStage.Where(m => m.Name == "rlft.steps").Sum(m => m.Value));
        Assert.Equal(3, ofStage.Count(m => m.Name == "rlft.reward.mean"));
        Assert.Contains(ofStage, m => m.Name == "rlft.objective.kl");
        Assert.Contains(measurements, m => m.Name == "rlft.phase.duration" && Equals(m.Tags.GetValueOrDefault("phase"), RlftTelemetry.Train) && m.Value > 0);
    }

    [Fact]
    public async Task Run_with_an_otlp_endpoint_sends_spans_and_metrics_to_the_collector()
    {
        var ct = TestContext.Current.CancellationToken;
        int port = JobHarness.FreePort();
        using var collector = new HttpListener();
        collector.Prefixes.Add($"http://127.0.0.1:{port}/");
        collector.Start();
        var received = new ConcurrentQueue<(string Path, string ContentType, string Body)>();
        var serving = Task.Run(async () =>
        {
            while (collector.IsListening)
            {
                HttpListenerContext context;
                try { context = await collector.GetContextAsync(); }
                catch (Exception) { return; }
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body, ct);
                // Protobuf keeps strings as UTF-8 bytes: instrument, span and tag names can be found in the body.
                received.Enqueue((context.Request.Url!.AbsolutePath, context.Request.ContentType ?? "", Encoding.Latin1.GetString(body.ToArray())));
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        }, ct);

        string jobFile = JobHarness.JobFile(JobHarness.Ppo(2));
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = await Task.Run(() => Rlft.Host.Commands.Cli.Run(["run", jobFile, "--otlp-endpoint", $"http://127.0.0.1:{port}"], o, e), ct);
        Assert.True(code == 0, $"exit {code}: {e}");
        collector.Stop();
        await serving;

        // Disposing the providers at the end of the command flushed both signals.
        var traces = received.Where(r => r.Path == "/v1/traces").ToList();
        var metrics = received.Where(r => r.Path == "/v1/metrics").ToList();
        Assert.NotEmpty(traces);
        Assert.NotEmpty(metrics);
        Assert.All(received, r => Assert.StartsWith("application/x-protobuf", r.ContentType));
        string allTraces = string.Concat(traces.Select(t => t.Body)), allMetrics = string.Concat(metrics.Select(m => m.Body));
        foreach (var name in new[] { RlftTelemetry.Generate, RlftTelemetry.Score, RlftTelemetry.Train, RlftTelemetry.BatchTag, "rlft-run" })
            Assert.Contains(name, allTraces);
        foreach (var name in new[] { "rlft.reward.mean", "rlft.steps", "rlft.phase.duration" })
            Assert.Contains(name, allMetrics);
    }

    [Fact]
    public void An_otlp_endpoint_that_is_not_an_http_url_is_refused_before_the_job_runs()
    {
        string jobFile = JobHarness.JobFile(JobHarness.Ppo(2));
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = Rlft.Host.Commands.Cli.Run(["run", jobFile, "--otlp-endpoint", "localhost:4318"], o, e);
        Assert.Equal(2, code);
        Assert.Contains("--otlp-endpoint", e.ToString());
        Assert.DoesNotContain("   at ", e.ToString());
        Assert.DoesNotContain("finished", o.ToString());
    }

    static Dictionary<string, object?> Tags(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var d = new Dictionary<string, object?>();
        foreach (var t in tags) d[t.Key] = t.Value;
        return d;
    }
}
