using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rlft.Reward.Sources;

/// <summary>Where and how patiently to ask a remote scorer.</summary>
/// <param name="Url">
/// Endpoint that receives <c>POST {"samples": [{"prompt", "completion", "answer"?, "messages"?}]}</c>; a conversational
/// sample's <c>prompt</c> is the rendered text the policy saw and <c>messages</c> the conversation, as
/// <c>[{"role", "content"}]</c>, the completion being the assistant's reply.
/// </param>
/// <param name="Timeout">Per attempt.</param>
/// <param name="MaxRetries">Retries after the first attempt, for transport errors, timeouts, 5xx, 429 and malformed replies (not JSON, no scores, the wrong count).</param>
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
                if (s.Messages is not null) o["messages"] = new JsonArray(s.Messages.Select(m => (JsonNode)m.ToJson()).ToArray());
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
                if (response.IsSuccessStatusCode)
                {
                    // A reply that is not what the contract says (not JSON, no scores, the wrong count) is treated like
                    // a transient failure: asked again, then the chunk's samples fail with the reason.
                    var (scores, malformed) = Parse(text, chunk.Length);
                    if (scores is not null) return scores;
                    lastError = $"malformed reply: {malformed}";
                    continue;
                }
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

    /// <summary>The reply's scores, or why the reply breaks the contract.</summary>
    static (IReadOnlyList<SampleScore>? Scores, string? Malformed) Parse(string text, int expected)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(QuoteNonFiniteLiterals(text)); }
        catch (JsonException e) { return (null, $"not JSON ({e.Message.Split('.')[0]})"); }
        var array = root as JsonArray ?? (root as JsonObject)?["scores"] as JsonArray;
        if (array is null) return (null, "no \"scores\" array");
        if (array.Count != expected) return (null, $"{array.Count} scores for {expected} samples");
        return (array.Select(Entry).ToList(), null);
    }

    static SampleScore Entry(JsonNode? node) => node switch
    {
        null => SampleScore.Fail("scorer returned null"),
        JsonValue v when v.TryGetValue<double>(out var d) => SampleScore.Ok(d),
        // NaN and ±Infinity (as Python's json module writes them): a score, but not a finite one; the pipeline
        // drops that sample alone.
        JsonValue v when v.TryGetValue<string>(out var s) && NonFinite.TryGetValue(s, out var d) => SampleScore.Ok(d),
        JsonObject o when o["error"] is JsonValue e => SampleScore.Fail($"scorer: {e}"),
        _ => SampleScore.Fail($"scorer returned {Snippet(node.ToJsonString())}"),
    };

    static readonly Dictionary<string, double> NonFinite = new(StringComparer.Ordinal)
    {
        ["NaN"] = double.NaN, ["Infinity"] = double.PositiveInfinity, ["-Infinity"] = double.NegativeInfinity,
    };

    /// <summary>
    /// Python's <c>json.dumps</c> writes <c>NaN</c>, <c>Infinity</c> and <c>-Infinity</c> as bare words, which are not
    /// JSON; outside strings they are quoted here so the reply parses and those scores read as non-finite numbers.
    /// </summary>
    internal static string QuoteNonFiniteLiterals(string text)
    {
        if (!text.Contains("NaN", StringComparison.Ordinal) && !text.Contains("Infinity", StringComparison.Ordinal)) return text;
        var sb = new System.Text.StringBuilder(text.Length + 16);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '"')
            {
                int end = i + 1;
                while (end < text.Length && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
                end = Math.Min(end, text.Length - 1);
                sb.Append(text, i, end - i + 1);
                i = end;
                continue;
            }
            string? word = NonFinite.Keys.OrderByDescending(k => k.Length).FirstOrDefault(k => string.CompareOrdinal(text, i, k, 0, k.Length) == 0);
            if (word is not null) { sb.Append('"').Append(word).Append('"'); i += word.Length - 1; continue; }
            sb.Append(c);
        }
        return sb.ToString();
    }

    static IReadOnlyList<SampleScore> Fail(int count, string reason) => Enumerable.Repeat(SampleScore.Fail(reason), count).ToArray();

    static string Snippet(string s) => s.Length <= 120 ? s : s[..120] + "…";
}
