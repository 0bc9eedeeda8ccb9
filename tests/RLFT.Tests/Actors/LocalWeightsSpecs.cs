// The TestKit's Expect* calls take an optional CancellationToken but end on their own timeouts (akka.test.single-expect-default).
#pragma warning disable xUnit1051

using Rlft.Actors.Protocol;
using Rlft.Actors.Runtime;
using Rlft.Actors.WeightSync;
using Rlft.Policy.Models;
using Rlft.Policy.Training;
using static TorchSharp.torch;

namespace Rlft.Tests.Actors;

/// <summary>
/// Weights shelved in the learner's process: local replicas are pointed at the shelf (no bytes are ever made for
/// them); a replica that takes bytes gets them packed from the shelf on demand, chunk by chunk, equal to the shelved
/// tensors bit for bit.
/// </summary>
public sealed class LocalWeightsSpecs(ITestOutputHelper output) : ActorSpec(output)
{
    static Dictionary<string, Tensor> Tensors(float start) => new()
    {
        ["a.weight"] = arange(start, start + 12, 1f).view(3, 4),
        ["b.bias"] = tensor(new[] { start, -start }),
    };

    [Fact]
    public async Task A_local_replica_is_pointed_at_the_shelf_and_a_remote_one_gets_the_same_tensors_as_bytes()
    {
        var shelf = LocalWeightShelf.For(Sys);
        var learnerTensors = Tensors(1f);
        shelf.Put(LocalWeights.Live(WeightKind.Policy, 3, learnerTensors, new Dictionary<string, string> { ["config.json"] = "{}" }));
        var server = Sys.ActorOf(WeightServerActor.Props());
        server.Tell(new ServeShelved(WeightKind.Policy, 3, false, 3), Akka.Actor.ActorRefs.NoSender);
        var replica = CreateTestProbe();

        server.Tell(new QueryWeights(WeightKind.Policy, -1, AcceptsLocal: true), replica.Ref);
        Assert.Equal(new LocalWeightsReady(WeightKind.Policy, 3, false, 3), await replica.ExpectMsgAsync<LocalWeightsReady>());
        using (var lease = shelf.Acquire(WeightKind.Policy, 3))
            Assert.All(learnerTensors, kv => Assert.True(ParameterSharing.SameStorage(kv.Value, lease!.Weights.Tensors[kv.Key]), kv.Key));

        // Without AcceptsLocal (a replica that takes bytes, as every remote one does): the announcement, then chunks.
        server.Tell(new QueryWeights(WeightKind.Policy), replica.Ref);
        var announced = await replica.ExpectMsgAsync<WeightsPublished>();
        var assembler = new WeightAssembler(announced);
        for (int i = 0; i < announced.ChunkCount; i++)
        {
            server.Tell(new FetchChunk(WeightKind.Policy, 3, i), replica.Ref);
            Assert.True(assembler.Accept(await replica.ExpectMsgAsync<WeightChunk>()));
        }
        var contents = ModelBlob.Unpack(assembler.Assemble());
        Assert.Equal("{}", contents.Files["config.json"]);
        Assert.All(learnerTensors, kv => Assert.True(kv.Value.Equals(contents.Tensors[kv.Key]), kv.Key));
    }

    [Fact]
    public void A_leased_version_stays_readable_after_a_newer_one_replaces_it_and_a_base_reshelved_stays_the_base()
    {
        var shelf = new LocalWeightShelf();
        var files = new Dictionary<string, string>();
        shelf.Put(LocalWeights.Snapshot(WeightKind.Policy, 1, Tensors(1f), files));
        var lease = shelf.Acquire(WeightKind.Policy, 1)!;
        shelf.Put(LocalWeights.Snapshot(WeightKind.Policy, 2, Tensors(2f), files));
        Assert.False(shelf.Has(WeightKind.Policy, 1));
        Assert.Equal(1f, lease.Weights.Tensors["a.weight"][0, 0].item<float>());   // still valid while leased
        lease.Dispose();
        Assert.Null(shelf.Acquire(WeightKind.Policy, 1));

        // Adapters on base 2, then the base shelved again (a stage start): the adapters stay the newest version.
        shelf.Put(LocalWeights.Snapshot(WeightKind.Policy, 5, Tensors(5f), files, adapterOnly: true, baseVersion: 2));
        shelf.Put(LocalWeights.Live(WeightKind.Policy, 2, Tensors(2f), files));
        Assert.Equal(5, shelf.Newest(WeightKind.Policy));
        Assert.True(shelf.Has(WeightKind.Policy, 2));
    }
}
