using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Rlft.Actors.Feedback;

namespace Rlft.Tests.Feedback;

/// <summary>
/// Fixtures/journal-v1.db was written by the feedback node before event schema 2 (main at 5fa5bf3: five items, six
/// ratings, one timeout, an open lease for dave on c3, snapshots at 8, 16 and 24); journal-v1.expected.json is what
/// that node answered. This build must load it and answer the same, from the latest snapshot, from an older snapshot
/// plus the events after it, and from the events alone; and must then go on writing schema-2 events beside them.
/// </summary>
public class FeedbackJournalReplayTests
{
    static CancellationToken Ct => TestContext.Current.CancellationToken;

    static string Fixtures([CallerFilePath] string here = "") => Path.Combine(Path.GetDirectoryName(here)!, "Fixtures");

    /// <summary>A copy of the fixture journal keeping only the snapshots at or below <paramref name="keepSnapshotsUpTo"/>.</summary>
    static async Task<string> CopyAsync(long keepSnapshotsUpTo)
    {
        string dir = FeedbackTestNode.TempDirectory();
        File.Copy(Path.Combine(Fixtures(), "journal-v1.db"), Path.Combine(dir, "feedback.db"));
        await using var db = new SqliteConnection($"Data Source={Path.Combine(dir, "feedback.db")};Pooling=False");
        await db.OpenAsync(Ct);
        await using var cmd = db.CreateCommand();
        cmd.CommandText = $"DELETE FROM snapshot WHERE sequence_number > {keepSnapshotsUpTo}";
        await cmd.ExecuteNonQueryAsync(Ct);
        return dir;
    }

    /// <summary>The fixture's own time: a minute after its last rating (its open lease and items are still open then).</summary>
    static FeedbackTestNode.ManualClock FixtureClock()
    {
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures(), "journal-v1.expected.json")));
        var last = expected.RootElement.GetProperty("ratings").EnumerateArray().Max(r => DateTimeOffset.Parse(r.GetProperty("time").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        return new FeedbackTestNode.ManualClock(last.AddMinutes(1));
    }

    static List<JsonElement> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    /// <summary>Every key of <paramref name="expected"/> has the same value in <paramref name="actual"/> (which may have more keys).</summary>
    static void Covers(JsonElement expected, JsonElement actual, string at)
    {
        foreach (var p in expected.EnumerateObject())
        {
            Assert.True(actual.TryGetProperty(p.Name, out var value), $"{at}.{p.Name}: missing");
            if (p.Value.ValueKind == JsonValueKind.Object) Covers(p.Value, value, $"{at}.{p.Name}");
            else Assert.True(JsonElement.DeepEquals(p.Value, value), $"{at}.{p.Name}: expected {p.Value.GetRawText()}, got {value.GetRawText()}");
        }
    }

    [Theory]
    [InlineData(24)]   // the latest snapshot, which already holds every event
    [InlineData(16)]   // a snapshot and the eight events after it
    [InlineData(0)]    // no snapshot: every event from the first
    public async Task A_journal_written_before_schema_2_loads_and_answers_as_it_did(long keepSnapshotsUpTo)
    {
        string dir = await CopyAsync(keepSnapshotsUpTo);
        using var expected = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Fixtures(), "journal-v1.expected.json"), Ct));
        var e = expected.RootElement;
        await using var node = await FeedbackTestNode.StartAsync(directory: dir, clock: FixtureClock());
        foreach (var (key, path) in new[] { ("ratings", "/api/v1/admin/ratings"), ("preferences", "/api/v1/export?format=preferences"), ("scores", "/api/v1/export?format=scores") })
        {
            var actual = Lines(await node.Admin.GetTextAsync(path, Ct));
            var want = e.GetProperty(key).EnumerateArray().ToList();
            Assert.Equal(want.Count, actual.Count);
            for (int i = 0; i < want.Count; i++) Covers(want[i], actual[i], $"{key}[{i}]");
        }
        using var stats = JsonDocument.Parse(await node.Admin.GetTextAsync("/api/v1/stats", Ct));
        Covers(e.GetProperty("stats"), stats.RootElement, "stats");
        // Schema-1 pairs were A or B only: a tie is refused on them, as it would have been.
        await node.Admin.EnqueueAsync([FeedbackTestNode.Compare("n1", "new", "x", "y")], Ct);
        Assert.Equal("c3", (await node.Client("alice").NextAsync(Ct))!.TaskId);   // c3 wants two raters; dave holds one lease
        var tie = await node.Client("alice").RateAsync(new { taskId = "c3", verdict = "tie" }, Ct);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, tie.Status);
        Assert.Contains("verdict: this task takes no verdict", tie.Error);
        // dave's lease from the old journal still stands.
        Assert.Equal("c3", (await node.Client("dave").NextAsync(Ct))!.TaskId);
        Assert.Equal(System.Net.HttpStatusCode.Created, (await node.Client("dave").RateAsync("c3", "a", null, Ct)).Status);
    }

    [Fact]
    public async Task After_replaying_schema_1_the_node_appends_schema_2_events_and_a_restart_reads_both()
    {
        string dir = await CopyAsync(keepSnapshotsUpTo: 16);
        var clock = FixtureClock();
        var node = await FeedbackTestNode.StartAsync(directory: dir, clock: clock);
        Assert.Equal("c3", (await node.Client("dave").NextAsync(Ct))!.TaskId);
        Assert.Equal(System.Net.HttpStatusCode.Created, (await node.Client("dave").RateAsync(new { taskId = "c3", choice = "b", rationale = "B answers the question" }, Ct)).Status);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await node.Client("dave").UndoAsync(ct: Ct)).Status);
        Assert.Equal(System.Net.HttpStatusCode.Created, (await node.Client("dave").SetAsideAsync("c3", broken: true, "two identical answers", Ct)).Status);
        string before = await node.Admin.GetTextAsync("/api/v1/admin/overview", Ct);
        await node.StopAsync();

        await using (var db = new SqliteConnection($"Data Source={Path.Combine(dir, "feedback.db")};Pooling=False"))
        {
            await db.OpenAsync(Ct);
            await using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT manifest FROM journal ORDER BY ordering";
            var manifests = new List<string>();
            await using (var reader = await cmd.ExecuteReaderAsync(Ct))
                while (await reader.ReadAsync(Ct)) manifests.Add(reader.GetString(0));
            Assert.Equal(24, manifests.Count(m => !m.Contains('@')));
            Assert.Contains("RatingUndone@2", manifests);
            Assert.Contains("ItemSetAside@2", manifests);
        }
        await using var again = await FeedbackTestNode.StartAsync(directory: dir, clock: clock);
        using var a = JsonDocument.Parse(before);
        using var b = JsonDocument.Parse(await again.Admin.GetTextAsync("/api/v1/admin/overview", Ct));
        Assert.Equal(a.RootElement.GetProperty("raters").GetRawText(), b.RootElement.GetProperty("raters").GetRawText());
        Assert.Equal(a.RootElement.GetProperty("flagged").GetRawText(), b.RootElement.GetProperty("flagged").GetRawText());
    }
}
