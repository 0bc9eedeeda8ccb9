using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace Rlft.Host.Bench;

/// <summary>
/// Akka's log sink for the actor systems a benchmark creates itself (the weight-sync pair): a warning or an error is
/// one line on stderr (the cause's type and message, never its stack trace) and errors are counted per system, as
/// <see cref="BenchLog"/> does for the benchmarks' nodes. <see cref="Quiet"/> drops a system's log once its
/// measurements are over: when one of two classic-remoting systems in a process stops, the other can see the
/// connection close before the peer's shutdown notice and logs the association's end as a failure with a stack trace
/// (a race inside Akka.Remote, seen in one full bench run), which says nothing about the figures already taken.
/// </summary>
internal sealed class BenchAkkaLogger : ActorBase, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    public const string Config = "akka.loggers = [\"Rlft.Host.Bench.BenchAkkaLogger, rlft\"]\nakka.stdout-loglevel = OFF";

    sealed class State { public int Errors; public volatile bool Quiet; }
    static readonly ConditionalWeakTable<ActorSystem, State> s_states = new();

    /// <summary>Error-level lines this system has logged so far.</summary>
    public static int Errors(ActorSystem system) => Volatile.Read(ref s_states.GetOrCreateValue(system).Errors);

    /// <summary>From now on this system's log is dropped (its part of the benchmark is done).</summary>
    public static void Quiet(ActorSystem system) => s_states.GetOrCreateValue(system).Quiet = true;

    protected override bool Receive(object message)
    {
        switch (message)
        {
            case InitializeLogger:
                Sender.Tell(new LoggerInitialized());
                return true;
            case LogEvent e:
                var state = s_states.GetOrCreateValue(Context.System);
                if (e.LogLevel() < LogLevel.WarningLevel || state.Quiet) return true;
                if (e.LogLevel() >= LogLevel.ErrorLevel) Interlocked.Increment(ref state.Errors);
                string cause = e is Error { Cause: { } c } ? $" ({c.GetType().Name}: {c.Message.Split('\n')[0]})" : "";
                Console.Error.WriteLine($"{e.LogLevel().ToString().Replace("Level", "")} {e.LogSource}: {e.Message?.ToString()?.Split('\n')[0]}{cause}");
                return true;
            default:
                return false;
        }
    }
}
