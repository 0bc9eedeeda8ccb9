using System.Runtime.InteropServices;
using System.Text;

namespace Rlft.Actors.Serialization;

/// <summary>Little-endian binary writer for bulk payloads: arrays go as one block copy.</summary>
internal sealed class WireWriter : IDisposable
{
    readonly MemoryStream _stream = new();
    readonly BinaryWriter _w;

    public WireWriter() => _w = new BinaryWriter(_stream, Encoding.UTF8, leaveOpen: true);

    public void Write(int v) => _w.Write(v);
    public void Write(long v) => _w.Write(v);
    public void Write(double v) => _w.Write(v);
    public void Write(bool v) => _w.Write(v);
    public void Write(string s) => _w.Write(s);
    public void WriteNullable(string? s)
    {
        _w.Write(s is not null);
        if (s is not null) _w.Write(s);
    }
    public void Write(int[] a) { _w.Write(a.Length); _w.Write(MemoryMarshal.AsBytes(a.AsSpan())); }
    public void Write(float[] a) { _w.Write(a.Length); _w.Write(MemoryMarshal.AsBytes(a.AsSpan())); }
    public void Write(long[] a) { _w.Write(a.Length); _w.Write(MemoryMarshal.AsBytes(a.AsSpan())); }
    public void Write(byte[] a) { _w.Write(a.Length); _w.Write(a); }
    public void Write(string[] a) { _w.Write(a.Length); foreach (var s in a) _w.Write(s); }
    public void Write<T>(T[] items, Action<WireWriter, T> write) { _w.Write(items.Length); foreach (var i in items) write(this, i); }
    public void Write(Dictionary<string, double> d) { _w.Write(d.Count); foreach (var (k, v) in d) { _w.Write(k); _w.Write(v); } }

    public byte[] ToArray() { _w.Flush(); return _stream.ToArray(); }
    public void Dispose() { _w.Dispose(); _stream.Dispose(); }
}

/// <summary>Reader matching <see cref="WireWriter"/>; lengths are checked against the remaining bytes.</summary>
internal sealed class WireReader
{
    readonly byte[] _data;
    int _pos;

    public WireReader(byte[] data) => _data = data;

    Span<byte> Take(int n)
    {
        if (n < 0 || _pos + n > _data.Length) throw new FormatException($"payload truncated: need {n} bytes at {_pos} of {_data.Length}");
        var s = _data.AsSpan(_pos, n);
        _pos += n;
        return s;
    }

    public int Int() => BitConverter.ToInt32(Take(4));
    public long Long() => BitConverter.ToInt64(Take(8));
    public double Double() => BitConverter.ToDouble(Take(8));
    public bool Bool() => Take(1)[0] != 0;
    public string Str()
    {
        // BinaryWriter's 7-bit encoded length prefix.
        int length = 0, shift = 0;
        byte b;
        do { b = Take(1)[0]; length |= (b & 0x7f) << shift; shift += 7; } while ((b & 0x80) != 0 && shift < 35);
        return Encoding.UTF8.GetString(Take(length));
    }
    public string? NullableStr() => Bool() ? Str() : null;
    public int[] Ints() { int n = Count(4); return MemoryMarshal.Cast<byte, int>(Take(n * 4)).ToArray(); }
    public float[] Floats() { int n = Count(4); return MemoryMarshal.Cast<byte, float>(Take(n * 4)).ToArray(); }
    public long[] Longs() { int n = Count(8); return MemoryMarshal.Cast<byte, long>(Take(n * 8)).ToArray(); }
    public byte[] Bytes() { int n = Count(1); return Take(n).ToArray(); }
    public string[] Strings() { int n = Count(1); var a = new string[n]; for (int i = 0; i < n; i++) a[i] = Str(); return a; }
    public T[] Array<T>(Func<WireReader, T> read) { int n = Count(1); var a = new T[n]; for (int i = 0; i < n; i++) a[i] = read(this); return a; }
    public Dictionary<string, double> Dict() { int n = Count(9); var d = new Dictionary<string, double>(n); for (int i = 0; i < n; i++) d[Str()] = Double(); return d; }

    int Count(int minElementSize)
    {
        int n = Int();
        if (n < 0 || (long)n * minElementSize > _data.Length - _pos) throw new FormatException($"payload corrupt: count {n} exceeds the remaining {_data.Length - _pos} bytes");
        return n;
    }

    public void End()
    {
        if (_pos != _data.Length) throw new FormatException($"payload has {_data.Length - _pos} trailing bytes");
    }
}
