// Syntax tree of a compiled template. Expressions and statements are plain tagged structs owned
// through unique_ptr; the tree is immutable after parsing and shared by concurrent renders.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace nanoflow::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // value
    kName,      // name
    kList,      // [args...]
    kTuple,     // (args...)
    kDict,      // {kwargs (key expr in args[2i], value in args[2i+1])}
    kGetattr,   // a.name
    kGetitem,   // a[b]
    kSlice,     // a[b:c:d]; absent parts are null (args: b, c, d may be null)
    kCall,      // a(args..., kwargs...)
    kFilter,    // a | name(args..., kwargs...)
    kTest,      // a is [not] name(args...)
    kUnary,     // op a        (op: "-", "+", "not")
    kBinary,    // a op b      (op: + - * / // % ** ~ and or)
    kCompare,   // a op1 b op2 c ...  (ops, operands in args)
    kCond,      // a if b else c  (c may be null: Undefined)
  };
  Kind kind;
  int line = 0;
  int depth = 1;              // longest path to a leaf (bounded by the parser)
  Value value;                // kLiteral
  std::string name;           // kName / kGetattr attr / kFilter / kTest / op of kUnary, kBinary
  ExprPtr a, b, c, d;         // operands (see above)
  std::vector<ExprPtr> args;  // list/tuple items, call/filter/test positional args, compare operands
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // keyword args
  std::vector<std::string> ops;                         // kCompare: "==", "<", "in", "not in", ...
  bool negated = false;                                 // kTest: `is not`
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

// Assignment target of set / for: a name, a namespace attribute (ns.attr), or a tuple of names.
struct Target {
  std::vector<std::string> names;  // one name, or several for unpacking
  bool unpack = false;             // `a, b` form
  std::string attr;                // non-empty: names[0].attr (namespace assignment)
};

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // conds[i] -> bodies[i]; else_body
    kFor,       // for target in expr [if cond]: body; else_body
    kSet,       // set target = expr
    kSetBlock,  // set target %}body{% endset
    kBreak,
    kContinue,
    kScope,     // body only (e.g. {% generation %}): rendered in place
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;                 // output / for iterable / set value
  ExprPtr cond;                 // for filter
  std::vector<ExprPtr> conds;   // if/elif conditions
  std::vector<Body> bodies;     // if/elif bodies
  Body body;                    // for / set-block / scope body
  Body else_body;
  Target target;
  bool uses_loop = true;        // for: the body names `loop` (else the loop object is not built)
};

}  // namespace nanoflow::jinja
