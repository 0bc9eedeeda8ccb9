// An existing ASP.NET Core minimal API app that also serves RLFT's human feedback endpoint: the rater page at /, the
// rating API under /api/v1 (bearer tokens) and /healthz, beside the app's own routes.
// Usage: Rlft.Samples.FeedbackInAspNet --urls http://127.0.0.1:5090 [--journal feedback.db] [--token RATER_TOKEN]
using Rlft.Actors.Feedback;
using Rlft.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);

// One rater; the journal keeps every rating durable. In a real app the token hashes come from configuration
// (`rlft feedback-token --rater NAME` prints one), and the options from hocon/feedback.conf (AddRlftFeedback(path)).
string token = builder.Configuration["token"] ?? RaterTokens.NewToken();
builder.AddRlftFeedback(new FeedbackOptions
{
    Journal = builder.Configuration["journal"] ?? "feedback.db",
    Raters = [new RaterEntry("alice", RaterTokens.Hash(token))],
});

var app = builder.Build();
app.MapGet("/hello", () => Results.Json(new { message = "hello from my app" }));   // the app's own route
app.MapRlftFeedback();

await app.StartAsync();
Console.WriteLine($"listening on {string.Join(", ", app.Urls)}");
if (builder.Configuration["token"] is null) Console.WriteLine($"rater token for alice: {token}");
await app.WaitForShutdownAsync();
