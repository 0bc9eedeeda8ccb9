using Rlft.Actors.Configuration;
using Rlft.Policy.Checkpoints;
using Rlft.Policy.Encoders;
using Rlft.Reward.Sources;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Jobs;

/// <summary>The checks of encoder stages and of classifier sources that read an encoder stage's model.</summary>
public static partial class JobValidator
{
    /// <summary>
    /// An encoder stage's starting checkpoint (config, body tensors, tokenizer) and its data: classification or SQuAD
    /// lines for classify and qa stages, plain-text preference pairs for an encoder reward model, every label of the
    /// data among <c>classify.labels</c> when they are given.
    /// </summary>
    static IEnumerable<string> CheckEncoderStage(StageSpec stage)
    {
        string at = $"{Root}.stages[{stage.Index}]";
        var encoder = stage.Encoder!;
        var problems = new List<string>();
        if (encoder.Path is { } path)
        {
            var found = ModelDirectory.CheckEncoder(path, out var config, exactHead: false);
            problems.AddRange(found.Select(p => $"{at}.encoder.path: {p}"));
            if (config is not null && encoder.Lora is { } lora && found.Count == 0)
                problems.AddRange(CheckEncoderLoraTargets(lora.TargetModules, config, $"{at}.lora.target-modules"));
        }
        else if (encoder.Lora is { } lora)
            problems.AddRange(CheckEncoderLoraTargets(lora.TargetModules, EncoderPresets.Config(encoder.Arch, encoder.Preset, 64), $"{at}.lora.target-modules"));
        foreach (var (data, key) in new[] { (stage.Data, "data"), (stage.EvalData, "eval-data") })
            if (data is not null) problems.AddRange(CheckEncoderData(stage, data, $"{at}.{key}"));
        return problems;
    }

    static IEnumerable<string> CheckEncoderData(StageSpec stage, string data, string key)
    {
        if (data.StartsWith("builtin:", StringComparison.Ordinal))
        {
            string name = data["builtin:".Length..];
            string[] fits = stage.Kind switch
            {
                StageKind.Classify => EncoderDatasets.ClassificationBuiltins,
                StageKind.Qa => EncoderDatasets.QaBuiltins,
                _ => ["preferences"],
            };
            if (fits.Contains(name))
            {
                if (stage.Kind == StageKind.Classify && stage.Encoder!.Problem == ProblemType.Regression)
                    return [$"{key}: builtin:{name} has NEGATIVE/POSITIVE labels, and classify.problem-type is regression"];
                if (stage.Kind == StageKind.Classify && stage.Encoder!.Labels is { } names && SentimentData.Labels.FirstOrDefault(l => !names.Contains(l)) is { } missing)
                    return [$"{key}: builtin:{name} has the label {missing}, which classify.labels does not name"];
                return [];
            }
            return [$"{key}: builtin:{name} is not data for a {stage.Name} stage (built-in data for it: {string.Join(", ", fits.Select(f => "builtin:" + f))})"];
        }
        List<string> errors;
        switch (stage.Kind)
        {
            case StageKind.Classify:
                var scan = EncoderDatasets.ScanLabelled(data);
                errors = scan.Errors;
                errors.AddRange(LabelProblems(stage.Encoder!, scan.Records));
                break;
            case StageKind.Qa:
                errors = EncoderDatasets.ScanQa(data).Errors;
                break;
            default:
                var (found, chat) = DatasetFormats.Scan(data, DataKind.Preferences, limit: 10);
                errors = [.. found];
                if (errors.Count == 0 && chat) errors.Add($"{data}: holds conversations; an encoder reward model reads plain-text prompt, chosen and rejected");
                break;
        }
        return errors.Take(10).Select(e => $"{key}: {e}").Concat(errors.Count > 10 ? [$"{key}: {data}: ... and {errors.Count - 10} more problems"] : []);
    }

    /// <summary>Labels that do not fit the head: outside classify.labels, a non-number for regression, several for single-label.</summary>
    static IEnumerable<string> LabelProblems(EncoderStageSpec encoder, IEnumerable<LabelledRecord> records)
    {
        foreach (var r in records)
        {
            var labels = r.Item.Label.Split(',');
            if (encoder.Problem == ProblemType.Regression)
            {
                if (!double.TryParse(r.Item.Label, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _))
                    yield return $"{r.Where}: label: '{r.Item.Label}' is not a number (classify.problem-type is regression)";
            }
            else if (encoder.Problem == ProblemType.SingleLabel && labels.Length > 1)
                yield return $"{r.Where}: label: a list of labels needs classify.problem-type = multi-label";
            else if (encoder.Labels is { } names && labels.FirstOrDefault(l => !names.Contains(l)) is { } stray)
                yield return $"{r.Where}: label: '{stray}' is not one of classify.labels ({string.Join(", ", names)})";
        }
    }

    static IEnumerable<string> CheckEncoderLoraTargets(IReadOnlyList<string> targets, EncoderConfig config, string key)
    {
        using var model = EncoderCheckpoint.CreateMeta(config);
        var dense = model.DenseLayers().Where(d => !model.IsHeadParameter(d.Name + ".weight")).Select(d => d.Name.Split('.')[^1]).ToHashSet();
        if (!targets.Any(dense.Contains))
            yield return $"{key}: none of [{string.Join(", ", targets)}] is a projection of this {config.ModelType} encoder (its projections: {string.Join(", ", dense.Order())})";
    }

    /// <summary>
    /// A classifier source's model: a directory checked as it is, or <c>stage:NAME</c>, an earlier classify or encoder
    /// reward-model stage of this job (its model does not exist yet; its labels are checked where the stage names them).
    /// </summary>
    static IEnumerable<string> CheckClassifierSource(JobSpec job, StageSpec stage, ClassifierSpec classifier)
    {
        StageSpec? source;
        try { source = EncoderStageSpec.Referenced(job, classifier.Model); }
        catch (ConfigException e) { return [$"model: {e.Message}"]; }
        if (source is null) return classifier.Check();
        if (source.Index >= stage.Index) return [$"model: '{classifier.Model}' is stage {source.Index}, which runs after stage {stage.Index}; the classifier must be trained first"];
        bool regression = source.Kind == StageKind.RewardModel || source.Encoder!.Problem == ProblemType.Regression;
        if (regression)
            return classifier.Score == ClassifierScore.Logit ? [] : [$"score: stage {source.Name} trains a one-output head; only score = logit applies"];
        var labels = source.Encoder!.Labels ?? (source.Data.StartsWith("builtin:", StringComparison.Ordinal) ? SentimentData.Labels : null);
        if (labels is not null && !labels.Contains(classifier.Label) && !(int.TryParse(classifier.Label, out int i) && i >= 0 && i < labels.Count))
            return [$"label: '{classifier.Label}' is not a label of stage {source.Name} (labels: {string.Join(", ", labels)})"];
        return [];
    }
}
