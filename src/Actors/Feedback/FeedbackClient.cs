using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Rlft.Actors.Feedback;

/// <summary>A task as a rater receives it from <c>GET /api/v1/tasks/next</c> (the parts a client program needs).</summary>
internal sealed record RaterTask(string TaskId, string Kind, string Prompt, IReadOnlyList<Completion> Completions)
{
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    public IReadOnlyList<string> Verdicts { get; init; } = [];
    public IReadOnlyList<string> Criteria { get; init; } = [];
}

/// <summary>The outcome of <c>POST /api/v1/ratings</c>: the status, the rating id on 201, the error text otherwise.</summary>
internal sealed record RatingResult(HttpStatusCode Status, string? RatingId, string? Error);

/// <summary>A small typed client of the feedback API, for simulated raters, the benchmark and producers of items.</summary>
internal sealed class FeedbackClient(HttpClient http, string token)
{
    static readonly JsonSerializerOptions Json = FeedbackJson.Web;

    HttpRequestMessage Request(HttpMethod method, string path, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null) request.Content = JsonContent.Create(body, options: Json);
        return request;
    }

    /// <summary>The next task, or null when nothing waits (204). Throws on any other status.</summary>
    public async Task<RaterTask?> NextAsync(CancellationToken ct = default)
    {
        using var response = await http.SendAsync(Request(HttpMethod.Get, "/api/v1/tasks/next"), ct);
        if (response.StatusCode == HttpStatusCode.NoContent) return null;
        await EnsureSuccess(response, ct);
        return await response.Content.ReadFromJsonAsync<RaterTask>(Json, ct);
    }

    public Task<RatingResult> RateAsync(string taskId, string? choice, IReadOnlyDictionary<string, int>? scores, CancellationToken ct = default) =>
        PostAsync("/api/v1/ratings", choice is not null ? new { taskId, choice } : new { taskId, scores }, "ratingId", ct);

    /// <summary>Any rating body (<c>verdict</c>, <c>strength</c>, <c>rationale</c>, per-criterion <c>scores</c>), as an object serialized to JSON.</summary>
    public Task<RatingResult> RateAsync(object body, CancellationToken ct = default) => PostAsync("/api/v1/ratings", body, "ratingId", ct);

    /// <summary>Skips the task (or flags it as broken); the result's id is the task id.</summary>
    public Task<RatingResult> SetAsideAsync(string taskId, bool broken, string? reason = null, CancellationToken ct = default) =>
        PostAsync(broken ? "/api/v1/flags" : "/api/v1/skips", reason is null ? new { taskId } : new { taskId, reason }, "taskId", ct);

    /// <summary>Takes back the most recent rating; the result's id is the rating taken back.</summary>
    public Task<RatingResult> UndoAsync(string? ratingId = null, CancellationToken ct = default) =>
        PostAsync("/api/v1/undo", ratingId is null ? new { } : new { ratingId }, "ratingId", ct);

    async Task<RatingResult> PostAsync(string path, object body, string idField, CancellationToken ct)
    {
        using var response = await http.SendAsync(Request(HttpMethod.Post, path, body), ct);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return response.IsSuccessStatusCode
            ? new RatingResult(response.StatusCode, doc.RootElement.GetProperty(idField).GetString(), null)
            : new RatingResult(response.StatusCode, null, doc.RootElement.TryGetProperty("error", out var e) ? e.GetString() : null);
    }

    /// <summary>Admin: enqueue items (<c>POST /api/v1/admin/items</c>, body <c>{"items": [...]}</c>); returns their ids.</summary>
    public async Task<IReadOnlyList<string>> EnqueueAsync(IEnumerable<object> items, CancellationToken ct = default)
    {
        using var response = await http.SendAsync(Request(HttpMethod.Post, "/api/v1/admin/items", new { items }), ct);
        await EnsureSuccess(response, ct);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    public async Task<string> GetTextAsync(string path, CancellationToken ct = default)
    {
        using var response = await http.SendAsync(Request(HttpMethod.Get, path), ct);
        await EnsureSuccess(response, ct);
        return await response.Content.ReadAsStringAsync(ct);
    }

    static async Task EnsureSuccess(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        string body = await response.Content.ReadAsStringAsync(ct);
        throw new HttpRequestException($"{(int)response.StatusCode} {response.ReasonPhrase}: {body}", null, response.StatusCode);
    }
}

/// <summary>
/// A hidden rating rule for simulated raters: a 1..7 score per completion text (a pairwise choice prefers the
/// higher score). <c>word:W</c> scores 1 + 2 per occurrence of W (capped at 7); <c>positive</c> scores the share of
/// the built-in task's sentiment words that are positive, 1 (none, or all negative) to 7 (all positive).
/// </summary>
internal sealed record HiddenRule(string Name, Func<string, int> Score)
{
    public static HiddenRule Word(string word) =>
        string.IsNullOrWhiteSpace(word) ? throw new ArgumentException("the rule's word is empty", nameof(word))
            : new($"word:{word}", text => Math.Min(7, 1 + 2 * SimulatedRater.Count(text, word)));

