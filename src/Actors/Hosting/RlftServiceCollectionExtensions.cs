using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Rlft.Hosting;

/// <summary>RLFT in a program's own host (Microsoft.Extensions.Hosting).</summary>
public static class RlftServiceCollectionExtensions
{
    /// <summary>Registers <see cref="IRlftJobRunner"/>, which runs jobs in this process with the host's logging.</summary>
    public static IServiceCollection AddRlft(this IServiceCollection services, Action<RlftOptions>? configure = null)
    {
        var options = new RlftOptions();
        configure?.Invoke(options);
        services.TryAddSingleton(options);
        services.TryAddSingleton<IRlftJobRunner>(sp => new RlftJobRunner(sp.GetRequiredService<RlftOptions>(), sp.GetService<ILoggerFactory>()));
        return services;
    }

    /// <summary>
    /// Runs a job as a hosted service: it starts with the host, is cancelled (and checkpointed) when the host stops,
    /// and by default stops the host when it ends. <see cref="RlftJobService.Completion"/> (resolve
    /// <see cref="RlftJobService"/>) says how it ended; <paramref name="onEvent"/> sees every event.
    /// </summary>
    public static IServiceCollection AddRlftJob(this IServiceCollection services, Func<IServiceProvider, RlftJob> job,
        Action<JobEvent>? onEvent = null, bool stopHostWhenDone = true)
    {
        services.AddRlft();
        services.AddSingleton(sp => new RlftJobService(sp.GetRequiredService<IRlftJobRunner>(), () => job(sp), onEvent,
            stopHostWhenDone ? sp.GetRequiredService<IHostApplicationLifetime>() : null));
        services.AddHostedService(sp => sp.GetRequiredService<RlftJobService>());
        return services;
    }
}

/// <summary>The hosted service <see cref="RlftServiceCollectionExtensions.AddRlftJob"/> registers.</summary>
public sealed class RlftJobService : BackgroundService
{
    readonly IRlftJobRunner _runner;
    readonly Func<RlftJob> _job;
    readonly Action<JobEvent>? _onEvent;
    readonly IHostApplicationLifetime? _stopWhenDone;
    readonly TaskCompletionSource<JobEnded> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal RlftJobService(IRlftJobRunner runner, Func<RlftJob> job, Action<JobEvent>? onEvent, IHostApplicationLifetime? stopWhenDone) =>
        (_runner, _job, _onEvent, _stopWhenDone) = (runner, job, onEvent, stopWhenDone);

    /// <summary>How the job ended (faulted when it could not start: an invalid job, a model that failed to load).</summary>
    public Task<JobEnded> Completion => _completion.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            // Off the host's start-up path: building checks files and writes code datasets.
            await Task.Yield();
            _completion.TrySetResult(await _runner.RunToEndAsync(_job(), _onEvent, stoppingToken));
        }
        catch (Exception e) { _completion.TrySetException(e); }
        finally { _stopWhenDone?.StopApplication(); }
    }
}
