using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;

namespace Rlft.Actors.Runtime;

/// <summary>
/// Builder settings for the hosts RLFT makes itself: a node, and its feedback, health, management and dashboard
/// endpoints. They are configured from HOCON and flags, never from appsettings.json, so their builders are told not to
/// watch for changes to that file, and their content root is the install folder. With .NET's defaults the content root
/// is the working directory and it is watched recursively: in a directory of 7,000 entries that took 0.8 s per host,
/// it grows with a run folder's checkpoints, and it fails where inotify's limits are low.
/// </summary>
internal static class OwnHosts
{
    static string[] Args => ["--hostBuilder:reloadConfigOnChange=false"];

    public static HostApplicationBuilderSettings Plain() => new() { Args = Args, ContentRootPath = AppContext.BaseDirectory };

    public static WebApplicationOptions Web(string? environmentName = null, string? applicationName = null) =>
        new() { Args = Args, ContentRootPath = AppContext.BaseDirectory, EnvironmentName = environmentName, ApplicationName = applicationName };
}
