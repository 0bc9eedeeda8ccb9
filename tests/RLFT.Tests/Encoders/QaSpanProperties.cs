using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Rlft.Policy.Encoders;
using Rlft.Policy.Tokenization;

namespace Rlft.Tests.Encoders;

/// <summary>
/// Extractive QA over random contexts, with the WordPiece (BERT) and byte-level BPE (RoBERTa) tokenizers: offsets
/// point at the characters each token came from, windows cover the context within their length, an answer labelled in a
/// window decodes back to its characters, and the decoded best span is valid and the best valid one.
/// </summary>
[Properties(MaxTest = 60)]
public class QaSpanProperties
{
    static readonly Lazy<EncoderTokenizer> Bert = new(() => Tokenizer("bert"));
    static readonly Lazy<EncoderTokenizer> Roberta = new(() => Tokenizer("roberta"));

    static EncoderTokenizer Tokenizer(string arch)
    {
        string dir = TinyEncoders.TempDir();
        EncoderPresets.WriteTokenizer(arch, "tiny", dir, TinyEncoders.Corpus, arch == "roberta" ? 300 : 120);
        return EncoderTokenizer.Load(dir);
    }

    static readonly string[] Words =
        ["the", "movie", "was", "great", "Anna", "lives", "in", "PARIS", "bobrome", "songmeal", "lovely", "warm", ".", ",", "!", "?", ";", "cold;sad", "it!s", "bob?", "hotelbook"];
    static readonly string[] Spaces = [" ", " ", " ", "  ", "\n", " \t"];

    /// <summary>A context from word and spacing picks; leading spaces included sometimes.</summary>
    static string Context(int[] picks)
    {
        var sb = new System.Text.StringBuilder();
        foreach (int p in picks)
        {
            int w = Math.Abs(p % Words.Length), s = Math.Abs(p / Words.Length % Spaces.Length);
            if (sb.Length > 0 || s == 4) sb.Append(Spaces[s]);
            sb.Append(Words[w]);
        }
        return sb.ToString();
    }

    static EncoderTokenizer Pick(bool roberta) => roberta ? Roberta.Value : Bert.Value;

    [Property]
    public void Offsets_are_the_characters_each_token_came_from(NonEmptyArray<int> picks, bool roberta)
    {
        var tok = Pick(roberta);
        string context = Context(picks.Get);
        var (ids, offsets) = tok.EncodeWithOffsets(context);
        Assert.Equal(tok.Inner.Encode(context, addSpecialTokens: false), ids);
        int previousEnd = 0;
        for (int k = 0; k < ids.Length; k++)
        {
            var (s, e) = offsets[k];
            string piece = tok.Inner.Decode([ids[k]]).Trim().Replace("##", "");
            // A token of whitespace alone (byte-level BPE's lone 'Ġ') covers no characters of the text.
            Assert.True(s >= previousEnd && (e > s || piece.Length == 0) && e <= context.Length, $"token {k} of '{context}': [{s}, {e})");
            Assert.True(string.Equals(context[s..e], piece, StringComparison.OrdinalIgnoreCase), $"token {k} of '{context}' is '{piece}', its span [{s}, {e}) '{context[s..e]}'");
            previousEnd = e;
        }
    }

    [Property]
    public void Windows_fit_cover_the_context_and_overlap_by_at_most_the_stride(NonEmptyArray<int> picks, bool roberta, PositiveInt extra, NonNegativeInt stride)
    {
        var tok = Pick(roberta);
        string context = Context(picks.Get), question = "where does anna live?";
        int qLen = tok.Inner.Encode(question, addSpecialTokens: false).Length;
        int maxLength = qLen + tok.Template.Added(pair: true) + 1 + extra.Get % 20;
        var windows = QaSpans.Windows(tok, question, context, maxLength, stride.Get % 12, maxQueryLength: 64);
        var (ids, offsets) = tok.EncodeWithOffsets(context);
        var seen = new List<(int, int)>();
        (int, int)? previousFirst = null;
        foreach (var w in windows)
        {
            Assert.True(w.Input.Length <= maxLength && w.Spans.Length == w.Input.Length, $"window of {w.Input.Length} tokens, max {maxLength}");
            var spans = w.Spans.Where(s => s is not null).Select(s => s!.Value).ToList();
            Assert.True(spans.Count > 0 || ids.Length == 0, "a window without context");
            int overlap = spans.Count(seen.Contains);
            Assert.True(overlap <= stride.Get % 12, $"overlap {overlap} > stride {stride.Get % 12}");
            if (previousFirst is { } pf && spans.Count > 0) Assert.True(spans[0].CompareTo(pf) > 0, "a window that does not advance");
            if (spans.Count > 0) previousFirst = spans[0];
            seen.AddRange(spans.Where(s => !seen.Contains(s)));
        }
        Assert.Equal(offsets.Distinct().Order(), seen.Order());
    }

