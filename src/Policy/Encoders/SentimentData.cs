namespace Rlft.Policy.Encoders;

/// <summary>One labelled classification example: a text, an optional second text, and the label's name.</summary>
internal sealed record LabelledText(string Text, string? Pair, string Label);

/// <summary>
/// The built-in sentiment data: short reviews of the built-in review task's items whose adjectives are all positive or
/// all negative, some of them negated ("was not great" is NEGATIVE), deterministic from a seed; held-out sets use
/// another seed. Tiny encoders learn it in seconds, so presets and tests run without downloads.
/// </summary>
internal static class SentimentData
{
    public static readonly string[] Labels = ["NEGATIVE", "POSITIVE"];
    static readonly string[] Items = ["movie", "book", "song", "game", "meal", "show", "album", "hotel", "park", "class", "trip", "film"];
    static readonly string[] Positive = ["great", "good", "fun", "lovely", "superb", "nice", "bright", "warm"];
    static readonly string[] Negative = ["bad", "dull", "awful", "boring", "poor", "sad", "weak", "cold"];
    static readonly string[] Adverbs = ["very", "quite", "really", "so", "rather"];

    /// <summary><paramref name="count"/> examples, half of each label in expectation.</summary>
    public static List<LabelledText> Generate(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<LabelledText>(count);
        for (int i = 0; i < count; i++)
        {
            bool positive = rng.Next(2) == 1;
            bool negated = rng.NextDouble() < 0.25;
            var words = positive ^ negated ? Positive : Negative;   // a negated sentence uses the opposite words
            string Adj() => words[rng.Next(words.Length)];
            string item = Items[rng.Next(Items.Length)];
            string not = negated ? "not " : "";
            string text = rng.Next(3) switch
            {
                0 => $"The {item} was {not}{Adj()} and {Adj()}.",
                1 => $"The {item} was {not}{Adverbs[rng.Next(Adverbs.Length)]} {Adj()}!",
                _ => $"It was {(negated ? "not " : "")}a {Adj()} {item}, {Adj()} too.",
            };
            list.Add(new LabelledText(text, null, Labels[positive ? 1 : 0]));
        }
        return list;
    }

    /// <summary>Text to train a tokenizer on: every word the data uses.</summary>
    public static string Corpus() => string.Join("\n", Generate(400, seed: 12345).Select(x => x.Text));
}
