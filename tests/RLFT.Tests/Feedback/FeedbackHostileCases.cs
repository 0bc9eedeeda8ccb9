using System.Text;

namespace Rlft.Tests.Feedback;

/// <summary>
/// One hostile request and what must come back: the status and a text the <c>{"error"}</c> message contains (the
/// field or the reason). <see cref="Auth"/> is a rater (alice, bob, carol, dave), admin, revoked, forged, none,
/// <c>hash:NAME</c> (the token's SHA-256 sent as a token) or <c>raw:HEADER</c> (the Authorization header as given).
/// </summary>
public sealed record HostileCase(string Method, string Path, string Auth, byte[]? Body, string? ContentType, int Status, string Error, bool Chunked = false);

/// <summary>
/// The corpus, by category. The node behind it (see <see cref="HostileNode"/>) holds compare item c1 (completions a, b;
/// two raters; ties allowed, no strength asked) leased to alice and bob, and score item s1 (completion a; one rater)
/// leased to carol; no ratings, skips or undos.
/// </summary>
public static class FeedbackHostileCases
{
    const string Json = "application/json";
    const string Rating = """{"taskId":"c1","choice":"a"}""";
    const string Item = """{"kind":"score","prompt":"p","completions":["x"]}""";

    public static readonly IReadOnlyDictionary<string, HostileCase> All = new Dictionary<string, HostileCase>
    {
        // Encodings: every string and field name must be UTF-8 text without unpaired surrogates or NUL.
        ["encoding: invalid UTF-8 byte in taskId"] = Rate(Bytes("""{"taskId":"c""", "FF", """1","choice":"a"}"""), 400, "taskId: contains invalid UTF-8"),
        ["encoding: invalid UTF-8 byte in choice"] = Rate(Bytes("""{"taskId":"c1","choice":"a""", "FE", "\"}"), 400, "choice: contains invalid UTF-8"),
        ["encoding: overlong '/' (C0 AF)"] = Rate(Bytes("""{"taskId":"c1""", "C0AF", "\",\"choice\":\"a\"}"), 400, "taskId: contains invalid UTF-8"),
        ["encoding: overlong NUL (C0 80)"] = Rate(Bytes("""{"taskId":"c1","choice":"a""", "C080", "\"}"), 400, "choice: contains invalid UTF-8"),
        ["encoding: surrogate encoded as UTF-8 (ED A0 80)"] = Rate(Bytes("""{"taskId":"c1","choice":"a""", "EDA080", "\"}"), 400, "choice: contains invalid UTF-8"),
        ["encoding: truncated three-byte sequence"] = Rate(Bytes("""{"taskId":"c1","choice":"a""", "E282", "\"}"), 400, "choice: contains invalid UTF-8"),
        ["encoding: code point above U+10FFFF"] = Rate(Bytes("""{"taskId":"c1","choice":"a""", "F4908080", "\"}"), 400, "choice: contains invalid UTF-8"),
        ["encoding: stray continuation byte in a field name"] = Rate(Bytes("""{"task""", "80", """Id":"c1","choice":"a"}"""), 400, "body: a field name contains invalid UTF-8"),
        ["encoding: lone high surrogate escape in taskId"] = Rate("""{"taskId":"\ud800","choice":"a"}""", 400, "taskId: contains an unpaired surrogate"),
        ["encoding: lone low surrogate escape in choice"] = Rate("""{"taskId":"c1","choice":"\udc00"}""", 400, "choice: contains an unpaired surrogate"),
        ["encoding: surrogate pair in the wrong order"] = Rate("""{"taskId":"c1","choice":"\udc00\ud800"}""", 400, "choice: contains an unpaired surrogate"),
        ["encoding: high surrogate followed by a letter"] = Rate("""{"taskId":"c1","choice":"\ud800x"}""", 400, "choice: contains an unpaired surrogate"),
        ["encoding: lone surrogate in a field name"] = Rate("""{"\ud800":1}""", 400, "body: a field name contains an unpaired surrogate"),
        ["encoding: lone surrogate in a score key"] = Rate("""{"taskId":"s1","scores":{"\udfff":3}}""", 400, "scores: a field name contains an unpaired surrogate", "carol"),
        ["encoding: lone surrogate in an unknown field"] = Rate("""{"taskId":"c1","choice":"a","note":"\ud800"}""", 400, "note: contains an unpaired surrogate"),
        ["encoding: lone surrogate in an admin prompt"] = Items("""{"items":[{"kind":"score","prompt":"\ud83d","completions":["x"]}]}""", 400, "items[0].prompt: contains an unpaired surrogate"),
        ["encoding: invalid UTF-8 in an admin completion"] = Items(Bytes("""{"items":[{"kind":"score","prompt":"p","completions":[""", "22FF22", "]}]}"), 400, "items[0].completions[0]: contains invalid UTF-8"),
        ["encoding: raw NUL byte inside a string"] = Rate(Bytes("""{"taskId":"c""", "00", """1","choice":"a"}"""), 400, "body: not valid JSON"),
        ["encoding: escaped NUL in taskId"] = Rate("""{"taskId":"c1\u0000","choice":"a"}""", 400, "taskId: contains a NUL character"),
        ["encoding: escaped NUL in an admin prompt"] = Items("""{"items":[{"kind":"score","prompt":"p\u0000q","completions":["x"]}]}""", 400, "items[0].prompt: contains a NUL character"),
        ["encoding: UTF-16 body"] = Rate([0xFF, 0xFE, .. Encoding.Unicode.GetBytes(Rating)], 400, "body: not valid JSON"),
        ["encoding: UTF-8 BOM before a malformed body"] = Rate(Bytes("", "EFBBBF", """{"taskId":17,"choice":"a"}"""), 400, "taskId: expected a string"),
        ["encoding: two UTF-8 BOMs"] = Rate(Bytes("", "EFBBBFEFBBBF", Rating), 400, "body: not valid JSON"),
        ["encoding: escaped surrogate pair is text but not an id"] = Rate("""{"taskId":"\ud83d\ude00","choice":"a"}""", 400, "taskId: expected an id"),
        ["encoding: invalid percent-encoding in a query"] = Get("/api/v1/admin/ratings?items=%FF", "admin", 400, "items: "),

        // Sizes.
        ["size: body over max-request-bytes"] = Rate("{\"taskId\":\"c1\",\"choice\":\"a\",\"pad\":\"" + new string('x', 100_000) + "\"}", 413, "body: larger than 65536 bytes"),
        ["size: chunked body over max-request-bytes"] = Rate(new string(' ', 100_000) + Rating, 413, "body: larger than 65536 bytes") with { Chunked = true },
        ["size: 20,000 empty items"] = Items("{\"items\":[" + string.Join(",", Enumerable.Repeat("{}", 20_000)) + "]}", 400, "items: expected 1..1000 items"),
        ["size: 1,001 well-formed items"] = Items("{\"items\":[" + string.Join(",", Enumerable.Repeat(Item, 1001)) + "]}", 400, "items: expected 1..1000 items"),
        ["size: 5,000 scores"] = Rate("{\"taskId\":\"s1\",\"scores\":{" + string.Join(",", Enumerable.Range(0, 5000).Select(i => $"\"k{i}\":1")) + "}}", 400, "scores.k0: not a completion of this task", "carol"),
        ["size: 20,000-element list as choice"] = Rate("{\"taskId\":\"c1\",\"choice\":[" + string.Join(",", Enumerable.Repeat("1", 20_000)) + "]}", 400, "choice: expected a string, got a list"),
        ["size: lists nested 200 deep"] = Rate(new string('[', 200) + new string(']', 200), 400, "body: not valid JSON"),
        ["size: objects nested 17 deep in a field"] = Rate("{\"taskId\":\"c1\",\"choice\":" + string.Concat(Enumerable.Repeat("{\"a\":", 17)) + "1" + new string('}', 18), 400, "body: not valid JSON"),
        ["size: 129-character taskId"] = Rate($$"""{"taskId":"{{new string('t', 129)}}","choice":"a"}""", 400, "taskId: expected an id of 1-128 characters"),

        // Authentication.
        ["auth: no Authorization header"] = Rate(Rating, 401, "missing bearer token", "none"),
        ["auth: Basic scheme"] = Rate(Rating, 401, "missing bearer token", "raw:Basic YWxpY2U6cHc="),
        ["auth: Token scheme"] = Rate(Rating, 401, "missing bearer token", "raw:Token rlft_abc"),
        ["auth: empty bearer"] = Rate(Rating, 401, "missing bearer token", "raw:Bearer "),
        ["auth: Bearer without a space"] = Rate(Rating, 401, "missing bearer token", "raw:Bearerrlft_abc"),
        ["auth: forged token"] = Rate(Rating, 401, "unknown token", "forged"),
        ["auth: token's SHA-256 sent as the token"] = Rate(Rating, 401, "unknown token", "hash:alice"),
        ["auth: admin token's SHA-256 sent as the token"] = Items("""{"items":[]}""", 401, "unknown token", "hash:admin"),
        ["auth: two bearer tokens"] = Rate(Rating, 401, "unknown token", "raw:Bearer rlft_a, Bearer rlft_b"),
        ["auth: revoked token rates"] = Rate(Rating, 403, "revoked", "revoked"),
        ["auth: revoked token asks for work"] = Get("/api/v1/tasks/next", "revoked", 403, "revoked"),
        ["auth: revoked token reads stats"] = Get("/api/v1/stats", "revoked", 403, "revoked"),
        ["auth: revoked token exports"] = Get("/api/v1/export?format=preferences", "revoked", 403, "revoked"),
        ["auth: no token asks for work"] = Get("/api/v1/tasks/next", "none", 401, "missing bearer token"),
        ["auth: forged token reads stats"] = Get("/api/v1/stats", "forged", 401, "unknown token"),
        ["auth: token only in the query string"] = Get("/api/v1/stats?access_token=rlft_x", "none", 401, "missing bearer token"),
        ["auth: oversized Authorization header"] = Get("/api/v1/stats", "raw:Bearer " + new string('x', 600), 401, "missing bearer token"),
        ["auth: forged token on an unknown route"] = Get("/api/v1/nope", "forged", 401, "unknown token"),
        ["auth: no token on the admin API"] = Items("""{"items":[]}""", 401, "missing bearer token", "none"),

        // Roles: export and /admin are the admin's; rating routes are the raters'.
        ["role: rater enqueues items"] = Items($$"""{"items":[{{Item}}]}""", 403, "needs the admin token", "alice"),
        ["role: rater lists ratings"] = Get("/api/v1/admin/ratings", "alice", 403, "needs the admin token"),
        ["role: rater on an unknown admin route"] = Get("/api/v1/admin/nope", "alice", 403, "needs the admin token"),
        ["role: rater exports preferences"] = Get("/api/v1/export?format=preferences", "alice", 403, "needs the admin token"),
        ["role: rater exports scores"] = Get("/api/v1/export?format=scores", "carol", 403, "needs the admin token"),
        ["role: rater exports through a trailing slash"] = Get("/api/v1/export/?format=scores", "alice", 403, "needs the admin token"),
        ["role: rater exports in upper case"] = Get("/API/V1/EXPORT?format=scores", "alice", 403, "needs the admin token"),
        ["role: admin asks for work"] = Get("/api/v1/tasks/next", "admin", 403, "needs a rater token"),
        ["role: admin rates"] = Rate(Rating, 403, "needs a rater token", "admin"),
        ["role: admin reads /me"] = Get("/api/v1/me", "admin", 403, "needs a rater token"),
        ["role: admin exports in an unknown format"] = Get("/api/v1/export?format=csv", "admin", 400, "format: expected preferences, scores or set-aside"),
        ["role: admin lists ratings of a bad item id"] = Get("/api/v1/admin/ratings?items=a%20b", "admin", 400, "items: 'a b' is not an item id"),

        // Content types: application/json, optionally with charset=utf-8, and nothing else.
        ["type: text/plain"] = Rate(Rating, 415, "Content-Type: expected application/json", type: "text/plain"),
        ["type: text/json"] = Rate(Rating, 415, "Content-Type: expected application/json", type: "text/json"),
        ["type: application/json-patch+json"] = Rate(Rating, 415, "Content-Type: expected application/json", type: "application/json-patch+json"),
        ["type: application/jsonx"] = Rate(Rating, 415, "Content-Type: expected application/json", type: "application/jsonx"),
        ["type: application/xml"] = Rate(Rating, 415, "Content-Type: expected application/json", type: "application/xml"),
        ["type: charset=latin1"] = Rate(Rating, 415, "Content-Type: charset latin1", type: "application/json; charset=latin1"),
        ["type: charset=iso-8859-1"] = Rate(Rating, 415, "Content-Type: charset iso-8859-1", type: "application/json; charset=iso-8859-1"),
        ["type: charset=utf-16"] = Rate(Rating, 415, "Content-Type: charset utf-16", type: "application/json; charset=utf-16"),
        ["type: unknown parameter"] = Rate(Rating, 415, "Content-Type: unexpected parameter 'foo'", type: "application/json; foo=bar"),
        ["type: multipart/form-data"] = Rate("--x\r\nContent-Disposition: form-data; name=\"taskId\"\r\n\r\nc1\r\n--x--\r\n", 415, "Content-Type: expected application/json", type: "multipart/form-data; boundary=x"),
        ["type: form-urlencoded"] = Rate("taskId=c1&choice=a", 415, "Content-Type: expected application/json", type: "application/x-www-form-urlencoded"),
        ["type: not a media type"] = Rate(Rating, 415, "Content-Type: ", type: "json"),
        ["type: missing, with a body"] = Rate(Rating, 415, "Content-Type: missing", type: null),
        ["type: missing, with a chunked body"] = Rate(Rating, 415, "Content-Type: missing", type: null) with { Chunked = true },
        ["type: text/plain on the admin API"] = Items($$"""{"items":[{{Item}}]}""", 415, "Content-Type: expected application/json", type: "text/plain"),
        ["type: missing, no body"] = Rate("", 400, "body: empty", type: null),

        // Methods and routes.
        ["method: PUT a rating"] = Send("PUT", "/api/v1/ratings", "alice", 405, "method PUT is not allowed"),
        ["method: DELETE a rating"] = Send("DELETE", "/api/v1/ratings", "alice", 405, "method DELETE is not allowed"),
        ["method: GET ratings"] = Send("GET", "/api/v1/ratings", "alice", 405, "method GET is not allowed"),
        ["method: POST tasks/next"] = Send("POST", "/api/v1/tasks/next", "alice", 405, "method POST is not allowed"),
        ["method: POST stats"] = Send("POST", "/api/v1/stats", "alice", 405, "method POST is not allowed"),
        ["method: DELETE admin items"] = Send("DELETE", "/api/v1/admin/items", "admin", 405, "method DELETE is not allowed"),
        ["method: PATCH export"] = Send("PATCH", "/api/v1/export", "admin", 405, "method PATCH is not allowed"),
        ["route: unknown API route"] = Get("/api/v1/nope", "alice", 404, "no such route"),

        // Malformed JSON and shapes.
        ["json: truncated"] = Rate("""{"taskId":"c1",""", 400, "body: not valid JSON"),
        ["json: form text"] = Rate("choice=a", 400, "body: not valid JSON"),
        ["json: trailing garbage"] = Rate(Rating + " x", 400, "body: not valid JSON"),
        ["json: two objects"] = Rate(Rating + Rating, 400, "body: not valid JSON"),
        ["json: comment"] = Rate("""{"taskId":"c1",/* a */"choice":"a"}""", 400, "body: not valid JSON"),
        ["json: trailing comma"] = Rate("""{"taskId":"c1","choice":"a",}""", 400, "body: not valid JSON"),
        ["json: single quotes"] = Rate("{'taskId':'c1','choice':'a'}", 400, "body: not valid JSON"),
        ["json: NaN score"] = Rate("""{"taskId":"s1","scores":{"a":NaN}}""", 400, "body: not valid JSON", "carol"),
        ["json: a list"] = Rate($"[{Rating}]", 400, "body: expected a JSON object, got a list"),
        ["json: null"] = Rate("null", 400, "body: expected a JSON object, got null"),
        ["json: empty body"] = Rate("", 400, "body: empty"),
        ["shape: taskId is a number"] = Rate("""{"taskId":17,"choice":"a"}""", 400, "taskId: expected a string, got the number 17"),
        ["shape: taskId is null"] = Rate("""{"taskId":null,"choice":"a"}""", 400, "taskId: expected a string, got null"),
        ["shape: taskId is empty"] = Rate("""{"taskId":"","choice":"a"}""", 400, "taskId: expected an id"),
        ["shape: taskId missing"] = Rate("""{"choice":"a"}""", 400, "taskId: missing"),
        ["shape: choice and scores"] = Rate("""{"taskId":"c1","choice":"a","scores":{"a":3}}""", 400, "give exactly one of"),
        ["shape: neither choice nor scores"] = Rate("""{"taskId":"c1"}""", 400, "give exactly one of"),
        ["shape: choice is a number"] = Rate("""{"taskId":"c1","choice":1}""", 400, "choice: expected a string"),
        ["shape: choice is an object"] = Rate("""{"taskId":"c1","choice":{"id":"a"}}""", 400, "choice: expected a string, got an object"),
        ["shape: choice is not a completion"] = Rate("""{"taskId":"c1","choice":"c"}""", 400, "choice: 'c' is not a completion of this task"),
        ["shape: scores on a compare task"] = Rate("""{"taskId":"c1","scores":{"a":3,"b":4}}""", 400, "choice: a compare task needs"),
        ["shape: choice on a score task"] = Rate("""{"taskId":"s1","choice":"a"}""", 400, "scores: a score task needs", "carol"),
        ["shape: scores is a list"] = Rate("""{"taskId":"s1","scores":[5]}""", 400, "scores: expected an object", "carol"),
        ["shape: scores is empty"] = Rate("""{"taskId":"s1","scores":{}}""", 400, "scores: empty", "carol"),
        ["shape: score is a string"] = Rate("""{"taskId":"s1","scores":{"a":"7"}}""", 400, "scores.a: expected an integer 1..7, got a string", "carol"),
        ["shape: score is a boolean"] = Rate("""{"taskId":"s1","scores":{"a":true}}""", 400, "scores.a: expected an integer 1..7, got a boolean", "carol"),
        ["shape: score is fractional"] = Rate("""{"taskId":"s1","scores":{"a":3.5}}""", 400, "scores.a: expected an integer 1..7", "carol"),
        ["shape: score 0"] = Rate("""{"taskId":"s1","scores":{"a":0}}""", 400, "scores.a: 0 is outside 1..7", "carol"),
        ["shape: score 8"] = Rate("""{"taskId":"s1","scores":{"a":8}}""", 400, "scores.a: 8 is outside 1..7", "carol"),
        ["shape: score negative"] = Rate("""{"taskId":"s1","scores":{"a":-3}}""", 400, "scores.a: -3 is outside 1..7", "carol"),
        ["shape: score 2^31"] = Rate("""{"taskId":"s1","scores":{"a":2147483648}}""", 400, "scores.a: expected an integer 1..7", "carol"),
        ["shape: score 1e100"] = Rate("""{"taskId":"s1","scores":{"a":1e100}}""", 400, "scores.a: expected an integer 1..7", "carol"),
        ["shape: score for an unknown completion"] = Rate("""{"taskId":"s1","scores":{"a":3,"z":4}}""", 400, "scores.z: not a completion of this task", "carol"),
        ["shape: score key repeated"] = Rate("""{"taskId":"s1","scores":{"a":3,"a":4}}""", 400, "scores.a: appears twice", "carol"),
        ["shape: unknown field"] = Rate("""{"taskId":"c1","choice":"a","extra":true}""", 400, "extra: unknown field"),
        ["shape: rater named in the body"] = Rate("""{"taskId":"c1","choice":"a","rater":"bob"}""", 400, "rater: not accepted"),
        ["shape: taskId repeated"] = Rate("""{"taskId":"zz","taskId":"c1","choice":"a"}""", 400, "taskId: appears twice"),
        ["shape: script in taskId"] = Rate("""{"taskId":"<script>alert(1)</script>","choice":"a"}""", 400, "taskId: expected an id"),
        ["shape: markup in choice"] = Rate("""{"taskId":"c1","choice":"<img src=x onerror=alert(1)>"}""", 400, "choice: expected an id"),
        ["state: unknown task"] = Rate("""{"taskId":"nope","choice":"a"}""", 404, "unknown task 'nope'"),
        ["state: task never handed to this rater"] = Rate(Rating, 403, "was not handed to you", "dave"),
        ["state: task leased to someone else"] = Rate("""{"taskId":"s1","scores":{"a":3}}""", 403, "was not handed to you"),
        ["admin: items is an object"] = Items("""{"items":{}}""", 400, "items: expected a list, got an object"),
        ["admin: no items"] = Items("""{"items":[]}""", 400, "items: expected 1..1000 items"),
        ["admin: three completions to compare"] = Items("""{"items":[{"kind":"compare","prompt":"p","completions":["x","y","z"]}]}""", 400, "items[0]."),
        ["admin: unknown kind"] = Items("""{"items":[{"kind":"rank","prompt":"p","completions":["x"]}]}""", 400, "items[0].kind: expected \"compare\" or \"score\""),
        ["admin: prompt missing"] = Items("""{"items":[{"kind":"score","completions":["x"]}]}""", 400, "items[0].prompt: missing"),
        ["admin: completion is a number"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":[7]}]}""", 400, "items[0].completions[0]: expected a JSON object"),
        ["admin: raters is a string"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"raters":"2"}]}""", 400, "items[0].raters: expected an integer"),
        ["admin: zero raters"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"raters":0}]}""", 400, "items[0]."),
        ["admin: unknown item field"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"color":"red"}]}""", 400, "items[0].color: unknown field"),
        ["admin: an id reused with other content"] = Items("""{"items":[{"id":"c1","kind":"score","prompt":"p","completions":["x"]}]}""", 400, "items[0]"),

        // Schema 2 answers: verdicts, strengths, rationales, per-criterion scores.
        ["answer: unknown verdict"] = Rate("""{"taskId":"c1","verdict":"draw"}""", 400, "verdict: expected tie or both-bad, got \"draw\""),
        ["answer: verdict is a number"] = Rate("""{"taskId":"c1","verdict":2}""", 400, "verdict: expected a string, got the number 2"),
        ["answer: choice and verdict"] = Rate("""{"taskId":"c1","choice":"a","verdict":"tie"}""", 400, "give exactly one of"),
        ["answer: verdict and scores"] = Rate("""{"taskId":"c1","verdict":"tie","scores":{"a":1}}""", 400, "give exactly one of"),
        ["answer: verdict on a score task"] = Rate("""{"taskId":"s1","verdict":"tie"}""", 400, "scores: a score task needs", "carol"),
        ["answer: unknown strength"] = Rate("""{"taskId":"c1","choice":"a","strength":"very"}""", 400, "strength: expected slightly or much"),
        ["answer: strength is a boolean"] = Rate("""{"taskId":"c1","choice":"a","strength":true}""", 400, "strength: expected a string, got a boolean"),
        ["answer: strength with a tie"] = Rate("""{"taskId":"c1","verdict":"tie","strength":"much"}""", 400, "strength: only a choice takes a strength"),
        ["answer: strength where none is asked"] = Rate("""{"taskId":"c1","choice":"a","strength":"much"}""", 400, "strength: this task takes no strength"),
        ["answer: strength on a score task"] = Rate("""{"taskId":"s1","scores":{"a":3},"strength":"much"}""", 400, "strength: only a pair's choice takes a strength", "carol"),
        ["answer: rationale is a number"] = Rate("""{"taskId":"c1","choice":"a","rationale":5}""", 400, "rationale: expected a string, got the number 5"),
        ["answer: rationale of 4,001 characters"] = Rate($$"""{"taskId":"c1","choice":"a","rationale":"{{new string('w', 4001)}}"}""", 400, "rationale: longer than 4000 characters"),
        ["answer: lone surrogate in a rationale"] = Rate("""{"taskId":"c1","choice":"a","rationale":"why \ud800"}""", 400, "rationale: contains an unpaired surrogate"),
        ["answer: invalid UTF-8 in a rationale"] = Rate(Bytes("""{"taskId":"c1","choice":"a","rationale":"x""", "C3", "\"}"), 400, "rationale: contains invalid UTF-8"),
        ["answer: markup in a rationale is still checked"] = Rate("""{"taskId":"c1","choice":"zz","rationale":"<script>alert(1)</script>"}""", 400, "choice: 'zz' is not a completion"),
        ["answer: criteria where the task has none"] = Rate("""{"taskId":"s1","scores":{"a":{"helpfulness":3}}}""", 400, "scores: expected {completion id: 1..7} (this task has no criteria)", "carol"),
        ["answer: score then criteria object"] = Rate("""{"taskId":"s1","scores":{"a":3,"b":{"h":3}}}""", 400, "scores.b: expected an integer 1..7 like the scores before it, got an object", "carol"),
        ["answer: criteria object then score"] = Rate("""{"taskId":"s1","scores":{"a":{"h":3},"b":3}}""", 400, "scores.b: expected an object of criterion to 1..7 like the scores before it", "carol"),
        ["answer: criterion score 0"] = Rate("""{"taskId":"s1","scores":{"a":{"h":0}}}""", 400, "scores.a.h: 0 is outside 1..7", "carol"),
        ["answer: criterion score is a string"] = Rate("""{"taskId":"s1","scores":{"a":{"h":"7"}}}""", 400, "scores.a.h: expected an integer 1..7, got a string", "carol"),
        ["answer: criterion name is not a name"] = Rate("""{"taskId":"s1","scores":{"a":{"is it good?":3}}}""", 400, "scores.a: keys must be criterion names", "carol"),
        ["answer: empty criteria"] = Rate("""{"taskId":"s1","scores":{"a":{}}}""", 400, "scores.a: empty", "carol"),
        ["answer: criterion repeated"] = Rate("""{"taskId":"s1","scores":{"a":{"h":3,"h":4}}}""", 400, "scores.a.h: appears twice", "carol"),

        // Skip and flag.
        ["skip: taskId missing"] = Post("/api/v1/skips", """{"reason":"x"}""", 400, "taskId: missing"),
        ["skip: unknown task"] = Post("/api/v1/skips", """{"taskId":"nope"}""", 404, "unknown task 'nope'"),
        ["skip: task never handed to this rater"] = Post("/api/v1/skips", """{"taskId":"c1"}""", 403, "was not handed to you", "dave"),
        ["skip: task leased to someone else"] = Post("/api/v1/skips", """{"taskId":"s1"}""", 403, "was not handed to you"),
        ["skip: unknown field"] = Post("/api/v1/skips", """{"taskId":"c1","choice":"a"}""", 400, "choice: unknown field"),
        ["skip: rater named in the body"] = Post("/api/v1/skips", """{"taskId":"c1","rater":"bob"}""", 400, "rater: not accepted"),
        ["skip: reason is a list"] = Post("/api/v1/skips", """{"taskId":"c1","reason":["x"]}""", 400, "reason: expected a string, got a list"),
        ["skip: reason of 4,001 characters"] = Post("/api/v1/skips", $$"""{"taskId":"c1","reason":"{{new string('r', 4001)}}"}""", 400, "reason: longer than 4000 characters"),
        ["skip: by the admin"] = Post("/api/v1/skips", """{"taskId":"c1"}""", 403, "needs a rater token", "admin"),
        ["skip: no token"] = Post("/api/v1/skips", """{"taskId":"c1"}""", 401, "missing bearer token", "none"),
        ["skip: revoked token"] = Post("/api/v1/skips", """{"taskId":"c1"}""", 403, "revoked", "revoked"),
        ["skip: text/plain"] = Post("/api/v1/skips", """{"taskId":"c1"}""", 415, "Content-Type: expected application/json", type: "text/plain"),
        ["skip: empty body"] = Post("/api/v1/skips", "", 400, "body: empty"),
        ["skip: GET"] = Send("GET", "/api/v1/skips", "alice", 405, "method GET is not allowed"),
        ["flag: invalid UTF-8 in the reason"] = new("POST", "/api/v1/flags", "alice", Bytes("""{"taskId":"c1","reason":"br""", "FF", "oken\"}"), Json, 400, "reason: contains invalid UTF-8"),
        ["flag: lone surrogate in the reason"] = Post("/api/v1/flags", """{"taskId":"c1","reason":"\udfff"}""", 400, "reason: contains an unpaired surrogate"),
        ["flag: NUL in the reason"] = Post("/api/v1/flags", """{"taskId":"c1","reason":"a\u0000"}""", 400, "reason: contains a NUL character"),
        ["flag: taskId is markup"] = Post("/api/v1/flags", """{"taskId":"<b>c1</b>"}""", 400, "taskId: expected an id"),
        ["flag: a list"] = Post("/api/v1/flags", """[{"taskId":"c1"}]""", 400, "body: expected a JSON object, got a list"),
        ["flag: DELETE"] = Send("DELETE", "/api/v1/flags", "alice", 405, "method DELETE is not allowed"),

        // Undo.
        ["undo: nothing to undo"] = Post("/api/v1/undo", "{}", 409, "nothing to undo"),
        ["undo: nothing to undo, no body"] = new("POST", "/api/v1/undo", "alice", null, null, 409, "nothing to undo"),
        ["undo: a rating id that is not an id"] = Post("/api/v1/undo", """{"ratingId":"../../x"}""", 400, "ratingId: expected an id"),
        ["undo: rating id is a number"] = Post("/api/v1/undo", """{"ratingId":7}""", 400, "ratingId: expected a string"),
        ["undo: someone else's rating"] = Post("/api/v1/undo", """{"ratingId":"abc"}""", 409, "nothing to undo", "bob"),
        ["undo: unknown field"] = Post("/api/v1/undo", """{"taskId":"c1"}""", 400, "taskId: unknown field"),
        ["undo: by the admin"] = Post("/api/v1/undo", "{}", 403, "needs a rater token", "admin"),
        ["undo: text/plain with a body"] = Post("/api/v1/undo", "{}", 415, "Content-Type: expected application/json", type: "text/plain"),
        ["undo: a body without a Content-Type"] = Post("/api/v1/undo", "{}", 415, "Content-Type: missing", type: null),
        ["undo: not JSON"] = Post("/api/v1/undo", "undo please", 400, "body: not valid JSON"),
        ["undo: GET"] = Send("GET", "/api/v1/undo", "alice", 405, "method GET is not allowed"),
        ["undo: forged token"] = Post("/api/v1/undo", "{}", 401, "unknown token", "forged"),

        // Progress.
        ["me: since is not a number"] = Get("/api/v1/me?since=yesterday", "alice", 400, "since: expected Unix milliseconds"),
        ["me: since a year ago"] = Get("/api/v1/me?since=0", "alice", 400, "since: expected Unix milliseconds"),
        ["me: since is negative"] = Get("/api/v1/me?since=-5", "alice", 400, "since: expected Unix milliseconds"),

        // Guidelines (the admin writes; raters and the admin read).
        ["guideline: a rater writes one"] = Put("/api/v1/admin/guidelines/default", """{"markdown":"x"}""", 403, "needs the admin token", "alice"),
        ["guideline: a name that is not a name"] = Put("/api/v1/admin/guidelines/a%20b", """{"markdown":"x"}""", 400, "name: a guideline name needs"),
        ["guideline: markdown missing"] = Put("/api/v1/admin/guidelines/default", "{}", 400, "markdown: missing"),
        ["guideline: markdown is a number"] = Put("/api/v1/admin/guidelines/default", """{"markdown":1}""", 400, "markdown: expected a string"),
        ["guideline: unknown field"] = Put("/api/v1/admin/guidelines/default", """{"markdown":"x","version":3}""", 400, "version: unknown field"),
        ["guideline: lone surrogate in the markdown"] = Put("/api/v1/admin/guidelines/default", """{"markdown":"\ud800"}""", 400, "markdown: contains an unpaired surrogate"),
        ["guideline: over max-request-bytes"] = Put("/api/v1/admin/guidelines/default", $$"""{"markdown":"{{new string('m', 70_000)}}"}""", 413, "body: larger than 65536 bytes"),
        ["guideline: text/markdown"] = Put("/api/v1/admin/guidelines/default", "# x", 415, "Content-Type: expected application/json", type: "text/markdown"),
        ["guideline: POST"] = Send("POST", "/api/v1/admin/guidelines/default", "admin", 405, "method POST is not allowed"),
        ["guideline: no token lists them"] = Get("/api/v1/admin/guidelines", "none", 401, "missing bearer token"),
        ["guideline: a rater lists every version"] = Get("/api/v1/admin/guidelines", "alice", 403, "needs the admin token"),
        ["guideline: a revoked token reads them"] = Get("/api/v1/guidelines", "revoked", 403, "revoked"),

        // Raters managed through the admin API.
        ["rater: a rater adds a rater"] = Post("/api/v1/admin/raters", """{"name":"zed"}""", 403, "needs the admin token"),
        ["rater: name missing"] = Post("/api/v1/admin/raters", "{}", 400, "name: missing", "admin"),
        ["rater: name is not a name"] = Post("/api/v1/admin/raters", """{"name":"a b"}""", 400, "name: expected 1-128 characters", "admin"),
        ["rater: name is markup"] = Post("/api/v1/admin/raters", """{"name":"<img src=x>"}""", 400, "name: expected 1-128 characters", "admin"),
        ["rater: name of 129 characters"] = Post("/api/v1/admin/raters", $$"""{"name":"{{new string('n', 129)}}"}""", 400, "name: expected 1-128 characters", "admin"),
        ["rater: an existing name"] = Post("/api/v1/admin/raters", """{"name":"alice"}""", 409, "rater 'alice' already exists", "admin"),
        ["rater: a token in the body"] = Post("/api/v1/admin/raters", """{"name":"zed","token":"rlft_chosen"}""", 400, "token: unknown field", "admin"),
        ["rater: a hash in the body"] = Post("/api/v1/admin/raters", """{"name":"zed","tokenSha256":"00"}""", 400, "tokenSha256: unknown field", "admin"),
        ["rater: revoke an unknown rater"] = Post("/api/v1/admin/raters/nobody/revoke", "{}", 404, "no rater named 'nobody'", "admin"),
        ["rater: revoke a name that is not a name"] = Post("/api/v1/admin/raters/a%20b/revoke", "{}", 400, "rater name: expected", "admin"),
        ["rater: revoke with a field"] = Post("/api/v1/admin/raters/bob/revoke", """{"why":"x"}""", 400, "why: unknown field (this call takes no fields)", "admin"),
        ["rater: revoke by a rater"] = Post("/api/v1/admin/raters/bob/revoke", "{}", 403, "needs the admin token"),
        ["rater: revoke by a revoked token"] = Post("/api/v1/admin/raters/bob/revoke", "{}", 403, "revoked", "revoked"),
        ["rater: a new token for a config-revoked rater"] = Post("/api/v1/admin/raters/mallory/token", "{}", 409, "revoked in the config", "admin"),
        ["rater: a new token for an unknown rater"] = Post("/api/v1/admin/raters/nobody/token", "{}", 404, "no rater named 'nobody'", "admin"),
        ["rater: GET revoke"] = Send("GET", "/api/v1/admin/raters/bob/revoke", "admin", 405, "method GET is not allowed"),
        ["rater: revoke as form data"] = Post("/api/v1/admin/raters/bob/revoke", "confirm=1", 415, "Content-Type: expected application/json", "admin", "application/x-www-form-urlencoded"),

        // The admin's item actions.
        ["discard: unknown item"] = Post("/api/v1/admin/items/nope/discard", "{}", 404, "unknown item 'nope'", "admin"),
        ["discard: by a rater"] = Post("/api/v1/admin/items/c1/discard", "{}", 403, "needs the admin token"),
        ["discard: an id that is not an id"] = Post("/api/v1/admin/items/%3Cb%3E/discard", "{}", 400, "item id: expected", "admin"),
        ["discard: reason is a number"] = Post("/api/v1/admin/items/c1/discard", """{"reason":1}""", 400, "reason: expected a string", "admin"),
        ["discard: unknown field"] = Post("/api/v1/admin/items/c1/discard", """{"outcome":"rated"}""", 400, "outcome: unknown field", "admin"),

        // Items with schema 2 parts.
        ["item: messages is a string"] = Items("""{"items":[{"kind":"compare","messages":"hi","completions":["x","y"]}]}""", 400, "items[0].messages: expected a list"),
        ["item: empty messages"] = Items("""{"items":[{"kind":"compare","messages":[],"completions":["x","y"]}]}""", 400, "items[0].messages: expected 1..100 messages"),
        ["item: unknown role"] = Items("""{"items":[{"kind":"compare","messages":[{"role":"wizard","content":"x"}],"completions":["x","y"]}]}""", 400, "items[0].messages[0].role: expected system or user or assistant or tool"),
        ["item: message content missing"] = Items("""{"items":[{"kind":"compare","messages":[{"role":"user"}],"completions":["x","y"]}]}""", 400, "items[0].messages[0].content: missing"),
        ["item: message with an extra field"] = Items("""{"items":[{"kind":"compare","messages":[{"role":"user","content":"x","name":"u"}],"completions":["x","y"]}]}""", 400, "items[0].messages[0].name: unknown field"),
        ["item: conversation ends with the assistant"] = Items("""{"items":[{"kind":"compare","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}],"completions":["x","y"]}]}""", 400, "items[0].messages[1].role: the completions are the next assistant turn"),
        ["item: lone surrogate in a message"] = Items("""{"items":[{"kind":"compare","messages":[{"role":"user","content":"\ud800"}],"completions":["x","y"]}]}""", 400, "items[0].messages[0].content: contains an unpaired surrogate"),
        ["item: 101 messages"] = Items("{\"items\":[{\"kind\":\"compare\",\"messages\":[" + string.Join(",", Enumerable.Repeat("""{"role":"user","content":"x"}""", 101)) + "],\"completions\":[\"x\",\"y\"]}]}", 400, "items[0].messages: expected 1..100 messages"),
        ["item: neither prompt nor messages"] = Items("""{"items":[{"kind":"score","completions":["x"]}]}""", 400, "items[0].prompt: missing (give a prompt or messages)"),
        ["item: unknown verdict"] = Items("""{"items":[{"kind":"compare","prompt":"p","completions":["x","y"],"verdicts":["draw"]}]}""", 400, "items[0].verdicts: 'draw' is not one of tie, both-bad"),
        ["item: verdicts on a score item"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"verdicts":["tie"]}]}""", 400, "items[0].verdicts: only compare items take verdicts"),
        ["item: verdict repeated"] = Items("""{"items":[{"kind":"compare","prompt":"p","completions":["x","y"],"verdicts":["tie","tie"]}]}""", 400, "items[0].verdicts: a verdict appears twice"),
        ["item: strength is a string"] = Items("""{"items":[{"kind":"compare","prompt":"p","completions":["x","y"],"strength":"yes"}]}""", 400, "items[0].strength: expected true or false"),
        ["item: strength on a score item"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"strength":true}]}""", 400, "items[0].strength: only compare items take a strength"),
        ["item: unknown rationale policy"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"rationale":"sometimes"}]}""", 400, "items[0].rationale: expected off or optional or required"),
        ["item: criteria on a compare item"] = Items("""{"items":[{"kind":"compare","prompt":"p","completions":["x","y"],"criteria":["h"]}]}""", 400, "items[0].criteria: only score items take criteria"),
        ["item: criterion repeated"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"criteria":["h","h"]}]}""", 400, "items[0].criteria: a criterion appears twice"),
        ["item: criterion is not a name"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"criteria":["is it safe?"]}]}""", 400, "items[0].criteria[0]: expected a name"),
        ["item: nine criteria"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"criteria":["a","b","c","d","e","f","g","h","i"]}]}""", 400, "items[0].criteria: at most 8"),
        ["item: guideline is not a name"] = Items("""{"items":[{"kind":"score","prompt":"p","completions":["x"],"guideline":"../etc"}]}""", 400, "items[0].guideline: expected an id"),

        // Export options and the overview.
        ["export: ties=maybe"] = Get("/api/v1/export?format=preferences&ties=maybe", "admin", 400, "ties: expected drop or half"),
        ["export: both-bad=1"] = Get("/api/v1/export?format=preferences&both-bad=1", "admin", 400, "both-bad: expected drop or half"),
        ["export: a rater exports set-aside items"] = Get("/api/v1/export?format=set-aside", "alice", 403, "needs the admin token"),
        ["overview: a rater reads it"] = Get("/api/v1/admin/overview", "bob", 403, "needs the admin token"),
        ["overview: no token"] = Get("/api/v1/admin/overview", "none", 401, "missing bearer token"),
        ["overview: POST"] = Send("POST", "/api/v1/admin/overview", "admin", 405, "method POST is not allowed"),
    };

    static HostileCase Post(string path, string body, int status, string error, string auth = "alice", string? type = Json) =>
        new("POST", path, auth, Encoding.UTF8.GetBytes(body), type, status, error);

    static HostileCase Put(string path, string body, int status, string error, string auth = "admin", string? type = Json) =>
        new("PUT", path, auth, Encoding.UTF8.GetBytes(body), type, status, error);

    static HostileCase Rate(string body, int status, string error, string auth = "alice", string? type = Json) =>
        new("POST", "/api/v1/ratings", auth, Encoding.UTF8.GetBytes(body), type, status, error);

    static HostileCase Rate(byte[] body, int status, string error, string auth = "alice") =>
        new("POST", "/api/v1/ratings", auth, body, Json, status, error);

    static HostileCase Items(string body, int status, string error, string auth = "admin", string? type = Json) =>
        new("POST", "/api/v1/admin/items", auth, Encoding.UTF8.GetBytes(body), type, status, error);

    static HostileCase Items(byte[] body, int status, string error) =>
        new("POST", "/api/v1/admin/items", "admin", body, Json, status, error);

    static HostileCase Get(string path, string auth, int status, string error) => new("GET", path, auth, null, null, status, error);

    static HostileCase Send(string method, string path, string auth, int status, string error) => new(method, path, auth, null, null, status, error);

    /// <summary>UTF-8 text with raw bytes (given in hex) spliced in between.</summary>
    static byte[] Bytes(string before, string hex, string after) =>
        [.. Encoding.UTF8.GetBytes(before), .. Convert.FromHexString(hex), .. Encoding.UTF8.GetBytes(after)];
}
