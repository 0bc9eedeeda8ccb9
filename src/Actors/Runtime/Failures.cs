using Akka.Event;
using Rlft.Actors.Configuration;

namespace Rlft.Actors.Runtime;

/// <summary>
/// How actors log a failure they report onward. Failures of the input (a bad file, dataset, option or checkpoint)
/// are logged as their one-line message: the job's final line says the same, and a stack trace would only bury it.
/// Anything else is a defect in RLFT, logged once with its stack trace.
/// </summary>
internal static class Failures
{
    public static bool IsInputProblem(Exception e) => e is ConfigException or InvalidDataException or FileNotFoundException
        or DirectoryNotFoundException or Rlft.Rollout.Data.DatasetException or Rlft.Policy.Training.OptionException or UnauthorizedAccessException
        || e is IOException && e.GetType() == typeof(IOException);

    public static void Log(ILoggingAdapter log, Exception e, string what)
    {
        if (IsInputProblem(e)) log.Warning("{0}: {1}", what, e.Message);
        else log.Error(e, what);
    }
}
