using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Reward.Sources;

/// <summary>Where and how patiently to ask a remote scorer.</summary>
/// <param name="Url">Endpoint that receives <c>POST {"samples": [{"prompt", "completion", "answer"?}]}</c>.</param>
/// <param name="Timeout">Per attempt.</param>
/// <param name="MaxRetries">Retries after the first attempt, for transport errors, timeouts, 5xx and 429.</param>
/// <param name="Backoff">Wait before the first retry; doubles for each further one.</param>
/// <param name="MaxBatch">Samples per request; larger batches are sent in chunks.</param>
public sealed record HttpScorerOptions(Uri Url, TimeSpan Timeout, int MaxRetries = 2, TimeSpan Backoff = default, int MaxBatch = 64);

/// <summary>
/// A scorer behind HTTP, the interoperability hook: the reply is <c>{"scores": [...]}</c> (or a bare array)
/// with one entry per sample, each a number, <c>null</c>, or <c>{"error": "reason"}</c>. Failures are
/// reported per sample (a refused or timed-out chunk fails its samples with the reason), never thrown.
/// </summary>
public sealed class HttpRewardSource(string name, HttpClient http, HttpScorerOptions options) : IRewardSource
{
    public string Name { get; } = name;

    public async Task<SourceScores> ScoreAsync(IReadOnlyList<RewardSample> batch, CancellationToken ct)
    {
        var scores = new List<SampleScore>(batch.Count);
        foreach (var chunk in batch.Chunk(Math.Max(1, options.MaxBatch)))
            scores.AddRange(await ScoreChunkAsync(chunk, ct).ConfigureAwait(false));
        return new SourceScores(Name, scores);
    }

    async Task<IReadOnlyList<SampleScore>> ScoreChunkAsync(RewardSample[] chunk, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["samples"] = new JsonArray(chunk.Select(s =>
            {
                var o = new JsonObject { ["prompt"] = s.Prompt, ["completion"] = s.Completion };
                if (s.Reference is not null) o["answer"] = s.Reference;
                return (JsonNode)o;
            }).ToArray()),
        };
        string lastError = "no attempt made";
        int attempts = options.MaxRetries + 1;
        for (int attempt = 0; attempt < attempts; attempt++)
        {
            if (attempt > 0 && options.Backoff > TimeSpan.Zero)
                await Task.Delay(options.Backoff * Math.Pow(2, attempt - 1), ct).ConfigureAwait(false);
            using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attemptCts.CancelAfter(options.Timeout);
            try
            {
                using var response = await http.PostAsJsonAsync(options.Url, body, attemptCts.Token).ConfigureAwait(false);
                string text = await response.Content.ReadAsStringAsync(attemptCts.Token).ConfigureAwait(false);
                if (response.IsSuccessStatusCode) return Parse(text, chunk.Length);
                lastError = $"HTTP {(int)response.StatusCode} {Snippet(text)}".TrimEnd();
                bool transient = (int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests;
                if (!transient) return Fail(chunk.Length, lastError);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                lastError = $"timed out after {options.Timeout.TotalSeconds:0.###} s";
            }
            catch (HttpRequestException e)
            {
                lastError = e.Message;
            }
        }
        return Fail(chunk.Length, attempts > 1 ? $"{lastError} (after {attempts} attempts)" : lastError);
    }

    static IReadOnlyList<SampleScore> Parse(string text, int expected)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(text); }
        catch (JsonException e) { return Fail(expected, $"reply is not JSON: {e.Message}"); }
        var array = root as JsonArray ?? (root as JsonObject)?["scores"] as JsonArray;
        if (array is null) return Fail(expected, "reply has no \"scores\" array");
        if (array.Count != expected) return Fail(expected, $"reply has {array.Count} scores for {expected} samples");
        return array.Select(Entry).ToList();
    }

    static SampleScore Entry(JsonNode? node) => node switch
    {
        null => SampleScore.Fail("scorer returned null"),
        JsonValue v when v.TryGetValue<double>(out var d) => SampleScore.Ok(d),
        JsonObject o when o["error"] is JsonValue e => SampleScore.Fail($"scorer: {e}"),
        _ => SampleScore.Fail($"scorer returned {Snippet(node.ToJsonString())}"),
    };

    static IReadOnlyList<SampleScore> Fail(int count, string reason) => Enumerable.Repeat(SampleScore.Fail(reason), count).ToArray();

    static string Snippet(string s) => s.Length <= 120 ? s : s[..120] + "…";
}
