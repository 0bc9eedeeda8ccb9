using System.Security.Cryptography;
using System.Text;

namespace Rlft.Policy.Training;

/// <summary>
/// Pairwise-masked secure aggregation (the masking layer of Bonawitz et al., 2017, "Practical Secure Aggregation for
/// Privacy-Preserving Machine Learning", without its secret-shared recovery). Each pair of clients (i, j) agrees a
/// secret by elliptic-curve Diffie–Hellman, derives a per-round seed from it with HKDF-SHA256, and expands the seed
/// into a mask with AES-256 in counter mode; the client with the smaller id adds the mask, the other subtracts it.
/// Updates are encoded in fixed point (<see cref="FractionBits"/> fractional bits) and summed as 64-bit integers
/// modulo 2⁶⁴, so the masks cancel exactly — bit for bit — in the sum of all the round's masked updates, and any
/// one masked update alone is uniformly distributed. The server learns only the sum. If a client drops after the
/// masks are agreed, its masks do not cancel: the round is restarted without it (Bonawitz et al. recover the dropped
/// client's masks from Shamir shares instead; that is left out).
/// The curve is NIST P-256: .NET's ECDiffieHellman has no X25519 on Linux.
/// </summary>
internal static class SecureAggregation
{
    /// <summary>Fixed-point fractional bits: a resolution of 2⁻²⁴ ≈ 6e-8, below fp32's for values near 1.</summary>
    public const int FractionBits = 24;
    const double Scale = 1L << FractionBits;
    /// <summary>The largest magnitude an element may have: the sum of up to 2¹⁴ clients stays inside the signed 64-bit range.</summary>
    public const double MaxMagnitude = 1L << 24;

    /// <summary>A fresh key pair for one round's key agreement.</summary>
    public static ECDiffieHellman NewKey() => ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The public half of <paramref name="key"/>, as SubjectPublicKeyInfo bytes (what the other clients receive).</summary>
    public static byte[] PublicKey(ECDiffieHellman key) => key.PublicKey.ExportSubjectPublicKeyInfo();

    /// <summary>
    /// The seed of the mask between <paramref name="myId"/> and <paramref name="peerId"/> in <paramref name="round"/>:
    /// HKDF-SHA256 over the ECDH secret, salted by the round, with both ids (in order) as the context; both ends get the same.
    /// </summary>
    public static byte[] PairSeed(ECDiffieHellman mine, byte[] peerPublicKey, string myId, string peerId, int round)
    {
        using var peer = ECDiffieHellman.Create();
        peer.ImportSubjectPublicKeyInfo(peerPublicKey, out _);
        var secret = mine.DeriveRawSecretAgreement(peer.PublicKey);
        var (lo, hi) = string.CompareOrdinal(myId, peerId) < 0 ? (myId, peerId) : (peerId, myId);
        var info = Encoding.UTF8.GetBytes($"rlft secure aggregation\0{lo}\0{hi}");
        return HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, 32, salt: BitConverter.GetBytes(round), info: info);
    }

    /// <summary><paramref name="length"/> pseudorandom 64-bit words from <paramref name="seed"/>: AES-256 of the block counter 0, 1, 2, ….</summary>
    public static ulong[] MaskStream(byte[] seed, int length)
    {
        using var aes = Aes.Create();
        aes.Key = seed;
        int blocks = (length + 1) / 2;
        var counters = new byte[blocks * 16];
        for (int b = 0; b < blocks; b++) BitConverter.TryWriteBytes(counters.AsSpan(b * 16, 8), (long)b);
        var stream = aes.EncryptEcb(counters, PaddingMode.None);
        var words = new ulong[length];
        Buffer.BlockCopy(stream, 0, words, 0, length * 8);
        return words;
    }

    /// <summary>Values in fixed point: round(v · 2^FractionBits). A value that is not finite or exceeds <see cref="MaxMagnitude"/> is refused.</summary>
    public static long[] Encode(ReadOnlySpan<float> values)
    {
        var encoded = new long[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            double v = values[i];
            if (!double.IsFinite(v) || Math.Abs(v) > MaxMagnitude)
                throw new ArgumentOutOfRangeException(nameof(values), $"secure aggregation: element {i} of the update is {v}, outside ±{MaxMagnitude} (clip updates first)");
            encoded[i] = (long)Math.Round(v * Scale);
        }
        return encoded;
    }

    /// <summary>A fixed-point sum back to floats (as the aggregate's fp32).</summary>
    public static float[] Decode(ReadOnlySpan<long> sum)
    {
        var values = new float[sum.Length];
        for (int i = 0; i < sum.Length; i++) values[i] = (float)(sum[i] / Scale);
        return values;
    }

    /// <summary>
    /// <paramref name="encoded"/> plus, for each peer, +mask if <paramref name="myId"/> sorts before the peer's id and
    /// −mask otherwise, all modulo 2⁶⁴. <paramref name="pairSeeds"/>: peer id → <see cref="PairSeed"/>.
    /// </summary>
    public static long[] Mask(long[] encoded, string myId, IReadOnlyDictionary<string, byte[]> pairSeeds)
    {
        var masked = (long[])encoded.Clone();
        foreach (var (peer, seed) in pairSeeds.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (peer == myId) throw new ArgumentException($"secure aggregation: client {myId} cannot mask against itself");
            var mask = MaskStream(seed, masked.Length);
            bool add = string.CompareOrdinal(myId, peer) < 0;
            for (int i = 0; i < masked.Length; i++)
                masked[i] = unchecked(add ? masked[i] + (long)mask[i] : masked[i] - (long)mask[i]);
        }
        return masked;
    }

    /// <summary>The sum modulo 2⁶⁴ of the masked updates: the sum of the encoded updates when every pair's masks are in it.</summary>
    public static long[] Sum(IEnumerable<long[]> masked)
    {
        long[]? sum = null;
        foreach (var m in masked)
        {
            sum ??= new long[m.Length];
            if (m.Length != sum.Length) throw new ArgumentException($"secure aggregation: masked updates of lengths {sum.Length} and {m.Length}");
            for (int i = 0; i < m.Length; i++) sum[i] = unchecked(sum[i] + m[i]);
        }
        return sum ?? throw new ArgumentException("secure aggregation: nothing to sum");
    }
}
