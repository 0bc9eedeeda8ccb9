using Akka.Actor;
using Akka.Event;
using Rlft.Actors.Coordination;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Telemetry;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Walks the job's stages. Offline stages run inside the learner; online stages (PPO, GRPO) are driven
/// by work pulling: idle rollout workers ask for a batch, the coordinator tracks it in a
/// <see cref="WorkLedger{T}"/> (re-issued if the worker dies or times out), sends finished batches to
/// a reward actor, and feeds scored batches to the learner one at a time. At most
/// <c>max-policy-lag + 1</c> batches are ahead of the learner, so generation of batch k+1 overlaps
/// training on batch k; a batch older than the lag when it reaches the learner is dropped and
/// generated again with the current policy.
/// Checkpoints carry the coordinator's state (<see cref="ResumeState"/>): a coordinator given one continues
/// the job from there (<c>rlft run --resume</c>).
/// </summary>
internal sealed partial class CoordinatorActor : ReceiveActor, IWithTimers
{
    readonly JobSpec _job;
    readonly IActorRef _learner;
    readonly IActorRef _weightServer;
    readonly RunRecorder _recorder;
    readonly IActorRef _jobWatcher;
    readonly ILoggingAdapter _log = Context.GetLogger();
    readonly TimeSpan _workTimeout;

    readonly Dictionary<IActorRef, string> _rolloutWorkers = new();
    readonly Queue<IActorRef> _idle = new();
    readonly List<IActorRef> _rewardActors = new();
    // Which reward actor scores each batch (Nobody while none is registered).
    readonly Dictionary<long, IActorRef> _scorerOf = new();
    // The job's totals, and the online stage being run (null in offline stages), whose decisions are carried out here as messages.
    readonly JobTotals _totals = new();
    OnlineStageDriver? _online => _totals.Online;

    int _stageIndex = -1;
    StageSpec? _stage;
    int _step, _globalStep;
    long _policyVersion, _rewardModelVersion, _nextBatchId = 1;
    bool _finished;
    Dictionary<string, double> _lastMetrics = new();
    Dictionary<string, double> _summary => _totals.Summary;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(JobSpec job, Func<IUntypedActorContext, CancellationToken, (IActorRef Learner, IActorRef WeightServer)> learnerFactory, RunRecorder recorder, IActorRef jobWatcher, TimeSpan? workTimeout = null, ResumeState? resume = null) =>
        Akka.Actor.Props.Create(() => new CoordinatorActor(job, learnerFactory, recorder, jobWatcher, workTimeout ?? TimeSpan.FromMinutes(2), resume));

    // Cancels the learner's running offline stage from outside its (blocked) thread on interrupt.
    readonly CancellationTokenSource _interrupt = new();

    readonly ResumeState? _resume;
    bool _resumingMidStage;
    // Ctrl-C while the learner trains: the checkpoint is written once the step is done, then answered to this asker.
    IActorRef? _interruptAsker;

