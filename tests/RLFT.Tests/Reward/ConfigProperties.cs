using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Actors.Configuration;

namespace Rlft.Tests.Reward;

/// <summary>Reward specs in HOCON: what is written is what is read, and each kind of mistake names its key path.</summary>
[Properties(Arbitrary = [typeof(SpecArbitraries)], MaxTest = 100)]
public class ConfigProperties
{
    static string? Error(string hocon)
    {
        try { RewardSpecReader.Read(RlftConfig.ParseText(hocon, "spec.conf")); return null; }
        catch (ConfigException e) { return e.Message; }
    }

    static string Edited(GeneratedSpec s, int index, Func<List<(string Key, string Value)>, List<(string Key, string Value)>> edit) =>
        SpecHocon.Render(s.Fields().Select((f, i) => i == index ? edit(f) : f), s.Spec.TotalClip);

    [Property]
    public Property A_spec_written_as_HOCON_reads_back_unchanged(GeneratedSpec s)
    {
        var read = RewardSpecReader.Read(RlftConfig.ParseText(s.Hocon(), "spec.conf"));
        return SpecHocon.SameSpec(read, s.Spec).Label($"read back as {string.Join("; ", read.Components)}");
    }

    [Property]
    public Property A_negative_weight_is_refused_naming_its_key_path(GeneratedSpec s, NonNegativeInt pick, PositiveInt minus)
    {
        int j = pick.Get % s.Spec.Components.Count;
        string? error = Error(Edited(s, j, f => [.. f.Where(x => x.Key != "weight"), ("weight", $"-{minus.Get}")]));
        return (error is not null && error.StartsWith($"rewards.components[{j}].weight: -{minus.Get} is outside [0,", StringComparison.Ordinal)).Label(error ?? "accepted");
    }

    [Property]
    public Property An_unknown_key_is_refused_naming_its_key_path(GeneratedSpec s, NonNegativeInt pick)
    {
        int j = pick.Get % s.Spec.Components.Count;
        string? error = Error(Edited(s, j, f => [.. f, ("wieght", "1")]));
        return (error is not null && error.StartsWith($"rewards.components[{j}].wieght: unknown key", StringComparison.Ordinal)).Label(error ?? "accepted");
    }

    [Property]
    public Property A_missing_source_is_refused_naming_its_key_path(GeneratedSpec s, NonNegativeInt pick)
    {
        int j = pick.Get % s.Spec.Components.Count;
        string? error = Error(Edited(s, j, f => [.. f.Where(x => x.Key != "source")]));
        return (error is not null && error.StartsWith($"rewards.components[{j}].source: missing required key", StringComparison.Ordinal)).Label(error ?? "accepted");
    }
}
