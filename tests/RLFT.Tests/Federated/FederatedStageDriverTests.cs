using FsCheck.Xunit;
using Rlft.Actors.Coordination;
using Rlft.Actors.Jobs;
using Rlft.Policy.Training;

namespace Rlft.Tests.Federated;

/// <summary>The server side of a federated stage without a cluster: sampling, deadlines, retries, late and duplicate updates, dropouts.</summary>
public class FederatedStageDriverTests
{
    static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    static FederatedSpec Spec(int rounds = 2, int perRound = 2, int min = 2, bool secure = false, ClientPrivacy? privacy = null, int clients = 0, int start = 0) => new()
    {
        Rounds = rounds, ClientsPerRound = perRound, MinClients = min, StartClients = start, RoundDeadline = TimeSpan.FromSeconds(30), RoundRetries = 2,
        SecureAggregation = secure, Privacy = privacy, Clients = clients,
    };

    static ClientUpdate U(string id, StartRound r, double samples = 10, double loss = 1) =>
        new(id, r.Round, r.Attempt, [1f], null, samples, new Dictionary<string, double> { ["inner/loss_last"] = loss }, 100);

    static FederatedStageDriver Up(FederatedSpec spec, params string[] ids)
    {
        var d = new FederatedStageDriver(spec, seed: 1);
        foreach (var id in ids) Assert.Null(d.ClientUp(id, T0));                  // before Begin nothing starts
        return d;
    }

    [Fact]
    public void Rounds_sample_clients_aggregate_their_updates_and_finish()
    {
        var d = Up(Spec(), "a", "b", "c");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        Assert.Equal(2, r0.Clients.Count);
        Assert.Equal(T0.AddSeconds(30), r0.Deadline);
        Assert.Null(d.Update(U(r0.Clients[0], r0, samples: 4, loss: 1), T0));
        var agg = Assert.IsType<AggregateRound>(d.Update(U(r0.Clients[1], r0, samples: 6, loss: 3), T0));
        Assert.Equal(r0.Clients, agg.Updates.Select(u => u.ClientId));
        Assert.Equal((2.0, 10.0, 200.0, 2.0), (agg.Figures["federated/participants"], agg.Figures["federated/samples"], agg.Figures["federated/bytes_received"], agg.Figures["inner/loss_last"]));
        var r1 = Assert.IsType<StartRound>(d.Aggregated(T0));
        Assert.Equal((1, 0), (r1.Round, r1.Attempt));
        foreach (var id in r1.Clients.Take(r1.Clients.Count - 1)) d.Update(U(id, r1), T0);
        Assert.IsType<AggregateRound>(d.Update(U(r1.Clients[^1], r1), T0));
        Assert.IsType<FinishStage>(d.Aggregated(T0));
        Assert.True(d.Done);
    }

    [Fact]
    public void The_first_round_waits_for_start_clients_and_later_rounds_go_on_with_min_clients()
    {
        var d = Up(Spec(rounds: 3, perRound: 3, min: 2, start: 3), "a", "b");
        var wait = Assert.IsType<WaitForClients>(d.Begin(T0));
        Assert.Contains("start-clients = 3", wait.Reason);
        var r0 = Assert.IsType<StartRound>(d.ClientUp("c", T0));
        Assert.Equal(["a", "b", "c"], r0.Clients.Order());
        foreach (var id in r0.Clients.SkipLast(1)) d.Update(U(id, r0), T0);
        Assert.IsType<AggregateRound>(d.Update(U(r0.Clients[^1], r0), T0));
        Assert.Null(d.ClientDown("c", T0));                                       // between rounds
        var r1 = Assert.IsType<StartRound>(d.Aggregated(T0));                     // two are enough from now on
        Assert.Equal(["a", "b"], r1.Clients.Order());
    }

    [Fact]
    public void Late_foreign_and_duplicate_updates_are_counted_and_never_aggregated()
    {
        var d = Up(Spec(perRound: 2, min: 2), "a", "b", "c");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        string outsider = new[] { "a", "b", "c" }.Except(r0.Clients).Single();
        Assert.Null(d.Update(U(outsider, r0), T0));                               // not sampled
        Assert.Null(d.Update(U(r0.Clients[0], r0 with { Round = 7 }), T0));        // another round
        Assert.Null(d.Update(U(r0.Clients[0], r0), T0));
        Assert.Null(d.Update(U(r0.Clients[0], r0, samples: 999), T0));             // a second one from the same client
        var agg = Assert.IsType<AggregateRound>(d.Update(U(r0.Clients[1], r0), T0));
        Assert.Equal(20.0, agg.Figures["federated/samples"]);
        Assert.Equal((2L, 1L), (d.LateDiscarded, d.Duplicates));
        Assert.Null(d.Update(U(r0.Clients[1], r0), T0));                           // after the round closed
        Assert.Equal(3L, d.LateDiscarded);
    }