    public CoordinatorActor(JobSpec job, Func<IUntypedActorContext, CancellationToken, (IActorRef, IActorRef)> learnerFactory, RunRecorder recorder, IActorRef jobWatcher, TimeSpan workTimeout, ResumeState? resume)
    {
        (_job, _recorder, _jobWatcher, _workTimeout, _resume) = (job, recorder, jobWatcher, workTimeout, resume);
        (_learner, _weightServer) = learnerFactory(Context, _interrupt.Token);
        Context.Watch(_learner);

        Receive<StartNextStage>(_ => StartStage(_stageIndex + 1));
        Receive<RequestWork>(OnRequestWork);
        Receive<RegisterWorker>(OnRegister);
        Receive<QueryWeights>(q => _weightServer.Forward(q));
        Receive<RolloutBatch>(OnRolloutBatch);
        Receive<RolloutFailed>(OnRolloutFailed);
        Receive<ScoredBatch>(OnScored);
        Receive<ScoreFailed>(OnScoreFailed);
        Receive<StageProgress>(p => Record(p.Metrics, p.Step, p.TotalSteps));
        Receive<StageCompleted>(OnOfflineStageCompleted);
        Receive<OnlineReady>(r =>
        {
            _policyVersion = r.PolicyVersion;
            if (!_resumingMidStage) { Evaluate("before"); return; }
            _resumingMidStage = false;
            if (_online!.Done) { Evaluate("after"); return; }
            _online.Start();
            Dispatch();
        });
        Receive<EvaluationDone>(OnEvaluated);
        Receive<PolicyUpdated>(OnPolicyUpdated);
        Receive<LearnerFailed>(f =>
        {
            if (_interrupt.IsCancellationRequested) return;   // the interrupted stage; the checkpoint follows
            if (_finished) Complete(false, $"the final checkpoint failed: {f.Reason}");
            else Finish(false, f.Stage < 0 ? $"the learner failed: {f.Reason}" : $"learner failed in stage {f.Stage}: {f.Reason}");
        });
        Receive<Tick>(_ =>
        {
            if (_online?.Expire(DateTime.UtcNow) == true) Dispatch();
            FederatedTick(DateTime.UtcNow);
        });
        ReceiveFederated();
        Receive<QueryJobStatus>(_ => Sender.Tell(Status()));
        Receive<Terminated>(OnTerminated);
        Receive<CheckpointSaved>(c =>
        {
            if (_finished) Complete(true, $"job completed; checkpoint in {c.Directory}");
            else _log.Info("checkpoint in {0}", c.Directory);   // a periodic one (checkpoint-every)
        });
        Receive<InterruptJob>(i =>
        {
            // Stop handing out work; the learner writes the checkpoint once its current step is done and
            // answers the asker directly. Mid online stage the checkpoint is a resume point; in an offline
            // stage (cancelled part-way) or an evaluation it is not, and --resume takes an earlier one.
            _log.Warning("job interrupted: {0}", i.Reason);
            bool resumable = _online?.Running == true;
            _online?.Stop();
            _finished = true;
            if (resumable && _online!.LearnerBusy) { _interruptAsker = Sender; return; }
            _interrupt.Cancel();
            _learner.Tell(new SaveCheckpoint(InterruptedDirectory, resumable ? State(started: true) : null), Sender);
        });
    }

    // Why a child (the learner, the weight server) crashed; it is stopped, not restarted (its state is the job's).
    string? _childFailure;

    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(e =>
    {
        _childFailure = e.Message;
        return Directive.Stop;
    });

