using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Configuration.Hocon;
using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;
using Rlft.Hosting;

namespace Rlft.Tests.Hosting;

/// <summary>A job built in code is the job its HOCON would be, and is refused with the same key paths before anything runs.</summary>
public class JobBuilderTests
{
    static string NewDir() => Directory.CreateTempSubdirectory("rlft-api").FullName;

    static RlftJobBuilder CodeJob(string dir) => RlftJob.Create("same")
        .Seed(3).Device("cpu").OutputDir(dir)
        .InitModel("gpt2", "tiny")
        .Set("eval-prompts", 8)
        .Set("max-policy-lag", 0)
        .RewardFunction("letters", s => s.Completion.Count(char.IsLetter))
        .Stage(RlftStage.Sft(RlftData.Builtin("sft"), steps: 15, batchSize: 16).LearningRate(2e-3))
        .Stage(RlftStage.Ppo(RlftData.Builtin("prompts"), steps: 4, batchSize: 8)
            .EvalData(RlftData.Builtin("eval-prompts"))
            .MaxNewTokens(8)
            .Set("ppo.epochs", 1)
            .Set("ppo.kl-coef", 0.05)
            .Reward("letters", weight: 0.5)
            .Reward("review-task", name: "task"));

    static string HoconJob(string dir) => $$"""
        rlft.job {
          name = same
          seed = 3
          device = cpu
          output-dir = "{{dir}}"
          model { arch = gpt2, preset = tiny }
          eval-prompts = 8
          max-policy-lag = 0
          stages = [
            { kind = sft, data = "builtin:sft", steps = 15, batch-size = 16
              optimizer { lr = 0.002 }
            }
            { kind = ppo, data = "builtin:prompts", eval-data = "builtin:eval-prompts", steps = 4, batch-size = 8
              sampling { max-new-tokens = 8 }
              ppo { epochs = 1, kl-coef = 0.05 }
              rewards {
                components = [
                  { name = letters, source = function, function = letters, weight = 0.5 }
                  { name = task, source = function, function = review-task, weight = 1 }
                ]
              }
            }
          ]
        }
        """;

    [Fact]
    public void A_code_built_job_is_the_JobSpec_its_HOCON_reads_as()
    {
        string dir = NewDir();
        var code = CodeJob(dir).Build().Spec;
        var file = RlftJob.FromHocon(HoconJob(dir)).RewardFunction("letters", s => s.Completion.Length).Build().Spec;

        Assert.Equal(Canonical(file), Canonical(code));
        Assert.Equal(2, code.Stages.Count);
        Assert.Equal(StageKind.Ppo, code.Stages[1].Kind);
        Assert.Equal(0.002, code.Stages[0].Optimizer.LearningRate, 12);
        // And both differ from a job that changes one value, so the comparison can fail.
        var other = RlftJob.FromHocon(HoconJob(dir).Replace("kl-coef = 0.05", "kl-coef = 0.06")).RewardFunction("letters", _ => 0).Build().Spec;
        Assert.NotEqual(Canonical(other), Canonical(code));
    }

    [Fact]
    public void The_job_file_reader_without_the_programs_function_refuses_the_component_naming_it()
    {
        string dir = NewDir();
        string path = Path.Combine(dir, "job.conf");
        File.WriteAllText(path, HoconJob(dir));
        var e = Assert.Throws<ConfigException>(() => JobSpec.LoadChecked(path));
        Assert.Contains("rlft.job.stages[1].rewards.components[0].function: no reward function named 'letters'", e.Message);
    }

