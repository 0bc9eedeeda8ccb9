using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Rlft.Actors.Feedback;
using Rlft.Tests.Cli;

namespace Rlft.Tests.Feedback;

/// <summary>The feedback node as a separate `rlft feedback` process, killed with SIGKILL while ratings stream in.</summary>
[Collection(Rlft.Tests.Cluster.ProcessTests.Name)]
public class FeedbackDurabilityTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>`rlft feedback` as its own process, and the address it listens on.</summary>
    static async Task<(RlftProcess Node, Uri Url)> StartNodeAsync(string config)
    {
        var node = await RlftProcess.StartAsync(["feedback", "--config", config, "--urls", "http://127.0.0.1:0"], "listening on http://", Ct);
        int at = node.ReadyLine.IndexOf("listening on http://", StringComparison.Ordinal);
        return (node, new Uri(node.ReadyLine[(at + 13)..].Split(' ', ',')[0]));
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
            var (first, firstUrl) = await StartNodeAsync(config);
            using (first)
            {
                using var http = new HttpClient { BaseAddress = firstUrl };
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

            var (second, secondUrl) = await StartNodeAsync(config);
            using var _ = second;
            using var http2 = new HttpClient { BaseAddress = secondUrl };
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
