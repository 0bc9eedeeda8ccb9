using Rlft.Actors.Dashboard;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;

namespace Rlft.Host.Commands;

/// <summary><c>--dashboard URL</c> of <c>rlft run</c> and a learner's <c>rlft node</c>: the live job page.</summary>
static class JobPage
{
    /// <summary>Refuses a URL Kestrel could not serve the page on, before the job starts.</summary>
    public static void CheckUrl(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http" || uri.AbsolutePath != "/" || uri.Query != "")
            throw new CliException($"--dashboard: '{url}' is not an address like http://127.0.0.1:8090");
    }

    public static async Task<JobDashboard> StartAsync(string url, JobSpec job, RlftNode node, TextWriter output, CancellationToken ct)
    {
        JobDashboard page;
        try { page = await JobDashboard.StartAsync(url, job, node.Members, ct); }
        catch (IOException e) { throw new CliException($"--dashboard: cannot listen on {url}: {e.Message}", exitCode: 1); }
        output.WriteLine($"rlft: dashboard at {string.Join(", ", page.Urls)}");
        return page;
    }
}
