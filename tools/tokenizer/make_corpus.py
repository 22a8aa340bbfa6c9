#!/usr/bin/env python3
"""Deterministic tokenizer test corpus: JSON Lines, one JSON string per line (so texts may hold
newlines and any character). Mixes English, code, CJK, emoji (ZWJ sequences, flags, skin tones),
combining marks (decomposed text, for NFC), long whitespace runs, digits, special-token strings,
random valid UTF-8 and a sweep over every Unicode scalar value.

    python tools/tokenizer/make_corpus.py OUT.jsonl [--lines N] [--seed S]

The same seed gives the same file on any Python 3 (only random.Random(seed) is used)."""
import argparse
import json
import random

WORDS = ("the of and to in is you that it he was for on are as with his they I at be this have from "
         "or one had by word but not what all were we when your can said there use an each which she "
         "do how their if will up other about out many then them these so some her would make like "
         "him into time has look two more write go see number no way could people my than first water "
         "been call who oil its now find long down day did get come made may part over new sound take "
         "only little work know place year live me back give most very after thing our just name good "
         "sentence man think say great where help through much before line right too mean old any same "
         "tell boy follow came want show also around form three small set put end does another well "
         "large must big even such because turn here why ask went men read need land different home us "
         "move try kind hand picture again change off play spell air away animal house point page letter "
         "Tokenizer BPE Llama Qwen Mixtral naïve café résumé coöperate façade jalapeño Zürich São Paulo "
         "don't won't I'm you're they've we'll she'd it's DON'T I'M WE'LL HE'D IT'S Let's O'Brien").split()

CODE = [
    "def {f}(x, y=None):\n    return x ** 2 + (y or 0)  # square\n",
    "for (int i = 0; i < {n}; ++i) {{ sum += a[i] * b[i]; }}",
    "if __name__ == \"__main__\":\n\tmain()\n",
    "const {f} = async (req, res) => {{ await res.json({{ok: true, n: {n}}}); }};",
    "SELECT id, name FROM users WHERE age >= {n} ORDER BY name DESC;",
    "#include <vector>\nstd::vector<int> v({n}, -1);\n",
    "    \t  x = [i for i in range({n}) if i % 3 == 0]\r\n",
    "<div class=\"row\"><span id='{f}'>&nbsp;{n}</span></div>",
    "fn {f}(v: &[u8]) -> Result<u32, Error> {{ Ok(v.len() as u32) }}",
    "$ git commit -m \"fix: {f} overflow at {n}\" && echo $?",
    "{{\"key\": [1, 2.5e-3, null, true], \"{f}\": \"\\u00e9\\n\"}}",
    "x+=1;y-=2;z*=3;w/=4;q%=5;a<<=1;b>>=2;c&=d|e^~f;",
]

SPECIALS = ["<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_5|>", "<|python_tag|>",
            "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<file_sep>", "[INST]", "[/INST]",
            "<<SYS>>", "<|im_st", "<s", "</", "<|", "|>", "<|eot_id", "< s>", "<S>", "<0x41>", "<|begin_of_text|><|begin_of_text|>"]

CJK = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现"
JA = "こんにちは世界、カタカナとひらがな。東京タワーへ行きましょう！ｶﾀｶﾅ半角"
KO = "안녕하세요 세계 한국어 텍스트입니다 가각"
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸", "🇯🇵", "❤️", "🤖", "✨", "🔥🔥🔥", "👩🏻‍💻", "🧑‍🚀", "☕", "1️⃣", "#️⃣", "🫠"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "\u1100\u1161\u11a8", "A\u030a", "i\u0307",
             "\u0915\u094d\u0937", "ل\u064e", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f",
             "c\u0327", "\u0061\u0328\u0301", "\u212b", "\u2126", "\uff21", "ﬁ", "①", "Ⅻ", "ſ", "İ", "ß"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", "\u200b", "\u180e", "\u2028", "\x0b", "\x0c", "\x85"]
SCRIPTS = ["Привет, мир! Съешь же ещё этих мягких французских булок.", "Γειά σου Κόσμε", "مرحبا بالعالم",
           "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào thế giới", "Ṁöŕë ŧëẋŧ ẅïŧħ ḋïäċŗïŧïċś",
           "ǅungla ǈudi ǋje", "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ", "𝐌𝐚𝐭𝐡 𝑖𝑡𝑎𝑙𝑖𝑐 𝟙𝟚𝟛", "ᚠᛇᚻ᛫ᛒᛦᚦ", "𓀀𓀁 𐍈"]


def rand_scalar(r, lo=0, hi=0x10FFFF):
    while True:
        c = r.randint(lo, hi)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def english(r):
    n = r.randint(1, 40)
    s = " ".join(r.choice(WORDS) for _ in range(n))
    if r.random() < 0.5:
        s = s.capitalize() + r.choice([".", "!", "?", "...", ",", ";", ":", " —", ""])
    return s


def code(r):
    return r.choice(CODE).format(f=r.choice(["foo", "bar_baz", "_x", "camelCase", "ÜberFn"]), n=r.randint(0, 10**6))