    [Fact]
    public void A_round_short_of_min_clients_at_the_deadline_is_retried_with_a_new_sample_and_the_old_attempts_updates_are_late()
    {
        var d = Up(Spec(perRound: 2, min: 2), "a", "b", "c", "d");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        d.Update(U(r0.Clients[0], r0), T0);
        Assert.Null(d.Tick(T0.AddSeconds(29)));
        var retry = Assert.IsType<StartRound>(d.Tick(T0.AddSeconds(30)));
        Assert.Equal((0, 1), (retry.Round, retry.Attempt));
        Assert.Equal(1L, d.Retries);
        Assert.Null(d.Update(U(r0.Clients[1], r0), T0.AddSeconds(31)));           // attempt 0's straggler
        Assert.Equal(1L, d.LateDiscarded);
        d.Update(U(retry.Clients[0], retry), T0.AddSeconds(32));
        var agg = Assert.IsType<AggregateRound>(d.Update(U(retry.Clients[1], retry), T0.AddSeconds(33)));
        Assert.Equal(1, agg.Attempt);
        Assert.Equal(1.0, agg.Figures["federated/retries"]);
    }

    [Fact]
    public void At_the_deadline_a_round_with_min_clients_aggregates_without_the_stragglers()
    {
        var d = Up(Spec(perRound: 3, min: 2), "a", "b", "c");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        d.Update(U("a", r0), T0);
        d.Update(U("c", r0), T0);
        var agg = Assert.IsType<AggregateRound>(d.Tick(T0.AddMinutes(1)));
        Assert.Equal(["a", "c"], agg.Updates.Select(u => u.ClientId));
        Assert.Equal(3.0, agg.Figures["federated/sampled"]);
    }

    [Fact]
    public void Every_attempt_failing_fails_the_stage_naming_the_round()
    {
        var d = Up(Spec(perRound: 2, min: 2), "a", "b");
        var start = Assert.IsType<StartRound>(d.Begin(T0));
        for (int i = 0; i < 2; i++) start = Assert.IsType<StartRound>(d.Tick(start.Deadline));
        var fail = Assert.IsType<FailStage>(d.Tick(start.Deadline));
        Assert.Contains("round 0 failed 3 times", fail.Reason);
        Assert.Contains("min-clients = 2", fail.Reason);
    }

    [Fact]
    public void Too_few_clients_up_waits_with_a_message_and_starts_when_enough_join()
    {
        var d = Up(Spec(perRound: 3, min: 2), "a");
        var wait = Assert.IsType<WaitForClients>(d.Begin(T0));
        Assert.Contains("1 client(s) Up, min-clients = 2", wait.Reason);
        var start = Assert.IsType<StartRound>(d.ClientUp("b", T0));
        Assert.Equal(["a", "b"], start.Clients);
    }

    [Fact]
    public void A_client_that_crashes_mid_round_is_not_waited_for_and_takes_part_again_after_rejoining()
    {
        var d = Up(Spec(rounds: 40, perRound: 2, min: 1), "a", "b");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        d.Update(U("a", r0), T0);
        var agg = Assert.IsType<AggregateRound>(d.ClientDown("b", T0));            // b crashed: a's update is all there will be
        Assert.Equal(["a"], agg.Updates.Select(u => u.ClientId));
        Assert.Null(d.ClientUp("b", T0));                                          // b restarts while the round aggregates
        var r1 = Assert.IsType<StartRound>(d.Aggregated(T0));
        Assert.Equal(["a", "b"], r1.Clients);
    }

    static ClientUpdate Masked(string id, StartRound r) =>
        new(id, r.Round, r.Attempt, [], [1L, 2L], 10, new Dictionary<string, double>(), 100);

    /// <summary>Every sampled client of <paramref name="r"/> sends its key; the last one's answer is returned.</summary>
    static FederatedCommand? Keys(FederatedStageDriver d, StartRound r)
    {
        FederatedCommand? last = null;
        foreach (var id in r.Clients) last = d.Key(id, r.Round, r.Attempt, [(byte)id[0]], weight: id[0] - 'a' + 1, bytes: 50);
        return last;
    }

