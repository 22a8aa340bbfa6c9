"""Reference tokenizers from the PyPI `tokenizers` package (Hugging Face's implementation).

load(path): a HF folder -> Tokenizer.from_file(tokenizer.json). A .gguf -> a Tokenizer built from
its tokenizer.ggml.* vocabulary with the pipeline of the model's original tokenizer.json:
  - gpt2 + pre "smollm" (SmolLM2): BPE(vocab, merges), pre-tokenizers Digits(individual) +
    ByteLevel(GPT-2 regex), ByteLevel decoder; control tokens are special added tokens. (transformers'
    own GGUF converter drops the Digits step, so "2026" would become one token: not what SmolLM2 was
    trained with, nor what llama.cpp does.)
  - llama (SentencePiece): the vocabulary is Llama 2's; use Llama-2-7b-chat-hf/tokenizer.json
    (llama_spm_reference), whose vocab the test checks to be identical.
"""
import os

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors


def gguf_field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    vals = [f.parts[i] for i in f.data]
    if f.types[0].name == "ARRAY":
        if f.types[1].name == "STRING":
            return [bytes(v).decode("utf-8") for v in vals]
        return [v.tolist()[0] for v in vals]
    if f.types[0].name == "STRING":
        return bytes(vals[0]).decode("utf-8")
    return vals[0].tolist()[0]


def from_gguf(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    model, pre = gguf_field(r, "tokenizer.ggml.model"), gguf_field(r, "tokenizer.ggml.pre")
    if model != "gpt2" or pre not in ("smollm", "starcoder"):
        raise ValueError(f"{path}: no reference pipeline for model={model} pre={pre}")
    toks = gguf_field(r, "tokenizer.ggml.tokens")
    types = gguf_field(r, "tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(toks)}
    merges = [tuple(m.split(" ")) for m in gguf_field(r, "tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(toks[i], special=True, normalized=False)
                            for i, t in enumerate(types) if t in (2, 3)])
    if gguf_field(r, "tokenizer.ggml.add_bos_token"):
        bos = toks[gguf_field(r, "tokenizer.ggml.bos_token_id")]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, vocab[bos])])
    return tok


def load(path):
    if path.endswith(".gguf"):
        return from_gguf(path)
    return Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
