using System.CommandLine;

namespace Rlft.Host.Commands;

/// <summary>The `rlft` command line: builds the command tree and turns parse errors into one line.</summary>
internal static class Cli
{
    /// <summary>The exit status for input refused before anything ran (options, job files, datasets, models).</summary>
    public const int InvalidInput = 2;

    public static RootCommand Build()
    {
        var root = new RootCommand("RLFT: reinforcement learning from feedback for language models, on Akka.NET and TorchSharp.");
        // One line per command; each command lives in its own file under Commands/.
        Command[] commands =
        [
            InfoCommand.Create(),
            InitModelCommand.Create(),
            GenerateCommand.Create(),
            LogprobsCommand.Create(),
            ChatTemplateCommand.Create(),
            InspectDataCommand.Create(),
            BenchCommand.Create(), BenchCaseCommand.Create(), DeviceCheckCommand.Create(),
            ScoreCommand.Create(),
            ClassifyCommand.Create(),
            RunCommand.Create(), EstimateCommand.Create(),
            FrontierCommand.Create(),
            NodeCommand.Create(), FederatedShardsCommand.Create(),
            FeedbackCommand.Create(), FeedbackTokenCommand.Create(), SimulateRatersCommand.Create(),
        ];
        foreach (var command in commands) root.Subcommands.Add(command);
        return root;
    }

    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        var root = Build();
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // One line naming the problem; the full help is one `--help` away.
            // Prefer the error that names what the user typed over a generic "command missing".
            var error = parsed.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parsed.Errors[0];
            stderr.WriteLine($"rlft: {error.Message} (see 'rlft --help')");
            return 2;
        }
        // The default handler would print a stack trace; CliException and ConfigException must reach the catches below as one line.
        var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false,
            // Ctrl-C cancels the running command, which then has this long to checkpoint and leave the cluster.
            ProcessTerminationTimeout = TimeSpan.FromSeconds(90) };
        try
        {
            return parsed.Invoke(config);
        }
        catch (CliException e)
        {
            stderr.WriteLine($"rlft: {e.Message}");
            return e.ExitCode;
        }
        catch (Rlft.Actors.Configuration.ConfigException e)
        {
            // Bad config files, keys, values or inputs anywhere below a command: one line each, naming the key path
            // and the file or line at fault; exit 2, as for bad options.
            foreach (var error in e.Errors) stderr.WriteLine($"rlft: {error}");
            return InvalidInput;
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or Rlft.Rollout.Data.DatasetException)
        {
            // A file a command was given (not a job) turned out unreadable while it ran: the message names it.
            stderr.WriteLine($"rlft: {e.Message}");
            return 1;
        }
        catch (Exception e)
        {
            // A defect in RLFT: said once, with the stack trace that a bug report needs, and a clean exit status.
            stderr.WriteLine($"rlft: unexpected error: {e.Message}");
            stderr.WriteLine(e.ToString());
            return 1;
        }
    }
}

/// <summary>A user error with a message that names the problem; printed as one line (exit 2: invalid input).</summary>
internal sealed class CliException(string message, int exitCode = Cli.InvalidInput) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