    /// <summary>
    /// Nothing the coordinator does may end in a silent restart (its state is the job's): an exception in any
    /// handler ends the job as failed, with the exception's message.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        try { return base.AroundReceive(receive, message); }
        catch (Exception e)
        {
            Failures.Log(_log, e, $"the job coordinator failed on {message.GetType().Name}");
            if (!_finished) Finish(false, $"the job coordinator failed: {e.Message}");
            else if (!_completed) Complete(false, $"the job coordinator failed: {e.Message}");
            return true;
        }
    }

    protected override void PostStop()
    {
        // Stopped before the job ended (the node left the cluster, or shut down): whoever waits for the job hears why.
        if (!_completed) _jobWatcher.Tell(new JobFinished(false, JobFinished.NodeLeft, new Dictionary<string, double>()));
    }

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.FromSeconds(1));
        if (_resume is null) Self.Tell(StartNextStage.Instance);
        else ResumeFrom(_resume);
    }

    // ---- checkpoints and resume -----------------------------------------------------------------

    string CheckpointDirectory => Path.Combine(_recorder.Directory, "checkpoints", $"step-{_globalStep}");
    string InterruptedDirectory => Path.Combine(_recorder.Directory, "checkpoints", $"interrupted-step-{_globalStep}");

    /// <summary>The coordinator's half of a checkpoint written now (the learner is between steps).</summary>
    string State(bool started, bool completed = false, int? nextStage = null) => new ResumeState
    {
        Stage = nextStage ?? (completed ? _job.Stages.Count : _stageIndex),
        Started = started,
        Step = started ? _step : 0,
        GlobalStep = _globalStep,
        NextBatchId = _nextBatchId,
        Issued = started ? _online?.Issued ?? 0 : 0,
        DataCursor = started ? _online?.DataCursor ?? 0 : 0,
        PolicyVersion = _policyVersion,
        RewardModelVersion = _rewardModelVersion,
        Trained = _totals.Trained,
        StaleDropped = _totals.StaleDropped,
        Reissued = _totals.Reissued,
        Duplicates = _totals.Duplicates,
        BatchesPerWorker = _totals.PerWorker(),
        Summary = new Dictionary<string, double>(_summary),
        Outstanding = started ? _online?.Outstanding.ToArray() ?? [] : [],
        MetricsBytes = _recorder.MetricsBytes,
        SamplesBytes = _recorder.SamplesBytes,
        Completed = completed,
    }.ToJson();

    /// <summary>A checkpoint between stages (with checkpoint-every &gt; 0): resuming starts the next stage afresh.</summary>
    void StageBoundaryCheckpoint()
    {
        int next = _stageIndex + 1;
        if (_job.CheckpointEvery > 0 && next < _job.Stages.Count)
            _learner.Tell(new SaveCheckpoint(CheckpointDirectory, State(started: false, nextStage: next)));
    }

    void ResumeFrom(ResumeState r)
    {
        if (r.Stage >= _job.Stages.Count) { Finish(false, $"the checkpoint is past the job's last stage ({r.Stage} of {_job.Stages.Count})"); return; }
        (_globalStep, _nextBatchId, _policyVersion, _rewardModelVersion) = (r.GlobalStep, r.NextBatchId, r.PolicyVersion, r.RewardModelVersion);
        _totals.Restore(r);
        _log.Info("resuming at stage {0}, step {1} (global step {2}, policy v{3})", r.Stage, r.Step, r.GlobalStep, r.PolicyVersion);
        StartStage(r.Stage, r.Started ? r : null);
    }

    // ---- stages ---------------------------------------------------------------------------------

    /// <summary>Starts a stage, or with <paramref name="midStage"/> continues an online one where a checkpoint left it.</summary>
    void StartStage(int index, ResumeState? midStage = null)
    {
        if (index >= _job.Stages.Count) { Finish(true, "job completed"); return; }
        _totals.Fold();
        _scorerOf.Clear();
        (_stageIndex, _stage, _step) = (index, _job.Stages[index], midStage?.Step ?? 0);
        _stageStartStep = _globalStep - _step;
        _log.Info(midStage is null ? "stage {0} ({1}) starts" : "stage {0} ({1}) continues", _stage.Name, _stage.Kind);
        if (_stage.Federated is not null)
        {
            if (midStage is null) StartFederated(index);
            else Finish(false, $"the checkpoint continues federated stage {index} mid-way; resume from a checkpoint between stages");
            return;
        }
        if (!_stage.IsOnline)
        {
            if (midStage is null) _learner.Tell(new RunOfflineStage(index));
            else Finish(false, $"the checkpoint continues stage {index} ({_stage.Kind}) mid-way, which only online stages can");
            return;
        }
        // Batches issued before a checkpoint and not trained on are generated again, with the same prompts and seeds.
        try { _totals.Begin(new OnlineStageDriver(_job, _stage, OnlineStageData.Load(_job, _stage), _workTimeout, midStage)); }
        catch (Exception ex) { Finish(false, ex.Message); return; }
        _resumingMidStage = midStage is not null;
        _learner.Tell(new BeginOnline(index, Resume: midStage is not null));
    }

    // The global step before the stage's first: where its "before" held-out figures are recorded.
    int _stageStartStep;

    void OnOfflineStageCompleted(StageCompleted done)
    {
        (_policyVersion, _rewardModelVersion) = (done.PolicyVersion, done.RewardModelVersion);
        var stage = _stage!;
        foreach (var (k, v) in done.Metrics) _summary[$"{stage.Name}/{k}"] = v;
        FederatedStageEnded();
        _recorder.RecordEvaluation(_stageStartStep, stage.Name, "before", done.Figures("before"));
        _recorder.RecordEvaluation(_globalStep, stage.Name, "after", done.Figures("after"));
        StageBoundaryCheckpoint();
        Self.Tell(StartNextStage.Instance);
    }

    void Evaluate(string label) => _learner.Tell(new EvaluateWith(_stageIndex, label, _online?.EvalPrompts ?? []));

    void OnEvaluated(EvaluationDone e)
    {
        _recorder.Samples($"{_stage?.Name}/{e.Label}", e.Prompts, e.Completions);
        _recorder.RecordEvaluation(_globalStep, _stage?.Name ?? "", e.Label, e.Metrics);
        foreach (var (k, v) in e.Metrics) _summary[$"{_stage?.Name}/{e.Label}/{k}"] = v;
        _log.Info("evaluation {0}/{1}: {2}", _stage?.Name, e.Label, string.Join(", ", e.Metrics.Select(kv => $"{kv.Key}={RunRecorder.Format(kv.Value)}")));
        if (e.Label == "before") { _online!.Start(); Dispatch(); }
        else
        {
            StageBoundaryCheckpoint();
            Self.Tell(StartNextStage.Instance);
        }
    }

    // ---- online loop --------------------------------------------------------------------------

    void OnRequestWork(RequestWork r)
    {
        if (!_rolloutWorkers.ContainsKey(Sender))
        {
            _rolloutWorkers[Sender] = r.WorkerId;
            Context.Watch(Sender);
            _log.Info("rollout worker {0} joined ({1})", r.WorkerId, Sender.Path);
        }
        if (_finished) { Sender.Tell(new NoMoreWork("job finished")); return; }
        if (!_idle.Contains(Sender)) _idle.Enqueue(Sender);
        Dispatch();
    }

    void OnRegister(RegisterWorker r)
    {
        if (r.Role != "reward" || _rewardActors.Contains(Sender)) return;
        _rewardActors.Add(Sender);
        Context.Watch(Sender);
        _log.Info("reward worker {0} joined ({1})", r.WorkerId, Sender.Path);
        foreach (var batch in (_online?.AwaitingScores ?? []).Where(b => _scorerOf.GetValueOrDefault(b.BatchId)?.IsNobody() != false).ToList()) SendToScorer(batch);
    }

    void Dispatch()
    {
        if (_online is not { Running: true } stage) return;
        while (_idle.Count > 0)
        {
            var worker = _idle.Peek();
            if (!_rolloutWorkers.TryGetValue(worker, out var id)) { _idle.Dequeue(); continue; }
            var work = stage.NextWork(id, _policyVersion, () => _nextBatchId++, DateTime.UtcNow);
            if (work is null) return;
            _idle.Dequeue();
            worker.Tell(work);
        }
    }

    void OnRolloutBatch(RolloutBatch batch)
    {
        if (_online?.Generated(batch) != true) return;   // duplicate or old stage
        SendToScorer(batch);
        Dispatch();
    }

    void SendToScorer(RolloutBatch batch)
    {
        if (_rewardActors.Count == 0) { _scorerOf[batch.BatchId] = ActorRefs.Nobody; return; }
        var scorer = _rewardActors[(int)(batch.BatchId % _rewardActors.Count)];
        _scorerOf[batch.BatchId] = scorer;
        scorer.Tell(new ScoreBatch(batch.BatchId, _rewardModelVersion, batch));
    }

    void OnRolloutFailed(RolloutFailed f)
    {
        if (_online?.GenerationFailed(f) is { } fail) { Finish(false, fail); return; }
        Dispatch();
    }

    void OnScoreFailed(ScoreFailed f) => AfterScoring(f.BatchId, _online?.ScoringFailed(f));

    void OnScored(ScoredBatch scored) => AfterScoring(scored.BatchId, _online?.Scored(scored));

    void AfterScoring(long batchId, OnlineStageDriver.ScoreOutcome? outcome)
    {
        if (outcome is null || outcome == OnlineStageDriver.ScoreOutcome.Ignored) return;
        _scorerOf.Remove(batchId);
        if (outcome.Fail is { } fail) { Finish(false, fail); return; }
        if (outcome.Skipped is { } skipped) _log.Warning(skipped);
        TryTrain();
    }

    void TryTrain()
    {
        if (_online?.NextToTrain(_policyVersion) is { } next)
        {
            _learner.Tell(next);
            _recent = RecentSample.Of(next, 4);
        }
        Dispatch();
    }

    void OnPolicyUpdated(PolicyUpdated u)
    {
        var stage = _online!;
        stage.Trained(u);
        _policyVersion = u.PolicyVersion;
        _totals.Trained++;
        var metrics = new Dictionary<string, double>(u.Metrics) { ["rollout/stale_dropped"] = _totals.StaleDropped, ["rollout/reissued"] = _totals.Reissued, ["reward/skipped_batches"] = _totals.RewardSkipped };
        Record(metrics, stage.Step, stage.Stage.Steps);
        if (_interruptAsker is { } asker)
        {
            _interruptAsker = null;
            _learner.Tell(new SaveCheckpoint(InterruptedDirectory, State(started: true)), asker);
            return;
        }
        if (_job.CheckpointEvery > 0 && _step % _job.CheckpointEvery == 0 && !stage.Done)
            _learner.Tell(new SaveCheckpoint(CheckpointDirectory, State(started: true)));
        if (stage.Done)
        {
            stage.Finish();
            _scorerOf.Clear();
            Evaluate("after");
            return;
        }
        TryTrain();
    }

    void Record(Dictionary<string, double> metrics, int step, int total)
    {
        _lastMetrics = metrics;
        _step = step;
        _recorder.Record(++_globalStep, _stage?.Name ?? "", metrics);
        RlftTelemetry.RecordStep(_stage?.Name ?? "", metrics);
        _jobWatcher.Tell(Status());
    }

    void OnTerminated(Terminated t)
    {
        if (t.ActorRef.Equals(_learner)) { Finish(false, _childFailure is { } why ? $"the learner stopped: {why}" : "the learner stopped"); return; }
        if (ClientLeft(t.ActorRef)) return;
        if (_rolloutWorkers.Remove(t.ActorRef, out var id))
        {
            var reissued = _online?.WorkerLost(id) ?? [];
            _log.Warning("rollout worker {0} left; re-issuing batches [{1}]", id, string.Join(", ", reissued));
            Dispatch();
        }
        if (_rewardActors.Remove(t.ActorRef))
            foreach (var batchId in _scorerOf.Where(s => s.Value.Equals(t.ActorRef)).Select(s => s.Key).ToList())
                if (_online?.AwaitingScore(batchId) is { } batch) SendToScorer(batch);
    }

    /// <summary>Ends the job: a successful one first writes its final checkpoint (HF layout).</summary>
    void Finish(bool ok, string message)
    {
        if (_finished) return;
        _finished = true;
        _online?.Stop();
        _log.Info("job {0}: {1}", ok ? "finished" : "failed", message);
        foreach (var w in _rolloutWorkers.Keys.Concat(_rewardActors).Concat(_clients.Values)) w.Tell(new NoMoreWork(message));
        if (ok) _learner.Tell(new SaveCheckpoint(CheckpointDirectory, State(started: false, completed: true)));
        else Complete(false, message);
    }

    bool _completed;

    void Complete(bool ok, string message)
    {
        if (_completed) return;
        _completed = true;
        var summary = _totals.Final(_policyVersion);
        try
        {
            var written = new Dictionary<string, object> { ["job"] = _job.Name, ["succeeded"] = ok, ["message"] = message };
            foreach (var (k, v) in summary) written[k] = v;
            _recorder.Finish(written);
        }
        catch (Exception e) { _log.Error(e, "could not write the run summary"); }
        _jobWatcher.Tell(new JobFinished(ok, message, summary));
    }

    RecentSample[]? _recent;

    JobStatus Status()
    {
        return new JobStatus(_stageIndex, _stage?.Kind.ToString() ?? "", _step, _stage?.Steps ?? 0, _policyVersion, _finished,
            _totals.Trained, _totals.Reissued, _totals.Duplicates, _totals.PerWorker(), _lastMetrics, _online?.Ledger.InFlightPerWorker() ?? [],
            _rolloutWorkers.Values.Order(StringComparer.Ordinal).ToArray(), _recent);
    }

    sealed record StartNextStage : INoSerializationVerificationNeeded { public static readonly StartNextStage Instance = new(); }
    sealed record Tick : INoSerializationVerificationNeeded { public static readonly Tick Instance = new(); }
}
