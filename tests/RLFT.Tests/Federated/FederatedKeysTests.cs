using Rlft.Actors.Configuration;
using Rlft.Actors.Jobs;

namespace Rlft.Tests.Federated;

/// <summary>The <c>federated { … }</c> section of a stage: read with its defaults, and bad values refused naming the key.</summary>
public class FederatedKeysTests
{
    static JobSpec Parse(string stages) => JobSpec.Parse(RlftConfig.ParseText($"rlft.job {{ name = t\n stages = [\n{stages}\n] }}", "job.conf"));

    static string Refusal(string stage) => string.Join("\n", Assert.Throws<ConfigException>(() => Parse(stage)).Errors);

    [Fact]
    public void The_section_is_read_with_its_defaults()
    {
        var job = Parse("""
            { kind = sft, federated { rounds = 12 } }
            { kind = dpo, eval-data = "builtin:preferences", federated { rounds = 5, clients = 8, clients-per-round = 4, min-clients = 3, start-clients = 8, local-steps = 7, round-deadline = 90s, algorithm = fedyogi, secure-aggregation = on, privacy { clip-norm = 0.5, noise-multiplier = 1.1 } } }
            { kind = sft, federated { rounds = 2, algorithm = fedprox, mu = 0.01, server-lr = 0.5, round-deadline = 2m } }
            """);
        var (a, b, c) = (job.Stages[0].Federated!, job.Stages[1].Federated!, job.Stages[2].Federated!);
        Assert.Equal(12, job.Stages[0].Steps);                                   // a federated stage's steps are its rounds
        Assert.Equal((12, 2, 2, 5, FederatedAlgorithm.FedAvg, 1.0, false), (a.Rounds, a.ClientsPerRound, a.MinClients, a.LocalSteps, a.Algorithm, a.ServerLr, a.SecureAggregation));
        Assert.Null(a.Privacy);
        Assert.Equal((2, 8), (a.StartClients, b.StartClients));                 // by default the first round waits for min-clients
        Assert.Equal(TimeSpan.FromMinutes(2), a.RoundDeadline);
        Assert.Equal((4, 3, 7, FederatedAlgorithm.FedYogi, 0.01, true), (b.ClientsPerRound, b.MinClients, b.LocalSteps, b.Algorithm, b.ServerLr, b.SecureAggregation));
        Assert.Equal(TimeSpan.FromSeconds(90), b.RoundDeadline);
        Assert.Equal((0.5, 1.1, 1e-5), (b.Privacy!.ClipNorm, b.Privacy.NoiseMultiplier, b.Privacy.Delta));
        Assert.Equal(0.5, b.SamplingRate);
        Assert.Equal((FederatedAlgorithm.FedProx, 0.01, 0.5), (c.Algorithm, c.Mu, c.ServerLr));
        Assert.Equal(TimeSpan.FromMinutes(2), c.RoundDeadline);
        Assert.Null(Parse("{ kind = sft, data = x, steps = 3 }").Stages[0].Federated);
    }

    [Theory]
    [InlineData("kind = sft, data = \"x.jsonl\", federated { rounds = 2 }", "stages[0].data: a federated stage trains on its clients' data")]
    [InlineData("kind = sft, steps = 4, federated { rounds = 2 }", "stages[0].steps: a federated stage counts rounds")]
    [InlineData("kind = ppo, data = x, federated { rounds = 2 }", "stages[0].federated: applies to sft, dpo and reward-model stages, not ppo")]
    [InlineData("kind = sft, federated { }", "stages[0].federated.rounds: missing required key")]
    [InlineData("kind = sft, federated { rounds = 2, clients = 3, clients-per-round = 5 }", "stages[0].federated.clients-per-round: 5 is more than the 3 clients")]
    [InlineData("kind = sft, federated { rounds = 2, clients-per-round = 2, min-clients = 3 }", "stages[0].federated.min-clients: 3 is outside [1, 2]")]
    [InlineData("kind = sft, federated { rounds = 2, clients = 4, clients-per-round = 3, start-clients = 5 }", "stages[0].federated.start-clients: 5 is outside [3, 4]")]
    [InlineData("kind = sft, federated { rounds = 2, clients-per-round = 3, min-clients = 2, start-clients = 1 }", "stages[0].federated.start-clients: 1 is outside [2, ")]
    [InlineData("kind = sft, federated { rounds = 2, algorithm = fedsgd }", "stages[0].federated.algorithm: 'fedsgd' is not one of")]
    [InlineData("kind = sft, federated { rounds = 2, algorithm = fedprox }", "stages[0].federated.mu: missing required key")]
    [InlineData("kind = sft, federated { rounds = 2, mu = 0.1 }", "stages[0].federated.mu: the proximal weight belongs to fedprox")]
    [InlineData("kind = sft, federated { rounds = 2, round-deadline = soon }", "stages[0].federated.round-deadline: expected a positive duration")]
    [InlineData("kind = sft, federated { rounds = 2, clients = 4, privacy { clip-norm = 0, noise-multiplier = 1 } }", "stages[0].federated.privacy.clip-norm: must be > 0")]
    [InlineData("kind = sft, federated { rounds = 2, clients = 4, privacy { clip-norm = 1, noise-multiplier = -1 } }", "stages[0].federated.privacy.noise-multiplier: -1 is outside")]
    [InlineData("kind = sft, federated { rounds = 2, clients = 4, privacy { clip-norm = 1, noise-multiplier = 1, delta = 0.5 } }", "stages[0].federated.privacy.delta: 0.5 is not below 1/clients")]
    [InlineData("kind = sft, federated { rounds = 2, privacy { clip-norm = 1, noise-multiplier = 1 } }", "stages[0].federated.clients: privacy accounting needs")]
    [InlineData("kind = sft, federated { rounds = 2, privacy { clip = 1 } }", "stages[0].federated.privacy.clip")]
    [InlineData("kind = sft, federated { rounds = 2, clients-per-round = 1, secure-aggregation = on }", "stages[0].federated.min-clients: secure aggregation needs at least 2")]
    public void Bad_values_are_refused_naming_the_key(string stage, string expected)
    {
        var message = Refusal("{ " + stage + " }");
        Assert.Contains("rlft.job." + expected, message);
    }
}