    public static readonly HiddenRule Positive = new("positive", text =>
    {
        var (pos, neg) = Rlft.Rollout.Tasks.ReviewTask.CountSentiment(
            text.Split([' ', '.', ',', '!', '?', ':', ';', '\n'], StringSplitOptions.RemoveEmptyEntries), StringComparer.OrdinalIgnoreCase);
        return pos + neg == 0 ? 1 : 1 + (int)Math.Round(6.0 * pos / (pos + neg), MidpointRounding.AwayFromZero);
    });

    /// <summary>Reads <c>positive</c> or <c>word:W</c>.</summary>
    public static HiddenRule Parse(string spec) => spec switch
    {
        "positive" => Positive,
        _ when spec.StartsWith("word:", StringComparison.Ordinal) && spec.Length > 5 => Word(spec[5..]),
        _ => throw new ArgumentException($"unknown rule '{spec}' (expected positive or word:WORD)", nameof(spec)),
    };
}

/// <summary>
/// A stand-in for a person: rates every task it is given by a <see cref="HiddenRule"/>, so a training loop fed by
/// it should move toward what the rule rewards.
/// </summary>
internal sealed class SimulatedRater(FeedbackClient client, HiddenRule rule)
{
    public SimulatedRater(FeedbackClient client, string word) : this(client, HiddenRule.Word(word)) { }

    public HiddenRule Rule { get; } = rule;

    public static int Count(string text, string word)
    {
        int n = 0;
        for (int i = text.IndexOf(word, StringComparison.OrdinalIgnoreCase); i >= 0; i = text.IndexOf(word, i + word.Length, StringComparison.OrdinalIgnoreCase)) n++;
        return n;
    }

    public string Choose(RaterTask task) =>
        task.Completions.OrderByDescending(c => Score(c.Text)).ThenBy(c => c.Id, StringComparer.Ordinal).First().Id;

    /// <summary>
    /// The rating body the rule gives: a pair's better side, or "tie" when the rule scores both alike and the task
    /// allows it; a score per completion, the same for every criterion when the task names criteria.
    /// </summary>
    public object Answer(RaterTask task)
    {
        if (task.Kind == "compare")
            return task.Completions.Count == 2 && Score(task.Completions[0].Text) == Score(task.Completions[1].Text) && task.Verdicts.Contains(ItemParts.Tie)
                ? new { taskId = task.TaskId, verdict = ItemParts.Tie }
                : new { taskId = task.TaskId, choice = Choose(task) };
        if (task.Criteria.Count == 0) return new { taskId = task.TaskId, scores = task.Completions.ToDictionary(c => c.Id, c => Score(c.Text)) };
        return new { taskId = task.TaskId, scores = task.Completions.ToDictionary(c => c.Id, c => task.Criteria.ToDictionary(k => k, _ => Score(c.Text))) };
    }

    public int Score(string text) => Rule.Score(text);

    /// <summary>
    /// Rates until <paramref name="maxRatings"/> ratings are stored or nothing waits (or, with
    /// <paramref name="pollWhenIdle"/>, until cancelled). <paramref name="onRated"/> sees each result and the POST latency.
    /// </summary>
    public async Task<int> RunAsync(int maxRatings, TimeSpan? pollWhenIdle = null, Action<RatingResult, TimeSpan>? onRated = null, CancellationToken ct = default)
    {
        int stored = 0;
        while (stored < maxRatings && !ct.IsCancellationRequested)
        {
            RaterTask? task;
            try { task = await client.NextAsync(ct); }
            catch (HttpRequestException e) when (e.StatusCode == HttpStatusCode.TooManyRequests) { await Task.Delay(200, ct); continue; }
            catch (HttpRequestException e) when (e.StatusCode is null && pollWhenIdle is { } retry)
            {
                await Task.Delay(retry * 5, ct); // the endpoint is not up (yet, or any more): keep polling
                continue;
            }
            if (task is null)
            {
                if (pollWhenIdle is not { } wait) break;
                await Task.Delay(wait, ct);
                continue;
            }
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var result = await client.RateAsync(Answer(task), ct);
            onRated?.Invoke(result, System.Diagnostics.Stopwatch.GetElapsedTime(started));
            if (result.Status == HttpStatusCode.Created) stored++;
            else if (result.Status == HttpStatusCode.TooManyRequests) await Task.Delay(200, ct);
        }
        return stored;
    }
}
