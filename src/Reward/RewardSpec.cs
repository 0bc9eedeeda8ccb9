using Rlft.Reward.Pipeline;
using Rlft.Reward.Sources;

namespace Rlft.Reward;

/// <summary>What a component's source is, as plain options (read from HOCON by the configuration layer).</summary>
public abstract record SourceSpec
{
    /// <summary>The spec's <c>source = ...</c> name.</summary>
    public abstract string Kind { get; }
}

public sealed record ExactMatchSpec(string? Extract = null, bool CaseSensitive = false) : SourceSpec { public override string Kind => "exact-match"; }
public sealed record NumericMatchSpec(string? Extract = null, double AbsTolerance = 1e-9, double RelTolerance = 1e-9) : SourceSpec { public override string Kind => "numeric-match"; }
public sealed record RegexSpec(string Pattern, double MatchScore = 1, double MissScore = 0) : SourceSpec { public override string Kind => "regex"; }
public sealed record LengthSpec(int Target, LengthUnit Unit = LengthUnit.Words) : SourceSpec { public override string Kind => "length"; }
public sealed record JsonSpec(IReadOnlyList<string> RequiredKeys) : SourceSpec { public override string Kind => "json"; }
public sealed record SectionsSpec(IReadOnlyList<string> Headings, bool InOrder = true) : SourceSpec { public override string Kind => "sections"; }
public sealed record RepetitionSpec(int N = 3) : SourceSpec { public override string Kind => "repetition"; }
public sealed record FunctionSpec(string Function) : SourceSpec { public override string Kind => "function"; }
public sealed record HttpSpec(HttpScorerOptions Options) : SourceSpec { public override string Kind => "http"; }
public sealed record RewardModelSpec(string Model, int MaxBatch = 32) : SourceSpec { public override string Kind => "reward-model"; }
public sealed record HumanSpec(HumanRatingOptions Options) : SourceSpec { public override string Kind => "human"; }

/// <summary>One component: how it is weighted, normalised, clipped and what its source is.</summary>
public sealed record RewardComponentSpec(ComponentOptions Options, SourceSpec Source);

/// <summary>A whole reward: its components and the clip applied to the total.</summary>
public sealed record RewardSpec(IReadOnlyList<RewardComponentSpec> Components, ClipRange TotalClip);

/// <summary>What some sources need from their host: registered functions, an HTTP client, the rating port, reward models.</summary>
internal sealed class RewardEnvironment
{
    public RewardFunctionRegistry Functions { get; init; } = RewardFunctionRegistry.WithBuiltIns();
    public HttpClient? Http { get; init; }
    public IHumanRatingPort? HumanRatings { get; init; }
    /// <summary>Loads the reward model at a path as a scorer (provided by hosts that carry models).</summary>
    public Func<string, ISequenceScorer>? RewardModels { get; init; }
    /// <summary>The directory a classifier source's <c>model</c> names (a job maps <c>stage:NAME</c> to the stage's output); null: as written.</summary>
    public Func<string, string>? ModelPaths { get; init; }
}

/// <summary>Builds sources and pipelines from specs; an unusable spec is an <see cref="ArgumentException"/> saying why.</summary>
internal static class RewardPipelineFactory
{
    public static RewardPipeline Create(RewardSpec spec, RewardEnvironment environment) =>
        new(spec.Components.Select(c => new RewardComponent(CreateSource(c.Options.Name, c.Source, environment), c.Options)).ToList(), spec.TotalClip);

    public static IRewardSource CreateSource(string name, SourceSpec spec, RewardEnvironment env) => spec switch
    {
        ExactMatchSpec s => RuleRewards.ExactMatch(name, s.Extract, s.CaseSensitive),
        NumericMatchSpec s => RuleRewards.NumericMatch(name, s.Extract, s.AbsTolerance, s.RelTolerance),
        RegexSpec s => RuleRewards.Regex(s.Pattern, name, s.MatchScore, s.MissScore),
        LengthSpec s => RuleRewards.TargetLength(s.Target, s.Unit, name),
        JsonSpec s => RuleRewards.ValidJson(s.RequiredKeys, name),
        SectionsSpec s => RuleRewards.Sections(s.Headings, s.InOrder, name),
        RepetitionSpec s => RuleRewards.RepetitionPenalty(s.N, name),
        FunctionSpec s => env.Functions.TryGet(s.Function, out var f)
            ? RuleRewards.Function(name, f)
            : env.Functions.TryGetAsync(s.Function, out var af)
            ? new AsyncFunctionSource(name, af)
            : throw new ArgumentException($"no reward function named '{s.Function}' (registered: {string.Join(", ", env.Functions.Names)})"),
        HttpSpec s => new HttpRewardSource(name, env.Http ?? throw new ArgumentException("an http source needs an HTTP client from the host"), s.Options),
        RewardModelSpec s => new RewardModelSource(name, (env.RewardModels ?? throw new ArgumentException("reward-model sources are not available in this command (no model loader)"))(s.Model), s.MaxBatch),
        ClassifierSpec s => new ClassifierRewardSource(name, env.ModelPaths is { } resolve ? s with { Model = resolve(s.Model) } : s),
        HumanSpec s => new HumanRatingSource(name, env.HumanRatings ?? throw new ArgumentException("human sources need the feedback service (not available in this command)"), s.Options),
        _ => throw new ArgumentException($"unknown source kind {spec.GetType().Name}"),
    };
}
