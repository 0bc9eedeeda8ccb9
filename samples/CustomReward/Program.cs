// PPO with a reward written in C#: the program registers a function, a PPO stage scores its completions with it,
// and the job runs as a hosted service in the program's own host. Usage: Rlft.Samples.CustomReward [OUTPUT_DIR] [STEPS]
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Rlft.Hosting;
using Rlft.Reward;

string output = args.Length > 0 ? args[0] : "runs";
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 24;
int calls = 0;

// The reward: the share of the completion's letters that are vowels. Dense and cheap, so a tiny policy moves it in a
// few steps; any Func<RewardSample, double> will do (sample.Prompt, sample.Completion, sample.Reference).
double Vowels(RewardSample sample)
{
    Interlocked.Increment(ref calls);
    var letters = sample.Completion.Where(char.IsLetter).ToList();
    return letters.Count == 0 ? 0 : letters.Count(c => "aeiouAEIOU".Contains(c)) / (double)letters.Count;
}

string[] prompts = ["Tell me about the sea", "Name a colour", "Describe a tree", "What is a cat", "Say something kind", "Write one word"];

var job = RlftJob.Create("custom-reward")
    .Seed(7).Device("cpu").OutputDir(output)
    .InitModel("gpt2", "tiny")
    .Set("eval-prompts", 8)
    .RewardFunction("vowels", Vowels)
    .Stage(RlftStage.Ppo(RlftData.Prompts(prompts), steps, batchSize: 16)
        .MaxNewTokens(8)
        .LearningRate(1e-2)
        .Set("ppo.kl-coef", 0.01)
        .Set("ppo.epochs", 2)
        .Reward("vowels"))
    .Build();   // checked here: a bad key or a missing function is one line naming it

var rewards = new List<double>();
var builder = Host.CreateApplicationBuilder();
builder.Services.AddRlftJob(_ => job, onEvent: e =>
{
    if (e is not StepCompleted { Metrics: var m } step || !m.TryGetValue("reward/mean", out var reward)) return;
    rewards.Add(reward);
    Console.WriteLine($"step {step.Step}/{step.Steps} reward/mean {reward:F4}");
});
builder.Logging.SetMinimumLevel(LogLevel.Warning);
using var host = builder.Build();
var service = host.Services.GetRequiredService<RlftJobService>();
await host.RunAsync();   // the job stops the host when it ends (Ctrl-C cancels it and writes a checkpoint)

var end = await service.Completion;
int k = Math.Max(1, rewards.Count / 4);
Console.WriteLine($"job {end.Outcome}: {end.Message}");
Console.WriteLine($"reward function calls: {calls}");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"reward/mean first {k} steps {rewards.Take(k).DefaultIfEmpty().Average():F4}, last {k} steps {rewards.TakeLast(k).DefaultIfEmpty().Average():F4}"));
Console.WriteLine($"run directory: {end.RunDirectory}");
return end.Succeeded ? 0 : 1;
