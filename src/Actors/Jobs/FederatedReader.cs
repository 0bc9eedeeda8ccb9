using System.Globalization;
using Rlft.Actors.Configuration;
using Rlft.Policy.Training;

namespace Rlft.Actors.Jobs;

/// <summary>Reads a stage's <c>federated { … }</c> section; every problem names its key.</summary>
internal static class FederatedReader
{
    public static readonly string[] Keys = ["rounds", "clients-per-round", "min-clients", "clients", "local-steps", "round-deadline", "round-retries",
        "algorithm", "mu", "server-lr", "privacy", "secure-aggregation", "start-clients"];
    public static readonly string[] PrivacyKeys = ["clip-norm", "noise-multiplier", "delta"];
    static readonly string[] Algorithms = ["fedavg", "fedprox", "fedadam", "fedadagrad", "fedyogi"];

    /// <summary>The section of a stage of kind <paramref name="kindName"/>, or null when it has none.</summary>
    public static FederatedSpec? Read(RlftConfig s, StageKind kind, string kindName)
    {
        if (!s.Has("federated")) return null;
        if (kind is not (StageKind.Sft or StageKind.Dpo or StageKind.RewardModel))
            throw new ConfigException($"federated: applies to sft, dpo and reward-model stages, not {kindName}");
        foreach (var key in new[] { "data", "replay", "ewc", "l2-sp", "early-stopping" }.Where(s.Has))
            throw new ConfigException(key == "data"
                ? "data: a federated stage trains on its clients' data, named in each client node's configuration (rlft node --roles client --data PATH), never in the job"
                : $"{key}: not available on a federated stage");
        int rounds = s.GetInt("federated.rounds", min: 1, max: 1_000_000);
        int perRound = s.GetInt("federated.clients-per-round", 2, min: 1, max: 100_000);
        int clients = s.GetInt("federated.clients", 0, min: 0, max: 1_000_000);
        if (clients > 0 && perRound > clients)
            throw new ConfigException($"federated.clients-per-round: {perRound} is more than the {clients} clients the federation has (federated.clients)");
        int minClients = s.GetInt("federated.min-clients", perRound, min: 1, max: perRound);
        int startClients = s.GetInt("federated.start-clients", minClients, min: minClients, max: clients > 0 ? clients : 1_000_000);
        var algorithm = s.GetEnum("federated.algorithm", Algorithms, "fedavg") switch
        {
            "fedprox" => FederatedAlgorithm.FedProx,
            "fedadam" => FederatedAlgorithm.FedAdam,
            "fedadagrad" => FederatedAlgorithm.FedAdagrad,
            "fedyogi" => FederatedAlgorithm.FedYogi,
            _ => FederatedAlgorithm.FedAvg,
        };
        double mu = 0;
        if (algorithm == FederatedAlgorithm.FedProx)
        {
            mu = s.GetDouble("federated.mu", min: 0, max: 1e6);
            if (mu == 0) throw new ConfigException("federated.mu: FedProx needs a proximal weight > 0 (mu = 0 is fedavg)");
        }
        else if (s.Has("federated.mu")) throw new ConfigException($"federated.mu: the proximal weight belongs to fedprox, not {Algorithms[(int)algorithm]}");
        bool adaptive = algorithm is FederatedAlgorithm.FedAdam or FederatedAlgorithm.FedAdagrad or FederatedAlgorithm.FedYogi;
        double serverLr = s.GetDouble("federated.server-lr", adaptive ? 0.01 : 1.0, min: 0, max: 100);
        if (serverLr == 0) throw new ConfigException("federated.server-lr: 0 would never move the global weights");
        var privacy = s.Has("federated.privacy") ? ReadPrivacy(s, clients) : null;
        bool secure = s.GetBool("federated.secure-aggregation", false);
        if (secure && minClients < 2)
            throw new ConfigException("federated.min-clients: secure aggregation needs at least 2 clients per round (one masked update alone is the update)");
        return new FederatedSpec
        {
            Rounds = rounds,
            ClientsPerRound = perRound,
            MinClients = minClients,
            StartClients = startClients,
            Clients = clients,
            LocalSteps = s.GetInt("federated.local-steps", 5, min: 1, max: 1_000_000),
            RoundDeadline = Duration(s, "federated.round-deadline", TimeSpan.FromMinutes(2)),
            RoundRetries = s.GetInt("federated.round-retries", 3, min: 0, max: 1000),
            Algorithm = algorithm,
            Mu = mu,
            ServerLr = serverLr,
            Privacy = privacy,
            SecureAggregation = secure,
        };
    }

    static ClientPrivacy ReadPrivacy(RlftConfig s, int clients)
    {
        double clip = s.GetDouble("federated.privacy.clip-norm");
        if (!(clip > 0)) throw new ConfigException($"federated.privacy.clip-norm: must be > 0, got {clip.ToString(CultureInfo.InvariantCulture)}");
        double noise = s.GetDouble("federated.privacy.noise-multiplier", min: 0, max: 1e4);
        double delta = s.GetDouble("federated.privacy.delta", 1e-5);
        if (!(delta > 0 && delta < 1)) throw new ConfigException($"federated.privacy.delta: must be in (0, 1), got {delta.ToString(CultureInfo.InvariantCulture)}");
        if (clients == 0) throw new ConfigException("federated.clients: privacy accounting needs the number of clients the sample is drawn from");
        if (delta >= 1.0 / clients)
            throw new ConfigException($"federated.privacy.delta: {delta.ToString(CultureInfo.InvariantCulture)} is not below 1/clients = {(1.0 / clients).ToString(CultureInfo.InvariantCulture)}: such a δ allows one client's data to be published outright");
        return new ClientPrivacy(clip, noise, delta);
    }

    /// <summary>A duration: a number of seconds, or a number with ms, s, m or h.</summary>
    internal static TimeSpan Duration(RlftConfig s, string key, TimeSpan fallback)
    {
        if (!s.Has(key)) return fallback;
        string text = s.GetString(key).Trim();
        var units = new (string Suffix, double Seconds)[] { ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600) };
        var (suffix, scale) = units.FirstOrDefault(u => text.EndsWith(u.Suffix, StringComparison.Ordinal) && (u.Suffix != "s" || !text.EndsWith("ms", StringComparison.Ordinal)));
        string number = suffix is null ? text : text[..^suffix.Length].Trim();
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value > 0) || double.IsInfinity(value))
            throw new ConfigException($"{key}: expected a positive duration such as 30s or 2m, got '{text}'");
        return TimeSpan.FromSeconds(value * (suffix is null ? 1 : scale));
    }
}
