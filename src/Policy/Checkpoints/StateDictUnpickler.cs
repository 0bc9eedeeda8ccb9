using System.Buffers.Binary;
using System.Text;
using static TorchSharp.torch;

namespace Rlft.Policy.Checkpoints;

/// <summary>
/// A restricted unpickler for the <c>data.pkl</c> of a <c>torch.save</c> state dict. It builds values only (numbers,
/// strings, tuples, lists, dicts) and resolves a global against an allow-list the moment it is read, so a pickle that
/// names anything else (<c>os.system</c>, <c>builtins.eval</c>, a module class) is refused before it could matter:
/// no Python object is ever constructed, and no code runs. Tensors come out as <see cref="TensorRef"/>s (storage key,
/// dtype, offset, shape, stride); their bytes stay in the archive until a reader asks for them.
/// <para>
/// Razorvine.Pickle (which TorchSharp.PyBridge uses) is not used here: it turns an unknown global into a dictionary
/// rather than failing, offers no hook to refuse one, and keeps its constructors in one process-wide table that
/// PyBridge's own loader overwrites.
/// </para>
/// </summary>
internal sealed class StateDictUnpickler
{
    /// <summary>A global the allow-list admits: a rebuild function, OrderedDict, a storage type or a dtype.</summary>
    public sealed record Global(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }

    /// <summary>One storage of the archive (<c>data/&lt;Key&gt;</c>): <paramref name="Numel"/> elements of <paramref name="DType"/>.</summary>
    public sealed record StorageRef(string Key, ScalarType DType, long Numel);

    /// <summary>A tensor as <c>torch._utils._rebuild_tensor_v2</c> would build it: a strided view of a storage.</summary>
    public sealed record TensorRef(StorageRef Storage, long Offset, long[] Shape, long[] Stride);

    /// <summary>A dict or OrderedDict, in insertion order; <see cref="State"/> holds what BUILD set (torch's <c>_metadata</c>).</summary>
    public sealed class PyDict
    {
        readonly Dictionary<object, int> _index = new();
        public List<KeyValuePair<object, object?>> Items { get; } = [];
        public PyDict? State { get; set; }

        public void Set(object? key, object? value)
        {
            if (key is null || key is PyDict || key is List<object?>) throw new InvalidDataException("a dict key that is not a string, number or tuple");
            if (_index.TryGetValue(key, out int i)) Items[i] = new(key, value);
            else { _index[key] = Items.Count; Items.Add(new(key, value)); }
        }
    }

    public static readonly IReadOnlyDictionary<string, ScalarType> StorageTypes = new Dictionary<string, ScalarType>
    {
        ["FloatStorage"] = ScalarType.Float32, ["HalfStorage"] = ScalarType.Float16, ["BFloat16Storage"] = ScalarType.BFloat16,
        ["DoubleStorage"] = ScalarType.Float64, ["LongStorage"] = ScalarType.Int64, ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16, ["CharStorage"] = ScalarType.Int8, ["ByteStorage"] = ScalarType.Byte, ["BoolStorage"] = ScalarType.Bool,
        // torch >= 2.0 may name the untyped byte storage; its numel is then a byte count.
        ["UntypedStorage"] = ScalarType.Byte,
    };

    static readonly HashSet<string> Allowed =
    [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        .. StorageTypes.Keys.Select(k => "torch." + k), "torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.TypedStorage",
        .. new[] { "float32", "float", "float16", "half", "bfloat16", "float64", "double", "int64", "long", "int32", "int", "int16", "short", "int8", "uint8", "bool" }
            .Select(d => "torch." + d),
    ];

    readonly byte[] _data;
    readonly string _source;
    int _pos;
    readonly List<object?> _stack = [];
    readonly List<int> _marks = [];
    readonly Dictionary<long, object?> _memo = [];
    readonly Dictionary<string, StorageRef> _storages = [];

    StateDictUnpickler(byte[] data, string source) { _data = data; _source = source; }

    /// <summary>Unpickles <paramref name="data"/>; errors are <see cref="InvalidDataException"/>s whose message starts with <paramref name="source"/>.</summary>
    public static object? Load(byte[] data, string source)
    {
        var unpickler = new StateDictUnpickler(data, source);
        try { return unpickler.Run(); }
        catch (Exception e) when (e is InvalidCastException or IndexOutOfRangeException or ArgumentOutOfRangeException or OverflowException)
        {
            throw new InvalidDataException($"{source}: malformed pickle ({e.GetType().Name} at byte {unpickler._pos})", e);
        }
    }

    InvalidDataException Bad(string what) => new($"{_source}: {what}");

