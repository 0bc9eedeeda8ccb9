using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Rlft.Actors.Deployment;

/// <summary>
/// The probes over HTTP (Kestrel, loopback unless told otherwise): <c>GET /alive</c> and <c>GET /ready</c> answer 200 or
/// 503 with a small JSON body (status, reason, this node's address and the members it sees with their roles).
/// </summary>
internal sealed class HealthEndpoint : IAsyncDisposable
{
    public const string AlivePath = "/alive";
    public const string ReadyPath = "/ready";
    public const int DefaultPort = 8080;

    readonly WebApplication _app;

    HealthEndpoint(WebApplication app) => _app = app;

    /// <summary>The address Kestrel bound (port 0 becomes the one chosen).</summary>
    public string Url => _app.Urls.First();

    /// <summary>Binds <paramref name="host"/>:<paramref name="port"/>; an <see cref="IOException"/> when the port is taken.</summary>
    public static async Task<HealthEndpoint> StartAsync(string host, int port, NodeHealth health, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder(Runtime.OwnHosts.Web());
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{(host.Contains(':') ? $"[{host}]" : host)}:{port}");
        var app = builder.Build();
        app.MapGet(AlivePath, () => Answer(health.Alive()));
        // Not a lambda of HttpContext alone: that would bind as a RequestDelegate and drop the result.
        app.MapGet(ReadyPath, async (CancellationToken ct) => Answer(await health.ReadyAsync(ct)));
        try { await app.StartAsync(ct); }
        catch { await app.DisposeAsync(); throw; }
        return new HealthEndpoint(app);
    }

    static IResult Answer(HealthReport report) =>
        Results.Text(report.Body.ToJsonString(), "application/json", statusCode: report.Ok ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
