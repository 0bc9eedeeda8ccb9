using Rlft.Actors.Configuration;
using System.Diagnostics;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;

namespace Rlft.Actors.Jobs;

/// <summary>
/// The same job as the actor runtime, as one plain loop in the calling thread (no actors, no messages):
/// generate → score → train, stage after stage, with the same engines and the same run directory.
/// It is the in-process example of the pipeline and the baseline the actor runtime is benchmarked against.
/// </summary>
internal static class PlainLoop
{
    public sealed record Result(Dictionary<string, double> Summary, double OnlineSeconds, long OnlineSamples);

    public static Result Run(JobSpec job, IEngineFactory engines, Action<string, int, int, IReadOnlyDictionary<string, double>>? onStep = null)
    {
        if (job.UsesHumanRatings)
            throw new ConfigException("--plain-loop: this job's rewards ask human raters, who are reached through the feedback actor; run it without --plain-loop");
        using var recorder = new RunRecorder(job.RunDirectory);
        using var learner = engines.CreateLearner(job);
        using var rollout = engines.CreateRollout(job, 0);
        using var reward = engines.CreateReward(job, 0, null);
        var summary = new Dictionary<string, double>();
        int globalStep = 0;
        double onlineSeconds = 0;
        long onlineSamples = 0, batchId = 0;

        void Record(StageSpec s, int step, IReadOnlyDictionary<string, double> m)
        {
            recorder.Record(++globalStep, s.Name, m);
            onStep?.Invoke(s.Name, step, s.Steps, m);
        }

        foreach (var stage in job.Stages)
        {
            if (!stage.IsOnline)
            {
                int start = globalStep;
                var done = learner.RunOfflineStage(stage, p => Record(stage, p.Step, p.Metrics), CancellationToken.None);
                foreach (var (k, v) in done.Metrics) summary[$"{stage.Name}/{k}"] = v;
                recorder.RecordEvaluation(start, stage.Name, "before", done.Figures("before"));
                recorder.RecordEvaluation(globalStep, stage.Name, "after", done.Figures("after"));
                if (stage.Kind == StageKind.RewardModel && reward.NeedsRewardModel)
                    reward.ApplyRewardModel(done.RewardModelVersion, learner.ExportWeights(WeightKind.RewardModel));
                continue;
            }
            var data = OnlineStageData.Load(job, stage);
            learner.BeginOnlineStage(stage);
            var before = learner.Evaluate(stage, "before", data.EvalPrompts);
            recorder.RecordEvaluation(globalStep, stage.Name, "before", before.Metrics);
            foreach (var (k, v) in before.Metrics) summary[$"{stage.Name}/before/{k}"] = v;
            var sw = Stopwatch.StartNew();
            for (int step = 1; step <= stage.Steps; step++)
            {
                if (rollout.PolicyVersion != learner.PolicyVersion)
                {
                    // With LoRA the export holds adapters only: the replica first needs the base they apply on.
                    if (learner.ExportsAdapterOnly && rollout.BaseVersion != learner.AdapterBaseVersion)
                        rollout.ApplyWeights(learner.AdapterBaseVersion, learner.ExportAdapterBase());
                    rollout.ApplyWeights(learner.PolicyVersion, learner.ExportWeights(WeightKind.Policy));
                }
                long id = ++batchId;
                var gen = Stopwatch.StartNew();
                var samples = rollout.Generate(data.NextBatch(), data.Sampling, OnlineStageData.SeedFor(job, id));
                var batch = new RolloutBatch(id, stage.Index, rollout.PolicyVersion, "plain", samples, gen.Elapsed.TotalSeconds);
                var scored = reward.ScoreAsync(batch, CancellationToken.None).GetAwaiter().GetResult();
                var updated = learner.Train(stage, new TrainOn(id, stage.Index, batch, scored));
                onlineSamples += samples.Length;
                Record(stage, step, updated.Metrics);
            }
            onlineSeconds += sw.Elapsed.TotalSeconds;
            var after = learner.Evaluate(stage, "after", data.EvalPrompts);
            recorder.RecordEvaluation(globalStep, stage.Name, "after", after.Metrics);
            foreach (var (k, v) in after.Metrics) summary[$"{stage.Name}/after/{k}"] = v;
            recorder.Samples($"{stage.Name}/after", after.Prompts, after.Completions);
        }
        var written = summary.ToDictionary(kv => kv.Key, kv => (object)kv.Value);
        written["job"] = job.Name;
        recorder.Finish(written);
        return new Result(summary, onlineSeconds, onlineSamples);
    }
}
