#include "parser.h"

#include <algorithm>
#include <initializer_list>

#include "core/error.h"

namespace nanoflow::jinja {
namespace {

bool in_list(const std::string& s, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return s == n; });
}


class Parser {
 public:
  Parser(std::vector<Token> toks, int max_nesting) : t_(std::move(toks)), max_nesting_(max_nesting) {}

  Body parse() {
    std::string end;
    Body body = subparse({}, &end);
    if (cur().type != Tok::kEof) fail_at(cur(), "unexpected end tag");
    return body;
  }

 private:
  // ---- token helpers ----------------------------------------------------------------------
  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  void next() {
    if (i_ + 1 < t_.size()) ++i_;
  }
  bool is_op(const char* op) const { return cur().type == Tok::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::kName && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail_at(const Token& tok, const std::string& msg, ErrorKind kind = ErrorKind::kBadFile) const {
    throw Error(kind, "chat template: line " + std::to_string(tok.line) + ": " + msg);
  }
  [[noreturn]] void unsupported(const std::string& msg) const { fail_at(cur(), msg, ErrorKind::kUnsupported); }

  static std::string describe(const Token& tok) {
    switch (tok.type) {
      case Tok::kData: return "template text";
      case Tok::kBlockBegin: return "'{%'";
      case Tok::kBlockEnd: return "end of statement block";
      case Tok::kVarBegin: return "'{{'";
      case Tok::kVarEnd: return "end of print statement";
      case Tok::kName: return "'" + tok.text + "'";
      case Tok::kString: return "string";
      case Tok::kInt: return "integer";
      case Tok::kFloat: return "float";
      case Tok::kOp: return "'" + tok.text + "'";
      case Tok::kEof: return "end of template";
    }
    return "?";
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail_at(cur(), std::string("expected '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != Tok::kName) fail_at(cur(), "expected a name, got " + describe(cur()));
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != Tok::kBlockEnd) fail_at(cur(), "expected end of statement block, got " + describe(cur()));
    next();
  }

  // ---- nesting bounds ---------------------------------------------------------------------------
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > p.max_nesting_)
        p.fail_at(p.cur(), "template nested deeper than " + std::to_string(p.max_nesting_), ErrorKind::kUnsupported);
    }
    ~DepthGuard() { --p.depth_; }
  };

  // Every expression node goes through here: its depth (longest path to a leaf) is bounded, so
  // evaluating, printing and destroying the tree never recurses deeper than max_nesting.
  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  ExprPtr seal(ExprPtr e) {
    int d = 0;
    auto see = [&](const ExprPtr& c) {
      if (c) d = std::max(d, c->depth);
    };
    see(e->a), see(e->b), see(e->c), see(e->d);
    for (const auto& c : e->args) see(c);
    for (const auto& kv : e->kwargs) see(kv.second);
    ++d;
    if (d > max_nesting_)
      fail_at(cur(), "expression nested deeper than " + std::to_string(max_nesting_), ErrorKind::kUnsupported);
    e->depth = d;
    return e;
  }

  // ---- statements -------------------------------------------------------------------------------
  // Parses until `{% <one of end_tags>` (left unconsumed after the '{%'; its name in *end).
  Body subparse(std::initializer_list<const char*> end_tags, std::string* end) {
    Body body;
    while (cur().type != Tok::kEof) {
      const Token& tok = cur();
      if (tok.type == Tok::kData) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kText;
        n->line = tok.line;
        n->text = tok.text;
        body.push_back(std::move(n));
        next();
      } else if (tok.type == Tok::kVarBegin) {
        next();
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kOutput;
        n->line = tok.line;
        n->expr = parse_tuple(true, {}, false);
        if (cur().type != Tok::kVarEnd) fail_at(cur(), "expected end of print statement, got " + describe(cur()));
        next();
        body.push_back(std::move(n));
      } else if (tok.type == Tok::kBlockBegin) {
        next();
        if (cur().type != Tok::kName) fail_at(cur(), "expected a tag name, got " + describe(cur()));
        if (in_list(cur().text, end_tags)) {
          *end = cur().text;
          return body;
        }
        body.push_back(parse_statement());
      } else {
        fail_at(tok, "unexpected " + describe(tok));
      }
    }
    if (end_tags.size() != 0) {
      std::string want;
      for (const char* t : end_tags) want += std::string(want.empty() ? "" : " or ") + "'" + t + "'";
      fail_at(cur(), "unexpected end of template, expected " + want);
    }
    return body;
  }

  NodePtr parse_statement() {
    DepthGuard guard(*this);
    const Token& tok = cur();
    const std::string tag = tok.text;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail_at(tok, "'" + tag + "' outside of a loop");
      auto n = std::make_unique<Node>();
      n->kind = tag == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      n->line = tok.line;
      next();
      expect_block_end();
      return n;
    }
    if (tag == "generation") {  // transformers' AssistantTracker tag: renders its body
      auto n = std::make_unique<Node>();
      n->kind = Node::Kind::kScope;
      n->line = tok.line;
      next();
      expect_block_end();
      std::string end;
      n->body = subparse({"endgeneration"}, &end);
      next();
      expect_block_end();
      return n;
    }
    if (in_list(tag, {"macro", "call", "filter", "include", "import", "from", "extends", "block",
                      "with", "autoescape", "do", "trans", "pluralize", "endmacro", "endcall"}))
      fail_at(tok, "'{% " + tag + " %}' is not supported by this Jinja interpreter", ErrorKind::kUnsupported);
    fail_at(tok, "unknown tag '" + tag + "'");
  }

  NodePtr parse_if() {
    auto n = std::make_unique<Node>();
    n->kind = Node::Kind::kIf;
    n->line = cur().line;
    next();  // 'if'
    while (true) {
      n->conds.push_back(parse_tuple(false, {}, false));
      expect_block_end();
      std::string end;
      n->bodies.push_back(subparse({"elif", "else", "endif"}, &end));
      next();
      if (end == "elif") continue;
      if (end == "else") {
        expect_block_end();
        n->else_body = subparse({"endif"}, &end);
        next();
      }
      expect_block_end();
      return n;
    }
  }

  Target parse_target(bool allow_namespace, const char* end_name) {
    Target t;
    t.names.push_back(expect_name());
    if (allow_namespace && is_op(".")) {
      next();
      t.attr = expect_name();
      return t;
    }
    while (is_op(",")) {
      next();
      t.unpack = true;
      if (cur().type == Tok::kName && (end_name == nullptr || cur().text != end_name)) {
        t.names.push_back(expect_name());
      } else {
        break;
      }
    }
    for (const auto& name : t.names)
      if (in_list(name, {"true", "false", "none", "True", "False", "None"}))
        fail_at(cur(), "cannot assign to '" + name + "'");
    return t;
  }

  NodePtr parse_for() {
    auto n = std::make_unique<Node>();
    n->kind = Node::Kind::kFor;
    n->line = cur().line;
    next();  // 'for'
    n->target = parse_target(false, "in");
    if (!is_name("in")) fail_at(cur(), "expected 'in', got " + describe(cur()));
    next();
    n->expr = parse_tuple(false, {"recursive"}, false);
    if (is_name("if")) {
      next();
      n->cond = parse_expression(true);
    }
    if (is_name("recursive")) unsupported("recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    const int refs_before = loop_refs_;
    std::string end;
    n->body = subparse({"endfor", "else"}, &end);
    n->uses_loop = loop_refs_ != refs_before;
    --loop_depth_;
    next();
    if (end == "else") {
      expect_block_end();
      n->else_body = subparse({"endfor"}, &end);
      next();
    }
    expect_block_end();
    return n;
  }

  NodePtr parse_set() {
    auto n = std::make_unique<Node>();
    n->line = cur().line;
    next();  // 'set'
    n->target = parse_target(true, nullptr);
    if (skip_op("=")) {
      n->kind = Node::Kind::kSet;
      n->expr = parse_tuple(true, {}, false);
      expect_block_end();
      return n;
    }
    if (n->target.unpack || !n->target.attr.empty()) fail_at(cur(), "a block set needs a plain name");
    if (is_op("|")) unsupported("filters on block set are not supported");
    n->kind = Node::Kind::kSetBlock;
    expect_block_end();
    std::string end;
    n->body = subparse({"endset"}, &end);
    next();
    expect_block_end();
    return n;
  }

  // ---- expressions ------------------------------------------------------------------------------
  bool tuple_end(std::initializer_list<const char*> extra_end) const {
    if (cur().type == Tok::kVarEnd || cur().type == Tok::kBlockEnd || cur().type == Tok::kEof) return true;
    if (is_op(")")) return true;
    return cur().type == Tok::kName && in_list(cur().text, extra_end);
  }

  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end, bool explicit_parens) {
    const int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail_at(cur(), "expected an expression, got " + describe(cur()));
    }
    auto e = make(Expr::Kind::kTuple, line);
    e->args = std::move(items);
    return seal(std::move(e));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr e = parse_or();
    while (is_name("if")) {
      const int line = cur().line;
      next();
      auto cond = make(Expr::Kind::kCond, line);
      cond->b = parse_or();
      cond->a = std::move(e);
      if (is_name("else")) {
        next();
        cond->c = parse_condexpr();
      }
      e = seal(std::move(cond));
    }
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto e = make(Expr::Kind::kBinary, line);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return seal(std::move(e));
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) {
      const int line = cur().line;
      next();
      l = binary("or", std::move(l), parse_and(), line);
    }
    return l;
  }

  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) {
      const int line = cur().line;
      next();
      l = binary("and", std::move(l), parse_not(), line);
    }
    return l;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = make(Expr::Kind::kUnary, cur().line);
      next();
      e->name = "not";
      e->a = parse_not();
      return seal(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr first = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      if (cur().type == Tok::kOp && in_list(cur().text, {"==", "!=", "<", "<=", ">", ">="})) {
        ops.push_back(cur().text);
        next();
      } else if (is_name("in")) {
        ops.push_back("in");
        next();
      } else if (is_name("not") && peek().type == Tok::kName && peek().text == "in") {
        ops.push_back("not in");
        next();
        next();
      } else {
        break;
      }
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = make(Expr::Kind::kCompare, line);
    e->a = std::move(first);
    e->ops = std::move(ops);
    e->args = std::move(operands);
    return seal(std::move(e));
  }

  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = cur().text;
      const int line = cur().line;
      next();
      l = binary(op, std::move(l), parse_concat(), line);
    }
    return l;
  }

  ExprPtr parse_concat() {
    ExprPtr l = parse_math2();
    while (is_op("~")) {
      const int line = cur().line;
      next();
      l = binary("~", std::move(l), parse_math2(), line);
    }
    return l;
  }

  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = cur().text;
      const int line = cur().line;
      // Python's printf-style formatting ('%s' % x) is not implemented: refuse it here when the
      // left side is a string literal (otherwise it fails at render time, kUnsupported).
      if (op == "%" && l->kind == Expr::Kind::kLiteral && l->value.is_string())
        unsupported("printf-style string formatting ('...' % x) is not supported");
      next();
      l = binary(op, std::move(l), parse_pow(), line);
    }
    return l;
  }

  ExprPtr parse_pow() {
    ExprPtr l = parse_unary(true);
    while (is_op("**")) {
      const int line = cur().line;
      next();
      l = binary("**", std::move(l), parse_unary(true), line);
    }
    return l;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      auto e = make(Expr::Kind::kUnary, cur().line);
      e->name = cur().text;
      next();
      e->a = parse_unary(false);
      node = seal(std::move(e));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr literal(Value v, int line) {
    auto e = make(Expr::Kind::kLiteral, line);
    e->value = std::move(v);
    return seal(std::move(e));
  }

  ExprPtr parse_primary() {
    const Token& tok = cur();
    const int line = tok.line;
    switch (tok.type) {
      case Tok::kName: {
        const std::string n = tok.text;
        next();
        if (n == "true" || n == "True") return literal(Value(true), line);
        if (n == "false" || n == "False") return literal(Value(false), line);
        if (n == "none" || n == "None") return literal(Value::none(), line);
        if (n == "loop") ++loop_refs_;
        auto e = make(Expr::Kind::kName, line);
        e->name = n;
        return seal(std::move(e));
      }
      case Tok::kString: {
        std::string s = tok.text;
        next();
        while (cur().type == Tok::kString) {  // adjacent literals concatenate
          s += cur().text;
          next();
        }
        return literal(Value(std::move(s)), line);
      }
      case Tok::kInt: {
        const int64_t v = tok.ival;
        next();
        return literal(Value(v), line);
      }
      case Tok::kFloat: {
        const double v = tok.fval;
        next();
        return literal(Value(v), line);
      }
      case Tok::kOp:
        if (tok.text == "(") {
          next();
          ExprPtr e = parse_tuple(true, {}, true);
          expect_op(")");
          return e;
        }
        if (tok.text == "[") {
          next();
          auto e = make(Expr::Kind::kList, line);
          while (!is_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("]")) break;
            e->args.push_back(parse_expression(true));
          }
          expect_op("]");
          return seal(std::move(e));
        }
        if (tok.text == "{") {
          next();
          auto e = make(Expr::Kind::kDict, line);
          while (!is_op("}")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("}")) break;
            e->args.push_back(parse_expression(true));
            expect_op(":");
            e->args.push_back(parse_expression(true));
          }
          expect_op("}");
          return seal(std::move(e));
        }
        break;
      default: break;
    }
    fail_at(tok, "unexpected " + describe(tok));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) node = parse_subscript(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter(std::move(node));
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) node = parse_call(std::move(node));
      else return node;
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const int line = cur().line;
    if (skip_op(".")) {
      if (cur().type == Tok::kName) {
        auto e = make(Expr::Kind::kGetattr, line);
        e->name = cur().text;
        next();
        e->a = std::move(node);
        return seal(std::move(e));
      }
      if (cur().type == Tok::kInt) {
        auto e = make(Expr::Kind::kGetitem, line);
        e->a = std::move(node);
        e->b = literal(Value(cur().ival), line);
        next();
        return seal(std::move(e));
      }
      fail_at(cur(), "expected a name or number after '.', got " + describe(cur()));
    }
    next();  // '['
    ExprPtr result;
    // Slice or index.
    ExprPtr start, stop, step;
    bool is_slice = false;
    if (!is_op(":")) start = parse_expression(true);
    if (skip_op(":")) {
      is_slice = true;
      if (!is_op("]") && !is_op(":")) stop = parse_expression(true);
      if (skip_op(":")) {
        if (!is_op("]")) step = parse_expression(true);
      }
    }
    if (is_op(",")) unsupported("tuple subscripts are not supported");
    expect_op("]");
    if (is_slice) {
      auto e = make(Expr::Kind::kSlice, line);
      e->a = std::move(node);
      e->b = std::move(start);
      e->c = std::move(stop);
      e->d = std::move(step);
      return seal(std::move(e));
    }
    auto e = make(Expr::Kind::kGetitem, line);
    e->a = std::move(node);
    e->b = std::move(start);
    return seal(std::move(e));
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) unsupported("*args / **kwargs in calls are not supported");
      if (cur().type == Tok::kName && peek().type == Tok::kOp && peek().text == "=") {
        std::string key = cur().text;
        next();
        next();
        for (const auto& kv : e.kwargs)
          if (kv.first == key) fail_at(cur(), "keyword argument '" + key + "' repeated");
        e.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail_at(cur(), "positional argument after keyword argument");
        e.args.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  // Only calls the interpreter can carry out are accepted: known global functions by name, and
  // known methods (str/dict methods, loop.cycle) on an attribute.
  ExprPtr parse_call(ExprPtr node) {
    const Token& tok = cur();
    if (node->kind == Expr::Kind::kName) {
      if (!is_known_global(node->name))
        fail_at(tok, "call of unknown function '" + node->name + "'", ErrorKind::kUnsupported);
    } else if (node->kind == Expr::Kind::kGetattr) {
      if (!is_known_method(node->name))
        fail_at(tok, "call of unsupported method '" + node->name + "'", ErrorKind::kUnsupported);
    } else {
      fail_at(tok, "only functions and methods can be called", ErrorKind::kUnsupported);
    }
    auto e = make(Expr::Kind::kCall, tok.line);
    e->a = std::move(node);
    parse_call_args(*e);
    return seal(std::move(e));
  }

  std::string dotted_name() {
    std::string n = expect_name();
    while (is_op(".")) {
      next();
      n += "." + expect_name();
    }
    return n;
  }

  // The name argument of map/select/reject/selectattr/rejectattr, when a literal, must be known.
  void check_named_arg(const Expr& e) {
    const std::string& f = e.name;
    size_t idx = 0;
    bool is_filter = false;
    if (f == "map") {
      is_filter = true;
    } else if (f == "select" || f == "reject") {
    } else if (f == "selectattr" || f == "rejectattr") {
      idx = 1;
    } else {
      return;
    }
    if (idx >= e.args.size() || e.args[idx]->kind != Expr::Kind::kLiteral || !e.args[idx]->value.is_string())
      return;
    const std::string& name = e.args[idx]->value.str();
    if (is_filter ? !is_known_filter(name) : !is_known_test(name))
      fail_at(cur(), std::string(is_filter ? "filter" : "test") + " '" + name + "' (used by " + f +
                         ") is not supported", ErrorKind::kUnsupported);
  }

  ExprPtr parse_filter(ExprPtr node) {
    const int line = cur().line;
    next();  // '|'
    auto e = make(Expr::Kind::kFilter, line);
    e->name = dotted_name();
    if (!is_known_filter(e->name))
      fail_at(cur(), "filter '" + e->name + "' is not supported", ErrorKind::kUnsupported);
    e->a = std::move(node);
    if (is_op("(")) parse_call_args(*e);
    check_named_arg(*e);
    return seal(std::move(e));
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = cur().line;
    next();  // 'is'
    auto e = make(Expr::Kind::kTest, line);
    if (is_name("not")) {
      next();
      e->negated = true;
    }
    e->name = dotted_name();
    if (!is_known_test(e->name)) fail_at(cur(), "test '" + e->name + "' is not supported", ErrorKind::kUnsupported);
    e->a = std::move(node);
    if (is_op("(")) {
      parse_call_args(*e);
    } else {
      const Tok ty = cur().type;
      const bool starts_primary = ty == Tok::kName || ty == Tok::kString || ty == Tok::kInt ||
                                  ty == Tok::kFloat || is_op("(") || is_op("[") || is_op("{");
      if (starts_primary && !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) fail_at(cur(), "you cannot chain multiple tests with is");
        ExprPtr arg = parse_primary();
        e->args.push_back(parse_postfix(std::move(arg)));
      }
    }
    return seal(std::move(e));
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int max_nesting_;
  int depth_ = 0;
  int loop_depth_ = 0;
  int loop_refs_ = 0;  // how many times the name `loop` was read so far
};

}  // namespace

