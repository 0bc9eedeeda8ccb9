using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using Rlft.Actors.Compute;
using Rlft.Actors.Jobs;
using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;

namespace Rlft.Hosting;

/// <summary>Runs jobs in this process, every role on one node (as <c>rlft run</c> does). Registered by <see cref="RlftServiceCollectionExtensions.AddRlft"/>.</summary>
public interface IRlftJobRunner
{
    /// <summary>
    /// Runs <paramref name="job"/> and yields its events until <see cref="JobEnded"/>, the last. Cancelling
    /// <paramref name="cancellationToken"/> (or leaving the loop early) stops the job as Ctrl-C stops <c>rlft run</c>: the
    /// learner finishes its step and writes a checkpoint, named by <see cref="JobEnded.ResumeFrom"/>. A job that
    /// cannot start throws from the enumeration: <see cref="JobMemoryException"/> for one whose memory estimate exceeds the
    /// memory available here (unless <see cref="RlftOptions.AllowOverMemory"/>), before anything of it is written or
    /// loaded; others for a port in use or a model that fails to load.
    /// </summary>
    IAsyncEnumerable<JobEvent> RunAsync(RlftJob job, CancellationToken cancellationToken = default);

    /// <summary><see cref="RunAsync"/> to its end, each event handed to <paramref name="onEvent"/> (on the caller's context).</summary>
    Task<JobEnded> RunToEndAsync(RlftJob job, Action<JobEvent>? onEvent = null, CancellationToken cancellationToken = default);
}

/// <summary>How jobs run inside a program's host.</summary>
public sealed class RlftOptions
{
    /// <summary>The least level of RLFT's and Akka's log lines that reach the host's logging (default Warning).</summary>
    public LogLevel MinimumLogLevel { get; set; } = LogLevel.Warning;
    /// <summary>Akka settings over hocon/akka.conf and the job's own <c>akka</c> section (e.g. <c>akka.actor.serialize-messages = on</c>).</summary>
    public string AkkaHocon { get; set; } = "";
    /// <summary>How long a cancelled job waits for the learner to finish its step and write its checkpoint (default 60 s).</summary>
    public TimeSpan InterruptTimeout { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>
    /// Run a job whose memory estimate exceeds the memory available here (what <c>rlft run --force</c> does). Default
    /// false: such a job is refused with <see cref="JobMemoryException"/>, naming both figures, before any model loads
    /// or its run directory is written. GPU jobs are not checked (their models live in device memory).
    /// </summary>
    public bool AllowOverMemory { get; set; }
    /// <summary>Reads the memory available to a job (default <see cref="Policy.Memory.AvailableMemory.Read"/>); tests give a figure.</summary>
    internal Func<(long Bytes, string Source)>? ReadAvailableMemory { get; set; }
}

sealed class RlftJobRunner(RlftOptions options, ILoggerFactory? loggers) : IRlftJobRunner
{
    public async IAsyncEnumerable<JobEvent> RunAsync(RlftJob job, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<JobEvent>(new UnboundedChannelOptions { SingleReader = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var run = Task.Run(() => RunCore(job, channel.Writer, stop.Token), CancellationToken.None);
        try
        {
            // Read to the end whatever the token says: after a cancellation the job still reports how it ended.
            await foreach (var e in channel.Reader.ReadAllAsync(CancellationToken.None)) yield return e;
        }
        finally
        {
            // The loop ended early (break, an exception in the caller's loop body): stop the job and let its node go.
            stop.Cancel();
            await run;
        }
    }

    public async Task<JobEnded> RunToEndAsync(RlftJob job, Action<JobEvent>? onEvent = null, CancellationToken cancellationToken = default)
    {
        JobEnded? end = null;
        await foreach (var e in RunAsync(job, cancellationToken))
        {
            onEvent?.Invoke(e);
            if (e is JobEnded ended) end = ended;
        }
        return end ?? throw new InvalidOperationException("the job's events ended without a JobEnded");
    }

    async Task RunCore(RlftJob job, ChannelWriter<JobEvent> events, CancellationToken ct)
    {
        try
        {
            var spec = job.Spec;
            // Refused for memory before anything is written or loaded, as `rlft run` refuses it.
            var memory = JobMemoryCheck.Check(spec, options.AllowOverMemory, options.ReadAvailableMemory);
            var log = loggers?.CreateLogger<RlftJobRunner>();
            if (log is not null)
            {
                foreach (var line in memory.Estimate.Summary()) log.LogInformation("job '{Job}': {Line}", spec.Name, line);
                if (memory.Verdict == MemoryVerdict.OverMemoryAllowed)
                    log.LogWarning("job '{Job}': AllowOverMemory: running although {Figures}", spec.Name, memory.Figures);
            }
            // run.json, so `rlft run --resume` and RlftJob.Resume continue this very job (a resumed run keeps the original's).
            if (job.ResumeFrom is null) job.Record.WriteTo(spec.RunDirectory);
            var translator = new JobEventTranslator(spec);
            void Emit(IEnumerable<JobEvent> list) { foreach (var e in list) events.TryWrite(e); }
            await using var node = RlftNode.Create(new NodeOptions
            {
                Job = spec,
                Roles = spec.Feedback is null ? ["learner", "rollout", "reward"] : ["learner", "rollout", "reward", "feedback"],
                RolloutWorkers = spec.RolloutWorkers,
                Resume = job.ResumeFrom,
                ExtraHocon = options.AkkaHocon,
                MinimumLogLevel = options.MinimumLogLevel,
                LoggerProvider = loggers is null ? null : new FactoryProvider(loggers),
                OnStatus = s => Emit(translator.OnStatus(s)),
            }, new TorchEngineFactory());
            bool started = false;
            JobEnded end;
            try
            {
                await node.StartAsync(ct);
                started = true;
                var finished = await node.Finished.WaitAsync(ct);
                end = new JobEnded(finished.Succeeded ? JobOutcome.Succeeded : JobOutcome.Failed, finished.Message, finished.Summary, job.RunDirectory, null);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                string? checkpoint = started ? await Interrupt(node) : null;
                end = new JobEnded(JobOutcome.Cancelled, checkpoint is null ? "cancelled (no checkpoint written)" : $"cancelled; checkpoint in {checkpoint}",
                    new Dictionary<string, double>(), job.RunDirectory, checkpoint);
            }
            Emit(translator.OnEnd(end));
            events.TryComplete();
        }
        catch (Exception e) { events.TryComplete(e); }
    }

    /// <summary>What Ctrl-C does in <c>rlft run</c>: no new work, the learner's step finished and checkpointed.</summary>
    async Task<string?> Interrupt(RlftNode node)
    {
        try { return (await node.Coordinator.Ask<CheckpointSaved>(new InterruptJob("cancelled by the program"), options.InterruptTimeout)).Directory; }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException) { return null; }
    }

    /// <summary>The host's logger factory as a provider for the node's own host; the node's disposal leaves the factory alone.</summary>
    sealed class FactoryProvider(ILoggerFactory factory) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);
        public void Dispose() { }
    }
}
