using Rlft.Actors.Configuration;
using Rlft.Policy.Training;
using Rlft.Rollout.Tasks;

namespace Rlft.Actors.Jobs;

/// <summary>
/// Reads a stage's keys for training over many tasks: <c>replay</c>, <c>l2-sp</c>, <c>ewc</c>,
/// <c>early-stopping { patience, min-delta }</c>, <c>eval-every</c>, and the <c>meta { … }</c> and <c>adapt { … }</c>
/// sections of those stage kinds. Each reader throws a <see cref="ConfigException"/> whose message starts with the key
/// inside the stage (the stage reader prefixes the stage's path).
/// </summary>
internal static class StageTuningReader
{
    const string PolicyKinds = "sft, dpo, distill, ppo, grpo and online-dpo";

    static bool TrainsPolicyOnData(StageKind kind) =>
        kind is StageKind.Sft or StageKind.Dpo or StageKind.Distill or StageKind.Ppo or StageKind.Grpo or StageKind.OnlineDpo;

    static void Applies(RlftConfig s, string key, StageKind kind, string kindName)
    {
        if (s.Has(key) && !TrainsPolicyOnData(kind))
            throw new ConfigException($"{key}: applies to stages that train the policy on their own data ({PolicyKinds}), not to a {kindName} stage");
    }

    /// <summary><c>replay</c>: the share of each batch drawn from earlier stages, in [0, 1); default 0.</summary>
    public static double Replay(RlftConfig s, StageKind kind, string kindName)
    {
        Applies(s, "replay", kind, kindName);
        double r = s.GetDouble("replay", 0);
        if (!(r >= 0 && r < 1)) throw new ConfigException($"replay: {r} is outside [0, 1) (the share of each batch drawn from earlier stages' data)");
        return r;
    }

    /// <summary><c>l2-sp</c> or <c>ewc</c>: a penalty's weight, a finite number ≥ 0; default 0 (off).</summary>
    public static double PenaltyWeight(RlftConfig s, string key, StageKind kind, string kindName)
    {
        Applies(s, key, kind, kindName);
        return s.GetDouble(key, 0, min: 0, max: 1e12);
    }

    /// <summary><c>early-stopping { patience, min-delta }</c>: on sft, dpo, distill and reward-model stages (their held-out loss); null when absent.</summary>
    public static EarlyStoppingOptions? EarlyStopping(RlftConfig s, StageKind kind, string kindName)
    {
        if (!s.Has("early-stopping")) return null;
        if (kind is not (StageKind.Sft or StageKind.Dpo or StageKind.Distill or StageKind.RewardModel))
            throw new ConfigException($"early-stopping: stops on a held-out loss, which sft, dpo, distill and reward-model stages measure and a {kindName} stage does not"
                + (kind is StageKind.Ppo or StageKind.Grpo or StageKind.OnlineDpo ? " (optimizer.schedule = plateau follows its held-out reward)" : ""));
        var d = new EarlyStoppingOptions();
        s.Section("early-stopping");                                          // an object, not a value
        return new EarlyStoppingOptions
        {
            Patience = s.GetInt("early-stopping.patience", d.Patience, min: 1, max: 1_000_000),
            MinDelta = s.GetDouble("early-stopping.min-delta", d.MinDelta, min: 0, max: 1e12),
        };
    }

    /// <summary>
    /// <c>eval-every</c>: steps between held-out evaluations during the stage, in [1, steps]; default a tenth of the
    /// steps (at least 1) when early stopping or the plateau schedule needs evaluations, else 0 (before and after only).
    /// </summary>
    public static int EvalEvery(RlftConfig s, StageKind kind, string kindName, int steps)
    {
        bool needsEvaluations = s.Has("early-stopping") || (s.Has("optimizer.schedule") && s.GetString("optimizer.schedule") == "plateau");
        if (s.Has("eval-every") && kind is StageKind.Meta or StageKind.Adapt or StageKind.RewardModel && !s.Has("early-stopping"))
            throw new ConfigException($"eval-every: applies to stages that evaluate while they train ({PolicyKinds}, or with early-stopping), not to a {kindName} stage");
        if (!s.Has("eval-every")) return needsEvaluations ? Math.Max(1, steps / 10) : 0;
        return s.GetInt("eval-every", min: 1, max: Math.Max(1, steps));
    }

    /// <summary>A list of distinct family task names at <paramref name="key"/>, required and non-empty.</summary>
    static IReadOnlyList<string> Tasks(RlftConfig s, string key, string kindName)
    {
        string family = string.Join(", ", TaskFamily.Names);
        string a = kindName == "adapt" ? "an" : "a";
        if (!s.Has(key))
            throw new ConfigException($"{key}: {a} {kindName} stage needs a task family: name the tasks of the built-in family it uses ({family})");
        var tasks = s.GetStringList(key);
        if (tasks.Count == 0) throw new ConfigException($"{key}: {a} {kindName} stage needs at least one task ({family})");
        for (int i = 0; i < tasks.Count; i++)
        {
            if (!TaskFamily.TryGet(tasks[i], out _)) throw new ConfigException($"{key}[{i}]: unknown task '{tasks[i]}' (the built-in family's tasks: {family})");
            if (tasks.Take(i).Contains(tasks[i])) throw new ConfigException($"{key}[{i}]: '{tasks[i]}' is named twice");
        }
        return tasks;
    }

    /// <summary><c>meta { tasks, tasks-per-round, steps, outer-lr, inner }</c> of a meta stage.</summary>
    public static MetaSpec ReadMeta(RlftConfig s)
    {
        var tasks = Tasks(s, "meta.tasks", "meta");
        var d = new MetaSpec { Tasks = tasks };
        double outerLr = s.GetDouble("meta.outer-lr", d.OuterLr, min: 0, max: 1);
        if (outerLr == 0) throw new ConfigException("meta.outer-lr: 0 is outside (0, 1]: the outer step would not move the weights");
        return d with
        {
            TasksPerRound = s.GetInt("meta.tasks-per-round", d.TasksPerRound, min: 1, max: tasks.Count),
            InnerSteps = s.GetInt("meta.steps", d.InnerSteps, min: 1, max: 100_000),
            OuterLr = outerLr,
            Inner = s.GetEnum("meta.inner", ["sft", "dpo"], "sft") == "dpo" ? StageKind.Dpo : StageKind.Sft,
        };
    }

    /// <summary><c>adapt { tasks, shots }</c> of an adapt stage.</summary>
    public static AdaptSpec ReadAdapt(RlftConfig s)
    {
        var d = new AdaptSpec { Tasks = Tasks(s, "adapt.tasks", "adapt") };
        return d with { Shots = s.GetInt("adapt.shots", d.Shots, min: 1, max: 1_000_000) };
    }
}
