using Rlft.Actors.Protocol;
using Rlft.Rollout.Data;

namespace Rlft.Actors.Jobs;

/// <summary>
/// The prompts of an online stage and how they are cut into rollout batches: the coordinator and the
/// plain loop draw batches the same way, so both do the same work.
/// </summary>
internal sealed class OnlineStageData
{
    readonly IReadOnlyList<PromptItem> _prompts;
    readonly StageSpec _stage;
    int _cursor;

    public PromptItem[] EvalPrompts { get; }
    public SamplingSettings Sampling { get; }

    OnlineStageData(StageSpec stage, IReadOnlyList<PromptItem> prompts, PromptItem[] evalPrompts, string? chatTemplate)
    {
        (_stage, _prompts, EvalPrompts) = (stage, prompts, evalPrompts);
        var s = stage.Sampling;
        Sampling = new SamplingSettings(s.MaxNewTokens, s.Temperature, s.TopK, s.TopP, chatTemplate);
    }

    /// <summary>
    /// Reads the stage's prompts, plain or conversational (and held-out prompts, or the first of the prompts when none
    /// are given), and the stage's chat template override, which travels with every batch to the rollout workers.
    /// </summary>
    public static OnlineStageData Load(JobSpec job, StageSpec stage)
    {
        string key = $"rlft.job.stages[{stage.Index}]";
        var prompts = DatasetFormats.ReadPrompts(DataResolver.Resolve(stage.Data, job.RunDirectory, job.Seed, key + ".data"));
        var eval = stage.EvalData is { } e ? DatasetFormats.ReadPrompts(DataResolver.Resolve(e, job.RunDirectory, job.Seed, key + ".eval-data")) : prompts;
        string? template = job.ChatTemplateFor(stage) is { } t ? Rlft.Policy.Chat.BuiltinChatTemplates.Read(t).Source : null;
        return new OnlineStageData(stage, prompts.Select(Item).ToList(), eval.Take(job.EvalPrompts).Select(Item).ToArray(), template);
    }

    static PromptItem Item(PromptRecord record) => record switch
    {
        ChatPromptRecord chat => new PromptItem("", chat.Answer, 0, [.. chat.Prompt]),
        TextPromptRecord text => new PromptItem(text.Prompt, text.Answer, 0),
        _ => throw new InvalidOperationException($"{record.Where}: unknown prompt record {record.GetType().Name}"),
    };

    /// <summary>Prompts drawn so far (a checkpoint records it; <see cref="Seek"/> restores it).</summary>
    public int Cursor => _cursor;

    public void Seek(int cursor) => _cursor = cursor >= 0 ? cursor : throw new ArgumentOutOfRangeException(nameof(cursor), "a data cursor is never negative");

    /// <summary>The next batch: batch-size / samples-per-prompt prompts, each repeated as one group.</summary>
    public PromptItem[] NextBatch()
    {
        int group = _stage.SamplesPerPrompt;
        int perBatch = Math.Max(1, _stage.BatchSize / group);
        var items = new List<PromptItem>(perBatch * group);
        for (int i = 0; i < perBatch; i++)
        {
            var p = _prompts[_cursor++ % _prompts.Count];
            for (int g = 0; g < group; g++) items.Add(p with { Group = i });
        }
        return items.ToArray();
    }

    /// <summary>The sampling seed of a batch: fixed by the job seed and the batch id, wherever it runs.</summary>
    public static long SeedFor(JobSpec job, long batchId) => job.Seed * 1_000_003L + batchId;
}
