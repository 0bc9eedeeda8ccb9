namespace Rlft.Policy.Chat.Jinja;

/// <summary>
/// A template that cannot be parsed or rendered. The message names the template line
/// (<c>line 12: 'dict object' has no attribute 'role'</c>); <see cref="Reason"/> is the message without it.
/// </summary>
internal class JinjaException : Exception
{
    public int Line { get; }
    public string Reason { get; }

    public JinjaException(int line, string reason) : base(line > 0 ? $"line {line}: {reason}" : reason) => (Line, Reason) = (line, reason);
}

/// <summary>
/// The template called <c>raise_exception(message)</c>: the data breaks a rule the template states
/// (e.g. roles must alternate). <see cref="Exception.Message"/> is the template's own message, as transformers reports it.
/// </summary>
internal sealed class TemplateRaisedException(int line, string message) : JinjaException(0, message)
{
    public int RaisedAtLine { get; } = line;
}

/// <summary>
/// A Python runtime error (TypeError, UndefinedError…) raised while evaluating; the evaluator attaches the line.
/// </summary>
sealed class PyException(string kind, string message) : Exception(message)
{
    public string Kind { get; } = kind;

    public static PyException Type(string message) => new("TypeError", message);
    public static PyException Value(string message) => new("ValueError", message);
    public static PyException Undefined(string message) => new("UndefinedError", message);
    public static PyException Security(string message) => new("SecurityError", message);
    public static PyException Runtime(string message) => new("TemplateRuntimeError", message);
    public static PyException Unsupported(string message) => new("unsupported", message);
}
