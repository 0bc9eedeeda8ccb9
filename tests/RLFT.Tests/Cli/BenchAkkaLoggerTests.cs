using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Rlft.Host.Bench;

namespace Rlft.Tests.Cli;

/// <summary>The log sink of the bench's own actor systems: one line per error, no stack trace, counted per system.</summary>
public class BenchAkkaLoggerTests
{
    [Fact]
    public async Task An_error_is_counted_for_its_own_system_and_a_warning_is_not()
    {
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING\n" + BenchAkkaLogger.Config);
        using var one = ActorSystem.Create("one", config);
        using var two = ActorSystem.Create("two", config);
        Exception cause;
        try { throw new InvalidOperationException("the cause\nits second line"); }
        catch (InvalidOperationException e) { cause = e; }
        one.Log.Warning("a warning");
        one.Log.Error(cause, "an error\nwith a second line");
        var until = DateTime.UtcNow.AddSeconds(30);
        while (BenchAkkaLogger.Errors(one) == 0 && DateTime.UtcNow < until)
            await Task.Delay(20, TestContext.Current.CancellationToken);
        Assert.Equal(1, BenchAkkaLogger.Errors(one));
        Assert.Equal(0, BenchAkkaLogger.Errors(two));
        await Task.WhenAll(one.Terminate(), two.Terminate());
    }
}
