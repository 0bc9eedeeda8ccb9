using Microsoft.Extensions.Logging;

namespace Rlft.Host.Bench;

/// <summary>
/// The log sink of a benchmark's actor nodes: warnings and errors go to stderr as one line each (the exception's type
/// and message, never its stack trace, so a bench's output stays readable), and errors are counted so that the
/// bench line can say whether the run was healthy (<c>error_log_lines</c>, 0 on a healthy run).
/// </summary>
internal sealed class BenchLog : ILoggerProvider
{
    int _errors;
    public int Errors => Volatile.Read(ref _errors);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    sealed class Logger(BenchLog owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            if (logLevel >= LogLevel.Error) Interlocked.Increment(ref owner._errors);
            string cause = exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message.Split('\n')[0]})";
            Console.Error.WriteLine($"{logLevel} {category}: {formatter(state, exception).Split('\n')[0]}{cause}");
        }
    }
}
