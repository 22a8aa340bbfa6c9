"""Seeded random expressions over mixed values (operators, comparisons, filters, tests, methods,
subscripts), rendered by make_goldens.py with transformers' Jinja into
tests/data/chat/jinja_random_expr.json. Many raise in Python (type errors, undefined): ours must
raise too. Where we deliberately refuse (big integers, printf formatting) the C++ test accepts
Error(kUnsupported) instead of the output."""
import random

CONTEXT = {"i": 7, "n": -3, "z": 0, "f": 2.5, "g": -0.1, "s": "  Héllo, Wörld \n", "e": "", "t": "a,b,,c",
           "u": "日本語 text", "l": [3, 1, 2], "m": [], "d": {"k": "v", "n": 1, "b": True}, "nn": None,
           "tt": True, "ff": False, "msgs": [{"role": "user", "content": " hi "}, {"role": "assistant", "content": "yo"}]}

ATOMS = ["i", "n", "z", "f", "g", "s", "e", "t", "u", "l", "m", "d", "nn", "tt", "ff", "msgs", "undef",
         "1", "0", "-2", "3.0", "0.5", "'x'", "'ab c'", "''", "[1, 'a']", "[]", "{'a': 1}", "none", "true", "false",
         "msgs[0]", "msgs[-1].role", "d.k", "d['n']", "l[1:]", "s[2:5]", "u[0]", "l[-1]", "d.missing", "l[9]"]
BINOPS = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"]
FILTERS = ["trim", "length", "upper", "lower", "capitalize", "string", "int", "float", "abs", "list", "first",
           "last", "reverse", "tojson", "items", "default('D')", "default('D', true)", "join(',')", "join",
           "replace('l', 'L')", "select", "reject", "map('string')", "selectattr('role', 'eq', 'user')",
           "map(attribute='role')", "indent(2)", "e", "count", "trim('H ')"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence",
         "boolean", "true", "false", "odd", "even", "lower", "upper", "divisibleby 2", "eq 7", "in [1, 7]", "gt 1"]
METHODS = ["strip()", "lstrip()", "rstrip()", "upper()", "lower()", "split()", "split(',')", "startswith('a')",
           "endswith('c')", "replace('a', 'z')", "find('l')", "count('l')", "splitlines()", "get('k')", "items()",
           "keys()", "values()", "rsplit(',', 1)", "strip(' H')", "capitalize()"]


def expr(r, depth):
    if depth >= 3:
        return r.choice(ATOMS)
    k = r.randint(0, 9)
    if k <= 2:
        return r.choice(ATOMS)
    if k <= 4:
        return f"({expr(r, depth + 1)} {r.choice(BINOPS)} {expr(r, depth + 1)})"
    if k == 5:
        return f"({expr(r, depth + 1)} | {r.choice(FILTERS)})"
    if k == 6:
        return f"({expr(r, depth + 1)} is {'not ' if r.random() < 0.3 else ''}{r.choice(TESTS)})"
    if k == 7:
        return f"{r.choice(['s', 't', 'u', 'e', 'd', 'msgs[0]', 'l', 'i'])}.{r.choice(METHODS)}"
    if k == 8:
        return f"({expr(r, depth + 1)} if {expr(r, depth + 1)} else {expr(r, depth + 1)})"
    return f"(not {expr(r, depth + 1)})"


def random_expressions(n=300, seed=4242):
    r = random.Random(seed)
    return [(f"expr_{k:03d}", "{{ " + expr(r, 0) + " }}", CONTEXT) for k in range(n)]