    object? Run()
    {
        while (true)
        {
            byte op = Byte();
            switch (op)
            {
                case 0x80: Byte(); break;                                  // PROTO
                case 0x95: Take(8); break;                                 // FRAME: a length hint only
                case (byte)'.': return Pop();                              // STOP
                case (byte)'(': _marks.Add(_stack.Count); break;           // MARK
                case (byte)'0': Pop(); break;                              // POP
                case (byte)'1': PopMark(); break;                          // POP_MARK
                case (byte)'2': Push(Peek()); break;                       // DUP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': Push((long)Byte()); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case 0x8a: Push(Long(Take(Byte()))); break;                // LONG1
                case 0x8b: Push(Long(Take(Length(4)))); break;             // LONG4
                case (byte)'I':                                            // INT (protocol 0; 00/01 are bools)
                {
                    string line = Line();
                    Push(line == "00" ? false : line == "01" ? true : long.Parse(line, System.Globalization.CultureInfo.InvariantCulture));
                    break;
                }
                case (byte)'L': Push(long.Parse(Line().TrimEnd('L'), System.Globalization.CultureInfo.InvariantCulture)); break;
                case (byte)'G': Push(BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64BigEndian(Take(8)))); break;
                case (byte)'X': Push(Encoding.UTF8.GetString(Take(Length(4)))); break;   // BINUNICODE
                case 0x8c: Push(Encoding.UTF8.GetString(Take(Byte()))); break;           // SHORT_BINUNICODE
                case 0x8d: Push(Encoding.UTF8.GetString(Take(Length(8)))); break;        // BINUNICODE8
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(Length(4)))); break;  // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(Byte()))); break;    // SHORT_BINSTRING
                case (byte)'B': Push(Take(Length(4)).ToArray()); break;                  // BINBYTES
                case (byte)'C': Push(Take(Byte()).ToArray()); break;                     // SHORT_BINBYTES
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)'t': Push(PopMark().ToArray()); break;
                case 0x85: { var a = Pop(); Push(new[] { a }); break; }
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'l': Push(PopMark()); break;
                case (byte)'a': { var v = Pop(); As<List<object?>>(Peek(), "APPEND").Add(v); break; }
                case (byte)'e': { var items = PopMark(); As<List<object?>>(Peek(), "APPENDS").AddRange(items); break; }
                case (byte)'}': Push(new PyDict()); break;
                case (byte)'d': { var items = PopMark(); var d = new PyDict(); SetItems(d, items); Push(d); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); As<PyDict>(Peek(), "SETITEM").Set(k, v); break; }
                case (byte)'u': { var items = PopMark(); SetItems(As<PyDict>(Peek(), "SETITEMS"), items); break; }
                case (byte)'c': { string module = Line(), name = Line(); Push(Resolve(module, name)); break; }   // GLOBAL
                case 0x93: { var name = Pop(); var module = Pop(); Push(Resolve(As<string>(module, "STACK_GLOBAL"), As<string>(name, "STACK_GLOBAL"))); break; }
                case (byte)'R': { var args = As<object?[]>(Pop(), "REDUCE"); Push(Call(Pop(), args)); break; }
                case 0x81: { var args = As<object?[]>(Pop(), "NEWOBJ"); Push(Call(Pop(), args)); break; }
                case (byte)'b': Build(Pop(), Peek()); break;
                case (byte)'Q': Push(PersistentLoad(Pop())); break;        // BINPERSID
                case (byte)'q': _memo[Byte()] = Peek(); break;             // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break;
                case (byte)'p': _memo[long.Parse(Line(), System.Globalization.CultureInfo.InvariantCulture)] = Peek(); break;
                case 0x94: _memo[_memo.Count] = Peek(); break;             // MEMOIZE
                case (byte)'h': Push(Memo(Byte())); break;                 // BINGET
                case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                case (byte)'g': Push(Memo(long.Parse(Line(), System.Globalization.CultureInfo.InvariantCulture))); break;
                default: throw Bad($"pickle opcode 0x{op:x2} at byte {_pos - 1} is not one a state dict uses");
            }
        }
    }

    /// <summary>The allow-list: anything a state dict does not need is refused by name.</summary>
    Global Resolve(string module, string name)
    {
        string full = $"{module}.{name}";
        if (!Allowed.Contains(full)) throw Bad($"refuses pickle global '{full}'");
        return new Global(module, name);
    }

    object? Call(object? callable, object?[] args)
    {
        var g = callable as Global ?? throw Bad("REDUCE on something that is not a global");
        switch (g.ToString())
        {
            case "collections.OrderedDict":
                // OrderedDict() as torch writes it, or OrderedDict(()) as TorchSharp.PyBridge does.
                if (args.Length > 1 || args.Length == 1 && args[0] is not (object?[] { Length: 0 } or List<object?> { Count: 0 }))
                    throw Bad("collections.OrderedDict called with items");
                return new PyDict();
            case "torch._utils._rebuild_tensor_v2":
            {
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (args.Length < 4) throw Bad("_rebuild_tensor_v2 with fewer than 4 arguments");
                var storage = args[0] as StorageRef ?? throw Bad("_rebuild_tensor_v2 of something that is not a storage");
                long offset = Int(args[1]);
                long[] shape = As<object?[]>(args[2], "tensor size").Select(Int).ToArray(), stride = As<object?[]>(args[3], "tensor stride").Select(Int).ToArray();
                if (shape.Length != stride.Length) throw Bad($"a tensor of size [{string.Join(", ", shape)}] with stride [{string.Join(", ", stride)}]");
                if (offset < 0 || shape.Any(d => d < 0) || stride.Any(s => s < 0)) throw Bad("a negative tensor offset, size or stride");
                long last = shape.Any(d => d == 0) ? -1 : offset + shape.Zip(stride, (d, s) => (d - 1) * s).Sum();
                if (last >= storage.Numel) throw Bad($"a tensor reaches element {last} of storage {storage.Key}, which holds {storage.Numel}");
                return new TensorRef(storage, offset, shape, stride);
            }
            case "torch._utils._rebuild_parameter":
                // (data, requires_grad, backward_hooks): a Parameter is its tensor here.
                return args.Length >= 1 && args[0] is TensorRef t ? t : throw Bad("_rebuild_parameter of something that is not a tensor");
            default:
                throw Bad($"calls pickle global '{g}', which builds no part of a state dict");
        }
    }

    /// <summary>BUILD: torch sets a state dict's <c>_metadata</c> this way; nothing else may be built.</summary>
    void Build(object? state, object? target)
    {
        if (target is PyDict d && state is PyDict s) { d.State = s; return; }
        throw Bad("BUILD on something other than a dict");
    }

    /// <summary><c>('storage', storage_type, key, location, numel)</c>, as torch.save writes each storage once.</summary>
    StorageRef PersistentLoad(object? pid)
    {
        var t = As<object?[]>(pid, "persistent id");
        if (t.Length != 5 || t[0] as string != "storage") throw Bad("a persistent id that is not ('storage', type, key, location, numel)");
        var type = As<Global>(t[1], "storage type");
        if (!StorageTypes.TryGetValue(type.Name, out var dtype)) throw Bad($"storage type '{type}' names no dtype");
        string key = As<string>(t[2], "storage key");
        if (key.Length == 0 || key.Contains('/') || key.Contains('\\') || key.Contains("..")) throw Bad($"storage key '{key}' is not a file name");
        long numel = Int(t[4]);
        if (numel < 0) throw Bad($"storage {key} has {numel} elements");
        var storage = new StorageRef(key, dtype, numel);
        if (_storages.TryGetValue(key, out var seen) && seen != storage) throw Bad($"storage {key} is described twice, differently");
        return _storages[key] = storage;
    }

    static void SetItems(PyDict d, List<object?> items)
    {
        if (items.Count % 2 != 0) throw new InvalidCastException();
        for (int i = 0; i < items.Count; i += 2) d.Set(items[i], items[i + 1]);
    }

    T As<T>(object? value, string what) => value is T t ? t : throw Bad($"{what}: expected {typeof(T).Name}, found {value?.GetType().Name ?? "None"}");

    long Int(object? value) => value is long l ? l : throw Bad($"expected an integer, found {value?.GetType().Name ?? "None"}");

    object? Memo(long i) => _memo.TryGetValue(i, out var v) ? v : throw Bad($"pickle memo {i} read before it is written");

    static long Long(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0) return 0;
        if (bytes.Length > 8) throw new OverflowException();
        Span<byte> full = stackalloc byte[8];
        full.Fill((bytes[^1] & 0x80) != 0 ? (byte)0xff : (byte)0);   // sign-extend the two's complement
        bytes.CopyTo(full);
        return BinaryPrimitives.ReadInt64LittleEndian(full);
    }

    byte Byte() => _pos < _data.Length ? _data[_pos++] : throw Bad("pickle ends before STOP (truncated?)");

    ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Bad("pickle ends before STOP (truncated?)");
        var span = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    long Length(int bytes) => bytes == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Take(4)) : BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    string Line()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Bad("pickle ends before STOP (truncated?)");
        string line = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return line;
    }

    void Push(object? value) => _stack.Add(value);

    object? Peek() => _stack.Count > (_marks.Count > 0 ? _marks[^1] : 0) ? _stack[^1] : throw Bad("pickle stack underflow");

    object? Pop()
    {
        var v = Peek();
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Bad("pickle MARK missing");
        int at = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(at, _stack.Count - at);
        _stack.RemoveRange(at, _stack.Count - at);
        return items;
    }
}
