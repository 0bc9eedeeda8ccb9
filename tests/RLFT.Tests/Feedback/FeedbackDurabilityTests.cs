using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>The feedback node as a separate `rlft feedback` process, killed with SIGKILL while ratings stream in.</summary>
[Collection(Rlft.Tests.Cluster.ProcessTests.Name)]
public class FeedbackDurabilityTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    sealed class NodeProcess : IDisposable
    {
        public Process Process { get; }
        public Uri Url { get; }

        NodeProcess(Process process, Uri url) { Process = process; Url = url; }

        public static async Task<NodeProcess> StartAsync(string config)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "rlft.dll"), "feedback", "--config", config, "--urls", "http://127.0.0.1:0" })
                info.ArgumentList.Add(a);
            var process = Process.Start(info)!;
            var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
            var log = new ConcurrentQueue<string>();
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                log.Enqueue(e.Data);
                int at = e.Data.IndexOf("listening on http://", StringComparison.Ordinal);
                if (at >= 0) listening.TrySetResult(new Uri(e.Data[(at + 13)..].Split(' ', ',')[0]));
            };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) log.Enqueue(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var exited = process.WaitForExitAsync(Ct);
            var first = await Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromSeconds(90), Ct));
            if (first != listening.Task)
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
                throw new InvalidOperationException("feedback node did not start: " + string.Join("\n", log));
            }
            return new NodeProcess(process, await listening.Task);
        }

        public void Dispose()
        {
            if (!Process.HasExited) Process.Kill(entireProcessTree: true);
            Process.Dispose();
        }
    }

    [Fact]
    public async Task Every_rating_answered_201_survives_a_SIGKILL_exactly_once()
    {
        string dir = FeedbackTestNode.TempDirectory();
        var raters = Enumerable.Range(0, 8).ToDictionary(i => $"r{i}", _ => RaterTokens.NewToken());
        string admin = RaterTokens.NewToken();
        string config = Path.Combine(dir, "feedback.conf");
        await File.WriteAllTextAsync(config, $$"""
            rlft.feedback {
              journal = "journal/feedback.db"
              raters-per-item = 2
              # Snapshots while ratings stream in: recovery after the kill starts from one.
              snapshot-every = 50
              rate-per-second = 100000
              rate-burst = 100000
              admin-token-sha256 = "{{RaterTokens.Hash(admin)}}"
              raters = [
                {{string.Join("\n    ", raters.Select(r => RaterTokens.ConfigLine(r.Key, r.Value)))}}
              ]
            }
            """, Ct);
        try
        {
            var confirmed = new ConcurrentBag<(string RatingId, string TaskId, string Rater, string? Choice, int? Score)>();
            using (var first = await NodeProcess.StartAsync(config))
            {
                using var http = new HttpClient { BaseAddress = first.Url };
                await new FeedbackClient(http, admin).EnqueueAsync(Enumerable.Range(0, 400).Select(i => i % 2 == 0
                    ? FeedbackTestNode.Compare($"c{i}", $"prompt {i}", "x", "y y", raters: 2)
                    : FeedbackTestNode.Score($"s{i}", $"prompt {i}", "z", raters: 2)), Ct);
                using var enough = new CancellationTokenSource();
                var workers = raters.Select(r => Task.Run(async () =>
                {
                    var client = new FeedbackClient(http, r.Value);
                    int n = 0;
                    try
                    {
                        while (true)
                        {
                            var task = await client.NextAsync(CancellationToken.None);
                            if (task is null) return;
                            string? choice = task.Kind == "compare" ? (n++ % 2 == 0 ? "a" : "b") : null;
                            int? score = choice is null ? 1 + n++ % 7 : null;
                            var result = await client.RateAsync(task.TaskId, choice, score is { } s ? new Dictionary<string, int> { ["a"] = s } : null, CancellationToken.None);
                            Assert.Equal(HttpStatusCode.Created, result.Status);
                            confirmed.Add((result.RatingId!, task.TaskId, r.Key, choice, score));
                            if (confirmed.Count >= 150) enough.Cancel();
                        }
                    }
                    catch (HttpRequestException) { /* the node died under us: in-flight requests have no answer */ }
                }, CancellationToken.None)).ToList();
                // Kill mid-stream: as soon as enough ratings were confirmed, while the workers keep posting.
                await Task.WhenAny(Task.Delay(Timeout.Infinite, enough.Token).ContinueWith(_ => { }, TaskScheduler.Default), Task.WhenAll(workers));
                first.Process.Kill();
                await first.Process.WaitForExitAsync(Ct);
                await Task.WhenAll(workers);
            }
            Assert.True(confirmed.Count >= 150, $"only {confirmed.Count} ratings were confirmed before the kill");
            await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, "journal", "feedback.db")};Pooling=False"))
            {
                await db.OpenAsync(Ct);
                await using var count = db.CreateCommand();
                count.CommandText = "SELECT COUNT(*) FROM snapshot";
                Assert.True((long)(await count.ExecuteScalarAsync(Ct))! > 0, "no snapshot was taken before the kill");
            }

            using var second = await NodeProcess.StartAsync(config);
            using var http2 = new HttpClient { BaseAddress = second.Url };
            var stored = (await new FeedbackClient(http2, admin).GetTextAsync("/api/v1/admin/ratings", Ct))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonDocument.Parse(l).RootElement)
                .ToList();
            var ids = stored.Select(s => s.GetProperty("ratingId").GetString()!).ToList();
            foreach (var c in confirmed)
                Assert.Equal(1, ids.Count(id => id == c.RatingId));
            // No rater has two ratings for one task, whatever was in flight at the kill.
            Assert.Equal(stored.Count, stored.Select(s => (s.GetProperty("taskId").GetString(), s.GetProperty("rater").GetString())).Distinct().Count());
            // A confirmed rating resubmitted after the restart is recognised as the same one.
            var one = confirmed.First();
            var again = await new FeedbackClient(http2, raters[one.Rater]).RateAsync(one.TaskId, one.Choice,
                one.Score is { } sc ? new Dictionary<string, int> { ["a"] = sc } : null, Ct);
            Assert.Equal((HttpStatusCode.Created, one.RatingId), (again.Status, again.RatingId));
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
