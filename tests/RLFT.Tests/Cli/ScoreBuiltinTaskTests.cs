using System.Text.Json;
using Rlft.Actors.Configuration;
using Rlft.Rollout.Data;
using Rlft.Rollout.Tasks;

namespace Rlft.Tests.Cli;

public class ScoreBuiltinTaskTests
{
    [Fact]
    public void Score_applies_the_builtin_task_reward_to_its_own_dataset()
    {
        string dir = Directory.CreateTempSubdirectory("rlft-score").FullName;
        var paths = ReviewTask.WriteDatasets(dir, seed: 4);
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Rlft.Host.Commands.Cli.Run(["score", "--rewards", Path.Combine(RlftConfig.HoconDirectory, "rewards", "builtin-task.conf"), "--input", paths["sft"]], o, e);
        Assert.True(code == 0, e.ToString());
        var lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var data = Jsonl.ReadSft(paths["sft"]);
        Assert.Equal(data.Count, lines.Length);
        for (int i = 0; i < 50; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            double task = doc.RootElement.GetProperty("components").GetProperty("task").GetProperty("raw").GetDouble();
            Assert.Equal(ReviewTask.Score(data[i].Prompt, data[i].Completion), task, 9);
        }
        Directory.Delete(dir, true);
    }
}
