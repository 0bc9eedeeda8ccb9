using Akka.Actor;
using Rlft.Actors.Protocol;
using Rlft.Actors.WeightSync;

namespace Rlft.Actors.Runtime;

/// <summary>
/// The fetching side of weight sync, used inside an actor: asks for the chunks of an announced
/// version a few at a time, re-asks for any chunk that arrives corrupt, and yields the verified blob.
/// </summary>
internal sealed class WeightFetcher
{
    const int Window = 4;
    readonly WeightAssembler _assembler;
    readonly Queue<int> _toRequest;
    int _outstanding;

    public WeightsPublished Announcement => _assembler.Announcement;
    public int Refetched { get; private set; }

    public WeightFetcher(WeightsPublished announcement)
    {
        _assembler = new WeightAssembler(announcement);
        _toRequest = new Queue<int>(Enumerable.Range(0, announcement.ChunkCount));
    }

    /// <summary>Sends requests up to the window.</summary>
    public void Pump(IActorRef server, IActorRef self)
    {
        while (_outstanding < Window && _toRequest.Count > 0)
        {
            server.Tell(new FetchChunk(Announcement.Kind, Announcement.Version, _toRequest.Dequeue()), self);
            _outstanding++;
        }
    }

    /// <summary>Takes a chunk; returns the blob once every chunk has arrived intact, else null.</summary>
    public byte[]? Accept(WeightChunk chunk, IActorRef server, IActorRef self)
    {
        if (chunk.Version != Announcement.Version || chunk.Kind != Announcement.Kind) return null;
        _outstanding--;
        if (!_assembler.Accept(chunk))
        {
            Refetched++;
            if (chunk.Index >= 0 && chunk.Index < Announcement.ChunkCount) _toRequest.Enqueue(chunk.Index);
        }
        if (_assembler.IsComplete) return _assembler.Assemble();
        Pump(server, self);
        return null;
    }
}
