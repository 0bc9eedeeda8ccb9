using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;

namespace Rlft.Hosting;

/// <summary>What a running job reports, in order: for each stage <see cref="StageStarted"/>, its <see cref="StepCompleted"/>s and <see cref="StageEnded"/>; last <see cref="JobEnded"/>.</summary>
public abstract record JobEvent
{
    public DateTimeOffset Time { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>Stage <paramref name="Stage"/> (0-based) began; it runs <paramref name="Steps"/> steps.</summary>
public sealed record StageStarted(int Stage, string Name, string Kind, int Steps) : JobEvent;

/// <summary>
/// A training step of stage <paramref name="Stage"/> ended: its metrics, slash-named as in metrics.jsonl
/// (<c>reward/mean</c>, <c>objective/kl</c>, <c>loss/dpo</c>, <c>timing/*</c>, …).
/// </summary>
public sealed record StepCompleted(int Stage, string Kind, int Step, int Steps, long PolicyVersion, IReadOnlyDictionary<string, double> Metrics) : JobEvent;

/// <summary>Stage <paramref name="Stage"/> ended (the job went on to the next, or finished).</summary>
public sealed record StageEnded(int Stage, string Name) : JobEvent;

public enum JobOutcome { Succeeded, Failed, Cancelled }

/// <summary>
/// The job ended. <paramref name="Summary"/> holds the final figures (summary.json); a cancelled job names the checkpoint
/// it wrote in <paramref name="ResumeFrom"/> (null when the learner could not finish its step in time), which
/// <see cref="RlftJob.Resume"/> continues.
/// </summary>
public sealed record JobEnded(JobOutcome Outcome, string Message, IReadOnlyDictionary<string, double> Summary, string RunDirectory, string? ResumeFrom) : JobEvent
{
    public bool Succeeded => Outcome == JobOutcome.Succeeded;
}

/// <summary>
/// Turns the coordinator's step statuses into stage and step events. Statuses carry the stage index and step; a stage
/// has started when its first status arrives and ended when a later stage's does, or the job ends. Thread-safe: the
/// statuses arrive on an actor's thread, the end on the runner's.
/// </summary>
sealed class JobEventTranslator(JobSpec job)
{
    readonly object _gate = new();
    int _stage = -1, _step = -1;

    public IReadOnlyList<JobEvent> OnStatus(JobStatus s)
    {
        lock (_gate)
        {
            var events = new List<JobEvent>();
            if (s.Stage > _stage && s.Stage < job.Stages.Count)
            {
                // A stage that sent no status of its own in between still starts and ends in order.
                for (int k = _stage < 0 ? s.Stage : _stage + 1; k <= s.Stage; k++)
                {
                    if (_stage >= 0) events.Add(new StageEnded(_stage, job.Stages[_stage].Name));
                    events.Add(new StageStarted(k, job.Stages[k].Name, job.Stages[k].Kind.ToString(), job.Stages[k].Steps));
                    _stage = k;
                }
                _step = -1;
            }
            // Held-out evaluations arrive as statuses of the step they follow: one event per step.
            if (s.Stage == _stage && s.Step > 0 && s.Step != _step)
            {
                _step = s.Step;
                events.Add(new StepCompleted(s.Stage, s.StageKind, s.Step, s.TotalSteps, s.PolicyVersion, new Dictionary<string, double>(s.LastMetrics)));
            }
            return events;
        }
    }

    public IReadOnlyList<JobEvent> OnEnd(JobEnded end)
    {
        lock (_gate)
        {
            var events = new List<JobEvent>();
            if (_stage >= 0) events.Add(new StageEnded(_stage, job.Stages[_stage].Name));
            _stage = int.MaxValue;
            events.Add(end);
            return events;
        }
    }
}