    [Fact]
    public void Under_secure_aggregation_the_keys_go_out_once_all_are_in_and_only_masked_updates_count()
    {
        var d = Up(Spec(perRound: 3, min: 2, secure: true), "a", "b", "c", "d");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        string outsider = new[] { "a", "b", "c", "d" }.Except(r0.Clients).Single();
        Assert.Null(d.Update(Masked(r0.Clients[0], r0), T0));                             // masked before the keys went out
        Assert.Null(d.Key(outsider, 0, 0, [9], 1, 50));                                    // not sampled
        Assert.Null(d.Key(r0.Clients[0], 0, 0, [1], 0, 50));                               // no weight
        Assert.Null(d.Key(r0.Clients[0], 0, 0, [1], 1, 50));
        Assert.Null(d.Key(r0.Clients[0], 0, 0, [2], 5, 50));                               // a second key from the same client
        Assert.Null(d.Key(r0.Clients[1], 0, 1, [1], 1, 50));                               // another attempt
        Assert.Null(d.Key(r0.Clients[1], 0, 0, [(byte)'x'], 2, 50));
        var keys = Assert.IsType<ExchangeKeys>(d.Key(r0.Clients[2], 0, 0, [(byte)'y'], 3, 50));
        Assert.Equal(r0.Clients, keys.Clients);
        Assert.Equal(r0.Clients.Order(StringComparer.Ordinal), keys.PublicKeys.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([1], keys.PublicKeys[r0.Clients[0]]);                                 // the first key kept
        Assert.Equal(6.0, keys.TotalWeight);
        Assert.Null(d.Key(r0.Clients[2], 0, 0, [1], 1, 50));                               // after the exchange: late
        Assert.Null(d.Update(U(r0.Clients[0], r0), T0));                                   // plain under secure aggregation
        Assert.Equal(3L, d.Malformed);
        Assert.Null(d.Update(Masked(r0.Clients[0], r0), T0));
        Assert.Null(d.Update(Masked(r0.Clients[1], r0), T0));
        var agg = Assert.IsType<AggregateRound>(d.Update(Masked(r0.Clients[2], r0), T0));
        Assert.Equal(3, agg.Updates.Count);
        Assert.Equal(3 * 100 + 3 * 50, agg.Figures["federated/bytes_received"]);           // the keys' bytes count too
        // The next round needs fresh keys: the last round's exchange is not carried over.
        var r1 = Assert.IsType<StartRound>(d.Aggregated(T0));
        Assert.Null(d.Update(Masked(r1.Clients[0], r1), T0));
        Assert.IsType<ExchangeKeys>(Keys(d, r1));
    }

    [Fact]
    public void A_client_that_says_it_failed_is_not_waited_for_and_its_reason_names_the_failure()
    {
        var d = Up(Spec(perRound: 3, min: 3), "a", "b", "c");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        d.Update(U("a", r0), T0);
        Assert.Null(d.Failed("a", 0, 0, "answered already", T0));                  // ignored: its update is in
        Assert.Null(d.Failed("b", 0, 1, "another attempt", T0));                   // ignored: not this attempt
        Assert.Null(d.Failed("b", 0, 0, "out of memory", T0));
        // The last one answers and the round closes at once, not at the deadline: too few, so another attempt.
        var r1 = Assert.IsType<StartRound>(d.Update(U("c", r0), T0));
        Assert.Equal(1, r1.Attempt);
        FederatedCommand? last = null;
        foreach (var id in r1.Clients) last = d.Failed(id, 0, 1, $"{id} is broken", T0) ?? last;
        var r2 = Assert.IsType<StartRound>(last);
        foreach (var id in r2.Clients) last = d.Failed(id, 0, 2, $"{id} is broken", T0) ?? last;
        var fail = Assert.IsType<FailStage>(last);
        Assert.Contains("0 of 3 sampled clients answered in time", fail.Reason);
        Assert.Contains("client a failed: a is broken; client b failed: b is broken", fail.Reason);

        // Under secure aggregation a failure restarts the round at once.
        var s = Up(Spec(perRound: 2, min: 2, secure: true), "a", "b", "c");
        var s0 = Assert.IsType<StartRound>(s.Begin(T0));
        Assert.Equal(1, Assert.IsType<StartRound>(s.Failed(s0.Clients[0], 0, 0, "masking failed", T0)).Attempt);
    }

    [Fact]
    public void Without_secure_aggregation_keys_and_masked_updates_are_not_taken()
    {
        var d = Up(Spec(), "a", "b");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        Assert.Null(Keys(d, r0));
        Assert.Null(d.Update(Masked("a", r0), T0));
        Assert.Equal(1L, d.Malformed);
        Assert.Null(d.Update(U("a", r0), T0));
        Assert.IsType<AggregateRound>(d.Update(U("b", r0), T0));
    }

    [Fact]
    public void Under_secure_aggregation_a_client_lost_after_masking_restarts_the_round_without_it()
    {
        var d = Up(Spec(perRound: 3, min: 2, secure: true), "a", "b", "c");
        var r0 = Assert.IsType<StartRound>(d.Begin(T0));
        Assert.IsType<ExchangeKeys>(Keys(d, r0));
        d.Update(Masked("a", r0), T0);
        var retry = Assert.IsType<StartRound>(d.ClientDown("b", T0));
        Assert.Equal((0, 1), (retry.Round, retry.Attempt));
        Assert.Equal(["a", "c"], retry.Clients);
        Assert.Null(d.Update(Masked("a", retry), T0));                                      // the old exchange does not hold for the new attempt
        Assert.IsType<ExchangeKeys>(Keys(d, retry));
        d.Update(Masked("a", retry), T0);
        // At the deadline, with one masked update missing, nothing can be unmasked: another attempt.
        Assert.IsType<StartRound>(d.Tick(retry.Deadline));
    }

    [Fact]
    public void Epsilon_is_reported_after_every_round_under_privacy_and_grows()
    {
        var d = Up(Spec(rounds: 3, perRound: 2, min: 2, privacy: new ClientPrivacy(1, 1.0, 1e-5), clients: 4), "a", "b", "c", "d");
        var start = Assert.IsType<StartRound>(d.Begin(T0));
        var eps = new List<double>();
        for (int r = 0; r < 3; r++)
        {
            d.Update(U(start.Clients[0], start), T0);
            var agg = Assert.IsType<AggregateRound>(d.Update(U(start.Clients[1], start), T0));
            eps.Add(agg.Figures["privacy/epsilon"]);
            if (d.Aggregated(T0) is StartRound next) start = next;
        }
        Assert.True(eps[0] > 0 && eps[0] < eps[1] && eps[1] < eps[2], string.Join(", ", eps));
        var expected = new RdpAccountant();
        expected.Step(0.5, 1.0, 3);
        Assert.Equal(expected.Epsilon(1e-5), eps[2], 9);
    }

    [Property(MaxTest = 80)]
    public void Whatever_arrives_in_whatever_order_each_round_aggregates_distinct_sampled_clients_at_least_min_clients(int seed)
    {
        var rng = new Random(seed);
        var ids = Enumerable.Range(0, 2 + rng.Next(6)).Select(i => $"c{i}").ToArray();
        int perRound = 1 + rng.Next(ids.Length), min = 1 + rng.Next(perRound);
        var d = new FederatedStageDriver(Spec(rounds: 3, perRound: perRound, min: min) with { RoundRetries = 50 }, seed);
        foreach (var id in ids) d.ClientUp(id, T0);
        var now = T0;
        FederatedCommand? cmd = d.Begin(now);
        StartRound? current = cmd as StartRound;
        for (int events = 0; events < 400 && cmd is not FinishStage and not FailStage; events++)
        {
            now = now.AddSeconds(rng.Next(8));
            if (current is null) break;
            var id = rng.Next(5) == 0 ? ids[rng.Next(ids.Length)] : current.Clients[rng.Next(current.Clients.Count)];
            cmd = rng.Next(4) switch
            {
                0 => d.Tick(now),
                1 => d.Update(U(id, current with { Attempt = Math.Max(0, current.Attempt - rng.Next(2)) }), now),
                _ => d.Update(U(id, current), now),
            };
            if (cmd is AggregateRound agg)
            {
                Assert.Equal(agg.Updates.Count, agg.Updates.Select(u => u.ClientId).Distinct().Count());
                Assert.True(agg.Updates.Count >= min);
                Assert.All(agg.Updates, u => Assert.Contains(u.ClientId, current.Clients));
                Assert.All(agg.Updates, u => Assert.Equal((current.Round, current.Attempt), (u.Round, u.Attempt)));
                cmd = d.Aggregated(now);
            }
            if (cmd is StartRound next) current = next;
        }
    }
}
