using Akka.Actor;
using Rlft.Actors.Protocol;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Local observer of the job on the node that hosts the coordinator: forwards progress to a callback
/// (the live display) and completes the job's completion when the job ends.
/// </summary>
internal sealed class JobWatcherActor : ReceiveActor
{
    public static Props Props(TaskCompletionSource<JobFinished> completion, Action<JobStatus>? onStatus) =>
        Akka.Actor.Props.Create(() => new JobWatcherActor(completion, onStatus));

    public JobWatcherActor(TaskCompletionSource<JobFinished> completion, Action<JobStatus>? onStatus)
    {
        Receive<JobStatus>(s => onStatus?.Invoke(s));
        Receive<JobFinished>(f => completion.TrySetResult(f));
    }
}
