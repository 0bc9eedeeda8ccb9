namespace Rlft.Policy.Encoders;

/// <summary>
/// One extractive question-answering example in SQuAD's form: the gold answers as texts with their character
/// offsets into <see cref="Context"/> (the first is what training labels).
/// </summary>
internal sealed record QaExample(string Question, string Context, IReadOnlyList<string> Answers, IReadOnlyList<int> AnswerStarts);

/// <summary>
/// The built-in question-answering data: short contexts of facts about people (where they live, what they work as,
/// which pet they have, which colour they like), sometimes with a sentence of the built-in sentiment data between
/// them, and a question about one fact whose answer is one word of the context (each relation is stated once per context,
/// about one person). Deterministic from a seed; a held-out set uses another seed. Contexts run to about 60 tokens, so with
/// a short window a context spans several windows.
/// </summary>
internal static class QaData
{
    static readonly string[] Names = ["Anna", "Bob", "Carl", "Dora", "Eve", "Finn", "Gina", "Hugo", "Ida", "Jack", "Kim", "Leo"];

    /// <summary>A relation: how the context states it, how the question asks it, and its answers.</summary>
    sealed record Relation(Func<string, string, string> Fact, Func<string, string> Question, string[] Values);

    static readonly Relation[] Relations =
    [
        new((n, v) => $"{n} lives in {v}.", n => $"Where does {n} live?", ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Delhi", "Tokyo", "Quito"]),
        new((n, v) => $"{n} works as a {v}.", n => $"What does {n} work as?", ["baker", "nurse", "pilot", "farmer", "teacher", "driver", "painter", "judge"]),
        new((n, v) => $"{n} has a {v} at home.", n => $"What pet does {n} have?", ["dog", "cat", "horse", "parrot", "rabbit", "turtle", "goat", "snake"]),
        new((n, v) => $"The colour {n} likes best is {v}.", n => $"Which colour does {n} like?", ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]),
    ];

    /// <summary><paramref name="count"/> examples from <paramref name="seed"/>.</summary>
    public static List<QaExample> Generate(int count, int seed)
    {
        var rng = new Random(seed);
        var filler = SentimentData.Generate(64, seed + 7).Select(x => x.Text).ToArray();
        var list = new List<QaExample>(count);
        for (int i = 0; i < count; i++)
        {
            // 2–4 facts of distinct relations about distinct people, in random order; one of them is asked about.
            int facts = rng.Next(2, 5);
            var names = Enumerable.Range(0, Names.Length).OrderBy(_ => rng.Next()).Take(facts).ToList();
            var relations = Enumerable.Range(0, Relations.Length).OrderBy(_ => rng.Next()).Take(facts).ToList();
            var chosen = names.Zip(relations, (n, r) => (Name: n, Relation: r, Value: Relations[r].Values[rng.Next(Relations[r].Values.Length)])).ToList();
            var asked = chosen[rng.Next(chosen.Count)];
            var sentences = new List<string>();
            int answerStart = -1, length = 0;
            foreach (var (name, relation, value) in chosen)
            {
                if (rng.NextDouble() < 0.4) { sentences.Add(filler[rng.Next(filler.Length)]); length += sentences[^1].Length + 1; }
                string fact = Relations[relation].Fact(Names[name], value);
                if ((name, relation) == (asked.Name, asked.Relation)) answerStart = length + fact.LastIndexOf(value, StringComparison.Ordinal);
                sentences.Add(fact);
                length += fact.Length + 1;
            }
            string context = string.Join(' ', sentences);
            list.Add(new QaExample(Relations[asked.Relation].Question(Names[asked.Name]), context, [asked.Value], [answerStart]));
        }
        return list;
    }

    /// <summary>Text to train a tokenizer on: every word the data uses.</summary>
    public static string Corpus() => string.Join("\n", Generate(400, seed: 12345).SelectMany(x => new[] { x.Question, x.Context }));
}
