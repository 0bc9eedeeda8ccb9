using System.Text;
using System.Text.RegularExpressions;

namespace Rlft.Policy.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet: every byte maps to a printable character (printable Latin-1 bytes to themselves,
/// the rest to U+0100 onwards), so BPE runs on strings and any UTF-8 text is representable.
/// </summary>
internal static partial class ByteLevel
{
    public static readonly char[] ByteToChar = BuildTable();

    static char[] BuildTable()
    {
        var table = new char[256];
        var direct = new bool[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int next = 0;
        for (int b = 0; b < 256; b++) table[b] = direct[b] ? (char)b : (char)(256 + next++);
        return table;
    }

    /// <summary>The pre-tokenizer split tokenizers' ByteLevel uses with use_regex = true (GPT-2's pattern).</summary>
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    public static partial Regex Pattern();

    public static string Map(string piece)
    {
        var bytes = Encoding.UTF8.GetBytes(piece);
        var sb = new StringBuilder(bytes.Length);
        foreach (var b in bytes) sb.Append(ByteToChar[b]);
        return sb.ToString();
    }
}
