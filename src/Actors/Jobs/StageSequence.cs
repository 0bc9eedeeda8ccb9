using Rlft.Actors.Configuration;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Jobs;

/// <summary>
/// What a stage's keys need from the stages before it: <c>replay</c> needs an earlier stage with data of the same
/// kind to replay, <c>ewc</c> an earlier stage that trained the policy (its data gives the Fisher information, its end
/// weights the anchor; it is recorded as <see cref="StageSpec.EwcStage"/>).
/// </summary>
internal static class StageSequence
{
    /// <summary>The kind of data a stage trains on; null for stages whose data are a task family's.</summary>
    public static DataKind? DataOf(StageKind kind) => kind switch
    {
        StageKind.Sft or StageKind.Distill => DataKind.Sft,
        StageKind.Dpo or StageKind.RewardModel => DataKind.Preferences,
        StageKind.Ppo or StageKind.Grpo or StageKind.OnlineDpo => DataKind.Prompts,
        _ => null,
    };

    static string Name(DataKind kind) => kind switch { DataKind.Sft => "sft", DataKind.Preferences => "preference", _ => "prompt" };

    /// <summary>The stages with <see cref="StageSpec.EwcStage"/> filled in; every problem is added to <paramref name="errors"/>.</summary>
    public static List<StageSpec> Check(IReadOnlyList<StageSpec> stages, ConfigErrors errors)
    {
        var result = new List<StageSpec>(stages.Count);
        foreach (var stage in stages)
        {
            string at = $"{JobSpecReader.Root}.stages[{stage.Index}]";
            var earlier = stages.Where(s => s.Index < stage.Index).ToList();
            if (stage.Replay > 0 && DataOf(stage.Kind) is { } kind && !earlier.Any(s => DataOf(s.Kind) == kind))
                errors.Add($"{at}.replay: no earlier stage has {Name(kind)} data to replay into this {stage.Name} stage (replay mixes earlier stages' examples into this one's batches)");
            int? ewcStage = null;
            if (stage.Ewc > 0)
            {
                ewcStage = earlier.LastOrDefault(s => s.TrainsPolicyOnData)?.Index;
                if (ewcStage is null)
                    errors.Add($"{at}.ewc: needs an earlier stage that trained the policy (EWC estimates the Fisher information on that stage's data, at the weights it ended with), and stage {stage.Index} has none before it");
                else if (stages[ewcStage.Value].Kind != StageKind.Sft)
                    errors.Add($"{at}.ewc: the previous policy stage ({ewcStage}, {stages[ewcStage.Value].Kind}) is not an SFT stage; EWC estimates its Fisher information on an SFT stage's examples yet");
            }
            result.Add(stage with { EwcStage = ewcStage });
        }
        return result;
    }
}
