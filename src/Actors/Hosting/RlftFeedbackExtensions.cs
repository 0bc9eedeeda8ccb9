using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Rlft.Actors.Configuration;
using Rlft.Actors.Feedback;

namespace Rlft.Hosting;

/// <summary>
/// The human feedback endpoint (the rater page, <c>/api/v1</c>, <c>/healthz</c>) inside a program's own ASP.NET Core
/// app, beside the app's routes: <c>builder.AddRlftFeedback(options)</c>, then <c>app.MapRlftFeedback()</c>.
/// </summary>
public static class RlftFeedbackExtensions
{
    /// <summary>
    /// Adds the endpoint's services and its actor system (the persistent feedback actor on the SQLite journal
    /// <see cref="FeedbackOptions.Journal"/>). The app's own Kestrel settings and addresses stay as they are; the
    /// app must not register an Akka.Hosting actor system of its own.
    /// </summary>
    public static WebApplicationBuilder AddRlftFeedback(this WebApplicationBuilder builder, FeedbackOptions options)
    {
        if (options.Raters.Count == 0)
            throw new ConfigException("rlft.feedback.raters: no raters configured (issue a token with 'rlft feedback-token --rater NAME')");
        FeedbackNode.AddFeedbackServices(builder.Services, options);
        builder.Services.AddAkka("rlft-feedback", (akka, _) =>
        {
            // Akka's warnings go to the app's logging; an unbound message type is an error, never a silent fallback.
            akka.ConfigureLoggers(l =>
            {
                l.LogLevel = Akka.Event.LogLevel.WarningLevel;
                l.ClearLoggers();
                l.AddLoggerFactory();
            });
            akka.WithStrictSerialization();
            akka.WithFeedback(options);
        });
        return builder;
    }

    /// <summary>Reads <c>rlft.feedback</c> from a HOCON file (as hocon/feedback.conf) and adds the endpoint (its <c>urls</c> are not used).</summary>
    public static WebApplicationBuilder AddRlftFeedback(this WebApplicationBuilder builder, string hoconFile) =>
        builder.AddRlftFeedback(FeedbackOptions.FromConfig(RlftConfig.LoadFile(hoconFile)));

    /// <summary>
    /// Maps the rater page (<c>/</c>, <c>/admin</c>), the API (<c>/api/v1/…</c>, bearer tokens required there) and
    /// <c>/healthz</c>, with the endpoint's request log and rate limiter. The app's other routes are untouched.
    /// </summary>
    public static WebApplication MapRlftFeedback(this WebApplication app)
    {
        FeedbackNode.UseFeedback(app, app.Services.GetRequiredService<FeedbackOptions>());
        return app;
    }
}
