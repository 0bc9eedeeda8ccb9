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

    /// <summary>
    /// How a request in flight when the node is SIGKILLed fails: mostly an HttpRequestException, but a connection the
    /// kill breaks between connect and first use surfaces as a bare SocketException ("Transport endpoint is not
    /// connected", from reading the socket's remote end point) or an IOException.
    /// </summary>
    static bool NodeDied(Exception e) => e is HttpRequestException or System.Net.Sockets.SocketException or IOException;

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
                    catch (Exception e) when (NodeDied(e)) { /* the node died under us: in-flight requests have no answer */ }
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

    /// <summary>
    /// The schema-2 writes under the same SIGKILL: 8 raters rate (with verdicts, strengths and rationales), undo every
    /// fifth rating and answer again, skip and flag; the admin adds raters and saves guideline versions meanwhile. After
    /// the restart every acknowledged write is there exactly once, every acknowledged undo has taken its rating away,
    /// and nothing unacknowledged is there twice.
    /// </summary>
    [Fact]
    public async Task Every_acknowledged_workflow_write_survives_a_SIGKILL_exactly_once()
    {
        string dir = FeedbackTestNode.TempDirectory();
        var raters = Enumerable.Range(0, 8).ToDictionary(i => $"r{i}", _ => RaterTokens.NewToken());
        string admin = RaterTokens.NewToken();
        string config = Path.Combine(dir, "feedback.conf");
        await File.WriteAllTextAsync(config, $$"""
            rlft.feedback {
              journal = "journal/feedback.db"
              raters-per-item = 2
              snapshot-every = 50
              rate-per-second = 100000
              rate-burst = 100000
              undo-seconds = 600
              admin-token-sha256 = "{{RaterTokens.Hash(admin)}}"
              guidelines { default = "Version zero." }
              raters = [
                {{string.Join("\n    ", raters.Select(r => RaterTokens.ConfigLine(r.Key, r.Value)))}}
              ]
            }
            """, Ct);
        try
        {
            var rated = new ConcurrentBag<(string RatingId, string TaskId, string Rater)>();
            var undoSent = new ConcurrentBag<string>();
            var undone = new ConcurrentBag<string>();
            var asides = new ConcurrentBag<(string TaskId, string Rater, string Kind)>();
            var added = new ConcurrentBag<(string Name, string Token)>();
            var versions = new ConcurrentBag<int>();
            var (first, firstUrl) = await StartNodeAsync(config);
            using (first)
            {
                using var http = new HttpClient { BaseAddress = firstUrl };
                await new FeedbackClient(http, admin).EnqueueAsync(Enumerable.Range(0, 600).Select(i => (object)new
                {
                    id = $"c{i}", kind = "compare", prompt = $"prompt {i}", completions = new[] { "x", "y y" }, raters = 2, strength = true,
                }), Ct);
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
                            n++;
                            if (n % 13 == 0 || n % 17 == 0)
                            {
                                bool broken = n % 17 == 0;
                                var set = await client.SetAsideAsync(task.TaskId, broken, broken ? "garbled" : null, CancellationToken.None);
                                Assert.True(set.Status is HttpStatusCode.Created or HttpStatusCode.OK, $"{set.Status} {set.Error}");
                                asides.Add((task.TaskId, r.Key, broken ? "broken" : "skip"));
                                continue;
                            }
                            object body = (n % 3) switch
                            {
                                0 => new { taskId = task.TaskId, verdict = "tie", rationale = $"same, says {r.Key}" },
                                1 => new { taskId = task.TaskId, choice = "a", strength = "slightly" },
                                _ => new { taskId = task.TaskId, choice = "b" },
                            };
                            var result = await client.RateAsync(body, CancellationToken.None);
                            Assert.Equal(HttpStatusCode.Created, result.Status);
                            rated.Add((result.RatingId!, task.TaskId, r.Key));
                            if (n % 5 == 0)
                            {
                                undoSent.Add(result.RatingId!);
                                var back = await client.UndoAsync(result.RatingId, CancellationToken.None);
                                Assert.Equal(HttpStatusCode.OK, back.Status);
                                undone.Add(result.RatingId!);
                                // The item is this rater's again: answer it once more.
                                Assert.Equal(task.TaskId, (await client.NextAsync(CancellationToken.None))!.TaskId);
                                var again = await client.RateAsync(new { taskId = task.TaskId, choice = "a" }, CancellationToken.None);
                                Assert.Equal(HttpStatusCode.Created, again.Status);
                                rated.Add((again.RatingId!, task.TaskId, r.Key));
                            }
                            if (rated.Count >= 200) enough.Cancel();
                        }
                    }
                    catch (Exception e) when (NodeDied(e)) { /* the node died under us: in-flight requests have no answer */ }
                }, CancellationToken.None)).ToList();
                var adminWork = Task.Run(async () =>
                {
                    var client = new FeedbackClient(http, admin);
                    try
                    {
                        for (int k = 1; ; k++)
                        {
                            using var add = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/admin/raters")
                            {
                                Headers = { Authorization = new("Bearer", admin) },
                                Content = JsonContent($$"""{"name":"new{{k}}"}"""),
                            }, CancellationToken.None);
                            if (add.StatusCode == HttpStatusCode.Created)
                                added.Add(($"new{k}", JsonDocument.Parse(await add.Content.ReadAsStringAsync(CancellationToken.None)).RootElement.GetProperty("token").GetString()!));
                            using var put = await http.SendAsync(new HttpRequestMessage(HttpMethod.Put, "/api/v1/admin/guidelines/default")
                            {
                                Headers = { Authorization = new("Bearer", admin) },
                                Content = JsonContent($$"""{"markdown":"Version {{k}}."}"""),
                            }, CancellationToken.None);
                            if (put.StatusCode == HttpStatusCode.OK)
                                versions.Add(JsonDocument.Parse(await put.Content.ReadAsStringAsync(CancellationToken.None)).RootElement.GetProperty("version").GetInt32());
                            await Task.Delay(20, CancellationToken.None);
                        }
                    }
                    catch (Exception e) when (NodeDied(e)) { }
                }, CancellationToken.None);
                await Task.WhenAny(Task.Delay(Timeout.Infinite, enough.Token).ContinueWith(_ => { }, TaskScheduler.Default), Task.WhenAll(workers));
                first.Process.Kill();
                await first.Process.WaitForExitAsync(Ct);
                await Task.WhenAll(workers);
                await adminWork;
            }
            Assert.True(rated.Count >= 200, $"only {rated.Count} ratings were confirmed before the kill");

            var (second, secondUrl) = await StartNodeAsync(config);
            using var _ = second;
            using var http2 = new HttpClient { BaseAddress = secondUrl };
            var adminClient = new FeedbackClient(http2, admin);
            var stored = (await adminClient.GetTextAsync("/api/v1/admin/ratings", Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var ids = stored.Select(s => s.GetProperty("ratingId").GetString()!).ToList();
            var undoneSet = undone.ToHashSet();
            var undoSentSet = undoSent.ToHashSet();
            foreach (var r in rated)
            {
                if (undoneSet.Contains(r.RatingId)) Assert.DoesNotContain(r.RatingId, ids);            // an acknowledged undo holds
                else if (!undoSentSet.Contains(r.RatingId)) Assert.Equal(1, ids.Count(id => id == r.RatingId));   // so does every other rating
            }
            Assert.Equal(stored.Count, stored.Select(s => (s.GetProperty("taskId").GetString(), s.GetProperty("rater").GetString())).Distinct().Count());
            var storedAsides = (await adminClient.GetTextAsync("/api/v1/export?format=set-aside", Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonDocument.Parse(l).RootElement)
                .Select(a => (a.GetProperty("taskId").GetString()!, a.GetProperty("rater").GetString()!, a.GetProperty("kind").GetString()!)).ToList();
            foreach (var a in asides) Assert.Equal(1, storedAsides.Count(x => x == a));
            Assert.Equal(storedAsides.Count, storedAsides.Select(x => (x.Item1, x.Item2)).Distinct().Count());
            // No rating from a rater who set that item aside.
            Assert.DoesNotContain(stored, s => storedAsides.Any(a => a.Item1 == s.GetProperty("taskId").GetString() && a.Item2 == s.GetProperty("rater").GetString()));
            foreach (var (name, token) in added)
            {
                using var me = await http2.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/api/v1/me") { Headers = { Authorization = new("Bearer", token) } }, Ct);
                Assert.True(me.StatusCode == HttpStatusCode.OK, $"{name}'s acknowledged token was refused after the restart: {me.StatusCode}");
            }
            using var guidelines = JsonDocument.Parse(await adminClient.GetTextAsync("/api/v1/admin/guidelines", Ct));
            var storedVersions = guidelines.RootElement.GetProperty("guidelines").EnumerateArray().Select(g => g.GetProperty("version").GetInt32()).ToList();
            foreach (var v in versions) Assert.Equal(1, storedVersions.Count(x => x == v));
            TestContext.Current.TestOutputHelper?.WriteLine(
                $"acknowledged before the kill: {rated.Count} ratings, {undone.Count} undos, {asides.Count(a => a.Kind == "skip")} skips, {asides.Count(a => a.Kind == "broken")} flags, "
                + $"{added.Count} raters added, {versions.Count} guideline versions; after the restart: {stored.Count} ratings standing, {storedAsides.Count} set aside, "
                + $"{storedVersions.Count} guideline versions, 0 lost, 0 duplicated");
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    static StringContent JsonContent(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
}
