namespace Rlft.Policy.Chat.Jinja;

// The template's syntax tree: expressions (Expr) and statements (Stmt), each with its template line.

abstract record Expr(int Line);
sealed record ConstExpr(int Line, object? Value) : Expr(Line);
sealed record NameExpr(int Line, string Name) : Expr(Line);
sealed record ListExpr(int Line, List<Expr> Items, bool IsTuple) : Expr(Line);
sealed record DictExpr(int Line, List<(Expr Key, Expr Value)> Items) : Expr(Line);
sealed record GetAttrExpr(int Line, Expr Target, string Name) : Expr(Line);
sealed record GetItemExpr(int Line, Expr Target, Expr Index) : Expr(Line);
sealed record SliceExpr(int Line, Expr? Start, Expr? Stop, Expr? Step) : Expr(Line);
sealed record CallExpr(int Line, Expr Target, Arguments Args) : Expr(Line);
sealed record FilterExpr(int Line, Expr? Target, string Name, Arguments Args) : Expr(Line);
sealed record TestExpr(int Line, Expr Target, string Name, Arguments Args) : Expr(Line);
sealed record UnaryExpr(int Line, string Op, Expr Operand) : Expr(Line);
sealed record BinaryExpr(int Line, string Op, Expr Left, Expr Right) : Expr(Line);
sealed record ConcatExpr(int Line, List<Expr> Parts) : Expr(Line);
sealed record CompareExpr(int Line, Expr First, List<(string Op, Expr Right)> Rest) : Expr(Line);
sealed record CondExpr(int Line, Expr Test, Expr Then, Expr? Else) : Expr(Line);

/// <summary>Call arguments: positional, keyword, and <c>*args</c>/<c>**kwargs</c>.</summary>
sealed record Arguments(List<Expr> Positional, List<(string Name, Expr Value)> Keywords, Expr? Star = null, Expr? StarStar = null)
{
    public static Arguments None => new([], []);
}

abstract record Stmt(int Line);
sealed record OutputStmt(int Line, List<object> Parts) : Stmt(Line);      // each part: string data or Expr
sealed record IfStmt(int Line, List<(Expr Test, List<Stmt> Body)> Branches, List<Stmt>? Else) : Stmt(Line);
sealed record ForStmt(int Line, Expr Target, Expr Iter, List<Stmt> Body, List<Stmt>? Else, Expr? Filter) : Stmt(Line);
sealed record SetStmt(int Line, Expr Target, Expr Value) : Stmt(Line);
sealed record SetBlockStmt(int Line, Expr Target, List<Stmt> Body, List<FilterExpr> Filters) : Stmt(Line);
sealed record MacroStmt(int Line, string Name, List<(string Name, Expr? Default)> Parameters, List<Stmt> Body) : Stmt(Line);
sealed record FilterBlockStmt(int Line, List<FilterExpr> Filters, List<Stmt> Body) : Stmt(Line);
sealed record WithStmt(int Line, List<(Expr Target, Expr Value)> Assignments, List<Stmt> Body) : Stmt(Line);
sealed record GenerationStmt(int Line, List<Stmt> Body) : Stmt(Line);
sealed record BreakStmt(int Line) : Stmt(Line);
sealed record ContinueStmt(int Line) : Stmt(Line);
