namespace Rlft.Reward.Sources;

/// <summary>
/// User-defined reward functions by name, so a HOCON spec can say <c>source = function, function = "my-check"</c>.
/// Hosts register their own at start-up; a few generally useful ones are built in.
/// </summary>
public sealed class RewardFunctionRegistry
{
    readonly Dictionary<string, Func<RewardSample, double>> functions = new(StringComparer.Ordinal);

    public RewardFunctionRegistry Register(string name, Func<RewardSample, double> function)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("a reward function needs a name", nameof(name));
        if (!functions.TryAdd(name, function)) throw new ArgumentException($"reward function '{name}' is already registered", nameof(name));
        return this;
    }

    public bool TryGet(string name, out Func<RewardSample, double> function) => functions.TryGetValue(name, out function!);

    public IReadOnlyCollection<string> Names => functions.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();

    /// <summary>A registry holding the built-ins: <c>word-count</c>, <c>char-count</c>, <c>contains-reference</c> (1/0).</summary>
    public static RewardFunctionRegistry WithBuiltIns() => new RewardFunctionRegistry()
        .Register("word-count", s => TextNormalization.Words(s.Completion).Count)
        .Register("char-count", s => s.Completion.Length)
        .Register("contains-reference", s => s.Reference is { } r
            ? TextNormalization.Normalize(s.Completion).Contains(TextNormalization.Normalize(r), StringComparison.Ordinal) ? 1 : 0
            : throw new InvalidOperationException("no reference answer"));
}
