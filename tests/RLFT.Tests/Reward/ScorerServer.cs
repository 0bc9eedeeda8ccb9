using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Rlft.Tests.Reward;

/// <summary>
/// A real remote scorer on 127.0.0.1 (Kestrel). <c>/score</c> answers the completion's length, null for
/// "bad" and an error object for "err"; <c>/flaky</c> fails twice with 503 first; <c>/down</c> always 500;
/// <c>/teapot</c> 400; <c>/short</c> one score too few; <c>/hang</c> never answers; <c>/garbled</c> answers HTML twice
/// first; <c>/python</c> writes NaN, Infinity and -Infinity as bare words for every third sample, as Python's json module does.
/// </summary>
public sealed class ScorerServer : IAsyncDisposable
{
    readonly WebApplication app;
    int requests;
    int flaky;

    public Uri BaseAddress { get; }
    public int Requests => Volatile.Read(ref requests);
    public List<int> BatchSizes { get; } = [];

    ScorerServer(WebApplication app, Uri baseAddress)
    {
        this.app = app;
        BaseAddress = baseAddress;
    }

    public Uri Url(string path) => new(BaseAddress, path);

    public static async Task<ScorerServer> StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        ScorerServer? server = null;
        app.MapPost("/{mode}", async (string mode, HttpContext ctx) =>
        {
            var s = server!;
            Interlocked.Increment(ref s.requests);
            var body = (await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted))!;
            var samples = body["samples"]!.AsArray();
            lock (s.BatchSizes) s.BatchSizes.Add(samples.Count);
            switch (mode)
            {
                case "down": return Results.StatusCode(500);
                case "teapot": return Results.BadRequest("no");
                case "flaky" when Interlocked.Increment(ref s.flaky) <= 2: return Results.StatusCode(503);
                case "hang":
                    await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
                    return Results.Ok();
                case "garbled" when Interlocked.Increment(ref s.flaky) <= 2: return Results.Text("<html>bad gateway</html>", "text/html");
                case "python":
                    // What Python's json.dumps writes for float('nan') and float('inf'): bare words, not JSON.
                    var words = samples.Select((x, i) => i % 3 == 0 ? "NaN" : i % 3 == 1 ? (i % 2 == 0 ? "-Infinity" : "Infinity") : ((string)x!["completion"]!).Length.ToString());
                    return Results.Text($"{{\"scores\": [{string.Join(", ", words)}], \"note\": \"NaN in a string stays\"}}", "application/json");
            }
            var scores = new JsonArray(samples.Select(x => (string)x!["completion"]! switch
            {
                "bad" => null,
                "err" => new JsonObject { ["error"] = "cannot score" },
                var c => (JsonNode)JsonValue.Create(c.Length),
            }).Take(mode == "short" ? samples.Count - 1 : samples.Count).ToArray());
            return Results.Text(new JsonObject { ["scores"] = scores }.ToJsonString(), "application/json");
        });
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server = new ScorerServer(app, new Uri(address + "/"));
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
