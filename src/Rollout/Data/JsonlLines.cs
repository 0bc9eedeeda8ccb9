using System.Text;

namespace Rlft.Rollout.Data;

/// <summary>
/// The lines of a JSONL file as strings, checked to be valid UTF-8 line by line (a bad line is reported by number,
/// the others still read). Blank lines are skipped, a UTF-8 byte-order mark and \r\n endings are accepted.
/// </summary>
static class JsonlLines
{
    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>(line number, text) for each non-blank line; text is null when the line is not valid UTF-8.</summary>
    public static IEnumerable<(int Line, string? Text)> Read(string path)
    {
        using var stream = new BufferedStream(File.OpenRead(path), 1 << 16);
        var buffer = new List<byte>(256);
        int lineNo = 0;
        bool first = true;
        while (true)
        {
            int b = stream.ReadByte();
            if (b >= 0 && b != '\n') { buffer.Add((byte)b); continue; }
            if (b < 0 && buffer.Count == 0) yield break;
            lineNo++;
            var bytes = buffer.ToArray();
            buffer.Clear();
            int start = first && bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
            first = false;
            int end = bytes.Length > start && bytes[^1] == '\r' ? bytes.Length - 1 : bytes.Length;
            string? text;
            try { text = Strict.GetString(bytes, start, end - start); }
            catch (DecoderFallbackException) { text = null; }
            if (text is null || !string.IsNullOrWhiteSpace(text)) yield return (lineNo, text);
            if (b < 0) yield break;
        }
    }
}
