using Rlft.Policy.Training;

namespace Rlft.Actors.Jobs;

/// <summary>The server's rule for a federated stage (<c>federated.algorithm</c>).</summary>
public enum FederatedAlgorithm { FedAvg, FedProx, FedAdam, FedAdagrad, FedYogi }

/// <summary>
/// A federated stage (<c>federated { … }</c> on an sft, dpo or reward-model stage): the training data is the clients',
/// named only in each client node's configuration (<c>rlft node --roles client --data PATH</c>), never in the job.
/// Each of <see cref="Rounds"/> rounds samples <see cref="ClientsPerRound"/> of the clients that are Up, sends them
/// the global weights (LoRA adapters, or all trainable weights), and aggregates the updates of those that answer
/// before <see cref="RoundDeadline"/>; with fewer than <see cref="MinClients"/> the round is retried with a new sample.
/// </summary>
public sealed record FederatedSpec
{
    /// <summary><c>federated.rounds</c>: outer rounds (required); the stage's steps are its rounds.</summary>
    public required int Rounds { get; init; }
    /// <summary><c>federated.clients-per-round</c>: clients sampled per round. Default 2.</summary>
    public int ClientsPerRound { get; init; } = 2;
    /// <summary><c>federated.min-clients</c>: updates a round needs to aggregate, in [1, clients-per-round]. Default clients-per-round.</summary>
    public int MinClients { get; init; } = 2;
    /// <summary>How many clients must be Up before the first round starts (<c>start-clients</c>; Flower's min_available_clients). Default min-clients.</summary>
    public int StartClients { get; init; }
    /// <summary>
    /// <c>federated.clients</c>: how many clients the federation has (the population the sample is drawn from); with
    /// privacy it sets the sampling rate q = clients-per-round / clients of the accountant. Default 0: not stated.
    /// </summary>
    public int Clients { get; init; }
    /// <summary><c>federated.local-steps</c>: optimizer steps each client takes on its data per round. Default 5.</summary>
    public int LocalSteps { get; init; } = 5;
    /// <summary><c>federated.round-deadline</c>: how long a round waits for updates (seconds, or 30s / 2m). Default 120 s.</summary>
    public TimeSpan RoundDeadline { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary><c>federated.round-retries</c>: attempts of a round beyond the first before the stage fails. Default 3.</summary>
    public int RoundRetries { get; init; } = 3;
    /// <summary><c>federated.algorithm</c>: fedavg (default), fedprox, fedadam, fedadagrad, fedyogi.</summary>
    public FederatedAlgorithm Algorithm { get; init; } = FederatedAlgorithm.FedAvg;
    /// <summary><c>federated.mu</c>: FedProx's proximal weight (> 0, fedprox only).</summary>
    public double Mu { get; init; }
    /// <summary><c>federated.server-lr</c>: the server optimizer's step. Default 1 (FedAvg, FedProx); 0.01 for the adaptive ones.</summary>
    public double ServerLr { get; init; } = 1;
    /// <summary><c>federated.privacy { clip-norm, noise-multiplier, delta }</c>: client-level DP; null: off.</summary>
    public ClientPrivacy? Privacy { get; init; }
    /// <summary><c>federated.secure-aggregation</c>: on or off (default): pairwise-masked updates.</summary>
    public bool SecureAggregation { get; init; }

    /// <summary>The server optimizer of <see cref="Algorithm"/> at <see cref="ServerLr"/>.</summary>
    internal IServerOptimizer ServerOptimizer() => Algorithm switch
    {
        FederatedAlgorithm.FedAdam => new ServerAdam(ServerLr),
        FederatedAlgorithm.FedAdagrad => new ServerAdagrad(ServerLr),
        FederatedAlgorithm.FedYogi => new ServerYogi(ServerLr),
        _ => new ServerSgd(ServerLr),
    };

    /// <summary>The accountant's sampling rate per round: clients-per-round / clients (1 when the population is not stated).</summary>
    public double SamplingRate => Clients > 0 ? Math.Min(1.0, ClientsPerRound / (double)Clients) : 1.0;
}
