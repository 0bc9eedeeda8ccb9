using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Rlft.Actors.Compute;
using Rlft.Actors.Configuration;
using Rlft.Actors.Feedback;
using Rlft.Actors.Jobs;
using Rlft.Actors.Runtime;

namespace Rlft.Tests.Hosting;

/// <summary>
/// A node's host (with and without the feedback endpoint's web host) takes nothing from the working directory: its
/// content root is the install folder and no file it might read as configuration is watched for changes (a recursive
/// watch of the working directory cost 0.8 s per host in a directory of 7,000 entries).
/// </summary>
public class OwnHostsTests
{
    [Theory]
    [InlineData("quickstart.conf", "learner,rollout,reward")]
    [InlineData("human-ppo.conf", "learner,rollout,reward,feedback")]
    public void A_nodes_host_neither_watches_nor_roots_in_the_working_directory(string preset, string roles)
    {
        string dir = Directory.CreateTempSubdirectory("rlft-own-hosts").FullName;
        try
        {
            var job = JobSpec.Parse(RlftConfig.ParseText($"""
                rlft.job.output-dir = "{dir}"
                rlft.feedback.urls = ["http://127.0.0.1:0"]
                rlft.feedback.raters = [ {RaterTokens.ConfigLine("a", RaterTokens.NewToken())} ]
                """, "test-overrides").WithFallback(RlftConfig.LoadFile(Path.Combine(RlftConfig.HoconDirectory, preset))));
            var node = RlftNode.Create(new NodeOptions { Job = job, Roles = roles.Split(',') }, new TorchEngineFactory());
            try
            {
                var environment = node.Host.Services.GetRequiredService<IHostEnvironment>();
                Assert.Equal(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory), Path.TrimEndingDirectorySeparator(environment.ContentRootPath));
                var configuration = Assert.IsAssignableFrom<IConfigurationRoot>(node.Host.Services.GetRequiredService<IConfiguration>());
                var files = configuration.Providers.OfType<FileConfigurationProvider>().ToList();
                Assert.NotEmpty(files);   // appsettings.json is still read (optional), only never watched
                Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} is watched for changes"));
            }
            finally { node.Host.Dispose(); }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
