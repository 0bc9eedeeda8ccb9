using System.Buffers;
using TorchSharp;
using static TorchSharp.torch;

namespace Rlft.Policy.Collectives;

/// <summary>
/// The bytes of a contiguous CPU tensor as <see cref="Memory{T}"/>, without a copy, so frames are sent from and received
/// into the tensor's own (native, unmoving) memory. Valid while the tensor lives; at most 2 GiB (callers cut segments).
/// </summary>
internal sealed unsafe class TensorMemory : MemoryManager<byte>
{
    readonly byte* _pointer;
    readonly int _length;

    public TensorMemory(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous()) throw new ArgumentException("only a contiguous CPU tensor's memory can be framed directly");
        var span = tensor.bytes;
        fixed (byte* p = span) _pointer = p;
        _length = span.Length;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);
    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);
    public override void Unpin() { }
    protected override void Dispose(bool disposing) { }
}