def digits(r):
    parts = [str(r.randint(0, 10 ** r.randint(1, 30))), f"{r.random() * 10 ** r.randint(-5, 9):.{r.randint(0, 8)}f}",
             "1,234,567.89", "3.14159265358979", "0x" + format(r.getrandbits(64), "x"), "١٢٣٤٥", "१२३", "½ ¼ ²³",
             "v" + ".".join(str(r.randint(0, 99)) for _ in range(3)), "2026-11-27T12:34:56Z", "+1 (555) 010-9999",
             "a1b22c333d4444", "12ab34cd", "9" * r.randint(1, 64)]
    return " ".join(r.choice(parts) for _ in range(r.randint(1, 6)))


def whitespace(r):
    out = []
    for _ in range(r.randint(1, 8)):
        out.append(r.choice(SPACES) * r.randint(1, 40))
        if r.random() < 0.7:
            out.append(r.choice(WORDS))
    return "".join(out)


def cjk(r):
    src = r.choice([CJK, JA, KO])
    n = r.randint(1, 60)
    s = "".join(r.choice(src) for _ in range(n))
    if r.random() < 0.5:
        s = english(r) + " " + s + r.choice(["。", "，", "！", "?", " "]) + english(r)
    return s


def emoji(r):
    return "".join(r.choice(EMOJI) + (r.choice(WORDS) + " " if r.random() < 0.4 else "") for _ in range(r.randint(1, 10)))


def combining(r):
    return "".join(r.choice(COMBINING) + (r.choice([" ", "", r.choice(WORDS)]) if r.random() < 0.5 else "") for _ in range(r.randint(1, 15)))


def specials(r):
    out = []
    for _ in range(r.randint(1, 8)):
        out.append(r.choice(SPECIALS))
        if r.random() < 0.6:
            out.append(r.choice(["", " ", "\n", "  "]) + r.choice(WORDS) + r.choice(["", " ", "\n"]))
    return "".join(out)


def random_utf8(r):
    # Mostly BMP (where the letters, marks and spaces are), some astral, some ASCII controls.
    out = []
    for _ in range(r.randint(1, 50)):
        p = r.random()
        if p < 0.15:
            out.append(chr(r.randint(0, 0x7F)))
        elif p < 0.75:
            out.append(rand_scalar(r, 0x80, 0xFFFF))
        else:
            out.append(rand_scalar(r, 0x10000, 0x10FFFF))
    return "".join(out)


def scripts(r):
    return r.choice(SCRIPTS) + (" " + english(r) if r.random() < 0.3 else "")


def mixed(r):
    gens = [english, code, digits, whitespace, cjk, emoji, combining, specials, random_utf8, scripts]
    return "".join(r.choice(gens)(r) + r.choice(["", " ", "\n", "\t"]) for _ in range(r.randint(2, 5)))


def sweep():
    # Every scalar value of planes 0-3 and 14 (where all assigned characters are) once, 96 per line,
    # separated by a space/digit/letter/apostrophe so that classes meet neighbours of every kind
    # (\s, \p{L}, \p{N}, punctuation). Planes 4-13, 15, 16 (unassigned / private use) are sampled
    # by random_utf8.
    lines, cur = [], []
    for c in list(range(0x40000)) + list(range(0xE0000, 0xE1000)):
        if 0xD800 <= c <= 0xDFFF:
            continue
        cur.append(chr(c))
        cur.append(" xa1'"[c % 5])
        if len(cur) >= 192:
            lines.append("".join(cur))
            cur = []
    if cur:
        lines.append("".join(cur))
    return lines


KINDS = {"english": english, "code": code, "digits": digits, "whitespace": whitespace, "cjk": cjk, "emoji": emoji,
         "combining": combining, "specials": specials, "random_utf8": random_utf8, "scripts": scripts, "mixed": mixed}


def make(n_lines, seed, with_sweep=True, only=None):
    r = random.Random(seed)
    gens = [KINDS[k] for k in only] if only else list(KINDS.values())
    if only:  # a corpus of just these kinds (e.g. natural text for benchmarks)
        return [r.choice(gens)(r) for _ in range(n_lines)]
    lines = ["", " ", "  ", "\n", "\t", "Hello world", " Hello world", "Hello World", "   Hello\n\nWorld   ",
             "I'm SURE it'S fine", "ſ's 'S 'ſ", "\u0301", "a\u0301", "\u00e1", "<s>", " <s> ", "</s>hi", "<|endoftext|>",
             "<|im_start|>user\nhi<|im_end|>", "▁", "▁▁x", "<0x0A>", "\r", "\r\n", "\n\n\n", " \n \n", "x" * 3000,
             " " * 500 + "end", "9" * 200, "ab" * 800, "🤖" * 100]
    while len(lines) < n_lines:
        lines.append(r.choice(gens)(r))
    if with_sweep:
        lines.extend(sweep())
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=10000, help="generated lines before the code point sweep")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--only", help="comma-separated kinds, e.g. english,code,cjk (no fixed lines, no sweep): "
                    + ",".join(KINDS))
    a = ap.parse_args()
    lines = make(a.lines, a.seed, not a.no_sweep, a.only.split(",") if a.only else None)
    with open(a.out, "w", encoding="utf-8") as f:
        for s in lines:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    print(f"{a.out}: {len(lines)} lines, {sum(len(s.encode()) for s in lines)} bytes")


if __name__ == "__main__":
    main()