    [Fact]
    public void An_invalid_code_built_job_fails_naming_its_key_paths_before_anything_is_written()
    {
        string dir = NewDir();
        var builder = RlftJob.Create("broken").Device("cpu").OutputDir(dir).InitModel("gpt2", "tiny")
            .Stage(RlftStage.Ppo(RlftData.Prompts(["a prompt", "another"]), steps: 0, batchSize: 8).Set("ppo.clip-rnage", 0.2).Reward("nowhere"));
        var e = Assert.Throws<ConfigException>(builder.Build);
        Assert.Contains("rlft.job.stages[0].steps", e.Message);
        Assert.Contains("rlft.job.stages[0].ppo.clip-rnage", e.Message);
        Assert.All(e.Errors, line => Assert.DoesNotContain('\n', line));
        // Refused before the code dataset was written or the run directory made (so before any model could load).
        Assert.False(Directory.Exists(Path.Combine(dir, "broken")));
    }

    [Fact]
    public void A_reward_function_the_program_never_registered_is_named_with_the_ones_it_did()
    {
        string dir = NewDir();
        var builder = RlftJob.Create("unknown-fn").Device("cpu").OutputDir(dir).InitModel("gpt2", "tiny")
            .RewardFunction("mine", _ => 1)
            .Stage(RlftStage.Ppo(RlftData.Builtin("prompts"), steps: 2, batchSize: 8).Reward("theirs"));
        var e = Assert.Throws<ConfigException>(builder.Build);
        Assert.Contains("rlft.job.stages[0].rewards.components[0].function: no reward function named 'theirs'", e.Message);
        Assert.Contains("mine", e.Message);
    }

    [Fact]
    public void Code_datasets_are_written_as_JSONL_in_the_run_directory_and_recorded_for_resume()
    {
        string dir = NewDir();
        var job = RlftJob.Create("code-data").Device("cpu").OutputDir(dir).InitModel("gpt2", "tiny")
            .Stage(RlftStage.Dpo(RlftData.Preferences([new("p1", "good", "bad"), new("p2", "yes", "no")]), steps: 2, batchSize: 2))
            .Build();
        string file = Path.Combine(job.RunDirectory, "data", "code", "stage-0-data.jsonl");
        Assert.Equal(file, job.Spec.Stages[0].Data);
        Assert.Equal(["""{"prompt":"p1","chosen":"good","rejected":"bad"}""", """{"prompt":"p2","chosen":"yes","rejected":"no"}"""], File.ReadAllLines(file));
        Assert.Contains(JsonSerializer.Serialize(file), job.Hocon);
    }

    [Fact]
    public void Keys_that_are_not_HOCON_paths_are_refused_where_they_are_set()
    {
        Assert.Throws<ArgumentException>(() => RlftJob.Create("x").Set("seed = 3\nname", 1));
        Assert.Throws<ArgumentException>(() => RlftStage.Sft(RlftData.Builtin("sft"), 1, 1).Set("optimizer { lr", 1));
    }

    [Fact]
    public void The_base_Akka_settings_built_into_the_library_are_hocon_akka_conf()
    {
        // A program referencing the package has no hocon/ folder; nodes then start from the built-in copy.
        Assert.Equal(File.ReadAllText(Path.Combine(RlftConfig.HoconDirectory, "akka.conf")), RlftConfig.EmbeddedAkka());
    }

    /// <summary>
    /// A JobSpec as JSON with every configuration section in sorted canonical form (key order and file names aside), so
    /// two specs compare by value; <see cref="JobSpec.Source"/> is the whole configuration both were read from.
    /// </summary>
    internal static string Canonical(JobSpec spec) =>
        JsonSerializer.Serialize(spec, new JsonSerializerOptions { Converters = { new ConfigAsValues() }, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals });

    sealed class ConfigAsValues : JsonConverter<RlftConfig>
    {
        public override RlftConfig Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => throw new NotSupportedException();
        public override void Write(Utf8JsonWriter writer, RlftConfig value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, Values(value.Config.Root), options);

        static object? Values(HoconValue v) =>
            v.IsObject() ? new SortedDictionary<string, object?>(v.GetObject().Items.ToDictionary(kv => kv.Key, kv => Values(kv.Value)), StringComparer.Ordinal)
            : v.IsArray() ? v.GetArray().Select(Values).ToList()
            : v.GetString();
    }
}
