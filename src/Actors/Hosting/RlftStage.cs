using System.Globalization;
using System.Text;

namespace Rlft.Hosting;

/// <summary>
/// One stage of a code-built job: the same keys as a stage in a job file's <c>stages = [ … ]</c> (README, "Job keys"),
/// set through a few typed helpers or <see cref="Set"/> for any other key. Nothing is checked here: the job's
/// <see cref="RlftJobBuilder.Build"/> reads the stage with the job file reader, so errors name the same key paths.
/// </summary>
public sealed class RlftStage
{
    readonly List<KeyValuePair<string, object>> _keys = [];
    readonly List<string> _rewardComponents = [];

    internal string Kind { get; }
    internal RlftData Data { get; }
    internal RlftData? EvalDataSet { get; private set; }

    RlftStage(string kind, RlftData data, int steps, int batchSize)
    {
        Kind = kind;
        Data = data;
        _keys.Add(new("steps", steps));
        _keys.Add(new("batch-size", batchSize));
    }

    /// <summary>A stage of any kind (sft, reward-model, ppo, dpo, grpo, distill, online-dpo, …) on <paramref name="data"/>.</summary>
    public static RlftStage Of(string kind, RlftData data, int steps, int batchSize) => new(kind, data, steps, batchSize);

    public static RlftStage Sft(RlftData examples, int steps, int batchSize) => new("sft", examples, steps, batchSize);
    public static RlftStage RewardModel(RlftData preferences, int steps, int batchSize) => new("reward-model", preferences, steps, batchSize);
    public static RlftStage Dpo(RlftData preferences, int steps, int batchSize) => new("dpo", preferences, steps, batchSize);
    public static RlftStage Ppo(RlftData prompts, int steps, int batchSize) => new("ppo", prompts, steps, batchSize);
    public static RlftStage Grpo(RlftData prompts, int steps, int batchSize) => new("grpo", prompts, steps, batchSize);

    /// <summary>Any stage key, as a HOCON path below the stage: <c>Set("ppo.kl-coef", 0.05)</c>, <c>Set("dpo.loss", "ipo")</c>.</summary>
    public RlftStage Set(string key, object value)
    {
        HoconValues.CheckKey(key);
        _keys.Add(new(key, value));
        return this;
    }

    public RlftStage Named(string name) => Set("name", name);
    /// <summary><c>optimizer.lr</c>.</summary>
    public RlftStage LearningRate(double lr) => Set("optimizer.lr", lr);
    /// <summary><c>sampling.max-new-tokens</c> (online stages).</summary>
    public RlftStage MaxNewTokens(int tokens) => Set("sampling.max-new-tokens", tokens);

    /// <summary><c>eval-data</c>: the held-out set evaluated before and after the stage.</summary>
    public RlftStage EvalData(RlftData data)
    {
        EvalDataSet = data;
        return this;
    }

    /// <summary>
    /// A reward component scored by a function the program registered with
    /// <see cref="RlftJobBuilder.RewardFunction(string, Func{Rlft.Reward.RewardSample, double})"/> (or a built-in one):
    /// <c>{ name, source = function, function, weight }</c> in the stage's <c>rewards.components</c>.
    /// </summary>
    public RlftStage Reward(string function, double weight = 1.0, string? name = null) =>
        RewardComponent($"{{ name = {HoconValues.Render(name ?? function)}, source = function, function = {HoconValues.Render(function)}, weight = {weight.ToString("R", CultureInfo.InvariantCulture)} }}");

    /// <summary>Any reward component, as its HOCON object (hocon/rewards/example.conf shows every source).</summary>
    public RlftStage RewardComponent(string hoconObject)
    {
        _rewardComponents.Add(hoconObject);
        return this;
    }

    /// <summary>The stage as a HOCON object, its datasets named by <paramref name="data"/> (the value each data key takes).</summary>
    internal void AppendTo(StringBuilder text, Func<RlftData, string, string> data, int index)
    {
        text.Append("    {\n");
        var keys = new List<KeyValuePair<string, object>> { new("kind", Kind), new("data", data(Data, $"stage-{index}-data")) };
        if (EvalDataSet is not null) keys.Add(new("eval-data", data(EvalDataSet, $"stage-{index}-eval-data")));
        HoconValues.AppendKeys(text, keys.Concat(_keys), "      ");
        if (_rewardComponents.Count > 0)
            text.Append("      rewards.components = [\n").AppendJoin("\n", _rewardComponents.Select(c => "        " + c)).Append("\n      ]\n");
        text.Append("    }\n");
    }

    internal IEnumerable<(RlftData Data, string Label)> Datasets(int index) =>
        EvalDataSet is null ? [(Data, $"stage-{index}-data")] : [(Data, $"stage-{index}-data"), (EvalDataSet, $"stage-{index}-eval-data")];
}
