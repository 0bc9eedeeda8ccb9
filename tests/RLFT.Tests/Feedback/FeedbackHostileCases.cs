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
/// two raters) leased to alice and bob, and score item s1 (completion a; one rater) leased to carol; no ratings.
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
        ["role: admin exports in an unknown format"] = Get("/api/v1/export?format=csv", "admin", 400, "format: expected preferences or scores"),
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
    };

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
