"""Seeded random templates for whitespace control and block structure (make_goldens.py renders them
with transformers' Jinja environment into tests/data/chat/jinja_random.json). They mix text made of
spaces, tabs and newlines (\\n and \\r\\n) with tags carrying every -/+ modifier, comments, raw blocks,
if/else, for loops and set, which is where a re-implementation of Jinja's lexer goes wrong."""
import random

TEXTS = ["", " ", "  ", "\n", "\n\n", " \n ", "\t", "x", "ab ", " y\n", "\n  ", "\r\n", "  \t\n", "\n\t \n  ",
         "z\n    ", "\u3000", "é \n"]


def text(r):
    return "".join(r.choice(TEXTS) for _ in range(r.randint(0, 3)))


def block(r, body):
    return r.choice(["{%", "{%-", "{%+"]) + " " + body + " " + r.choice(["%}", "-%}", "+%}"])


def var(r, expr):
    return r.choice(["{{", "{{-"]) + " " + expr + " " + r.choice(["}}", "-}}"])


def comment(r):
    return r.choice(["{#", "{#-", "{#+"]) + r.choice([" c ", "\n", ""]) + r.choice(["#}", "-#}", "+#}"])


def element(r, depth, names):
    k = r.randint(0, 9 if depth < 2 else 4)
    if k <= 1:
        return text(r)
    if k == 2:
        return var(r, r.choice(["'v'", "1 + 1", "x", "names | length"] + names))
    if k == 3:
        return comment(r)
    if k == 4:
        # `+%}` does not close a raw opening tag in Jinja (it becomes an unknown tag 'raw'): keep
        # that to a few cases so the rest exercise the raw body.
        opener = block(r, "raw") if r.random() < 0.1 else r.choice(["{%", "{%-", "{%+"]) + " raw " + r.choice(["%}", "-%}"])
        return opener + r.choice(["{{ x }}", " a\n", "\n"]) + block(r, "endraw")
    if k in (5, 6):
        out = block(r, "if " + r.choice(["true", "false", "x", "not x"])) + seq(r, depth + 1, names)
        if r.random() < 0.5:
            out += block(r, "else") + seq(r, depth + 1, names)
        return out + block(r, "endif")
    if k in (7, 8):
        return (block(r, "for i in " + r.choice(["[1, 2]", "'ab'", "names"])) +
                seq(r, depth + 1, names + ["i", "loop.index"]) + block(r, "endfor"))
    return block(r, "set s = " + r.choice(["'q'", "x ~ '!'"])) + seq(r, depth + 1, names + ["s"])


def seq(r, depth, names):
    return "".join(element(r, depth, names) for _ in range(r.randint(1, 4)))


def random_templates(n=300, seed=20241127):
    r = random.Random(seed)
    out = []
    for k in range(n):
        src = seq(r, 0, [])
        if r.random() < 0.3:
            src += r.choice(["\n", "\n\n", "\r\n", " \n"])  # trailing newline handling
        out.append((f"random_{k:03d}", src, {"x": "X", "names": ["a", "b"]}))
    return out
