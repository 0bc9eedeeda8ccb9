using System.CommandLine;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Rlft.Actors.Telemetry;

namespace Rlft.Host.Commands;

/// <summary>
/// <c>--otlp-endpoint URL</c> on the commands that run something: RLFT's metrics and spans (and, on a feedback
/// node, ASP.NET Core's request spans and metrics) exported over OTLP/HTTP (protobuf) to URL/v1/metrics and
/// URL/v1/traces. Off unless given.
/// </summary>
static class OtlpExport
{
    public static Option<string?> Option() => new("--otlp-endpoint")
    {
        Description = "Export metrics and traces over OTLP/HTTP to this collector, e.g. http://localhost:4318 (off by default)",
    };

    /// <summary>Metric readers export this often (a job's step is seconds, not minutes).</summary>
    public const int ExportIntervalMs = 5000;

    /// <summary>The tracer and meter providers for <paramref name="endpoint"/> (flushed when disposed), or null without one.</summary>
    public static IDisposable? Start(string? endpoint, string service, bool web = false)
    {
        if (endpoint is null) return null;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new CliException($"--otlp-endpoint: '{endpoint}' is not an http(s) URL like http://localhost:4318");
        string root = endpoint.TrimEnd('/');
        var resource = ResourceBuilder.CreateDefault().AddService(service, serviceVersion: typeof(OtlpExport).Assembly.GetName().Version?.ToString(3));
        var traces = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(RlftTelemetry.Name);
        var metrics = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(RlftTelemetry.Name);
        if (web)
        {
            traces.AddSource("Microsoft.AspNetCore");
            metrics.AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel");
        }
        var tracer = traces.AddOtlpExporter(o => Configure(o, root + "/v1/traces")).Build();
        var meter = metrics.AddOtlpExporter((o, reader) =>
        {
            Configure(o, root + "/v1/metrics");
            reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = ExportIntervalMs;
        }).Build();
        return new Providers(tracer, meter);
    }

    static void Configure(OtlpExporterOptions options, string url)
    {
        options.Protocol = OtlpExportProtocol.HttpProtobuf;
        options.Endpoint = new Uri(url);
    }

    sealed class Providers(TracerProvider? tracer, MeterProvider? meter) : IDisposable
    {
        public void Dispose()
        {
            // Disposing flushes: the last spans and a final metric export leave before the process ends.
            tracer?.Dispose();
            meter?.Dispose();
        }
    }
}