bool is_known_filter(const std::string& n) {
  return in_list(n, {"trim", "length", "count", "tojson", "upper", "lower", "capitalize", "default", "d",
                     "items", "join", "first", "last", "string", "int", "float", "abs", "list", "replace",
                     "safe", "escape", "e", "map", "select", "reject", "selectattr", "rejectattr",
                     "reverse", "indent"});
}

bool is_known_test(const std::string& n) {
  return in_list(n, {"defined", "undefined", "none", "boolean", "true", "false", "integer", "float",
                     "number", "string", "mapping", "iterable", "sequence", "callable", "lower",
                     "upper", "odd", "even", "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt",
                     "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "in", "sameas",
                     "escaped"});
}

bool is_known_global(const std::string& n) {
  return in_list(n, {"raise_exception", "strftime_now", "namespace", "dict", "range"});
}

bool is_known_method(const std::string& n) {
  return in_list(n, {"strip", "lstrip", "rstrip", "startswith", "endswith", "split", "rsplit", "upper",
                     "lower", "capitalize", "replace", "find", "rfind", "count", "join", "splitlines",
                     "items", "keys", "values", "get", "cycle"});
}

Body parse_template(std::vector<Token> tokens, int max_nesting) {
  return Parser(std::move(tokens), max_nesting).parse();
}

}  // namespace nanoflow::jinja
