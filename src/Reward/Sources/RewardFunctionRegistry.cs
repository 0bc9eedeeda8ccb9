namespace Rlft.Reward.Sources;

/// <summary>
/// User-defined reward functions by name, so a HOCON spec can say <c>source = function, function = "my-check"</c>.
/// Hosts register their own at start-up; a few generally useful ones are built in.
/// </summary>
public sealed class RewardFunctionRegistry
{
    readonly Dictionary<string, Func<RewardSample, double>> functions = new(StringComparer.Ordinal);
    readonly Dictionary<string, Func<RewardSample, CancellationToken, Task<double>>> asyncFunctions = new(StringComparer.Ordinal);

    public RewardFunctionRegistry Register(string name, Func<RewardSample, double> function)
    {
        CheckNew(name);
        functions.Add(name, function);
        return this;
    }

    /// <summary>An asynchronous function (one that awaits a service, say): awaited for one sample at a time, in batch order.</summary>
    public RewardFunctionRegistry Register(string name, Func<RewardSample, CancellationToken, Task<double>> function)
    {
        CheckNew(name);
        asyncFunctions.Add(name, function);
        return this;
    }

    void CheckNew(string name)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("a reward function needs a name", nameof(name));
        if (functions.ContainsKey(name) || asyncFunctions.ContainsKey(name)) throw new ArgumentException($"reward function '{name}' is already registered", nameof(name));
    }

    public bool TryGet(string name, out Func<RewardSample, double> function) => functions.TryGetValue(name, out function!);

    public bool TryGetAsync(string name, out Func<RewardSample, CancellationToken, Task<double>> function) => asyncFunctions.TryGetValue(name, out function!);

    public IReadOnlyCollection<string> Names => functions.Keys.Concat(asyncFunctions.Keys).OrderBy(k => k, StringComparer.Ordinal).ToList();

    /// <summary>A registry holding the built-ins: <c>word-count</c>, <c>char-count</c>, <c>contains-reference</c> (1/0).</summary>
    public static RewardFunctionRegistry WithBuiltIns() => new RewardFunctionRegistry()
        .Register("word-count", s => TextNormalization.Words(s.Completion).Count)
        .Register("char-count", s => s.Completion.Length)
        .Register("contains-reference", s => s.Reference is { } r
            ? TextNormalization.Normalize(s.Completion).Contains(TextNormalization.Normalize(r), StringComparison.Ordinal) ? 1 : 0
            : throw new InvalidOperationException("no reference answer"));
}