    [Property]
    public bool An_answer_labelled_in_a_window_decodes_back_to_its_characters(NonEmptyArray<int> picks, bool roberta, PositiveInt from, PositiveInt length, PositiveInt extra)
    {
        var tok = Pick(roberta);
        string context = Context(picks.Get);
        var (_, offsets) = tok.EncodeWithOffsets(context);
        var words = Enumerable.Range(0, offsets.Length).Where(k => offsets[k].End > offsets[k].Start).ToList();   // tokens with characters
        if (words.Count == 0) return true;
        int a = from.Get % words.Count, first = words[a], last = words[Math.Min(words.Count - 1, a + length.Get % 6)];
        int answerStart = offsets[first].Start, answerEnd = offsets[last].End;
        int room = tok.Inner.Encode("what?", addSpecialTokens: false).Length + tok.Template.Added(pair: true);
        var windows = QaSpans.Windows(tok, "what?", context, maxLength: room + 1 + extra.Get % 24, stride: 4, maxQueryLength: 8);
        int found = 0;
        foreach (var w in windows)
        {
            var (s, e) = QaSpans.Label(w, answerStart, answerEnd);
            bool holds = w.Spans.Contains(offsets[first]) && w.Spans.Contains(offsets[last]);
            if (!holds) { if ((s, e) != (0, 0)) return false; continue; }
            found++;
            if (w.Spans[s] != offsets[first] || w.Spans[e] != offsets[last]) return false;
            // Logits that point at the labelled tokens decode to exactly the answer's characters.
            var start = new float[w.Input.Length]; var end = new float[w.Input.Length];
            start[s] = 10; end[e] = 10;
            var answer = QaSpans.Best(start, end, w, context, maxAnswerLength: 64);
            if (answer is null || answer.Start != answerStart || answer.End != answerEnd || answer.Text != context[answerStart..answerEnd]) return false;
        }
        return found > 0 || windows.Count > 1;   // a context in one window holds every answer
    }

    [Property]
    public bool The_best_span_is_valid_and_beats_every_valid_span(NonEmptyArray<int> picks, bool roberta, int seed, PositiveInt maxAnswer)
    {
        var tok = Pick(roberta);
        string context = Context(picks.Get);
        var window = QaSpans.Windows(tok, "who?", context, maxLength: 40, stride: 8, maxQueryLength: 8)[0];
        var rng = new Random(seed);
        var start = Enumerable.Range(0, window.Input.Length).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        var end = Enumerable.Range(0, window.Input.Length).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        int maxLength = 1 + maxAnswer.Get % 5;
        var answer = QaSpans.Best(start, end, window, context, maxLength);
        var ctx = Enumerable.Range(0, window.Input.Length).Where(i => window.Spans[i] is { } s && s.End > s.Start).ToList();   // context tokens with characters
        if (answer is null) return ctx.Count == 0;
        if (!ctx.Contains(answer.StartToken) || !ctx.Contains(answer.EndToken)) return false;
        if (answer.StartToken > answer.EndToken || answer.EndToken - answer.StartToken + 1 > maxLength) return false;
        if (answer.Start > answer.End || answer.Text != context[answer.Start..answer.End]) return false;
        if (answer.Score <= 0 || answer.Score > 1) return false;
        double best = start[answer.StartToken] + (double)end[answer.EndToken];
        foreach (int i in ctx)
            foreach (int j in ctx)
                if (i <= j && j - i + 1 <= maxLength && start[i] + (double)end[j] > best + 1e-9) return false;
        return true;
    }
}
